"""Keypoint rewards (KAGI-style): task keypoints in 3D turn into dense rewards and into
analytic scores of candidate primitives, without rolling anything out.

`Keypoints` (`robot_rewards.core.keypoints`): K object keypoints (points of the things to move)
and K target keypoints (where each should end up), in the robot base frame, with names. The
state reward is a monotone function of the mean object-to-target distance d: `-d`
(kind="neg_distance") or `exp(-d / scale)` (kind="exp").

Keypoint sources implement `KeypointSource.keypoints(obs) -> Keypoints`:

- `SimKeypointSource`: ground truth from the task's privileged sim state (`Task.keypoints`);
- `ClickKeypointSource`: a human clicks pixels; depth + the calibrated camera turn each click
  into a base-frame point (`click_to_point`);
- `LearnedKeypointSource`: a small PointNet regressing keypoints from the cloud
  (`keypoint_net`), trained on sim ground truth;
- a VLM source (the model names or marks the keypoints in an image, KAGI) plugs in here too:
  implement `keypoints(obs)`, e.g. by asking for pixels and passing them to `click_to_point`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.keypoints import KeypointError, Keypoints
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.perception.pointcloud import frame_to_cloud, valid_depth_mask
from robot_rewards.rewards.base import RewardInputError, ScoreSet, check_candidates
from robot_rewards.sim.tasks import TASKS

REWARD_KINDS = ("neg_distance", "exp")


def keypoint_reward(keypoints: Keypoints, kind: str = "neg_distance", scale: float = 0.05) -> float:
    """Dense reward of a state from its keypoints, decreasing in the mean distance d (m):
    -d (`neg_distance`) or exp(-d / scale) in (0, 1] (`exp`)."""
    d = float(keypoints.distances().mean())
    if kind == "neg_distance":
        return -d
    if kind == "exp":
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return float(np.exp(-d / scale))
    raise ValueError(f"unknown keypoint reward kind '{kind}'; use one of {REWARD_KINDS}")


@runtime_checkable
class KeypointSource(Protocol):
    """Where keypoints come from (sim truth, clicks, a learned model; a VLM later)."""

    def keypoints(self, obs: Observation) -> Keypoints:
        """Keypoints of the scene in `obs` (base frame)."""
        ...


class KeypointReward:
    """`StateReward` from a keypoint source: keypoints of each observation -> `keypoint_reward`."""

    def __init__(self, source: KeypointSource, kind: str = "neg_distance", scale: float = 0.05):
        if kind not in REWARD_KINDS:
            raise ValueError(f"unknown keypoint reward kind '{kind}'; use one of {REWARD_KINDS}")
        self.source, self.kind, self.scale = source, kind, scale

    def score_states(self, observations_or_images: Sequence[Observation], goal: str | None = None) -> np.ndarray:
        """(B,) rewards; the goal is the observations' own (keypoints already encode it)."""
        obs = list(observations_or_images)
        if not obs:
            raise RewardInputError("no observations to score")
        for o in obs:
            if not isinstance(o, Observation):
                raise RewardInputError(f"keypoint rewards need Observations, got {type(o).__name__}")
        return np.array([keypoint_reward(self.source.keypoints(o), self.kind, self.scale) for o in obs])


# -- analytic candidate scoring --------------------------------------------------------------

def score_pick_place(keypoints: Keypoints, params) -> np.ndarray:
    """(N,) scores of pick_place candidates: -min_k (|pick - object_k| + |place - target_k|).

    Picking a keypoint's object and putting it on its target scores ~0; every metre the pick
    misses the object or the place misses the target costs 1. The min over k lets a candidate
    work on any of the keypoints (e.g. either rope end)."""
    p = np.asarray(params, dtype=np.float64).reshape(-1, 7)
    cost = (np.linalg.norm(p[:, None, 0:3] - keypoints.objects[None], axis=-1)
            + np.linalg.norm(p[:, None, 3:6] - keypoints.targets[None], axis=-1))
    return -cost.min(axis=1)


def predict_push(keypoints: Keypoints, params, contact_offset: float = 0.04, capture: float = 0.03) -> np.ndarray:
    """(N, K, 3) object keypoints after each push candidate (a straight push start -> end, xy).

    An object whose centre lies within `capture` (m) of the push line, ahead of the start and
    before the end, is carried along: it ends `contact_offset` beyond the end point (the
    pusher's face is that far from its centre at contact). Others stay where they are.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 6)
    start, end = p[:, None, 0:2], p[:, None, 3:5]
    obj = keypoints.objects[None, :, :2]
    seg = end - start
    length = np.linalg.norm(seg, axis=-1, keepdims=True)
    u = seg / np.maximum(length, 1e-9)
    along = np.sum((obj - start) * u, axis=-1, keepdims=True)
    lateral = np.abs((obj - start)[..., 0:1] * u[..., 1:2] - (obj - start)[..., 1:2] * u[..., 0:1])
    moved = (lateral < capture) & (along > 0) & (along < length + contact_offset) & (length > 1e-6)
    new_xy = np.where(moved, end + contact_offset * u, obj)
    out = np.repeat(keypoints.objects[None], len(p), axis=0)
    out[..., :2] = new_xy
    return out


def score_push(keypoints: Keypoints, params, contact_offset: float = 0.04, capture: float = 0.03) -> np.ndarray:
    """(N,) scores of push candidates: minus the mean xy distance of the predicted object
    keypoints (`predict_push`) to their targets."""
    pred = predict_push(keypoints, params, contact_offset, capture)
    return -np.linalg.norm(pred[..., :2] - keypoints.targets[None, :, :2], axis=-1).mean(axis=1)


class KeypointScorer:
    """`ActionScorer` from a keypoint source: analytic scores, no rollouts (K = 1 ScoreSet)."""

    def __init__(self, source: KeypointSource, contact_offset: float = 0.04, capture: float = 0.03):
        self.source, self.contact_offset, self.capture = source, contact_offset, capture

    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        check_candidates(candidates)
        return self.score_keypoints(self.source.keypoints(obs), candidates)

    def score_keypoints(self, keypoints: Keypoints, candidates: Candidates) -> ScoreSet:
        """Scores of `candidates` given known keypoints."""
        check_candidates(candidates)
        if candidates.name == "pick_place":
            s = score_pick_place(keypoints, candidates.params)
        elif candidates.name == "push":
            s = score_push(keypoints, candidates.params, self.contact_offset, self.capture)
        else:
            raise RewardInputError(f"no analytic keypoint score for primitive '{candidates.name}'")
        return ScoreSet.from_members(s[None])


# -- sources ---------------------------------------------------------------------------------

class FixedKeypointSource:
    """The same keypoints for every observation (tests, or keypoints set once per episode)."""

    def __init__(self, keypoints: Keypoints):
        self._kp = keypoints

    def keypoints(self, obs: Observation | None = None) -> Keypoints:
        return self._kp


def task_keypoints(task, world) -> Keypoints:
    """Ground-truth keypoints of a sim task's current state (privileged): `task.keypoints(world)`,
    e.g. a block's centre -> its target, or both rope ends -> their marks."""
    hook = getattr(task, "keypoints", None)
    kp = hook(world) if callable(hook) else None
    if kp is None:
        known = [name for name, cls in TASKS.items() if cls.keypoint_names]
        raise KeypointError(f"no ground-truth keypoints defined for task '{getattr(task, 'name', '')}' "
                            f"(known: {', '.join(known)})")
    return kp


class SimKeypointSource:
    """Ground truth from a `TabletopEnv`'s task state (the observation itself is not used)."""

    def __init__(self, env):
        self.env = env

    def keypoints(self, obs: Observation | None = None) -> Keypoints:
        return task_keypoints(self.env.task, self.env.world)


def click_to_point(frame: CameraFrame, u: float, v: float, camera: CameraModel | None = None,
                   search_radius: int = 3) -> np.ndarray:
    """Base-frame 3D point (3,) under pixel (u, v) of an RGB-D frame (a human click).

    The pixel is rounded to the nearest one; if its depth is invalid (0/NaN/inf), the nearest
    valid pixel within `search_radius` is used instead (depth holes at object edges). The
    pixel is back-projected through the camera's intrinsics and extrinsic with the same helper
    perception uses. camera: overrides `frame.camera` (e.g. a fresh calibration)."""
    camera = camera or frame.camera
    h, w = frame.depth.shape
    if not (np.isfinite(u) and np.isfinite(v)):
        raise KeypointError(f"click ({u}, {v}) is not a finite pixel")
    iu, iv = int(round(u)), int(round(v))
    if not (0 <= iu < w and 0 <= iv < h):
        raise KeypointError(f"click ({u:.1f}, {v:.1f}) is outside the {w}x{h} image")
    valid = valid_depth_mask(frame.depth)
    r = max(0, int(search_radius))
    v0, v1, u0, u1 = max(0, iv - r), min(h, iv + r + 1), max(0, iu - r), min(w, iu + r + 1)
    vv, uu = np.nonzero(valid[v0:v1, u0:u1])
    if len(vv) == 0:
        raise KeypointError(f"no valid depth within {r} px of the click ({iu}, {iv})")
    j = int(np.argmin((vv + v0 - iv) ** 2 + (uu + u0 - iu) ** 2))
    mask = np.zeros((h, w), dtype=bool)
    mask[vv[j] + v0, uu[j] + u0] = True
    cloud = frame_to_cloud(frame, camera, colors=False, labels=False, mask=mask)
    return cloud.points[0].astype(np.float64)


@dataclass(frozen=True)
class Click:
    """One clicked pixel in a named camera of the observation."""

    camera: str
    u: float
    v: float


class ClickKeypointSource:
    """Keypoints from human clicks: pairs of (object click, target click), one per keypoint."""

    def __init__(self, clicks: Sequence[tuple[Click, Click]], names: Sequence[str] = (), search_radius: int = 3):
        if not clicks:
            raise KeypointError("no clicks given")
        self.clicks, self.names, self.search_radius = list(clicks), list(names), search_radius

    def keypoints(self, obs: Observation) -> Keypoints:
        def point(c: Click) -> np.ndarray:
            if c.camera not in obs.frames:
                raise KeypointError(f"click in camera '{c.camera}', but the observation has {sorted(obs.frames)}")
            return click_to_point(obs.frames[c.camera], c.u, c.v, search_radius=self.search_radius)

        return Keypoints([point(a) for a, _ in self.clicks], [point(b) for _, b in self.clicks], self.names)

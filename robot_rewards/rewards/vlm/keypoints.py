"""Keypoint proposals by a VLM (KAGI-style marking): numbered points are drawn on the camera
image, the model picks the one on the object to move and the one where it has to go, and each
picked pixel is lifted to 3D with the frame's depth and the camera model (`click_to_point`, the
same deprojection perception uses). The result is a `KeypointSource`, so it feeds the keypoint
rewards and the analytic keypoint scores (`rewards/keypoints`) like clicks or the learned model.

Marks: the middle of each object in the observation's point cloud (connected clusters; the
table is already removed), then farthest-point samples of the cloud, projected into the camera
and kept where the pixel has valid depth and no other mark is within `min_separation_px`;
without a cloud, a regular pixel grid. One keypoint pair (object -> target) per proposal: the
tasks with one object to move.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_rewards.core.keypoints import KeypointError, Keypoints
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.perception.filters import farthest_point_sampling
from robot_rewards.perception.pointcloud import valid_depth_mask
from robot_rewards.rewards.base import RewardInputError, check_goal
from robot_rewards.rewards.keypoints.reward import click_to_point
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.parse import normalise, parse_index
from robot_rewards.rewards.vlm.prompts import UNSURE, keypoint_prompt
from robot_rewards.rewards.vlm.verdict import STATUSES, Verdict

MARK_SOURCES = ("cloud", "grid")


@dataclass(frozen=True, eq=False)
class Marks:
    """M numbered marks (number k + 1 at row k): pixels (M, 2) (u, v) in the camera image."""

    camera: str
    pixels: np.ndarray


@dataclass(frozen=True, eq=False)
class KeypointProposal:
    """What the model picked: 0-based mark indices (-1: none fits / can't tell), the verdicts of
    the two questions, and the keypoints (None unless both picks were answered and lifted)."""

    marks: Marks
    object_index: int
    target_index: int
    verdicts: tuple[Verdict, Verdict]
    keypoints: Keypoints | None = None
    error: str = ""


def draw_marks(rgb: np.ndarray, pixels: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A new image: `rgb` upscaled by `scale` with mark k drawn as a dot numbered k + 1."""
    img = np.ascontiguousarray(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                               if scale != 1.0 else rgb.copy())
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale
    t = max(1, int(round(1.5 * scale)))
    h, w = img.shape[:2]
    for k, (u, v) in enumerate(np.asarray(pixels, dtype=np.float64)):
        c = (int(round((u + 0.5) * scale - 0.5)), int(round((v + 0.5) * scale - 0.5)))
        cv2.circle(img, c, int(4 * scale), (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, c, int(3 * scale), (255, 255, 0), -1, cv2.LINE_AA)
        text = str(k + 1)
        (tw, th), _ = cv2.getTextSize(text, font, fs, t)
        org = (int(np.clip(c[0] + 5 * scale, 0, w - tw - 1)), int(np.clip(c[1] - 4 * scale, th + 1, h - 1)))
        cv2.putText(img, text, org, font, fs, (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.putText(img, text, org, font, fs, (255, 255, 255), t, cv2.LINE_AA)
    return img


def cluster_centres(points: np.ndarray, link: float = 0.015, min_points: int = 8) -> np.ndarray:
    """(C, 3) one cloud point per connected cluster (points closer than `link` metres join), the
    one nearest the cluster's centroid in x-y: the middle of a block's top, a bowl's floor. Largest
    clusters first; clusters of fewer than `min_points` points are left out."""
    p = np.asarray(points, dtype=np.float32)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    rows, cols = np.nonzero(d2 < link * link)
    labels = np.arange(len(p))
    while True:  # each point takes the smallest label among its neighbours until nothing changes
        new = labels.copy()
        np.minimum.at(new, rows, labels[cols])
        new = new[new]  # jump along chains: converges in a few rounds on long clusters
        if np.array_equal(new, labels):
            break
        labels = new
    ids, counts = np.unique(labels, return_counts=True)
    out = []
    for i in ids[np.argsort(-counts, kind="stable")]:
        members = np.flatnonzero(labels == i)
        if len(members) < min_points:
            continue
        centre = p[members, :2].mean(axis=0)
        out.append(points[members[np.argmin(((p[members, :2] - centre) ** 2).sum(-1))]])
    return np.array(out, dtype=np.float64).reshape(-1, 3)


class VLMKeypointSource:
    """`KeypointSource` from a VLM's picks among numbered marks (see the module docstring).

    n_marks: marks drawn; source: "cloud" or "grid"; camera: which frame (default the first);
    min_separation_px: marks closer than this to an earlier one are dropped (numbers must stay
    readable); scale: upscale of the image the model sees.
    """

    def __init__(self, client: VLMClient, n_marks: int = 20, source: str = "cloud", camera: str = "",
                 min_separation_px: float = 14.0, scale: float = 1.0, search_radius: int = 3):
        if source not in MARK_SOURCES:
            raise ValueError(f"mark source must be one of {list(MARK_SOURCES)}, got {source!r}")
        if n_marks < 2 or n_marks > 99:
            raise ValueError(f"n_marks must be in 2..99, got {n_marks}")
        self.client, self.n_marks, self.source, self.camera = client, int(n_marks), source, camera
        self.min_separation_px, self.scale, self.search_radius = float(min_separation_px), float(scale), search_radius
        self.counts = dict.fromkeys(STATUSES, 0)

    def frame(self, obs: Observation) -> tuple[str, CameraFrame]:
        """(name, frame) of the camera the marks are drawn in."""
        if not obs.frames:
            raise RewardInputError("the observation has no camera frames to mark")
        name = self.camera or next(iter(obs.frames))
        if name not in obs.frames:
            raise RewardInputError(f"no camera '{name}' in the observation (has {sorted(obs.frames)})")
        return name, obs.frames[name]

    def marks(self, obs: Observation) -> Marks:
        """The numbered marks for `obs` (deterministic for the same observation)."""
        name, frame = self.frame(obs)
        valid = valid_depth_mask(frame.depth)
        h, w = valid.shape
        if self.source == "cloud" and obs.points is not None and len(obs.points) >= 2:
            pts = np.asarray(obs.points, dtype=np.float64)
            order = farthest_point_sampling(pts, min(len(pts), 4 * self.n_marks))
            # one mark at the middle of each object first, then spread-out points on them
            uv = frame.camera.project(np.concatenate([cluster_centres(pts), pts[order]]))
        else:
            n = int(np.ceil(np.sqrt(4 * self.n_marks)))
            gu, gv = np.meshgrid((np.arange(n) + 0.5) * w / n, (np.arange(n) + 0.5) * h / n)
            uv = np.stack([gu.ravel(), gv.ravel()], axis=1)
        kept: list[np.ndarray] = []
        for p in np.round(uv):
            if len(kept) >= self.n_marks:
                break
            u, v = int(p[0]), int(p[1])
            if not (0 <= u < w and 0 <= v < h and valid[v, u]):
                continue
            if kept and np.min(np.linalg.norm(np.array(kept) - p, axis=1)) < self.min_separation_px:
                continue
            kept.append(p)
        if len(kept) < 2:
            raise RewardInputError(f"camera '{name}' has fewer than 2 pixels with valid depth to mark")
        return Marks(name, np.array(kept, dtype=np.float64))

    def marked_image(self, obs: Observation, marks: Marks) -> np.ndarray:
        """The image the model sees: the frame with the numbered marks."""
        return draw_marks(obs.frames[marks.camera].rgb, marks.pixels, self.scale)

    def _pick(self, image: np.ndarray, goal: str, count: int, which: str) -> tuple[int, Verdict]:
        reply = self.client.ask(keypoint_prompt(goal, count, which), [image])
        if reply.status != "ok":
            v = Verdict(np.nan, "error" if reply.status == "error" else "malformed", reply.text, reply.cached)
            index = -1
        else:
            index = parse_index(reply.text, count)
            if index is not None and index >= 0:
                v = Verdict(float(index), "answered", reply.text, reply.cached)
            else:
                status = "unsure" if index == -1 or normalise(reply.text) == UNSURE else "malformed"
                v, index = Verdict(np.nan, status, reply.text, reply.cached), -1
        self.counts[v.status] += 1
        return index, v

    def propose(self, obs: Observation, goal: str | None = None) -> KeypointProposal:
        """Ask for the object and the target mark and lift both; never raises for an answer the
        model gives (a proposal without keypoints says why in `error`)."""
        goal = check_goal(obs.goal if goal is None else goal)
        marks = self.marks(obs)
        image = self.marked_image(obs, marks)
        oi, ov = self._pick(image, goal, len(marks.pixels), "object")
        ti, tv = self._pick(image, goal, len(marks.pixels), "target")
        if oi < 0 or ti < 0:
            bad = [f"{w}: {v.status} ({v.text!r})" for w, v in (("object", ov), ("target", tv)) if not v.answered]
            return KeypointProposal(marks, oi, ti, (ov, tv), None, "can't tell; " + "; ".join(bad))
        frame = obs.frames[marks.camera]
        try:
            obj, tgt = (click_to_point(frame, *marks.pixels[i], search_radius=self.search_radius) for i in (oi, ti))
            kp = Keypoints([obj], [tgt], ["vlm"])
        except KeypointError as exc:
            return KeypointProposal(marks, oi, ti, (ov, tv), None, str(exc))
        return KeypointProposal(marks, oi, ti, (ov, tv), kp)

    def keypoints(self, obs: Observation) -> Keypoints:
        """The proposal's keypoints; KeypointError (one line, with the model's answers) when the
        model could not tell."""
        prop = self.propose(obs)
        if prop.keypoints is None:
            raise KeypointError(f"VLM keypoints: {prop.error}")
        return prop.keypoints

    def stats(self) -> dict:
        """Verdict counts, plus the client's request counts."""
        return {**self.counts, **self.client.stats()}

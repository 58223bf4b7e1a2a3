"""Synthetic scenes with a planted ground truth, for tests, benchmarks and sanity checks.

A scene is a grey clutter of points over the workspace plus a red cluster (the "mark"); for
keypoints, also a blue cluster (the "object"). The planted preference: the candidate whose
place point is nearer the red mark (xy) is better, so a scorer can only learn it by reading
the point cloud.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.primitives import Workspace
from robot_rewards.rewards.keypoints.net import KeypointDataset
from robot_rewards.rewards.preference.scorer import PreferencePairs

GOAL = "put the block on the red mark"
RED, BLUE, GREY = (220, 30, 30), (30, 60, 220), (120, 120, 120)


def _clutter(rng, m: int, p: int, ws: Workspace):
    lo, hi = np.array(ws.low), np.array(ws.high)
    pts = np.zeros((m, p, 3), np.float32)
    pts[..., :2] = rng.uniform(lo[:2], hi[:2], (m, p, 2))
    pts[..., 2] = rng.uniform(0.0, 0.03, (m, p))
    cols = np.tile(np.array(GREY, np.uint8), (m, p, 1))
    return pts, cols


def _cluster(rng, pts, cols, start: int, count: int, centres_xy, colour, z: float = 0.01):
    m = len(pts)
    pts[:, start:start + count, :2] = centres_xy[:, None] + rng.normal(0, 0.01, (m, count, 2))
    pts[:, start:start + count, 2] = z
    cols[:, start:start + count] = colour


def random_params(rng, n: int, primitive: str = "pick_place", ws: Workspace | None = None) -> np.ndarray:
    """(n, D) uniform random candidates inside the workspace box (yaw uniform in [-pi, pi))."""
    ws = ws or Workspace()
    lo, hi = np.array(ws.low), np.array(ws.high)
    pts = [rng.uniform(lo, hi, (n, 3)), rng.uniform(lo, hi, (n, 3))]
    if primitive == "pick_place":
        pts.append(rng.uniform(-np.pi, np.pi, (n, 1)))
    return np.concatenate(pts, axis=1)


def planted_scenes(m: int, seed: int, n_points: int = 64):
    """(points (m, P, 3), colours, red-mark xy (m, 2)) of m random scenes."""
    rng = np.random.default_rng([seed, 11])
    pts, cols = _clutter(rng, m, n_points, Workspace())
    marks = np.c_[rng.uniform(0.35, 0.65, m), rng.uniform(-0.25, 0.25, m)]
    _cluster(rng, pts, cols, 0, n_points // 4, marks, RED)
    return pts, cols, marks


def planted_pairs(m: int, seed: int = 0, n_points: int = 64, tie_rate: float = 0.0, cant_tell_rate: float = 0.0):
    """PreferencePairs over m scenes: label 1 iff A's place point is nearer the red mark (xy);
    optional ties (label 0.5) and "can't tell" (NaN) labels at the given rates."""
    pts, cols, marks = planted_scenes(m, seed, n_points)
    rng = np.random.default_rng([seed, 12])
    a, b = random_params(rng, m), random_params(rng, m)
    da = np.linalg.norm(a[:, 3:5] - marks, axis=1)
    db = np.linalg.norm(b[:, 3:5] - marks, axis=1)
    labels = (da < db).astype(np.float64)
    labels[rng.random(m) < tie_rate] = 0.5
    labels[rng.random(m) < cant_tell_rate] = np.nan
    return PreferencePairs("pick_place", pts, cols, [GOAL] * m, a, b, labels)


def planted_observation(seed: int = 0, n_points: int = 64) -> tuple[Observation, np.ndarray]:
    """(an Observation of one planted scene, its red-mark xy)."""
    pts, cols, marks = planted_scenes(1, seed, n_points)
    return Observation(frames={}, proprio=None, goal=GOAL, points=pts[0], colors=cols[0]), marks[0]


def random_candidates(n: int, seed: int = 0, primitive: str = "pick_place") -> Candidates:
    """n uniform random candidates (seeds 0..n-1, none clipped)."""
    rng = np.random.default_rng([seed, 13])
    return Candidates(primitive, random_params(rng, n, primitive), np.arange(n), np.zeros(n, bool))


def planted_keypoint_dataset(m: int, seed: int = 0, n_points: int = 64):
    """KeypointDataset: a blue "object" cluster -> the red "mark" cluster (one keypoint each)."""
    rng = np.random.default_rng([seed, 14])
    pts, cols = _clutter(rng, m, n_points, Workspace())
    obj = np.c_[rng.uniform(0.35, 0.65, m), rng.uniform(-0.25, 0.25, m)]
    tgt = np.c_[rng.uniform(0.35, 0.65, m), rng.uniform(-0.25, 0.25, m)]
    q = n_points // 4
    _cluster(rng, pts, cols, 0, q, obj, BLUE, 0.02)
    _cluster(rng, pts, cols, q, q, tgt, RED, 0.001)
    objects = np.c_[obj, np.full(m, 0.02)][:, None]
    targets = np.c_[tgt, np.full(m, 0.001)][:, None]
    return KeypointDataset(pts, cols, ["put the blue block on the red mark"] * m, objects, targets,
                           np.arange(m) + seed * 100_000, ["block"])

"""An outcome model's view of a cloud through a learned keypoint model (`KeypointCloudOutcome`).

For a task whose one keypoint pair keeps its meaning across a step (`Task.outcome_from_keypoints`:
the same block, the same bowl or mark), the shipped keypoint model reads where the object and its
target are on any cloud, the cloud after a primitive included. Measures are then the object's
offset from its target on the cloud after, and inputs the candidate relative to the keypoints of
the cloud before; nothing privileged at run time (the keypoint model reads only the cloud).

Everything is in the target's robot-centric frame: origin at the target, first axis pointing from
the target to the robot base, second axis across. Outcomes are then the same wherever the target
sits around the base, and "the half of the bowl nearest the robot" is one measure's sign.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from robot_rewards.core.keypoints import Keypoints
from robot_rewards.core.paths import resolve
from robot_rewards.rewards.keypoints.io import load_keypoint_model
from robot_rewards.rewards.keypoints.net import predict_keypoints
from robot_rewards.rewards.keypoints.reward import predict_push
from robot_rewards.sim.tasks.base import CloudOutcome, KeypointReading

UNIT = 0.05  # m: offsets in units of 5 cm
REACH_UNIT = 0.5  # m: the target's distance from the base
GRIP_RADIUS = 0.028  # m: points around the object keypoint that show its top face (4 cm blocks)
RIM_CLEARANCE = 0.007  # m: rim points this far beyond the object's top-face radius (its sides are not rim)


class KeypointCloudOutcome(CloudOutcome):
    """Measures: the object keypoint's offset from the target keypoint towards the robot base,
    across, its xy distance and its height, all / 5 cm. Score: minus the xy distance."""

    measure_names: ClassVar[tuple[str, ...]] = ("toward_base", "across", "distance", "height")
    signed_measures: ClassVar[tuple[str, ...]] = ("toward_base", "across")
    input_dim: ClassVar[int] = 20

    def __init__(self, keypoint_model: str | Path, reading: KeypointReading | None = None):
        self.reading = reading or KeypointReading()
        path = resolve(keypoint_model)
        ckpt = load_keypoint_model(path)
        if ckpt.model.config.n_keypoints != 1:
            raise ValueError(f"{path}: a keypoint outcome reads one object/target pair, the model predicts "
                             f"{ckpt.model.config.n_keypoints}")
        self.path, self.task, self.model = str(keypoint_model), ckpt.task, ckpt.model
        self.sha256 = str(ckpt.meta.get("weights_sha256", ""))
        self.use_rgb = bool(ckpt.model.config.use_rgb)

    def keypoints(self, points: np.ndarray, colors: np.ndarray | None, goal: str) -> tuple[np.ndarray, np.ndarray]:
        """(object (3,), target (3,)) the keypoint model reads on one cloud."""
        if self.use_rgb and colors is None:
            raise ValueError(f"the keypoint model {self.path} reads point colours; the cloud has none")
        if not goal:
            raise ValueError(f"the keypoint model {self.path} needs the goal sentence of the cloud")
        p = np.asarray(points, dtype=np.float32)
        obj, tgt = predict_keypoints(self.model, p[None], None if colors is None else np.asarray(colors)[None], [goal])
        return sharpen(p, obj[0, 0], tgt[0, 0], self.reading)

    @staticmethod
    def frame(target: np.ndarray) -> np.ndarray:
        """(2, 2) world xy -> (toward base, across) rotation at a target."""
        r = np.asarray(target[:2], dtype=np.float64)
        u = -r / max(float(np.linalg.norm(r)), 1e-9)
        return np.array([u, [-u[1], u[0]]])

    def measures(self, points: np.ndarray, colors: np.ndarray | None = None, goal: str = "") -> np.ndarray:
        obj, tgt = self.keypoints(points, colors, goal)
        d = obj - tgt
        along = self.frame(tgt) @ d[:2]
        return np.array([along[0], along[1], np.linalg.norm(d[:2]), d[2]]) / UNIT

    def inputs(self, points: np.ndarray, params: np.ndarray, colors: np.ndarray | None = None,
               goal: str = "") -> np.ndarray:
        """Per candidate: its first point (pick, push start) relative to the object, its second
        (place, push end) relative to the target, second minus first, all in the target's frame;
        the object relative to the target; the target's distance from the base; the gripper's yaw
        (pick_place) or the push's heading against the object's top-face edges (4-fold: a square
        is the same turned a quarter); the object along and across the tool's travel and the
        travel's length; where the object would rest, relative to the target, if the tool took it
        along rigidly."""
        obj, tgt = self.keypoints(points, colors, goal)
        rot = self.frame(tgt)
        P = np.asarray(params, dtype=np.float64).reshape(len(params), -1)
        first, second = P[:, 0:3], P[:, 3:6]

        def local(v: np.ndarray) -> np.ndarray:
            return np.concatenate([v[..., :2] @ rot.T, v[..., 2:3]], axis=-1) / UNIT

        scene = np.concatenate([local(obj - tgt), [np.linalg.norm(tgt[:2]) / REACH_UNIT]])
        cols = [local(first - obj), local(second - tgt), local(second - first), np.repeat(scene[None], len(P), axis=0)]
        # the gripper's yaw (pick_place) or a push's heading, against the object's faces
        travel = second - first
        angle = P[:, 6] if P.shape[1] > 6 else np.arctan2(travel[:, 1], travel[:, 0])
        rel = 4.0 * (angle - face_angle(points, obj))
        cols.append(np.stack([np.cos(rel), np.sin(rel)], axis=1))
        # the object in the tool's own frame: how far along the travel and how far off its line
        # (a push off the block's centre turns it instead of carrying it), and the travel's length
        length = np.linalg.norm(travel[:, :2], axis=1)
        u = travel[:, :2] / np.maximum(length, 1e-9)[:, None]
        to_obj = obj[:2] - first[:, :2]
        along = np.sum(to_obj * u, axis=1)
        lateral = u[:, 0] * to_obj[:, 1] - u[:, 1] * to_obj[:, 0]
        cols.append(np.stack([along, lateral, length], axis=1) / UNIT)
        # where the object would rest if the tool took it along rigidly: a grasp carries it by the
        # pick-to-place offset; a push that meets it leaves it beyond the end (the analytic push model)
        if P.shape[1] > 6:
            rigid = obj[:2] + travel[:, :2]
        else:
            rigid = predict_push(Keypoints([obj], [tgt], ["object"]), P)[:, 0, :2]
        cols.append(((rigid - tgt[:2]) @ rot.T) / UNIT)
        return np.concatenate(cols, axis=1).astype(np.float32)

    def score(self, predicted: np.ndarray) -> np.ndarray:
        return -np.asarray(predicted, dtype=np.float64).reshape(-1, len(self.measure_names))[:, 2]

    def symmetries(self, inputs: np.ndarray) -> list[np.ndarray]:
        """The scene mirrored across the line from the base through the target: every "across"
        component, the angle's sine and the object's side of the travel change sign."""
        out = np.array(inputs, dtype=np.float32, copy=True)
        # across: first, second, delta, object; the angle's sine; the object's side of the travel; the rigid end
        out[:, [1, 4, 7, 10, 14, 16, 19]] *= -1
        return [out]


def sharpen(points: np.ndarray, obj: np.ndarray, tgt: np.ndarray, reading: KeypointReading,
            min_points: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints moved onto the cloud's own evidence (`KeypointReading`): the object to its
    top face's centroid, the target to the centre of a circle fitted to its rim (algebraic
    least squares), each only where at least `min_points` points show it."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    obj, tgt = np.array(obj, dtype=np.float64), np.array(tgt, dtype=np.float64)
    if reading.object_top > 0:
        near = p[np.linalg.norm(p[:, :2] - obj[:2], axis=1) < reading.object_top]
        if len(near) >= min_points:
            top = near[near[:, 2] > near[:, 2].max() - reading.top_depth]
            if len(top) >= min_points:
                obj[:2] = top[:, :2].mean(axis=0)
    if reading.target_ring is not None:
        r_min, r_max, z_min, z_max = reading.target_ring
        r = np.linalg.norm(p[:, :2] - tgt[:2], axis=1)
        away = np.linalg.norm(p[:, :2] - obj[:2], axis=1) > reading.object_top + RIM_CLEARANCE
        ring = p[(r > r_min) & (r < r_max) & (p[:, 2] > z_min) & (p[:, 2] < z_max) & away]
        if len(ring) >= min_points:
            a = np.column_stack([2.0 * ring[:, :2], np.ones(len(ring))])
            centre = np.linalg.lstsq(a, np.sum(ring[:, :2] ** 2, axis=1), rcond=None)[0][:2]
            if np.linalg.norm(centre - tgt[:2]) < r_min:  # a fit to stray points lands far off
                tgt[:2] = centre
    return obj, tgt


def face_angle(points: np.ndarray, obj: np.ndarray) -> float:
    """The object's top-face orientation (radians, mod pi/2) from the cloud points within
    GRIP_RADIUS of the keypoint in xy and above its centre: the 4-fold angular moment of the
    points around their centroid, weighted to the corners (r^4)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    near = p[(np.linalg.norm(p[:, :2] - obj[:2], axis=1) < GRIP_RADIUS) & (p[:, 2] > obj[2])]
    if len(near) < 5:
        return 0.0
    d = near[:, :2] - near[:, :2].mean(axis=0)
    w = np.sum(d ** 2, axis=1) ** 2
    phi = np.arctan2(d[:, 1], d[:, 0])
    return float(np.arctan2(np.sum(w * np.sin(4 * phi)), np.sum(w * np.cos(4 * phi))) / 4.0)


@lru_cache(maxsize=8)
def keypoint_outcome(path: str, reading: KeypointReading | None = None) -> KeypointCloudOutcome:
    """One `KeypointCloudOutcome` per keypoint-model file and reading (loading costs ~0.1 s)."""
    return KeypointCloudOutcome(path, reading)

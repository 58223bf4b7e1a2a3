"""Task keypoints: K points of the things to move and the K targets each should reach.

A plain data type shared by the tasks (sim ground truth, `Task.keypoints`) and the keypoint
rewards and models (`robot_rewards.rewards.keypoints`), which read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class KeypointError(ValueError):
    """Keypoints that cannot be produced or used (unknown task, invalid click, bad shapes)."""


@dataclass(eq=False)
class Keypoints:
    """objects (K, 3) and targets (K, 3) in the base frame (metres); names: K labels."""

    objects: np.ndarray
    targets: np.ndarray
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.objects = np.asarray(self.objects, dtype=np.float64).reshape(-1, 3)
        self.targets = np.asarray(self.targets, dtype=np.float64).reshape(-1, 3)
        k = len(self.objects)
        if k == 0:
            raise KeypointError("no keypoints")
        if self.targets.shape != (k, 3):
            raise KeypointError(f"{k} object keypoints need {k} targets, got {len(self.targets)}")
        if not (np.all(np.isfinite(self.objects)) and np.all(np.isfinite(self.targets))):
            raise KeypointError("keypoints contain NaN/inf")
        self.names = list(self.names) or [f"kp{i}" for i in range(k)]
        if len(self.names) != k:
            raise KeypointError(f"{len(self.names)} names for {k} keypoints")

    def __len__(self) -> int:
        return len(self.objects)

    def distances(self) -> np.ndarray:
        """(K,) object-to-target distances (m)."""
        return np.linalg.norm(self.objects - self.targets, axis=1)


def canonical_order(objects: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) objects and targets with the pairs sorted by the target's y, then x.

    The sim's pair order can follow something the cloud cannot show (which rope end is link 0);
    sorted by target position it is a function of the scene. For align_rope the marks are at
    least 0.31 m apart in y (`sample_marks` keeps the 0.51 m segment inside the 0.35 m deep
    region, so it is never close to the x axis), so the order is never ambiguous."""
    order = np.lexsort((targets[:, 0], targets[:, 1]))
    return objects[order], targets[order]

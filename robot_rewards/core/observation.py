"""What the robot sees at one decision: camera frames, optional point cloud, proprioception, goal."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rewards.core.camera import CameraModel


@dataclass(eq=False)
class CameraFrame:
    """One RGB-D frame: rgb (H, W, 3) uint8, depth (H, W) float32 metres (0 = invalid),
    segmentation (H, W) int32 body ids (-1 = background) when the source has it."""

    camera: CameraModel
    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray | None = None

    def __post_init__(self):
        h, w = self.camera.intrinsics.height, self.camera.intrinsics.width
        if self.rgb.shape != (h, w, 3) or self.rgb.dtype != np.uint8:
            raise ValueError(
                f"camera '{self.camera.name}': rgb must be ({h}, {w}, 3) uint8, "
                f"got {self.rgb.shape} {self.rgb.dtype}"
            )
        if self.depth.shape != (h, w):
            raise ValueError(
                f"camera '{self.camera.name}': depth must be ({h}, {w}), got {self.depth.shape}"
            )
        if self.segmentation is not None and self.segmentation.shape != (h, w):
            raise ValueError(
                f"camera '{self.camera.name}': segmentation must be ({h}, {w}), "
                f"got {self.segmentation.shape}"
            )


@dataclass(eq=False)
class Proprio:
    """Arm joint positions (dof,) in radians and the gripper opening in metres."""

    joint_positions: np.ndarray
    gripper_width: float


@dataclass(eq=False)
class Observation:
    """Everything a policy or reward model may look at for one decision."""

    frames: dict[str, CameraFrame]
    proprio: Proprio | None  # None where the source has no robot state (e.g. a camera-only bag)
    goal: str
    timestamp: float = 0.0
    points: np.ndarray | None = None  # (P, 3) float32, base frame
    colors: np.ndarray | None = None  # (P, 3) uint8
    point_labels: np.ndarray | None = None  # (P,) int32 body ids, -1 = unknown
    points_padded: bool = False  # True when the cloud had fewer points and was resampled to P
    seg_labels: dict[int, str] = field(default_factory=dict)  # body id -> object name

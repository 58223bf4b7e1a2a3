"""Plain data types shared by every other module: no torch, no ROS, no PyBullet here."""

from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.core.primitives import (
    PICK_PLACE,
    PRIMITIVE_SPECS,
    PUSH,
    InvalidPrimitiveError,
    Primitive,
    PrimitiveSpec,
    Workspace,
)

__all__ = [
    "CameraFrame",
    "CameraIntrinsics",
    "CameraModel",
    "Candidates",
    "InvalidPrimitiveError",
    "Observation",
    "PICK_PLACE",
    "PRIMITIVE_SPECS",
    "PUSH",
    "Primitive",
    "PrimitiveSpec",
    "Proprio",
    "Workspace",
]

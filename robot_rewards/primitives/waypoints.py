"""Primitive -> Cartesian waypoints for a top-down parallel gripper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.core.primitives import Primitive
from robot_rewards.robots.description import GripperDescription
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm


@dataclass(frozen=True, eq=False)
class Waypoint:
    """Move the gripper point to `position` with `yaw` (straight down), then set the gripper.

    `linear` segments follow a straight line (approach, retreat, push); others move freely in
    joint space. `gripper` is the opening width (m) to command once there, or None.
    """

    position: np.ndarray
    yaw: float
    linear: bool = False
    gripper: float | None = None
    label: str = ""


def push_yaw(start, end) -> float:
    """Gripper yaw whose closed fingers present their broad side to the push direction."""
    d = np.asarray(end, dtype=np.float64)[:2] - np.asarray(start, dtype=np.float64)[:2]
    # yaw = 0 closes along base y, so the pad faces along x; rotate that to the push direction.
    return float(np.arctan2(d[1], d[0]))


def waypoints(primitive: Primitive, approach_height: float = 0.10,
              gripper: GripperDescription | None = None) -> list[Waypoint]:
    """The waypoint sequence that executes `primitive` (without the final return home) with
    `gripper`'s open and closed widths (default: the default arm's gripper)."""
    gripper = gripper or get_arm(DEFAULT_ARM).gripper
    open_width, closed_width = gripper.open_width, gripper.closed_width
    up = np.array([0.0, 0.0, approach_height])
    if primitive.name == "pick_place":
        pick, place, yaw = primitive["pick"], primitive["place"], primitive["yaw"]
        return [
            Waypoint(pick + up, yaw, gripper=open_width, label="above pick"),
            Waypoint(pick, yaw, linear=True, gripper=closed_width, label="grasp"),
            Waypoint(pick + up, yaw, linear=True, label="lift"),
            Waypoint(place + up, yaw, label="above place"),
            Waypoint(place, yaw, linear=True, gripper=open_width, label="release"),
            Waypoint(place + up, yaw, linear=True, label="retreat"),
        ]
    if primitive.name == "push":
        start, end = primitive["start"], primitive["end"]
        yaw = push_yaw(start, end)
        return [
            Waypoint(start + up, yaw, gripper=closed_width, label="above push start"),
            Waypoint(start, yaw, linear=True, label="push start"),
            Waypoint(end, yaw, linear=True, label="push end"),
            Waypoint(end + up, yaw, linear=True, label="retreat"),
        ]
    raise ValueError(f"no waypoints defined for primitive '{primitive.name}'")

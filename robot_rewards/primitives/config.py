"""How the arm moves through a primitive: speeds, tolerances, gripper waits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MotionConfig:
    """How the arm moves: speeds are upper bounds, profiles are smooth (minimum jerk)."""

    free_speed: float = 1.5  # m/s of the gripper between waypoints in free space (Panda: 1.7 max)
    linear_speed: float = 0.5  # m/s on straight approach/retreat/push segments
    max_joint_speed: float = 2.0  # rad/s, below the Panda's 2.175 (joints 1-4) / 2.61 limits
    linear_step: float = 0.01  # m between IK points on straight segments
    settle_tolerance: float = 0.001  # m of gripper position error before grasping/releasing
    # m of error at intermediate waypoints where the gripper does not act: the next segment absorbs the lag,
    # and settling every waypoint to 1 mm cost ~20% of a fast primitive's physics steps
    waypoint_tolerance: float = 0.005
    settle_max_s: float = 1.0
    gripper_close_s: float = 0.2
    gripper_open_s: float = 0.15
    approach_height: float = 0.10  # m above pick/place/push points
    push_lift: float = 0.10

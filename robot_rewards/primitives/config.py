"""How the arm moves through a primitive: speeds, tolerances, gripper waits."""

from __future__ import annotations

from dataclasses import dataclass, replace

from robot_rewards.robots.description import ArmDescription


@dataclass
class MotionConfig:
    """How the arm moves: speeds are upper bounds, profiles are smooth (minimum jerk); an arm's
    own limits cap them (`limit_motion`)."""

    free_speed: float = 1.5  # m/s of the gripper between waypoints in free space
    linear_speed: float = 0.5  # m/s on straight approach/retreat/push segments
    max_joint_speed: float = 2.0  # rad/s, below the default arm's slowest joint limit (2.175)
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


def limit_motion(motion: MotionConfig, arm: ArmDescription) -> MotionConfig:
    """`motion` with its speeds capped at `arm`'s limits (the same object where none is over)."""
    caps = {"free_speed": arm.max_cartesian_speed, "linear_speed": arm.max_cartesian_speed,
            "max_joint_speed": arm.max_joint_speed}
    over = {k: cap for k, cap in caps.items() if getattr(motion, k) > cap}
    return replace(motion, **over) if over else motion

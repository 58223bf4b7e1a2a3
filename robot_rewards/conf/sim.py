"""Simulation settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class CameraConfig:
    """A camera: ROS camera_info YAML plus a base-to-camera transform YAML (paths relative to
    the package data folder unless absolute)."""

    name: str = "front"
    intrinsics: str = "calibration/front_camera.yaml"
    extrinsics: str = "calibration/front_camera_extrinsics.yaml"
    near: float = 0.05
    far: float = 3.0


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


@dataclass
class SimConfig:
    """PyBullet scene: headless by default; `sim.gui=true` opens a window."""

    gui: bool = False
    # "fast" (default): every field as given. "reference": the slower settings used until
    # 2026-12-07 (1/240 s, 50 solver iterations, 0.15 m/s approaches) replace the fields listed
    # in SIM_PROFILES["reference"], for comparisons (`bench sim` runs both).
    profile: str = "fast"
    timestep: float = 1.0 / 120.0
    solver_iterations: int = 30
    # Sort Bullet's overlapping pairs so that a restored state steps exactly like the state it was
    # saved from. Without it what-if rollouts (teacher labels, oracle) drift from what the arm then
    # does: bit-exact with it, up to 300+ mm apart on the rope without (docs/experiments.md,
    # "What-if rollouts are exact").
    deterministic_pairs: bool = True
    cameras: list[CameraConfig] = field(default_factory=lambda: [CameraConfig()])
    motion: MotionConfig = field(default_factory=MotionConfig)
    render_shadows: bool = False


# Knobs each named profile fixes (README, "Sim profiles"). "fast" is the defaults above, chosen by
# measurement: scripted experts keep their success, rope and block tests pass unchanged, 2.1-3.4x
# more primitives per second with rendering (benchmarks/README.md, "Simulator").
SIM_PROFILES: dict[str, dict] = {
    "fast": {},
    "reference": {
        "timestep": 1.0 / 240.0,
        "solver_iterations": 50,
        "motion": {"free_speed": 0.5, "linear_speed": 0.15, "max_joint_speed": 1.5,
                   "gripper_close_s": 0.35, "gripper_open_s": 0.25, "waypoint_tolerance": 0.001},
    },
}


class UnknownProfileError(ValueError):
    """A sim profile name that is not in SIM_PROFILES."""


def apply_profile(cfg: SimConfig) -> SimConfig:
    """`cfg` with its profile's knobs set (a copy; "fast" leaves every field as given)."""
    if cfg.profile not in SIM_PROFILES:
        raise UnknownProfileError(f"unknown sim profile '{cfg.profile}'; known: {', '.join(SIM_PROFILES)}")
    knobs = dict(SIM_PROFILES[cfg.profile])
    motion = knobs.pop("motion", {})
    return replace(cfg, **knobs, motion=replace(cfg.motion, **motion))

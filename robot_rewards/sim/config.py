"""Simulation settings: cameras, physics, the arm's motion (`MotionConfig`, owned by
`primitives`) and named profiles."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from robot_rewards.primitives.config import MotionConfig
from robot_rewards.robots.registry import DEFAULT_ARM


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
class SimConfig:
    """PyBullet scene: headless by default; `sim.gui=true` opens a window."""

    gui: bool = False
    arm: str = DEFAULT_ARM  # the arm on the table (robots.registry.ARMS): `sim.arm=xarm6`
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


# Knobs each named profile fixes (docs/sim.md, "Sim profiles"). "fast" is the defaults above, chosen by
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

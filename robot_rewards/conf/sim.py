"""Simulation settings."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    free_speed: float = 0.5  # m/s of the gripper between waypoints in free space
    linear_speed: float = 0.15  # m/s on straight approach/retreat/push segments
    max_joint_speed: float = 1.5  # rad/s, below the Panda's 2.175 (joints 1-4) / 2.61 limits
    linear_step: float = 0.01  # m between IK points on straight segments
    settle_tolerance: float = 0.001  # m of gripper position error before grasping/releasing
    settle_max_s: float = 1.0
    gripper_close_s: float = 0.35
    gripper_open_s: float = 0.25
    approach_height: float = 0.10  # m above pick/place/push points
    push_lift: float = 0.10


@dataclass
class SimConfig:
    """PyBullet scene: headless by default; `sim.gui=true` opens a window."""

    gui: bool = False
    timestep: float = 1.0 / 240.0
    solver_iterations: int = 50
    # Sort Bullet's overlapping pairs so that a restored state steps exactly like the state it was
    # saved from. Without it what-if rollouts (teacher labels, oracle) drift from what the arm then
    # does: bit-exact with it, up to 300+ mm apart on the rope without (docs/experiments.md,
    # "What-if rollouts are exact").
    deterministic_pairs: bool = True
    cameras: list[CameraConfig] = field(default_factory=lambda: [CameraConfig()])
    motion: MotionConfig = field(default_factory=MotionConfig)
    render_shadows: bool = False

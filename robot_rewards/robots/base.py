"""The robot interface: what the console, the experiment loop and the ROS graph need from an arm
(observe, execute a primitive, home, jog, turn a clicked pixel into a base-frame point).

Backends: `sim.robot.SimRobot` (PyBullet) and `ros.console_backend.RosRobot` (the live ROS 2
graph, where the policy node proposes the candidates: `offer`). Every call holds the robot's
lock, because the console prepares the next query in a background thread while the operator
may be jogging the arm. `scene_version` counts changes to the scene (executed primitives,
resets; not arm-only moves), so a query made from an older observation is known to be stale
and is never executed blindly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.perception.pointcloud import frame_to_cloud, valid_depth_mask
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm


class RobotError(RuntimeError):
    """A request the robot backend cannot serve (no scene yet, no depth at a pixel, ...)."""


@dataclass(frozen=True)
class ActionResult:
    """Outcome of a motion: whether it ran, why not, and the task state after it (sim only)."""

    ok: bool
    message: str
    success: bool | None = None


@dataclass(frozen=True, eq=False)
class Offer:
    """Candidates a robot's own policy proposed for the last observation (the ROS policy
    node's candidate set), shown instead of candidates the console samples itself.

    scores: (K, N) member scores to show where the console has no scorer (or None);
    decision_id: the proposer's decision, which an execution of one of them reports back to;
    chosen: the proposer's own pick (or None); origin: where it came from, for the store."""

    candidates: Candidates
    scores: np.ndarray | None
    decision_id: int
    chosen: int | None
    origin: str


def pixel_to_point(frame: CameraFrame, u: float, v: float, search_radius: int = 3) -> np.ndarray:
    """Base-frame 3D point seen at camera pixel (u, v) of `frame` (depth + camera model).

    Where the pixel has no valid depth (0, NaN: an edge, a reflection) the nearest pixel with
    one within `search_radius` is used; RobotError if there is none or (u, v) is outside.
    """
    intr = frame.camera.intrinsics
    inside = -0.5 <= u < intr.width - 0.5 and -0.5 <= v < intr.height - 0.5
    if not (np.isfinite(u) and np.isfinite(v) and inside):
        raise RobotError(f"pixel ({u:g}, {v:g}) is outside the {intr.width}x{intr.height} "
                           f"image of camera '{frame.camera.name}'")
    ui, vi = int(round(u)), int(round(v))
    r = int(search_radius)
    v0, v1, u0, u1 = max(vi - r, 0), min(vi + r + 1, intr.height), max(ui - r, 0), min(ui + r + 1, intr.width)
    valid = valid_depth_mask(frame.depth[v0:v1, u0:u1])
    if not valid.any():
        raise RobotError(f"no depth at pixel ({ui}, {vi}) of camera '{frame.camera.name}' or within "
                           f"{r} px of it (background or a hole in the depth image): click on a surface")
    vv, uu = np.nonzero(valid)
    k = int(np.argmin((vv + v0 - vi) ** 2 + (uu + u0 - ui) ** 2))
    mask = np.zeros(frame.depth.shape, dtype=bool)
    mask[vv[k] + v0, uu[k] + u0] = True
    cloud = frame_to_cloud(frame, mask=mask, colors=False, labels=False)
    return cloud.points[0].astype(np.float64)


class Robot:
    """What the console needs from a robot. Subclasses implement the motions and `observe`."""

    name = "robot"
    can_reset = False  # True where the backend can build a fresh random scene (the sim)
    # False where observing consumes something (the ROS graph's next candidate set), so the
    # console must not observe ahead in the background.
    can_prefetch = True

    def __init__(self):
        self.lock = threading.RLock()
        self.scene_version = 0
        self.last_observation: Observation | None = None

    @property
    def workspace(self) -> Workspace:
        """The box every target of this robot must lie in, from the robot's own configuration:
        the authority over any model file's box (`robots.workspace.narrowed`). Default: the
        default arm's; backends that know their arm say so by overriding this."""
        return get_arm(DEFAULT_ARM).workspace

    # -- to implement ----------------------------------------------------------------------
    def observe(self) -> Observation:
        """Current camera frames, point cloud, proprioception and goal."""
        raise NotImplementedError

    def execute(self, primitive: Primitive) -> ActionResult:
        """Run one primitive on the arm (checked, planned; refused if unreachable)."""
        raise NotImplementedError

    def home(self) -> ActionResult:
        """Move the arm to its home configuration (out of the cameras' view)."""
        raise NotImplementedError

    def state(self) -> Proprio:
        """Joint positions and gripper opening (default: those of the last observation; robots
        that read their joints directly say so by overriding this)."""
        if self.last_observation is None:
            raise RobotError(f"the {self.name} robot has observed nothing yet: observe() first")
        return self.last_observation.proprio

    def jog(self, delta_m) -> ActionResult:
        """Move the end effector by `delta_m` (3,) metres in the base frame, keeping its orientation."""
        raise NotImplementedError

    # -- optional --------------------------------------------------------------------------
    def offer(self) -> Offer | None:
        """The candidates proposed with the last observation, or None: the console samples."""
        return None

    def observed_version(self) -> int:
        """`scene_version` of the scene the last observation saw (the same as now in the sim,
        where nothing moves between the two; on a live robot the arm may have moved since)."""
        return self.scene_version

    def reset(self, seed: int) -> str:
        """A fresh scene from `seed`; returns the goal. Real robots cannot do this."""
        raise RobotError(f"the {self.name} backend cannot reset the scene: rearrange it by hand")

    def episode_done(self) -> bool:
        """Whether the current episode is over (task achieved or out of steps)."""
        return False

    def spare(self) -> Robot | None:
        """An independent backend of the same kind for preparing the next scene in parallel
        (the sim: a second world), or None where there is only one robot."""
        return None

    def close(self) -> None:
        """Release the robot (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- shared ----------------------------------------------------------------------------
    def pixel_to_base(self, camera: str, u: float, v: float, frame: CameraFrame | None = None) -> np.ndarray:
        """Base-frame point at pixel (u, v) of `camera`, from `frame` or the last observation."""
        if frame is None:
            obs = self.last_observation
            if obs is None:
                raise RobotError("nothing observed yet: observe() before converting pixels")
            if camera not in obs.frames:
                raise RobotError(f"unknown camera '{camera}'; observed: {sorted(obs.frames)}")
            frame = obs.frames[camera]
        return pixel_to_point(frame, u, v)

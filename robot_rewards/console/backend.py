"""Robots the console drives: observe, execute a primitive, home, jog, and turn a clicked
pixel into a base-frame point. `SimBackend` runs the PyBullet TabletopEnv; the ROS 2 backend
(same interface, robot_rewards.ros.console_backend) attaches to the live graph, where the
policy node proposes the candidates (`offer`).

Every backend call holds the backend's lock, because the console prepares the next query in a
background thread while the operator may be jogging the arm. `scene_version` counts changes
to the scene (executed primitives, resets; not arm-only moves), so a query made from an older
observation is known to be stale and is never executed blindly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from robot_rewards.conf.sim import SimConfig
from robot_rewards.core import transforms
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.perception.perceive import PerceptionConfig
from robot_rewards.perception.pointcloud import frame_to_cloud, valid_depth_mask

MIN_EE_HEIGHT = 0.01  # m: jog targets below this would drive the fingertips into the table


class BackendError(RuntimeError):
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
    one within `search_radius` is used; BackendError if there is none or (u, v) is outside.
    """
    intr = frame.camera.intrinsics
    inside = -0.5 <= u < intr.width - 0.5 and -0.5 <= v < intr.height - 0.5
    if not (np.isfinite(u) and np.isfinite(v) and inside):
        raise BackendError(f"pixel ({u:g}, {v:g}) is outside the {intr.width}x{intr.height} "
                           f"image of camera '{frame.camera.name}'")
    ui, vi = int(round(u)), int(round(v))
    r = int(search_radius)
    v0, v1, u0, u1 = max(vi - r, 0), min(vi + r + 1, intr.height), max(ui - r, 0), min(ui + r + 1, intr.width)
    valid = valid_depth_mask(frame.depth[v0:v1, u0:u1])
    if not valid.any():
        raise BackendError(f"no depth at pixel ({ui}, {vi}) of camera '{frame.camera.name}' or within "
                           f"{r} px of it (background or a hole in the depth image): click on a surface")
    vv, uu = np.nonzero(valid)
    k = int(np.argmin((vv + v0 - vi) ** 2 + (uu + u0 - ui) ** 2))
    mask = np.zeros(frame.depth.shape, dtype=bool)
    mask[vv[k] + v0, uu[k] + u0] = True
    cloud = frame_to_cloud(frame, mask=mask, colors=False, labels=False)
    return cloud.points[0].astype(np.float64)


class RobotBackend:
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
        raise BackendError(f"the {self.name} backend cannot reset the scene: rearrange it by hand")

    def episode_done(self) -> bool:
        """Whether the current episode is over (task achieved or out of steps)."""
        return False

    def spare(self) -> "RobotBackend | None":
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
                raise BackendError("nothing observed yet: observe() before converting pixels")
            if camera not in obs.frames:
                raise BackendError(f"unknown camera '{camera}'; observed: {sorted(obs.frames)}")
            frame = obs.frames[camera]
        return pixel_to_point(frame, u, v)


class SimBackend(RobotBackend):
    """The PyBullet tabletop task as a robot (TabletopEnv with the policy's perception)."""

    name = "sim"
    can_reset = True

    def __init__(self, task: str, sim: SimConfig | None = None, perception: PerceptionConfig | None = None,
                 workspace: Workspace | None = None):
        from robot_rewards.sim.env import TabletopEnv  # PyBullet only where the sim is used

        super().__init__()
        self._args = (task, sim or SimConfig(), perception, workspace)
        self.env = TabletopEnv(task, self._args[1], workspace, perception)
        self._has_scene = False

    def reset(self, seed: int) -> str:
        with self.lock:
            goal = self.env.reset(seed)
            self._has_scene = True
            self.scene_version += 1
            return goal

    def observe(self) -> Observation:
        with self.lock:
            self._need_scene()
            self.last_observation = self.env.observe()
            return self.last_observation

    def execute(self, primitive: Primitive) -> ActionResult:
        with self.lock:
            self._need_scene()
            r = self.env.step(primitive)
            self.scene_version += 1  # even a refused or faulted primitive may have moved things
            msg = "done" if r.executed else f"not executed: {r.reason}"
            return ActionResult(r.executed, f"{msg} (task {'achieved' if r.success else 'not achieved'}, "
                                f"step {self.env.steps}/{self.env.task.max_steps})", r.success)

    def home(self) -> ActionResult:
        with self.lock:
            r = self.env.world.panda.home()
            return ActionResult(r.ok, "arm at home" if r.ok else f"home failed: {r.reason}")

    def jog(self, delta_m) -> ActionResult:
        delta = np.asarray(delta_m, dtype=np.float64).reshape(-1)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            raise BackendError(f"jog needs a finite (dx, dy, dz) in metres, got {delta_m!r}")
        with self.lock:
            panda = self.env.world.panda
            pose = panda.ee_pose()
            target = pose[:3, 3] + delta
            where = np.round(target, 3).tolist()
            if target[2] < MIN_EE_HEIGHT:
                return ActionResult(False, f"jog refused: target {where} is below {MIN_EE_HEIGHT} m "
                                           "(the fingers would hit the table)")
            ok = panda.move_ee(target, transforms.matrix_to_quat(pose[:3, :3]), linear=True)
            reached = np.round(panda.ee_pose()[:3, 3], 3).tolist()
            return ActionResult(ok, f"gripper at {reached}" if ok else f"jog to {where} is unreachable; "
                                f"gripper at {reached}")

    def episode_done(self) -> bool:
        with self.lock:
            return self._has_scene and self.env.done

    def spare(self) -> "SimBackend | None":
        # PyBullet allows one GUI connection per process: with sim.gui the console uses one world.
        if self._args[1].gui:
            return None
        return SimBackend(*self._args)

    @property
    def goal(self) -> str:
        return self.env.goal

    def close(self) -> None:
        with self.lock:
            self.env.close()

    def _need_scene(self) -> None:
        if not self._has_scene:
            raise BackendError("the sim has no scene yet: reset(seed) first")


def make_backend(kind: str, task: str, sim: SimConfig | None = None,
                 perception: PerceptionConfig | None = None, workspace: Workspace | None = None,
                 ros=None) -> RobotBackend:
    """The backend named by the console's `backend` setting (`ros`: a RosConsoleConfig)."""
    if kind == "sim":
        return SimBackend(task, sim, perception, workspace)
    if kind == "ros":
        from robot_rewards.console.config import RosConsoleConfig
        from robot_rewards.ros.console_backend import RosBackend  # imports rclpy: only here

        return RosBackend(ros or RosConsoleConfig())
    raise ValueError(f"unknown backend '{kind}'; use 'sim' or 'ros'")


__all__ = ["ActionResult", "BackendError", "Offer", "RobotBackend", "SimBackend", "make_backend", "pixel_to_point"]

"""The PyBullet tabletop as a `Robot` (what the console drives in simulation)."""

from __future__ import annotations

import numpy as np

from robot_rewards.core import transforms
from robot_rewards.core.observation import Observation, Proprio
from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.robots.base import ActionResult, Robot, RobotError
from robot_rewards.robots.workspace import jog_problem
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv

MIN_EE_HEIGHT = 0.01  # m: jog targets below this would drive the fingertips into the table


class SimRobot(Robot):
    """The PyBullet tabletop task as a robot (TabletopEnv with the policy's perception)."""

    name = "sim"
    can_reset = True

    def __init__(self, task: str, sim: SimConfig | None = None, perception: PerceptionConfig | None = None,
                 workspace: Workspace | None = None):
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

    @property
    def workspace(self) -> Workspace:
        """The box the sim enforces: its arm's (`sim.arm`), or the one this robot was made with."""
        return self.env.workspace

    def home(self) -> ActionResult:
        with self.lock:
            r = self.env.world.arm.home()
            return ActionResult(r.ok, "arm at home" if r.ok else f"home failed: {r.reason}")

    def state(self) -> Proprio:
        with self.lock:
            arm = self.env.world.arm
            return Proprio(arm.joint_positions(), arm.gripper_width())

    def jog(self, delta_m) -> ActionResult:
        delta = np.asarray(delta_m, dtype=np.float64).reshape(-1)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            raise RobotError(f"jog needs a finite (dx, dy, dz) in metres, got {delta_m!r}")
        with self.lock:
            arm = self.env.world.arm
            pose = arm.ee_pose()
            target = pose[:3, 3] + delta
            where = np.round(target, 3).tolist()
            if target[2] < MIN_EE_HEIGHT:
                return ActionResult(False, f"jog refused: target {where} is below {MIN_EE_HEIGHT} m "
                                           "(the fingers would hit the table)")
            problem = jog_problem(self.workspace, pose[:3, 3], target)
            if problem is not None:
                return ActionResult(False, f"jog refused: {problem}")
            ok = arm.move_ee(target, transforms.matrix_to_quat(pose[:3, :3]), linear=True)
            reached = np.round(arm.ee_pose()[:3, 3], 3).tolist()
            return ActionResult(ok, f"gripper at {reached}" if ok else f"jog to {where} is unreachable; "
                                f"gripper at {reached}")

    def episode_done(self) -> bool:
        with self.lock:
            return self._has_scene and self.env.done

    def spare(self) -> SimRobot | None:
        # PyBullet allows one GUI connection per process: with sim.gui the console uses one world.
        if self._args[1].gui:
            return None
        return SimRobot(*self._args)

    @property
    def goal(self) -> str:
        return self.env.goal

    def close(self) -> None:
        with self.lock:
            self.env.close()

    def _need_scene(self) -> None:
        if not self._has_scene:
            raise RobotError("the sim has no scene yet: reset(seed) first")

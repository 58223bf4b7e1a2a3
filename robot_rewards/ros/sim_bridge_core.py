"""The sim bridge's logic: a PyBullet scene seen and driven like a real arm, gripper and camera.

Sensing: rendered RGB-D frames as Image / CameraInfo / camera-frame PointCloud2 messages,
joint states, the camera's static TF and the hand's TF, and what only a simulator knows: the
task's success and quality (TaskStatus). Acting: like a joint trajectory
controller, a validated trajectory is tracked in position control as physics advances in
`step(dt)`, with per-joint path and goal tolerances and a goal time as ros2_control's
joint_trajectory_controller has them (a tolerance <= 0 is not checked; a goal's own
path_tolerance / goal_tolerance / goal_time_tolerance entries override the parameters; a
trajectory that succeeded leaves its last point commanded, an aborted or canceled one holds the
arm where it is), and a
gripper command closes or opens the coupled fingers until they reach the width or stall on an
object.

Physics only advances in `step`, called by the node's control timer, so everything runs on
one thread; a finished motion calls its `on_done` with a MotionOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from robot_rewards.perception.pointcloud import InvalidDepthError, backproject
from robot_rewards.robots.registry import get_arm
from robot_rewards.ros.config import SimBridgeConfig
from robot_rewards.ros.convert_cloud import points_to_msg
from robot_rewards.ros.convert_image import camera_info_to_msg, depth_to_msg, image_to_msg
from robot_rewards.ros.convert_motion import (
    StampedTransform,
    joint_state_to_msg,
    msg_to_joint_trajectory,
    transforms_to_tf_msg,
)
from robot_rewards.ros.payloads import TaskStatus
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.trajectory_goal import (
    GOAL_TOLERANCE_VIOLATED,
    INVALID_GOAL,
    PATH_TOLERANCE_VIOLATED,
    SUCCESSFUL,
    CheckedTrajectory,
    Tolerances,
    TrajectoryRejected,
    check_trajectory,
    default_tolerances,
)
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv

GRIPPER_MAX_S = 2.0  # s a gripper command may take before it counts as stalled
GRIPPER_REACHED = 0.002  # m of width error that counts as reached
GRIPPER_STILL = 1e-3  # m/s finger speed under which the fingers have stopped


@dataclass
class MotionOutcome:
    """How a trajectory or gripper command ended (error_code: FollowJointTrajectory codes)."""

    kind: str  # "arm" | "gripper"
    error_code: int = SUCCESSFUL
    error_string: str = ""
    canceled: bool = False
    gripper: dict = field(default_factory=dict)  # position, effort, stalled, reached_goal
    final_error: list = field(default_factory=list)  # rad per arm joint (|q - last point|) when it ended
    late: float = 0.0  # s after the trajectory's end when it ended (time spent reaching the goal tolerance)

    @property
    def ok(self) -> bool:
        return self.error_code == SUCCESSFUL and not self.canceled


@dataclass(eq=False)
class _ArmMotion:
    trajectory: CheckedTrajectory
    goal_time_tolerance: float
    on_done: Callable[[MotionOutcome], None]
    tolerances: Tolerances
    elapsed: float = 0.0
    cancel: bool = False


@dataclass(eq=False)
class _GripperMotion:
    width: float
    force: float
    on_done: Callable[[MotionOutcome], None]
    elapsed: float = 0.0


class SimBridgeCore:
    """A TabletopEnv with the sensor messages and controller semantics of a real setup."""

    def __init__(self, cfg: SimBridgeConfig, msg_types, log=None, sim: SimConfig | None = None):
        self.cfg = cfg
        self.types = msg_types
        self.report = Reporter(log)
        sim = sim or SimConfig(gui=cfg.gui, arm=cfg.arm)
        arm = get_arm(sim.arm)
        n_fingers = len(arm.gripper.finger_joints)
        if len(cfg.joint_names) != arm.dof or len(cfg.finger_joint_names) != n_fingers:
            raise ValueError(f"joint_names needs {arm.dof} names and finger_joint_names "
                             f"{n_fingers} (arm '{arm.name}'), got {cfg.joint_names} and {cfg.finger_joint_names}")
        if cfg.depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got '{cfg.depth_encoding}'")
        if not 0 < cfg.image_scale <= 4:
            raise ValueError(f"image_scale must be in (0, 4], got {cfg.image_scale}")
        self.env = TabletopEnv(cfg.task, sim)
        world = self.env.world
        if cfg.camera and cfg.camera not in world.cameras:
            self.env.close()
            raise ValueError(f"unknown sim camera '{cfg.camera}'; configured: {sorted(world.cameras)}")
        self.camera_name = cfg.camera or world.camera.name
        camera = world.cameras[self.camera_name]
        if cfg.image_scale != 1.0:
            camera = replace(camera, intrinsics=camera.intrinsics.scaled(cfg.image_scale))
            world.cameras[self.camera_name] = camera
        self.camera_frame = cfg.camera_frame or camera.frame_id
        try:
            self.tolerances = default_tolerances(cfg.joint_names, cfg.path_tolerance, cfg.path_tolerances,
                                                 cfg.goal_tolerance, cfg.goal_tolerances)
        except ValueError:
            self.env.close()
            raise
        self.seed = cfg.seed
        self.goal = ""
        self._arm: _ArmMotion | None = None
        self._gripper: _GripperMotion | None = None
        self._carry = 0.0
        self.sim_time = 0.0
        self.reset(cfg.seed)

    def close(self) -> None:
        self.env.close()

    # -- scene -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._arm is not None or self._gripper is not None

    @property
    def gripper_busy(self) -> bool:
        return self._gripper is not None

    def reset(self, seed: int) -> str:
        """A new scene from `seed` (refused while the arm or gripper moves); returns the goal."""
        if self.busy:
            raise RuntimeError("cannot reset the scene while a trajectory or gripper command runs")
        self.seed = int(seed)
        self.goal = self.env.reset(self.seed)
        arm = self.env.world.arm
        self._arm_target = arm.joint_positions()
        self._width_target = arm.gripper_width()
        return self.goal

    def joint_positions(self) -> np.ndarray:
        return self.env.world.arm.joint_positions()

    # -- sensing -----------------------------------------------------------------------------
    def camera_messages(self, stamp) -> dict[str, object]:
        """Rendered frame as messages: color, color_info, depth, depth_info (+ points)."""
        frame = self.env.world.render(self.camera_name)
        header = (self.camera_frame, stamp)
        intrinsics = frame.camera.intrinsics
        info = camera_info_to_msg(intrinsics, header, self.types)
        out = {
            "color": image_to_msg(frame.rgb, "rgb8", header, self.types),
            "color_info": info,
            "depth": depth_to_msg(frame.depth, header, self.types, encoding=self.cfg.depth_encoding),
            "depth_info": camera_info_to_msg(intrinsics, header, self.types),
        }
        if self.cfg.points_topic:
            try:
                cloud = backproject(frame.depth, intrinsics, rgb=frame.rgb, camera_name=self.camera_name)
                out["points"] = points_to_msg(cloud.points, header, self.types, rgb=cloud.colors)
            except InvalidDepthError as exc:
                self.report.warning("points", f"no camera cloud this frame: {exc}")
        return out

    def task_status(self, stamp) -> TaskStatus:
        """Whether the scene's task is solved now (the task's own success test and quality), with
        the episode (scene seed) and the task's step budget."""
        return TaskStatus(self.cfg.task, self.seed, bool(self.env.success()), float(self.env.quality()),
                          int(self.env.task.max_steps), (int(stamp[0]), int(stamp[1])))

    def joint_state_message(self, stamp):
        """JointState of the arm and finger joints (positions and velocities)."""
        positions, velocities = self.env.world.arm.joint_states()
        names = [*self.cfg.joint_names, *self.cfg.finger_joint_names]
        return joint_state_to_msg(names, positions, ("", stamp), self.types, velocity=velocities)

    def static_tf_message(self, stamp):
        """TFMessage with base -> camera optical frame (the camera's calibrated extrinsics)."""
        camera = self.env.world.cameras[self.camera_name]
        return transforms_to_tf_msg([StampedTransform.from_matrix(
            camera.base_T_camera, self.cfg.base_frame, self.camera_frame, stamp)], self.types)

    def tf_message(self, stamp):
        """TFMessage with base -> hand, for tools that need the hand pose (hand-eye capture)."""
        T = self.env.world.arm.hand_pose()
        return transforms_to_tf_msg([StampedTransform.from_matrix(T, self.cfg.base_frame, self.cfg.ee_frame, stamp)],
                                    self.types)

    # -- acting ------------------------------------------------------------------------------
    def check_goal(self, trajectory_msg) -> CheckedTrajectory:
        """The validated trajectory of a FollowJointTrajectory goal, or TrajectoryRejected."""
        if self._arm is not None:
            raise TrajectoryRejected(INVALID_GOAL, "a trajectory is already executing (goals are not queued)")
        try:
            data = msg_to_joint_trajectory(trajectory_msg)
        except ValueError as exc:
            raise TrajectoryRejected(INVALID_GOAL, f"malformed trajectory: {exc}") from None
        kin = self.env.world.kin
        return check_trajectory(data, self.cfg.joint_names, self.joint_positions(), kin.lower, kin.upper,
                                self.cfg.start_tolerance, q_command=self._arm_target)

    def goal_tolerances(self, path_entries=(), goal_entries=()) -> Tolerances:
        """The parameters' tolerances with a goal's (joint name, position) entries applied
        (TrajectoryRejected for an unknown joint)."""
        return self.tolerances.override(self.cfg.joint_names, path_entries, goal_entries)

    def start_trajectory(self, trajectory: CheckedTrajectory, on_done: Callable[[MotionOutcome], None],
                         goal_time_tolerance: float = 0.0, tolerances: Tolerances | None = None) -> None:
        """Track a checked trajectory from now on; `on_done(outcome)` when it ends. `tolerances`
        (the goal's, see Tolerances.override) default to the parameters'; a goal time <= 0 is the
        goal_time_tolerance parameter's."""
        if self._arm is not None:
            raise RuntimeError("a trajectory is already executing")
        tol = goal_time_tolerance if goal_time_tolerance > 0 else self.cfg.goal_time_tolerance
        self._arm = _ArmMotion(trajectory, tol, on_done, tolerances or self.tolerances)

    def cancel_trajectory(self) -> None:
        """Stop the running trajectory where the arm is now (it ends as canceled)."""
        if self._arm is not None:
            self._arm.cancel = True

    def start_gripper(self, position: float, max_effort: float, on_done: Callable[[MotionOutcome], None]) -> None:
        """Move the fingers to width position / gripper_position_scale with at most max_effort N."""
        if self._gripper is not None:
            raise RuntimeError("a gripper command is already executing")
        if not np.isfinite(position) or self.cfg.gripper_position_scale <= 0:
            raise ValueError(f"gripper position must be finite, got {position}")
        gripper = self.env.world.arm.description.gripper
        width = float(np.clip(position / self.cfg.gripper_position_scale, 0.0, gripper.open_width))
        force = gripper.max_force if max_effort <= 0 else min(float(max_effort), gripper.max_force)
        self._gripper = _GripperMotion(width, force, on_done)

    def step(self, dt: float) -> list[MotionOutcome]:
        """Advance physics by `dt` seconds (whole ticks; the rest carries over); finished motions
        call their on_done and are returned."""
        world = self.env.world
        self._carry += dt
        ticks = int(self._carry / world.cfg.timestep + 1e-9)
        self._carry -= ticks * world.cfg.timestep
        finished: list[MotionOutcome] = []
        for _ in range(ticks):
            self._command()
            world.step()
            self.sim_time += world.cfg.timestep
            finished += self._update(world.cfg.timestep)
        return finished

    def _command(self) -> None:
        arm = self._arm
        if arm is not None and not arm.cancel:
            self._arm_target = arm.trajectory.sample(arm.elapsed)
        force = None
        if self._gripper is not None:
            force = self._gripper.force
            self._width_target = self._gripper.width
        self.env.world.arm.command(self._arm_target, self._width_target, force)

    def _arm_outcome(self, arm: _ArmMotion) -> MotionOutcome | None:
        """How the running trajectory ends this tick, or None while it goes on (the checks of
        joint_trajectory_controller: path tolerance while moving, then the goal tolerance and
        the stopped velocity within the goal time)."""
        q = self.joint_positions()
        traj, tol, names = arm.trajectory, arm.tolerances, self.cfg.joint_names
        final_error = np.abs(q - traj.positions[-1])
        late = max(arm.elapsed - traj.duration, 0.0)
        ended = {"final_error": [round(float(e), 5) for e in final_error], "late": round(late, 3)}
        if arm.cancel:
            return MotionOutcome("arm", SUCCESSFUL, "canceled", canceled=True, **ended)
        tracking = np.abs(q - self._arm_target)
        over = np.flatnonzero((tol.path > 0) & (tracking > tol.path))
        if len(over):
            j = int(over[np.argmax(tracking[over] - tol.path[over])])
            return MotionOutcome("arm", PATH_TOLERANCE_VIOLATED,
                                 f"{names[j]}: tracking error {tracking[j]:.3f} rad exceeds its path tolerance "
                                 f"{tol.path[j]:.3f} rad at t={arm.elapsed:.2f} s (arm blocked?)", **ended)
        if arm.elapsed < traj.duration:
            return None
        outside = np.flatnonzero((tol.goal > 0) & (final_error > tol.goal))
        moving = self.cfg.stopped_velocity_tolerance > 0 and float(
            np.max(np.abs(self.env.world.arm.joint_states()[1][:len(q)]))) > self.cfg.stopped_velocity_tolerance
        if not len(outside) and not moving:
            return MotionOutcome("arm", **ended)
        if late <= arm.goal_time_tolerance:
            return None
        if len(outside):
            worst = ", ".join(f"{names[j]} {final_error[j]:.4f} > {tol.goal[j]:.4f}" for j in outside)
            why = f"final error (rad) exceeds the goal tolerance: {worst}"
        else:
            why = f"still moving faster than {self.cfg.stopped_velocity_tolerance} rad/s"
        return MotionOutcome("arm", GOAL_TOLERANCE_VIOLATED,
                             f"{why} {arm.goal_time_tolerance:.2f} s after the trajectory's end", **ended)

    def _finish_arm(self, outcome: MotionOutcome) -> MotionOutcome:
        # As joint_trajectory_controller: a trajectory that reached its goal leaves its last point
        # commanded (the arm keeps pushing toward it: pressed on an object, or sagging); an aborted
        # or canceled one holds where the arm is now. Holding the measured position after success
        # let the arm sink by its steady-state error at every segment end.
        if outcome.ok:
            self._arm_target = self._arm.trajectory.positions[-1].copy()
        else:
            self._arm_target = self.joint_positions()
        done, self._arm = self._arm, None
        done.on_done(outcome)
        return outcome

    def _update(self, dt: float) -> list[MotionOutcome]:
        out = []
        arm = self._arm
        if arm is not None:
            arm.elapsed += dt
            outcome = self._arm_outcome(arm)
            if outcome is not None:
                out.append(self._finish_arm(outcome))
        grip = self._gripper
        if grip is not None:
            grip.elapsed += dt
            width, speed = self.env.world.arm.gripper_state()
            reached = abs(width - grip.width) < GRIPPER_REACHED
            still = grip.elapsed > 0.05 and speed < GRIPPER_STILL
            if reached or still or grip.elapsed > GRIPPER_MAX_S:
                result = {"position": width * self.cfg.gripper_position_scale, "effort": grip.force,
                          "stalled": not reached, "reached_goal": bool(reached)}
                self._gripper = None
                outcome = MotionOutcome("gripper", gripper=result)
                grip.on_done(outcome)
                out.append(outcome)
        return out

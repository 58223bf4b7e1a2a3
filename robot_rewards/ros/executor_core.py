"""The executor node's logic: primitive -> planned segments -> action goals, one at a time.

A primitive is checked (workspace, finite parameters) and planned completely with IK from the
latest joint state before anything moves; an unreachable primitive is reported with the arm
untouched. Arm segments become FollowJointTrajectory goals (positions, and velocities so a
joint_trajectory_controller interpolates with splines), gripper segments GripperCommand
goals. Each goal is sent only after the previous one succeeded; a rejected goal, an aborted
one or a controller error code stops the primitive there (nothing else is sent) and is
reported with the controller's code and message.

Methods return `(statuses, step)`: the ExecutorStatus payloads to report (the node publishes
them, and sends an 'executing' one as ExecutePrimitive feedback and the final one as its
result) and the next Step to send (or None); the node shell owns the action server and
clients. `cancel()` stops a primitive between steps (the node also cancels the running goal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from robot_rewards.core.primitives import Workspace
from robot_rewards.primitives.config import MotionConfig
from robot_rewards.primitives.planner import ArmSegment, GripperSegment, UnreachableError, plan_primitive
from robot_rewards.ros.config import ExecutorConfig
from robot_rewards.ros.convert_common import MessageConversionError, sec_to_stamp
from robot_rewards.ros.convert_interfaces import to_payload
from robot_rewards.ros.convert_motion import joint_trajectory_to_msg
from robot_rewards.ros.observation import arm_positions
from robot_rewards.ros.payloads import (
    EXECUTOR_BAD_INPUT,
    EXECUTOR_BUSY,
    EXECUTOR_CANCELED,
    EXECUTOR_GOAL_REJECTED,
    EXECUTOR_GRIPPER_FAILED,
    EXECUTOR_NO_SERVER,
    EXECUTOR_PLANNING_FAILED,
    EXECUTOR_STALE_STATE,
    ExecutorStatus,
    PrimitiveCommand,
    stamp_of_ns,
)
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.trajectory_goal import ERROR_NAMES, SUCCESSFUL

# action_msgs/msg/GoalStatus values.
STATUS_SUCCEEDED, STATUS_CANCELED, STATUS_ABORTED = 4, 5, 6
_STATUS_NAMES = {STATUS_SUCCEEDED: "succeeded", STATUS_CANCELED: "canceled", STATUS_ABORTED: "aborted"}
FOLLOW_JOINT_TRAJECTORY = "control_msgs/action/FollowJointTrajectory"
GRIPPER_COMMAND = "control_msgs/action/GripperCommand"


@dataclass(eq=False)
class Step:
    """One action goal: kind 'arm' (times, positions, velocities) or 'gripper' (position, effort)."""

    index: int
    kind: str
    label: str
    times: np.ndarray | None = None
    positions: np.ndarray | None = None
    velocities: np.ndarray | None = None
    width: float = 0.0
    contact: bool = False  # an arm segment after which the gripper acts (it may end pressed on the object)


Result = tuple[list[ExecutorStatus], Step | None]


def segment_velocities(times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(T, J) joint velocities of a sampled segment, zero at both ends (it starts and stops at rest)."""
    if len(times) < 3:
        return np.zeros_like(positions)
    v = np.gradient(positions, times, axis=0)
    v[0] = 0.0
    v[-1] = 0.0
    return v


class ExecutorCore:
    """Turns PrimitiveCommands into a sequence of action goals and tracks their outcomes."""

    def __init__(self, cfg: ExecutorConfig, kin, msg_types, log=None, clock_ns: Callable[[], int] | None = None):
        if cfg.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {cfg.time_scale}")
        self.cfg = cfg
        self.kin = kin
        self.types = msg_types
        self.report = Reporter(log)
        self.clock_ns = clock_ns or (lambda: 0)
        self.workspace = Workspace(tuple(cfg.workspace_low), tuple(cfg.workspace_high))
        self.motion = MotionConfig(free_speed=cfg.free_speed, linear_speed=cfg.linear_speed,
                                   max_joint_speed=cfg.max_joint_speed, approach_height=cfg.approach_height)
        self.q = None
        self.q_ns = None
        self.decision_id: int | None = None
        self.steps: list[Step] = []
        self.current = -1

    @property
    def busy(self) -> bool:
        return self.decision_id is not None

    def _status(self, state: str, code: int = 0, text: str = "", decision_id: int | None = None) -> ExecutorStatus:
        did = self.decision_id if decision_id is None else decision_id
        return ExecutorStatus(did if did is not None else -1, state, code, text, max(self.current, 0),
                              len(self.steps), stamp_of_ns(self.clock_ns()))

    @property
    def label(self) -> str:
        """The label of the step being executed ('' when idle)."""
        return self.steps[self.current].label if 0 <= self.current < len(self.steps) else ""

    # -- inputs ------------------------------------------------------------------------------
    def on_joint_state(self, msg) -> None:
        try:
            self.q = arm_positions(msg, self.cfg.joint_names)
            self.q_ns = self.clock_ns()
        except MessageConversionError as exc:
            self.report.error("joint_state", f"joint state rejected: {exc}")

    def on_primitive(self, value) -> Result:
        """Check and plan a primitive (a PrimitiveCommand, an ExecutePrimitive goal or JSON);
        returns its first step, or a rejected status."""
        try:
            command = to_payload(PrimitiveCommand, value)
        except MessageConversionError as exc:
            self.report.error("primitive", f"primitive rejected: {exc}")
            return [ExecutorStatus(-1, "rejected", EXECUTOR_BAD_INPUT, str(exc),
                                   stamp=stamp_of_ns(self.clock_ns()))], None
        did = command.decision_id
        if self.busy:
            msg = f"decision {did}: still executing decision {self.decision_id}; primitive refused"
            self.report.error("busy", msg)
            return [self._status("rejected", EXECUTOR_BUSY, msg, did)], None
        reason = command.primitive.check(self.workspace)
        if reason is not None:
            msg = f"decision {did}: {command.primitive!r} refused: {reason}"
            self.report.error("primitive", msg)
            return [self._status("rejected", EXECUTOR_BAD_INPUT, msg, did)], None
        if self.q is None or (self.clock_ns() - self.q_ns) / 1e9 > self.cfg.joint_state_timeout:
            age = "none received" if self.q is None else f"{(self.clock_ns() - self.q_ns) / 1e9:.2f} s old"
            msg = (f"decision {did}: joint state on {self.cfg.joint_states_topic} is stale ({age}, limit "
                   f"{self.cfg.joint_state_timeout} s); nothing planned")
            self.report.error("stale_state", msg)
            return [self._status("rejected", EXECUTOR_STALE_STATE, msg, did)], None
        try:
            segments = plan_primitive(self.kin, command.primitive, self.q, self.motion)
        except UnreachableError as exc:
            msg = f"decision {did}: {command.primitive!r} is unreachable: {exc}"
            self.report.error("planning", msg)
            return [self._status("rejected", EXECUTOR_PLANNING_FAILED, msg, did)], None
        steps = []
        for k, seg in enumerate(segments):
            if isinstance(seg, ArmSegment):
                times = np.asarray(seg.times) * self.cfg.time_scale
                contact = k + 1 < len(segments) and isinstance(segments[k + 1], GripperSegment)
                steps.append(Step(k, "arm", seg.label, times, seg.positions,
                                  segment_velocities(times, seg.positions), contact=contact))
            elif isinstance(seg, GripperSegment):
                if self.cfg.gripper_action:
                    steps.append(Step(k, "gripper", seg.label, width=seg.width))
        self.decision_id, self.steps, self.current = did, steps, 0
        return [self._status("executing")], steps[0]

    # -- goal messages -----------------------------------------------------------------------
    def goal_message(self, step: Step):
        """The action goal of a step (FollowJointTrajectory.Goal or GripperCommand.Goal)."""
        if step.kind == "arm":
            trajectory = joint_trajectory_to_msg(self.cfg.joint_names, step.positions, step.times, None, self.types,
                                                 velocities=step.velocities)
            tolerance = sec_to_stamp(self.cfg.goal_time_tolerance, self.types, "builtin_interfaces/msg/Duration")
            goal_tolerance = []
            if step.contact and self.cfg.contact_goal_tolerance > 0:
                goal_tolerance = [self.types.new("control_msgs/msg/JointTolerance", name=name,
                                                 position=float(self.cfg.contact_goal_tolerance), velocity=0.0,
                                                 acceleration=0.0) for name in self.cfg.joint_names]
            return self.types(FOLLOW_JOINT_TRAJECTORY).Goal(trajectory=trajectory, goal_time_tolerance=tolerance,
                                                            goal_tolerance=goal_tolerance)
        command = self.types.new("control_msgs/msg/GripperCommand",
                                 position=float(step.width * self.cfg.gripper_position_scale),
                                 max_effort=float(self.cfg.gripper_max_effort))
        return self.types(GRIPPER_COMMAND).Goal(command=command)

    # -- outcomes ----------------------------------------------------------------------------
    def _fail(self, code: int, text: str) -> Result:
        step = self.steps[self.current] if 0 <= self.current < len(self.steps) else None
        where = f" at step {self.current + 1}/{len(self.steps)} ('{step.label}')" if step else ""
        msg = f"decision {self.decision_id}{where}: {text}"
        self.report.error(f"failed:{code}", msg)
        status = self._status("failed", code, msg)
        self._clear()
        return [status], None

    def _clear(self) -> None:
        self.decision_id, self.steps, self.current = None, [], -1

    def _advance(self) -> Result:
        self.current += 1
        if self.current >= len(self.steps):
            self.current = len(self.steps) - 1
            status = self._status("succeeded")
            self._clear()
            return [status], None
        return [self._status("executing")], self.steps[self.current]

    def cancel(self, why: str = "canceled by the ExecutePrimitive client") -> Result:
        """Stop the primitive before its next step (failed, EXECUTOR_CANCELED); [] when idle."""
        if not self.busy:
            return [], None
        return self._fail(EXECUTOR_CANCELED, why)

    def on_server_unavailable(self, kind: str) -> Result:
        name = self.cfg.trajectory_action if kind == "arm" else self.cfg.gripper_action
        return self._fail(EXECUTOR_NO_SERVER, f"action server {name} is not available "
                          f"(waited {self.cfg.server_timeout} s); nothing sent")

    def on_goal_response(self, accepted: bool) -> Result:
        """The controller accepted or rejected the current step's goal."""
        if not self.busy:
            return [], None
        if not accepted:
            step = self.steps[self.current]
            name = self.cfg.trajectory_action if step.kind == "arm" else self.cfg.gripper_action
            return self._fail(EXECUTOR_GOAL_REJECTED, f"{name} rejected the goal; the primitive stops here")
        return [], None

    def on_result(self, status: int, result) -> Result:
        """The current step's action result (GoalStatus code and the action's Result message)."""
        if not self.busy:
            return [], None
        step = self.steps[self.current]
        if step.kind == "arm":
            code = int(getattr(result, "error_code", SUCCESSFUL))
            text = str(getattr(result, "error_string", ""))
            if status == STATUS_SUCCEEDED and code == SUCCESSFUL:
                return self._advance()
            if status == STATUS_CANCELED:
                return self._fail(EXECUTOR_CANCELED, f"trajectory canceled: {text}")
            if code == SUCCESSFUL:  # aborted without a code
                return self._fail(EXECUTOR_GOAL_REJECTED, f"trajectory {_STATUS_NAMES.get(status, status)}: {text}")
            return self._fail(code, f"controller error {code} ({ERROR_NAMES.get(code, 'unknown')}): {text}")
        stalled = bool(getattr(result, "stalled", False))
        closing = step.width < 0.04
        if status == STATUS_SUCCEEDED or (stalled and closing):
            return self._advance()  # a closing gripper stalls on the object it grasps
        return self._fail(EXECUTOR_GRIPPER_FAILED, f"gripper command {_STATUS_NAMES.get(status, status)} "
                          f"(position {getattr(result, 'position', float('nan')):.4f}, stalled {stalled})")

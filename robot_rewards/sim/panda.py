"""The simulated Franka Panda: joint position control that tracks planned trajectories,
and a parallel gripper whose two fingers are coupled like the real one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pybullet as p

from robot_rewards.core import transforms
from robot_rewards.primitives.config import MotionConfig
from robot_rewards.primitives.kinematics import (
    ARM_JOINTS,
    EE_LINK,
    FINGER_JOINTS,
    HOME,
    PANDA_URDF,
    PandaKinematics,
    down_quat,
)
from robot_rewards.primitives.planner import ArmSegment, GripperSegment, Segment, joint_move, linear_move

FINGER_FORCE = 20.0  # N per finger, the URDF effort limit
_CONTROLLED = (*ARM_JOINTS, *FINGER_JOINTS)
FAULT_TRACKING_ERROR = 0.25  # rad: the arm is blocked (collision), stop instead of pushing on
FAULT_CHECK_S = 0.1  # s of sim time between tracking-error checks


@dataclass(frozen=True)
class ExecutionResult:
    """Whether a plan ran to the end, and why not if it did not."""

    ok: bool
    reason: str = ""
    sim_time: float = 0.0


class Panda:
    """A Panda in a PyBullet world; `step` advances physics one tick (the world provides it)."""

    def __init__(
        self,
        client: int,
        motion: MotionConfig,
        step: Callable[[], None],
        kinematics: PandaKinematics | None = None,
        finger_friction: float = 1.0,
    ):
        self.client = client
        self.motion = motion
        self._step = step
        self.kin = kinematics or PandaKinematics()
        self.body = p.loadURDF(PANDA_URDF, useFixedBase=True, physicsClientId=client)
        self.timestep = p.getPhysicsEngineParameters(physicsClientId=client)["fixedTimeStep"]
        # PyBullet ignores the URDF mimic tag; without this coupling a grasped object slides
        # along the finger axis (12-15 mm placement error).
        gear = p.createConstraint(
            self.body, FINGER_JOINTS[0], self.body, FINGER_JOINTS[1], p.JOINT_GEAR,
            [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=client,
        )
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=client)
        for j in FINGER_JOINTS:
            p.changeDynamics(self.body, j, lateralFriction=finger_friction, spinningFriction=0.001,
                             physicsClientId=client)
        self._forces = [*self.kin.max_effort.tolist(), FINGER_FORCE, FINGER_FORCE]
        self.reset(HOME)

    # -- state ---------------------------------------------------------------------------
    def reset(self, q=HOME, gripper_width: float = 0.08) -> None:
        """Teleport the joints (only for scene resets, never during an episode)."""
        for j, v in zip(ARM_JOINTS, q):
            p.resetJointState(self.body, j, float(v), physicsClientId=self.client)
        for j in FINGER_JOINTS:
            p.resetJointState(self.body, j, gripper_width / 2, physicsClientId=self.client)
        self._arm_target = np.asarray(q, dtype=np.float64)
        self._gripper_target = gripper_width
        self._command()

    def joint_positions(self) -> np.ndarray:
        states = p.getJointStates(self.body, ARM_JOINTS, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def gripper_width(self) -> float:
        states = p.getJointStates(self.body, FINGER_JOINTS, physicsClientId=self.client)
        return float(states[0][0] + states[1][0])

    def link_pose(self, link: int) -> np.ndarray:
        """4x4 base_T_link (the base sits at the world origin)."""
        s = p.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return transforms.make_transform(s[5], s[4])

    def ee_pose(self) -> np.ndarray:
        """4x4 pose of the gripper point between the fingertips."""
        return self.link_pose(EE_LINK)

    # -- control -------------------------------------------------------------------------
    def _command(self) -> None:
        """Send arm and finger position targets (one call: this runs every physics tick)."""
        p.setJointMotorControlArray(
            self.body, _CONTROLLED, p.POSITION_CONTROL,
            targetPositions=[*self._arm_target.tolist(), self._gripper_target / 2, self._gripper_target / 2],
            forces=self._forces,
            physicsClientId=self.client,
        )

    def _tick(self) -> None:
        self._command()
        self._step()

    def _track(self, seg: ArmSegment, tolerance: float) -> ExecutionResult:
        n = int(round(seg.duration / self.timestep))
        t = np.minimum(np.arange(1, n + 1) * self.timestep, seg.duration)
        targets = np.stack([np.interp(t, seg.times, seg.positions[:, j]) for j in range(7)], axis=1)
        check = max(1, round(FAULT_CHECK_S / self.timestep))
        for k in range(1, n + 1):
            self._arm_target = targets[k - 1]
            self._tick()
            if k % check == 0:
                err = np.max(np.abs(self.joint_positions() - self._arm_target))
                if err > FAULT_TRACKING_ERROR:
                    return ExecutionResult(False, f"fault during '{seg.label}': arm blocked "
                                           f"(tracking error {err:.2f} rad)")
        return self._settle(seg.positions[-1], tolerance)

    def _settle(self, q_goal, tolerance: float) -> ExecutionResult:
        """Hold the final target until the gripper point is within `tolerance` (m) of where it should be."""
        goal = self.kin.fk(q_goal)[:3, 3]
        for _ in range(int(self.motion.settle_max_s / self.timestep)):
            if np.linalg.norm(self.ee_pose()[:3, 3] - goal) < tolerance:
                break
            self._tick()
        return ExecutionResult(True)

    def execute(self, segments: list[Segment]) -> ExecutionResult:
        """Run planned segments through the joint controllers, stepping physics."""
        elapsed = 0.0
        for k, seg in enumerate(segments):
            if isinstance(seg, GripperSegment):
                self._gripper_target = seg.width
                for _ in range(int(seg.duration / self.timestep)):
                    self._tick()
            else:
                # precise where the gripper acts next and where the plan ends at rest
                last = k + 1 == len(segments)
                precise = last or isinstance(segments[k + 1], GripperSegment)
                tolerance = self.motion.settle_tolerance if precise else self.motion.waypoint_tolerance
                result = self._track(seg, tolerance)
                if not result.ok:
                    return ExecutionResult(False, result.reason, elapsed)
            elapsed += seg.duration
        return ExecutionResult(True, "", elapsed)

    def move_ee(self, position, quat=None, linear: bool = False) -> bool:
        """Move the gripper point to a pose (default: pointing down); False if unreachable."""
        quat = down_quat(0.0) if quat is None else np.asarray(quat)
        q0 = self.joint_positions()
        try:
            if linear:
                seg = linear_move(self.kin, q0, self.ee_pose()[:3, 3], position, quat, self.motion, "move")
            else:
                q1 = self.kin.ik(position, quat, seed=q0)
                if q1 is None:
                    return False
                seg = joint_move(q0, q1, self.motion, label="move")
        except RuntimeError:
            return False
        return self.execute([seg]).ok

    def home(self) -> ExecutionResult:
        """Move back to the home configuration (out of the cameras' view of the table)."""
        return self.execute([joint_move(self.joint_positions(), HOME, self.motion, label="home")])

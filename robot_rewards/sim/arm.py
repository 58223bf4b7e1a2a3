"""A simulated arm from its description: joint position control that tracks planned
trajectories, and a parallel gripper whose two fingers are coupled like a real one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pybullet as p

from robot_rewards.core import transforms
from robot_rewards.primitives.config import MotionConfig
from robot_rewards.primitives.planner import ArmSegment, GripperSegment, Segment, joint_move, linear_move
from robot_rewards.robots.description import ArmDescription
from robot_rewards.robots.kinematics import ArmJoints, ArmKinematics, down_quat, load_arm

FAULT_TRACKING_ERROR = 0.25  # rad: the arm is blocked (collision), stop instead of pushing on
FAULT_CHECK_S = 0.1  # s of sim time between tracking-error checks


@dataclass(frozen=True)
class ExecutionResult:
    """Whether a plan ran to the end, and why not if it did not."""

    ok: bool
    reason: str = ""
    sim_time: float = 0.0


class SimArm:
    """The arm `kinematics.arm` describes, in a PyBullet world; `step` advances physics one tick
    (the world provides it). Joint vectors follow the description's `joint_names`."""

    def __init__(
        self,
        client: int,
        motion: MotionConfig,
        step: Callable[[], None],
        kinematics: ArmKinematics | None = None,
        finger_friction: float = 1.0,
    ):
        self.client = client
        self.motion = motion
        self._step = step
        self.kin = kinematics or ArmKinematics()
        self.description: ArmDescription = self.kin.arm
        self.body = load_arm(self.description, client)
        joints = ArmJoints(self.description, self.body, client)
        self.arm_joints, self.finger_joints = joints.arm, joints.fingers
        self.ee_link, self.hand_link = joints.ee_link, joints.hand_link
        self._controlled = (*self.arm_joints, *self.finger_joints)
        self.timestep = p.getPhysicsEngineParameters(physicsClientId=client)["fixedTimeStep"]
        gripper = self.description.gripper
        if gripper.couple_fingers:
            # PyBullet ignores the URDF mimic tag; without this coupling a grasped object slides
            # along the finger axis (12-15 mm placement error).
            gear = p.createConstraint(
                self.body, self.finger_joints[0], self.body, self.finger_joints[1], p.JOINT_GEAR,
                [1, 0, 0], [0, 0, 0], [0, 0, 0], physicsClientId=client,
            )
            p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=client)
        for j in self.finger_joints:
            p.changeDynamics(self.body, j, lateralFriction=finger_friction, spinningFriction=0.001,
                             physicsClientId=client)
        self._forces = [*self.kin.max_effort.tolist(), gripper.max_force, gripper.max_force]
        self.reset()

    # -- state ---------------------------------------------------------------------------
    @property
    def home_positions(self) -> np.ndarray:
        """The description's home joint positions (a fresh array)."""
        return self.description.home_positions

    def reset(self, q=None, gripper_width: float | None = None) -> None:
        """Teleport the joints (only for scene resets, never during an episode); default:
        home, gripper open."""
        q = self.home_positions if q is None else q
        gripper_width = self.description.gripper.open_width if gripper_width is None else gripper_width
        for j, v in zip(self.arm_joints, q):
            p.resetJointState(self.body, j, float(v), physicsClientId=self.client)
        for j in self.finger_joints:
            p.resetJointState(self.body, j, gripper_width / 2, physicsClientId=self.client)
        self._arm_target = np.asarray(q, dtype=np.float64)
        self._gripper_target = gripper_width
        self._command()

    def joint_positions(self) -> np.ndarray:
        states = p.getJointStates(self.body, self.arm_joints, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def gripper_width(self) -> float:
        return self.gripper_state()[0]

    def gripper_state(self) -> tuple[float, float]:
        """(opening width in m, finger speed in m/s: the sum of both fingers' speeds)."""
        states = p.getJointStates(self.body, self.finger_joints, physicsClientId=self.client)
        return float(states[0][0] + states[1][0]), float(abs(states[0][1]) + abs(states[1][1]))

    def joint_states(self) -> tuple[list[float], list[float]]:
        """(positions, velocities) of the arm joints then the two finger joints."""
        states = p.getJointStates(self.body, self._controlled, physicsClientId=self.client)
        return [s[0] for s in states], [s[1] for s in states]

    def link_pose(self, link: int) -> np.ndarray:
        """4x4 base_T_link (the base sits at the world origin)."""
        s = p.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return transforms.make_transform(s[5], s[4])

    def ee_pose(self) -> np.ndarray:
        """4x4 pose of the gripper point between the fingertips."""
        return self.link_pose(self.ee_link)

    def hand_pose(self) -> np.ndarray:
        """4x4 pose of the hand link (the frame published as the hand on /tf)."""
        return self.link_pose(self.hand_link)

    # -- control -------------------------------------------------------------------------
    def _command(self, forces=None) -> None:
        """Send arm and finger position targets (one call: this runs every physics tick)."""
        p.setJointMotorControlArray(
            self.body, self._controlled, p.POSITION_CONTROL,
            targetPositions=[*self._arm_target.tolist(), self._gripper_target / 2, self._gripper_target / 2],
            forces=self._forces if forces is None else forces,
            physicsClientId=self.client,
        )

    def command(self, arm_target, gripper_width: float, finger_force: float | None = None) -> None:
        """Hold joint targets and a gripper opening, the fingers pushing with at most
        `finger_force` N (default: the gripper's max force); physics advances elsewhere (the
        ROS sim bridge drives the arm like a controller this way)."""
        self._arm_target = np.asarray(arm_target, dtype=np.float64)
        self._gripper_target = float(gripper_width)
        forces = None
        if finger_force is not None:
            forces = [*self._forces[:-2], float(finger_force), float(finger_force)]
        self._command(forces)

    def _tick(self) -> None:
        self._command()
        self._step()

    def _track(self, seg: ArmSegment, tolerance: float) -> ExecutionResult:
        n = int(round(seg.duration / self.timestep))
        t = np.minimum(np.arange(1, n + 1) * self.timestep, seg.duration)
        targets = np.stack([np.interp(t, seg.times, seg.positions[:, j]) for j in range(seg.positions.shape[1])],
                            axis=1)
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
        return self.execute([joint_move(self.joint_positions(), self.home_positions, self.motion, label="home")])

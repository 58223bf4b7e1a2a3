"""Franka Panda kinematics (IK/FK) on a private PyBullet client, so planning never moves the sim.

The same solver serves the simulator and a real arm (the ROS executor): it only needs the URDF.
"""

from __future__ import annotations

import numpy as np
import pybullet as p
import pybullet_data

from robot_rewards.core import transforms

ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
EE_LINK = 11  # panda_grasptarget: the point between the fingertips
HAND_LINK = 8
JOINT_NAMES = tuple(f"panda_joint{i + 1}" for i in ARM_JOINTS)
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
PANDA_URDF = "franka_panda/panda.urdf"


def down_quat(yaw: float) -> np.ndarray:
    """Gripper orientation pointing straight down, rotated by `yaw` about the vertical.

    yaw = 0 closes the fingers along the base y axis.
    """
    return np.asarray(p.getQuaternionFromEuler([np.pi, 0.0, -yaw]))


def wrap_gripper_yaw(yaw: float) -> float:
    """A parallel gripper is symmetric under a half turn: map yaw to [-pi/2, pi/2)."""
    return float((yaw + np.pi / 2) % np.pi - np.pi / 2)


class PandaKinematics:
    """IK and FK for the Panda; IK is seeded from a given joint configuration."""

    def __init__(self, urdf: str = PANDA_URDF):
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.body = p.loadURDF(urdf, useFixedBase=True, physicsClientId=self.client)
        info = [p.getJointInfo(self.body, j, physicsClientId=self.client) for j in ARM_JOINTS]
        self.lower = np.array([i[8] for i in info])
        self.upper = np.array([i[9] for i in info])
        self.max_velocity = np.array([i[11] for i in info])
        self.max_effort = np.array([i[10] for i in info])

    def close(self) -> None:
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    def _set(self, q) -> None:
        for j, v in zip(ARM_JOINTS, q):
            p.resetJointState(self.body, j, float(v), physicsClientId=self.client)

    def fk(self, q, link: int = EE_LINK) -> np.ndarray:
        """4x4 base_T_link for arm configuration q."""
        self._set(q)
        state = p.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return transforms.make_transform(state[5], state[4])

    def ik(
        self, position, quat, seed, pos_tol: float = 5e-4, rot_tol_deg: float = 0.5
    ) -> np.ndarray | None:
        """Arm joints reaching (position, quat) at EE_LINK, or None if unreachable within limits.

        Plain damped-least-squares IK from `seed` first (exact and cheap for nearby targets);
        the null-space variant, which respects joint limits, only as a fallback.
        """
        position = np.asarray(position, dtype=np.float64)
        target = transforms.make_transform(np.asarray(quat, dtype=np.float64), position)
        attempts = (
            {},
            {
                "lowerLimits": list(self.lower) + [0.0, 0.0],
                "upperLimits": list(self.upper) + [0.04, 0.04],
                "jointRanges": list(self.upper - self.lower) + [0.04, 0.04],
                "restPoses": list(seed) + [0.02, 0.02],
            },
        )
        for extra in attempts:
            self._set(seed)
            q = None
            for _ in range(3):  # a few restarts from the last solution polish the residual
                sol = p.calculateInverseKinematics(
                    self.body, EE_LINK, position.tolist(), list(quat),
                    maxNumIterations=200, residualThreshold=1e-6,
                    physicsClientId=self.client, **extra,
                )
                q = np.asarray(sol[:7])
                reached = self.fk(q)
                err = np.linalg.norm(reached[:3, 3] - position)
                rot = transforms.rotation_angle_deg(reached[:3, :3], target[:3, :3])
                if err < pos_tol and rot < rot_tol_deg:
                    break
            if err < pos_tol and rot < rot_tol_deg and np.all(q >= self.lower - 1e-6) and np.all(q <= self.upper + 1e-6):
                return np.clip(q, self.lower, self.upper)
        return None

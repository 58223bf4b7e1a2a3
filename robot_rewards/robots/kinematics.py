"""Arm kinematics (IK/FK) on a private PyBullet client, so planning never moves the sim.

The same solver serves the simulator and a real arm (the ROS executor): it only needs the
arm's description (`robots.description.ArmDescription`) and its URDF. The only module of
`robots` that imports PyBullet.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

from robot_rewards.core import transforms
from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.paths import data_file
from robot_rewards.robots.description import PACKAGE_DATA, PYBULLET_DATA, ArmDescription
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm

MESH_ROOT = "{pybullet_data}"  # in a package URDF's mesh file names: the pybullet_data folder


def down_quat(yaw: float) -> np.ndarray:
    """Gripper orientation pointing straight down, rotated by `yaw` about the vertical.

    yaw = 0 closes the fingers along the base y axis.
    """
    return np.asarray(p.getQuaternionFromEuler([np.pi, 0.0, -yaw]))


def wrap_gripper_yaw(yaw: float) -> float:
    """A parallel gripper is symmetric under a half turn: map yaw to [-pi/2, pi/2)."""
    return float((yaw + np.pi / 2) % np.pi - np.pi / 2)


def urdf_path(arm: ArmDescription) -> str:
    """What to pass to `p.loadURDF` for `arm` (a client whose search path is pybullet_data).

    A pybullet_data URDF is named relative to that folder. A package URDF whose meshes live in
    pybullet_data ("{pybullet_data}/..." file names: PyBullet only looks for meshes next to
    the URDF) is written once, with the folder filled in, to a cache file named by its content.
    """
    if arm.urdf.startswith(PYBULLET_DATA):
        return arm.urdf[len(PYBULLET_DATA):]
    path = data_file(*Path(arm.urdf[len(PACKAGE_DATA):]).parts) if arm.urdf.startswith(PACKAGE_DATA) else Path(arm.urdf)
    text = path.read_text()
    if MESH_ROOT not in text:
        return str(path)
    text = text.replace(MESH_ROOT, pybullet_data.getDataPath())
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / "robot_rewards_urdf"
    out = cache / f"{path.stem}-{digest}.urdf"
    if not out.is_file():  # atomic: parallel workers never read a half-written file (a cache: no fsync)
        write_atomic(out, text, durable=False)
    return str(out)


def load_arm(arm: ArmDescription, client: int) -> int:
    """Load `arm`'s URDF (fixed base at the origin) into `client`; returns the body id."""
    return p.loadURDF(urdf_path(arm), useFixedBase=True, physicsClientId=client)


class ArmJoints:
    """Joint and link indices of an arm's URDF as loaded in PyBullet, found by name."""

    def __init__(self, arm: ArmDescription, body: int, client: int):
        infos = [p.getJointInfo(body, j, physicsClientId=client) for j in range(p.getNumJoints(body, physicsClientId=client))]
        joints = {info[1].decode(): info[0] for info in infos}
        links = {info[12].decode(): info[0] for info in infos}  # a link's index is its parent joint's

        def find(names, table, what):
            missing = [n for n in names if n not in table]
            if missing:
                raise ValueError(f"arm '{arm.name}': no {what} {missing} in {arm.urdf}; it has {sorted(table)}")
            return tuple(table[n] for n in names)

        self.arm = find(arm.joint_names, joints, "joint(s)")
        self.fingers = find(arm.gripper.finger_joints, joints, "finger joint(s)")
        self.ee_link, self.hand_link = find((arm.ee_link, arm.hand_link), links, "link(s)")
        self.infos = infos
        # the joints PyBullet's IK solves for (every non-fixed joint, in index order)
        self.movable = tuple(info[0] for info in infos if info[2] != p.JOINT_FIXED)


class ArmKinematics:
    """IK and FK for one arm (default: the shipped default arm); IK is seeded from a given
    joint configuration. Joint vectors follow `arm.joint_names`."""

    def __init__(self, arm: ArmDescription | None = None):
        self.arm = arm or get_arm(DEFAULT_ARM)
        self.client = p.connect(p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.body = load_arm(self.arm, self.client)
        self.joints = ArmJoints(self.arm, self.body, self.client)
        self.ee_link, self.hand_link = self.joints.ee_link, self.joints.hand_link
        info = [self.joints.infos[j] for j in self.joints.arm]
        self.lower = np.array([i[8] for i in info])
        self.upper = np.array([i[9] for i in info])
        self.max_velocity = np.array([i[11] for i in info])
        self.max_effort = np.array([i[10] for i in info])
        self._ik_slots = [self.joints.movable.index(j) for j in self.joints.arm]
        # Limits of the other movable joints (the fingers) for the null-space IK: their URDF
        # range, resting in the middle.
        others = [self.joints.infos[j] for j in self.joints.movable if j not in self.joints.arm]
        if self._ik_slots != list(range(len(self._ik_slots))):
            raise ValueError(f"arm '{self.arm.name}': the arm joints must come before the gripper's in the URDF")
        self._other_lower = [i[8] for i in others]
        self._other_upper = [i[9] for i in others]
        self._other_rest = [(i[8] + i[9]) / 2 for i in others]

    @property
    def dof(self) -> int:
        return self.arm.dof

    @property
    def home(self) -> np.ndarray:
        """The arm's home joint positions (a fresh array)."""
        return self.arm.home_positions

    def close(self) -> None:
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    def _set(self, q) -> None:
        for j, v in zip(self.joints.arm, q):
            p.resetJointState(self.body, j, float(v), physicsClientId=self.client)

    def fk(self, q, link: int | None = None) -> np.ndarray:
        """4x4 base_T_link for arm configuration q (default link: the end effector)."""
        self._set(q)
        link = self.ee_link if link is None else link
        state = p.getLinkState(self.body, link, computeForwardKinematics=True, physicsClientId=self.client)
        return transforms.make_transform(state[5], state[4])

    def ik(
        self, position, quat, seed, pos_tol: float = 5e-4, rot_tol_deg: float = 0.5
    ) -> np.ndarray | None:
        """Arm joints reaching (position, quat) at the end effector, or None if unreachable
        within limits.

        Plain damped-least-squares IK from `seed` first (exact and cheap for nearby targets);
        the null-space variant, which respects joint limits, only as a fallback.
        """
        position = np.asarray(position, dtype=np.float64)
        target = transforms.make_transform(np.asarray(quat, dtype=np.float64), position)
        attempts = (
            {},
            {
                "lowerLimits": list(self.lower) + self._other_lower,
                "upperLimits": list(self.upper) + self._other_upper,
                "jointRanges": list(self.upper - self.lower) + [u - lo for lo, u in zip(self._other_lower, self._other_upper)],
                "restPoses": list(seed) + self._other_rest,
            },
        )
        n = self.dof
        for extra in attempts:
            self._set(seed)
            q = None
            for _ in range(3):  # a few restarts from the last solution polish the residual
                sol = p.calculateInverseKinematics(
                    self.body, self.ee_link, position.tolist(), list(quat),
                    maxNumIterations=200, residualThreshold=1e-6,
                    physicsClientId=self.client, **extra,
                )
                q = np.asarray(sol[:n])
                reached = self.fk(q)
                err = np.linalg.norm(reached[:3, 3] - position)
                rot = transforms.rotation_angle_deg(reached[:3, :3], target[:3, :3])
                if err < pos_tol and rot < rot_tol_deg:
                    break
            if err < pos_tol and rot < rot_tol_deg and np.all(q >= self.lower - 1e-6) and np.all(q <= self.upper + 1e-6):
                return np.clip(q, self.lower, self.upper)
        return None

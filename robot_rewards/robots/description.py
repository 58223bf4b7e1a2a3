"""An arm as data: everything the planner, the simulator and the ROS nodes need to know about one
robot arm with a parallel gripper, in one frozen dataclass (`robots.registry` lists the known arms).

Nothing here imports PyBullet: the URDF is named, and resolved by `robots.kinematics.urdf_path`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rewards.core.primitives import Workspace

PYBULLET_DATA = "pybullet_data:"  # URDF prefix: a file in the pybullet_data package
PACKAGE_DATA = "package:"  # URDF prefix: a file in this package's data folder (core.paths.data_file)


@dataclass(frozen=True)
class GripperDescription:
    """A parallel gripper with two prismatic fingers, each opening by half the width.

    finger_joints: URDF names of the two finger joints (each 0 at closed, width / 2 when open);
    open_width, closed_width: metres between the fingers fully open and fully closed;
    max_force: N per finger (the URDF effort limit, the default force of a grasp);
    fingertip_depth: metres the closed fingertips reach below the grasp point (the feasibility
    check keeps the fingertips above the table with it);
    couple_fingers: PyBullet ignores URDF mimic joints, so a gear constraint keeps the two
    fingers symmetric (without it a grasped object slides along the finger axis).
    """

    finger_joints: tuple[str, str]
    open_width: float
    max_force: float
    fingertip_depth: float
    closed_width: float = 0.0
    couple_fingers: bool = True

    def __post_init__(self):
        if len(self.finger_joints) != 2:
            raise ValueError(f"a parallel gripper has two finger joints, got {self.finger_joints}")
        if not 0.0 <= self.closed_width < self.open_width:
            raise ValueError(f"need 0 <= closed_width < open_width, got {self.closed_width}, {self.open_width}")

    @property
    def closing_below(self) -> float:
        """Commanded widths under this close the gripper (a grasp), others open it."""
        return self.open_width / 2


@dataclass(frozen=True)
class ArmDescription:
    """One arm: URDF, joints, gripper, frames, home pose, workspace and speed limits.

    urdf: "pybullet_data:<path>" (a file of the pybullet_data package), "package:<path>" (in
    this package's data folder, `core.paths.data_file`) or an absolute path. Mesh file names in
    a package URDF may start with "{pybullet_data}/" to reuse that package's meshes.
    joint_names: the arm joints in kinematic order (the order of every joint vector);
    ee_link: the link the planner places (the grasp point between the fingertips, z axis out of
    the gripper, fingers closing along its y axis); hand_link: the link published as the hand
    frame on /tf (hand-eye calibration); base_frame: the URDF's root link (the TF base frame);
    home: joint positions out of the cameras' view of the table, gripper pointing down;
    workspace: the box every primitive target must lie in (the sim's default);
    max_joint_speed (rad/s, the slowest joint's limit) and max_cartesian_speed (m/s): the
    arm's limits, which cap `primitives.config.MotionConfig`'s speeds (`limit_motion`).
    """

    name: str
    urdf: str
    joint_names: tuple[str, ...]
    ee_link: str
    hand_link: str
    base_frame: str
    gripper: GripperDescription
    home: tuple[float, ...]
    max_joint_speed: float
    max_cartesian_speed: float
    workspace: Workspace = field(default_factory=Workspace)

    def __post_init__(self):
        if len(self.home) != len(self.joint_names):
            raise ValueError(f"arm '{self.name}': home has {len(self.home)} values for "
                             f"{len(self.joint_names)} joints")
        if self.max_joint_speed <= 0 or self.max_cartesian_speed <= 0:
            raise ValueError(f"arm '{self.name}': speed limits must be positive")

    @property
    def dof(self) -> int:
        """Number of arm joints (the length of every joint vector)."""
        return len(self.joint_names)

    @property
    def home_positions(self) -> np.ndarray:
        """`home` as a float64 array (a fresh copy)."""
        return np.array(self.home, dtype=np.float64)

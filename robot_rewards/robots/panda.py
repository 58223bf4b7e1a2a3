"""The Franka Emika Panda with its hand: the shipped default arm (pybullet_data's URDF).

The only place the Panda's names and numbers are written down; everything else reads them
from this description (`robots.registry.get_arm`).
"""

from __future__ import annotations

from robot_rewards.core.primitives import Workspace
from robot_rewards.robots.description import PYBULLET_DATA, ArmDescription, GripperDescription

PANDA = ArmDescription(
    name="panda",
    urdf=PYBULLET_DATA + "franka_panda/panda.urdf",
    joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
    ee_link="panda_grasptarget",  # the point between the fingertips
    hand_link="panda_hand",
    base_frame="panda_link0",
    gripper=GripperDescription(
        finger_joints=("panda_finger_joint1", "panda_finger_joint2"),
        open_width=0.08,
        max_force=20.0,  # N per finger, the URDF effort limit
        # How far the closed fingertips reach below panda_grasptarget, measured by ray casts
        # against the finger collision meshes.
        fingertip_depth=0.00825,
    ),
    home=(0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
    max_joint_speed=2.175,  # rad/s, joints 1-4 (5-7: 2.61)
    max_cartesian_speed=1.7,  # m/s of the end effector
    workspace=Workspace(),
)

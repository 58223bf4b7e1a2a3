"""UFACTORY xArm 6 with a simple parallel gripper: the second arm, proving arms are data.

The arm is pybullet_data's xArm 6 (links, joints and meshes); its own gripper, a six-joint
linkage with mimic joints that PyBullet ignores, is replaced by two prismatic box fingers
(`sim/arms/xarm6_parallel_gripper.urdf`), so it is the same kind of parallel gripper as the
default arm's. The xArm 6 reaches about 0.70 m (less than the scenes' far corners at 0.70 m
with the gripper high up), hence the narrower workspace.
"""

from __future__ import annotations

from robot_rewards.core.primitives import Workspace
from robot_rewards.robots.description import PACKAGE_DATA, ArmDescription, GripperDescription

XARM6 = ArmDescription(
    name="xarm6",
    urdf=PACKAGE_DATA + "sim/arms/xarm6_parallel_gripper.urdf",
    joint_names=tuple(f"joint{i}" for i in range(1, 7)),
    ee_link="grasp_target",  # 10 mm above the fingertips, between the fingers
    hand_link="gripper_palm",
    base_frame="link_base",
    gripper=GripperDescription(
        finger_joints=("left_finger_joint", "right_finger_joint"),
        open_width=0.08,
        max_force=20.0,
        fingertip_depth=0.01,
    ),
    # gripper 0.45 m above the table at x = 0.3 m, pointing down (like the default arm's home)
    home=(0.0, -0.592, -1.0275, 0.0, 1.619, 0.0),
    max_joint_speed=3.14,  # rad/s, every joint (URDF velocity limit)
    max_cartesian_speed=1.0,  # m/s of the end effector (UFACTORY's rating)
    workspace=Workspace(low=(0.25, -0.35, 0.0), high=(0.68, 0.35, 0.30)),
)

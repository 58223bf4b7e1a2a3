"""Arms as data: the registry, generic kinematics, a second arm running a task's expert, and no
default-arm names outside its description."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from robot_rewards.core import transforms
from robot_rewards.primitives.config import MotionConfig, limit_motion
from robot_rewards.robots.description import ArmDescription
from robot_rewards.robots.kinematics import ArmKinematics, down_quat, urdf_path
from robot_rewards.robots.registry import ARMS, DEFAULT_ARM, UnknownArmError, get_arm
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig

PACKAGE = Path(__file__).resolve().parents[1] / "robot_rewards"
SECOND_ARM = "xarm6"


def test_registry_knows_the_arms_and_names_them_in_errors():
    assert DEFAULT_ARM in ARMS and SECOND_ARM in ARMS
    assert all(isinstance(a, ArmDescription) and ARMS[a.name] is a for a in ARMS.values())
    assert get_arm(SECOND_ARM).dof == 6
    with pytest.raises(UnknownArmError) as err:
        get_arm("ur5")
    message = str(err.value)
    assert "\n" not in message and "unknown arm 'ur5'" in message
    assert all(name in message for name in ARMS)
    assert SimConfig().arm == DEFAULT_ARM


@pytest.mark.parametrize("name", sorted(ARMS))
def test_every_arm_loads_and_its_kinematics_round_trip(name):
    arm = get_arm(name)
    kin = ArmKinematics(arm)
    try:
        assert kin.lower.shape == kin.upper.shape == (arm.dof,)
        home = kin.fk(arm.home_positions)
        # home: the gripper points down, out of the way above the table
        assert transforms.rotation_angle_deg(home[:3, :3], transforms.quat_to_matrix(down_quat(0.0))) < 1.0
        assert home[2, 3] > 0.3
        lo, hi = np.array(arm.workspace.low), np.array(arm.workspace.high)
        target = (lo + hi) / 2 + [0.0, 0.0, -0.1]  # mid-table, near the table top
        q = kin.ik(target, down_quat(0.4), seed=arm.home_positions)
        assert q is not None and q.shape == (arm.dof,)
        np.testing.assert_allclose(kin.fk(q)[:3, 3], target, atol=5e-4)
        assert kin.ik([3.0, 0.0, 0.1], down_quat(0.0), seed=arm.home_positions) is None  # out of reach
        assert kin.hand_link != kin.ee_link
    finally:
        kin.close()


def test_package_urdfs_with_pybullet_meshes_resolve_to_one_cached_file():
    arm = get_arm(SECOND_ARM)
    first, again = urdf_path(arm), urdf_path(arm)
    assert first == again and Path(first).is_file()
    assert "{pybullet_data}" not in Path(first).read_text()
    assert urdf_path(get_arm(DEFAULT_ARM)) == get_arm(DEFAULT_ARM).urdf.split(":", 1)[1]


def test_motion_is_capped_at_the_arm_limits():
    motion = MotionConfig()
    assert limit_motion(motion, get_arm(DEFAULT_ARM)) is motion  # the defaults are under its limits
    fast = MotionConfig(free_speed=5.0, max_joint_speed=9.0)
    capped = limit_motion(fast, get_arm(SECOND_ARM))
    assert capped.free_speed == get_arm(SECOND_ARM).max_cartesian_speed
    assert capped.max_joint_speed == get_arm(SECOND_ARM).max_joint_speed
    assert capped.linear_speed == fast.linear_speed and fast.free_speed == 5.0


@pytest.mark.slow
def test_second_arm_runs_the_place_block_expert():
    """The xArm 6 (with a parallel gripper) does place_block with the scripted expert: 10 of 10
    seeds succeed at the first primitive when measured; a few seeds must mostly succeed here."""
    seeds = range(5)
    successes = []
    with TabletopEnv("place_block", SimConfig(arm=SECOND_ARM)) as env:
        assert env.world.arm.description.name == SECOND_ARM
        assert env.world.seg_labels[env.world.arm.body] == SECOND_ARM
        assert env.world.camera.base_frame == get_arm(SECOND_ARM).base_frame
        for seed in seeds:
            env.reset(seed)
            assert env.observe().proprio.joint_positions.shape == (6,)
            while not env.done:
                env.step(env.expert_action(ExpertConfig(noise=0.0)))
            successes.append(env.success())
    assert sum(successes) >= 4, successes


# The default arm's name may only appear in its description and its registry entry.
NAME = re.compile("panda(?!s)", re.IGNORECASE)  # the arm, not the pandas library
ALLOWED = {
    "robots/panda.py": None,  # any line: the description itself
    "robots/registry.py": {
        "from robot_rewards.robots.panda import PANDA  # the shipped default arm",
        "ARMS: dict[str, ArmDescription] = {arm.name: arm for arm in (PANDA, XARM6)}",
        "DEFAULT_ARM = PANDA.name",
    },
}


def test_the_default_arm_is_named_only_in_its_description():
    stray = []
    for path in sorted(PACKAGE.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".yaml", ".txt", ".json", ".md") or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        allowed = ALLOWED.get(rel, set())
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if NAME.search(line) and allowed is not None and line.strip() not in allowed:
                stray.append(f"robot_rewards/{rel}:{k}: {line.strip()}")
    assert not stray, "the default arm is named outside robots/panda.py:\n" + "\n".join(stray)

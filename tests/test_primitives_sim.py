"""Primitives move objects through physics (no teleporting), and bad ones change nothing."""

import numpy as np
import pytest

from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.sim.env import TabletopEnv

WS = Workspace()


def scene(world, blocks):
    world.reset()
    for name, xy in blocks.items():
        world.add_box(name, [0.02] * 3, [*xy, 0.02], (0.9, 0.1, 0.1, 1))
    world.settle()


def test_pick_place_carries_block_with_the_fingers(world):
    scene(world, {"red": (0.45, -0.10)})
    target = np.array([0.60, 0.12])
    heights = []
    world.step_hook = lambda tick: heights.append(world.position("red")[2])
    try:
        r = world.execute(Primitive.pick_place(world.position("red"), [*target, 0.03], yaw=0.5), WS)
    finally:
        world.step_hook = None
    assert r.ok, r.reason
    pos = world.position("red")
    assert np.linalg.norm(pos[:2] - target) < 0.005
    assert abs(pos[2] - 0.02) < 0.003  # resting on the table again
    assert max(heights) > 0.09  # it was lifted over the approach height on the way
    assert world.arm.gripper_width() > 0.07  # released


def test_push_moves_block_along_the_push(world):
    scene(world, {"red": (0.45, 0.0)})
    start = world.position("red")
    r = world.execute(Primitive.push([0.38, 0.0, 0.015], [0.55, 0.0, 0.015]), WS)
    assert r.ok, r.reason
    end = world.position("red")
    # The closed fingers' face sits ~2 cm ahead of the gripper point: the block's centre ends
    # about one half-block plus that beyond the push end.
    assert 0.57 < end[0] < 0.60
    moved = end - start
    assert abs(moved[1]) < 0.02  # pushing drifts a little sideways, as it does on real tables
    assert abs(moved[2]) < 0.003  # slid, not lifted


@pytest.mark.parametrize(
    "params, reason",
    [
        ((0.5, 0.0, 0.02, np.nan, 0.1, 0.02, 0.0), "non-finite"),
        ((0.5, 0.0, 0.02, 0.95, 0.1, 0.02, 0.0), "outside the workspace"),
    ],
)
def test_bad_parameters_are_not_executed_and_change_nothing(world, params, reason):
    scene(world, {"red": (0.5, 0.0)})
    before, q_before = world.position("red"), world.arm.joint_positions()
    r = world.execute(Primitive("pick_place", params), WS)
    assert not r.ok and reason in r.reason
    np.testing.assert_allclose(world.position("red"), before, atol=1e-9)
    np.testing.assert_allclose(world.arm.joint_positions(), q_before, atol=1e-9)


def test_unreachable_target_is_reported_before_moving(world):
    scene(world, {"red": (0.5, 0.0)})
    q_before = world.arm.joint_positions()
    anywhere = Workspace(low=(-2, -2, 0), high=(2, 2, 2))  # let the point through the bounds check
    r = world.execute(Primitive.pick_place((0.5, 0.0, 0.02), (1.4, 0.0, 0.02), 0.0), anywhere)
    assert not r.ok and r.reason.startswith("unreachable")
    np.testing.assert_allclose(world.arm.joint_positions(), q_before, atol=1e-9)


def test_malformed_vector_is_reported():
    with TabletopEnv("place_block") as env:
        env.reset(0)
        r = env.step_params("pick_place", np.zeros(5))
    assert not r.executed and "takes 7 parameters" in r.reason


def test_missing_camera_file_is_a_clear_error():
    from robot_rewards.sim.config import CameraConfig, SimConfig
    from robot_rewards.sim.world import World

    with pytest.raises(FileNotFoundError, match="nope_camera.yaml"):
        World(SimConfig(cameras=[CameraConfig(intrinsics="calibration/nope_camera.yaml")]))


def test_world_stays_usable_after_rejected_primitives(world):
    scene(world, {"red": (0.5, 0.0)})
    world.execute(Primitive.pick_place((0.5, 0, 0.02), (np.inf, 0, 0.02), 0.0), WS)
    r = world.execute(Primitive.pick_place(world.position("red"), (0.6, 0.1, 0.03), 0.0), WS)
    assert r.ok and np.linalg.norm(world.position("red")[:2] - [0.6, 0.1]) < 0.005

"""stack_blocks keypoints: one pair, the block that should move next -> where it should rest."""

import numpy as np
import pytest

from robot_rewards.core.keypoints import canonical_order
from robot_rewards.rewards.keypoints.reward import score_pick_place, task_keypoints
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks.base import BLOCK_HALF
from robot_rewards.sim.tasks.stack_blocks import CLEAR_DISTANCE, StackBlocks

H = 2 * BLOCK_HALF  # one block up


@pytest.fixture(scope="module")
def env():
    with TabletopEnv("stack_blocks") as e:
        yield e


def build(env, layout, seed=0):
    """layout: {block index (0 bottom, 1 middle, 2 top): (xy, level)}; settled."""
    rng = np.random.default_rng(seed)
    for i, (xy, level) in sorted(layout.items(), key=lambda kv: kv[1][1]):
        env.task._put(env.world, rng, env.task.order[i], xy, level)
    env.world.settle(max_s=1.0)


def test_a_fresh_scene_asks_for_the_middle_block_on_the_bottom_one(env):
    env.reset(5)
    bottom, middle, _ = env.task.order
    kp = task_keypoints(env.task, env.world)
    assert StackBlocks.keypoint_names == ("next_block",) and kp.names == [middle]
    np.testing.assert_allclose(kp.objects[0], env.world.position(middle))
    np.testing.assert_allclose(kp.targets[0], env.world.position(bottom) + [0, 0, H])
    assert kp.distances()[0] > 0.1  # reset blocks are >= 10 cm apart
    obj, tgt = canonical_order(kp.objects, kp.targets)  # what train-keypoints stores: the same pair
    np.testing.assert_array_equal(obj, kp.objects)
    np.testing.assert_array_equal(tgt, kp.targets)


def test_a_half_built_stack_asks_for_the_top_block_on_the_middle_one(env):
    env.reset(5)
    bottom, middle, top = env.task.order
    build(env, {0: ([0.5, 0.0], 0), 1: ([0.5, 0.0], 1), 2: ([0.45, 0.15], 0)})
    kp = env.task.keypoints(env.world)
    assert kp.names == [top]
    np.testing.assert_allclose(kp.objects[0], env.world.position(top))
    np.testing.assert_allclose(kp.targets[0], env.world.position(middle) + [0, 0, H])
    np.testing.assert_allclose(kp.targets[0], [0.5, 0.0, 5 * BLOCK_HALF], atol=0.004)  # shares the base's xy
    # the finished stack: still the top block onto the middle one, at ~0 distance
    build(env, {2: ([0.5, 0.0], 2)})
    kp = env.task.keypoints(env.world)
    assert env.task.success(env.world) and kp.names == [top] and kp.distances()[0] < 0.005


@pytest.mark.parametrize("upper,lower", [(2, 0), (2, 1), (0, 1), (0, 2)])
def test_a_block_in_the_way_goes_to_a_fixed_spot_away_from_the_third_block(env, upper, lower):
    env.reset(5)
    third = ({0, 1, 2} - {upper, lower}).pop()
    build(env, {lower: ([0.5, 0.0], 0), upper: ([0.5, 0.0], 1), third: ([0.5, 0.15], 0)})
    kp = env.task.keypoints(env.world)
    assert kp.names == [env.task.order[upper]]
    base = env.world.position(env.task.order[lower])
    # CLEAR_DISTANCE from the block under it, on the far side from the third block (at +y)
    np.testing.assert_allclose(kp.targets[0], [base[0], base[1] - CLEAR_DISTANCE, BLOCK_HALF], atol=0.004)
    np.testing.assert_array_equal(env.task.keypoints(env.world).targets, kp.targets)  # no randomness


def test_the_middle_block_on_the_top_one_goes_straight_onto_the_bottom_one(env):
    env.reset(5)
    bottom, middle, _ = env.task.order
    build(env, {2: ([0.5, 0.0], 0), 1: ([0.5, 0.0], 1), 0: ([0.45, 0.15], 0)})
    kp = env.task.keypoints(env.world)
    assert kp.names == [middle]
    np.testing.assert_allclose(kp.targets[0], env.world.position(bottom) + [0, 0, H])


def test_perturbed_states_cover_the_episode_and_keep_the_pair_consistent(env):
    seen = set()
    rng = np.random.default_rng(0)
    for s in range(16):
        env.reset(s)
        kind = env.task.perturb(env.world, rng)
        seen.add(kind)
        kp = env.task.keypoints(env.world)
        bottom, middle, top = env.task.order
        if kind == "half":
            assert kp.names == [top]
        if kind == "stack" and env.task.success(env.world):
            assert kp.distances()[0] < 0.015
        if kind == "table":
            assert kp.names == [middle]
    assert seen == {"half", "stack", "table", "wrong"}


def test_the_keypoint_score_prefers_the_experts_next_move(env):
    """The analytic keypoint score of pick_place candidates (`KeypointScorer`, the `keypoint`
    condition) puts the clean expert's action first, before moving a wrong block or placing beside the stack."""
    env.reset(7)
    kp = env.task.keypoints(env.world)
    expert = env.expert_action(ExpertConfig(noise=0.0)).params
    wrong_block = expert.copy()
    wrong_block[0:3] = env.world.position(env.task.order[2])
    beside = expert.copy()
    beside[3:5] += [0.05, 0.0]
    scores = score_pick_place(kp, np.stack([expert, wrong_block, beside]))
    assert scores[0] > -0.01 and scores[0] > scores[1] + 0.05 and scores[0] > scores[2] + 0.04

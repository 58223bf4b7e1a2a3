"""Task resets are deterministic, success tests are right, experts solve the tasks."""

import numpy as np
import pybullet as p
import pytest

from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.rollout import run_expert_episode
from robot_rewards.sim.tasks import TASKS, UnknownTaskError, make_task
from robot_rewards.sim.tasks.base import BLOCK_HALF

SIMPLE_TASKS = ["place_block", "push_block", "stack_blocks"]


def snapshot(env):
    return {n: np.concatenate(env.world.pose(n)) for n in env.world.objects}


def teleport(env, name, xyz):
    p.resetBasePositionAndOrientation(env.world.objects[name], list(xyz), [0, 0, 0, 1],
                                      physicsClientId=env.world.client)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError, match="place_block"):
        make_task("fold_laundry")


@pytest.mark.parametrize("task", SIMPLE_TASKS)
def test_reset_is_deterministic(task):
    with TabletopEnv(task) as env:
        goal_a = env.reset(7)
        state_a, img_a = snapshot(env), env.observe().frames["front"]
        env.reset(8)
        state_b = snapshot(env)
        goal_c = env.reset(7)
        state_c, img_c = snapshot(env), env.observe().frames["front"]
    assert goal_a == goal_c and goal_a
    assert state_a.keys() == state_c.keys()
    for k in state_a:
        np.testing.assert_array_equal(state_a[k], state_c[k])
    np.testing.assert_array_equal(img_a.rgb, img_c.rgb)
    np.testing.assert_array_equal(img_a.depth, img_c.depth)
    assert any(not np.allclose(state_a[k], state_b[k]) for k in state_a if k in state_b) or \
        state_a.keys() != state_b.keys()


def test_place_block_success_test():
    with TabletopEnv("place_block") as env:
        env.reset(3)
        task = env.task
        assert not env.success()
        bowl = env.world.position(task.target_bowl)
        teleport(env, task.target_block, bowl + [0.01, 0.0, 0.03])
        env.world.settle()
        assert env.success() and env.quality() < 0.02
        other = next(b for b in task.bowls if b != task.target_bowl)
        teleport(env, task.target_block, env.world.position(other) + [0, 0, 0.03])
        env.world.settle()
        assert not env.success()  # in a bowl, but the wrong one
        teleport(env, task.target_block, bowl + [0.0, 0.0, 0.20])
        assert not env.success()  # above the bowl is not in it


def test_push_block_success_test():
    with TabletopEnv("push_block") as env:
        env.reset(3)
        task = env.task
        assert not env.success()
        zone = env.world.position(task.zone)
        teleport(env, task.block, [zone[0] + 0.02, zone[1] - 0.02, BLOCK_HALF])
        assert env.success()
        teleport(env, task.block, [zone[0] + 0.045, zone[1], BLOCK_HALF])
        assert not env.success()  # hanging over the zone's edge


def test_stack_blocks_success_test():
    with TabletopEnv("stack_blocks") as env:
        env.reset(3)
        bottom, middle, top = env.task.order
        assert not env.success()
        base = env.world.position(bottom)
        teleport(env, middle, base + [0.005, 0, 2 * BLOCK_HALF])
        teleport(env, top, base + [0.0, 0.005, 4 * BLOCK_HALF])
        env.world.settle()
        assert env.success() and env.quality() < 0.015
        teleport(env, top, base + [0.10, 0.10, 0.0])
        teleport(env, middle, base + [0.0, 0.0, 2 * BLOCK_HALF])
        env.world.settle()
        assert not env.success()  # only two of three stacked


@pytest.mark.parametrize("task", SIMPLE_TASKS)
def test_clean_expert_solves_seeded_episodes(task):
    with TabletopEnv(task) as env:
        outcomes = [run_expert_episode(env, seed, ExpertConfig(noise=0.0)) for seed in (11, 12)]
    assert all(o.success for o in outcomes), [(o.seed, o.quality, o.reasons) for o in outcomes]
    assert all(o.steps <= TASKS[task].max_steps for o in outcomes)


def test_noisy_expert_is_imperfect_but_seeded():
    cfg = ExpertConfig(noise=3.0)
    with TabletopEnv("place_block") as env:
        env.reset(5)
        a = [env.expert_action(cfg).params for _ in range(3)]
        env.reset(5)
        b = [env.expert_action(cfg).params for _ in range(3)]
        env.reset(5)
        clean = env.expert_action(ExpertConfig(noise=0.0, multimodal=False)).params
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0][:3], clean[:3])  # jittered pick point


def test_observation_carries_a_fixed_size_base_frame_cloud():
    from robot_rewards.perception.config import PerceptionConfig

    with TabletopEnv("place_block", perception=PerceptionConfig(n_points=512)) as env:
        env.reset(2)
        obs = env.observe()
        block = env.world.objects[env.task.target_block]
        truth = env.world.position(env.task.target_block)
    assert obs.points.shape == (512, 3) and obs.points.dtype == np.float32
    assert obs.proprio.joint_positions.shape == (7,) and obs.goal.startswith("put the")
    on_block = obs.points[obs.point_labels == block]
    assert len(on_block) > 5
    # Sampled points of the (rotated) block lie within its half-diagonal of its centre.
    assert np.linalg.norm(on_block[:, :2] - truth[:2], axis=1).max() < 0.02 * np.sqrt(2) + 0.002
    assert on_block[:, 2].max() < 0.042


def test_sim_profiles_set_their_knobs_and_an_unknown_one_lists_the_known():
    from robot_rewards.sim.config import SimConfig, UnknownProfileError, apply_profile
    from robot_rewards.sim.world import World

    fast = apply_profile(SimConfig())
    assert fast == SimConfig() and fast.timestep == 1 / 120
    ref = apply_profile(SimConfig(profile="reference"))
    assert (ref.timestep, ref.solver_iterations, ref.motion.linear_speed) == (1 / 240, 50, 0.15)
    assert ref.motion.approach_height == fast.motion.approach_height  # what the task measures is unchanged
    with pytest.raises(UnknownProfileError, match="unknown sim profile 'turbo'; known: fast, reference"):
        World(SimConfig(profile="turbo"))


@pytest.mark.parametrize("profile", ["fast", "reference"])
def test_the_clean_expert_places_the_block_under_both_profiles(profile):
    from robot_rewards.sim.config import SimConfig

    with TabletopEnv("place_block", SimConfig(profile=profile)) as env:
        env.reset(11)
        result = env.step(env.expert_action(ExpertConfig(noise=0.0)))
        assert result.executed and result.success
        assert env.world.cfg.timestep == (1 / 120 if profile == "fast" else 1 / 240)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_hooks_are_consistent(name):
    """The optional hooks of every registered task agree with its declarations."""
    cls = TASKS[name]
    with TabletopEnv(name) as env:
        goal = env.reset(4)
        task, world = env.task, env.world
        kp = task.keypoints(world)
        assert (kp is None) == (not cls.keypoint_names)
        if kp is not None:
            assert len(kp) == len(cls.keypoint_names)
            try:
                moved = task.perturb(world, np.random.default_rng(0))
            except NotImplementedError:
                moved = None
            if moved is not None:
                assert isinstance(moved, str) and moved
                assert np.all(np.isfinite(task.keypoints(world).objects))
        if cls.captioning is not None:
            captions = task.captions(world)
            assert cls.baseline in captions.true and not set(captions.true) & set(captions.false)
            prompts = cls.goal_prompts(" ".join(goal.lower().split()))
            assert prompts is not None, f"{name}'s goal {goal!r} is not in its own wording"
            state, baseline = prompts
            assert baseline == (cls.baseline,)
            assert set(state) <= set(captions.true) | set(captions.false)

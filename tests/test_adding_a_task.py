"""docs/adding-a-task.md, followed: a throw-away task (a block to put on a flat mark) written the
way the page says, in one class, registered at run time, then run through the commands and
hooks the page lists (eval-expert, the what-if path, keypoints, perturbations, train-keypoints).
"""

from __future__ import annotations

import numpy as np
import pytest

from robot_rewards.commands.expert import eval_expert, task_names
from robot_rewards.commands.keypoints import keypoint_tasks, train_keypoints_command
from robot_rewards.conf.commands import EvalExpertConfig
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.keypoints import Keypoints
from robot_rewards.core.primitives import Primitive
from robot_rewards.eval.policy import random_candidates
from robot_rewards.policy.config import keep_flat_targets, policy_perception
from robot_rewards.rewards.keypoints.config import KeypointModelConfig, TrainKeypointConfig, TrainKeypointsCommandConfig
from robot_rewards.rewards.keypoints.reward import KeypointScorer, SimKeypointSource, task_keypoints
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.outcomes import simulate_candidates
from robot_rewards.sim.tasks import TASKS, make_task, register_task
from robot_rewards.sim.tasks.base import BLOCK_HALF, COLORS, Task, clear_spot, sample_positions
from robot_rewards.sim.world import World

MARK_HALF = 0.03


class BlockOnMark(Task):
    """Put the block on the flat mark: success when the block's centre is within 2 cm of the
    mark's (in xy); quality: that distance."""

    name = "block_on_mark"
    primitive = "pick_place"
    max_steps = 2
    flat_target = True  # the mark is 1 mm high
    keypoint_names = ("block",)

    def reset(self, world: World, rng: np.random.Generator) -> str:
        block_c, mark_c = rng.choice(list(COLORS), 2, replace=False)
        xy = sample_positions(rng, 2, [MARK_HALF * 1.5, 0.04])
        world.add_marker("mark", [MARK_HALF, MARK_HALF, 0.0005], [*xy[0], 0.0005], COLORS[mark_c])
        world.add_box("block", [BLOCK_HALF] * 3, [*xy[1], BLOCK_HALF], COLORS[block_c], yaw=rng.uniform(-np.pi, np.pi))
        world.settle()
        self.goal = f"put the {block_c} block on the {mark_c} mark"
        return self.goal

    def _offset(self, world: World) -> np.ndarray:
        return (world.position("block") - world.position("mark"))[:2]

    def success(self, world: World) -> bool:
        return bool(np.linalg.norm(self._offset(world)) < 0.02)

    def quality(self, world: World) -> float:
        return float(np.linalg.norm(self._offset(world)))

    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        block, mark = world.position("block"), world.position("mark")
        place = np.array([mark[0], mark[1], BLOCK_HALF + 0.01])
        return Primitive.pick_place(self.jitter(block, rng, cfg), self.jitter(place, rng, cfg),
                                    self.jitter_yaw(world.yaw("block"), rng, cfg))

    def keypoints(self, world: World) -> Keypoints:
        mark = world.position("mark")
        return Keypoints([world.position("block")], [[mark[0], mark[1], BLOCK_HALF]], ["block"])

    def perturb(self, world: World, rng: np.random.Generator) -> str:
        xy = clear_spot(rng, world, ["mark"])
        where = "table" if xy is not None else "mark"
        xy = world.position("mark")[:2] if xy is None else xy
        world.teleport("block", [xy[0], xy[1], BLOCK_HALF + 0.002], rng.uniform(-np.pi, np.pi))
        world.settle(max_s=1.0)
        return where


@pytest.fixture
def registered():
    register_task(BlockOnMark)
    yield BlockOnMark.name
    TASKS.pop(BlockOnMark.name)


def test_registering_checks_the_class(registered):
    assert isinstance(make_task(registered), BlockOnMark)
    assert registered in task_names("all") and registered in keypoint_tasks()
    register_task(BlockOnMark)  # the same class again is fine

    class Clash(BlockOnMark):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_task(Clash)

    class BadPrimitive(BlockOnMark):
        name, primitive = "bad_primitive", "wave"

    with pytest.raises(ValueError, match="primitive"):
        register_task(BadPrimitive)
    assert "bad_primitive" not in TASKS


def test_eval_expert_accepts_it(registered, tmp_path):
    m = eval_expert(EvalExpertConfig(task=registered, episodes=2, noise=0.0, workers=1, video=False,
                                     output_dir=str(tmp_path)))
    assert m["tasks"][registered]["success_rate"] == 1.0, m


def test_keypoint_hooks_what_if_and_flat_target(registered):
    perception = keep_flat_targets(policy_perception(), registered)
    assert perception.table_threshold < policy_perception().table_threshold  # the flat mark stays
    with TabletopEnv(registered, perception=perception) as env:
        env.reset(3)
        kp = task_keypoints(env.task, env.world)
        assert kp.names == ["block"] and kp.distances()[0] > 0.05
        expert = env.expert_action(ExpertConfig(noise=0.0))
        poor = random_candidates(expert.name, 3, np.random.default_rng(0), env.workspace)
        cands = Candidates(expert.name, np.vstack([expert.params[None], poor.params]), np.zeros(4), np.zeros(4, bool))
        scores = KeypointScorer(SimKeypointSource(env)).score(env.observe(), cands).mean
        assert int(np.argmax(scores)) == 0
        outcomes = simulate_candidates(env, cands)  # TabletopEnv.what_if
        assert outcomes.success[0] and not outcomes.success[1:].any() and env.steps == 0
        np.testing.assert_array_equal(task_keypoints(env.task, env.world).objects, kp.objects)
        moved = env.task.perturb(env.world, np.random.default_rng(1))
        assert moved in ("table", "mark")
        assert not np.allclose(task_keypoints(env.task, env.world).objects, kp.objects)


def test_train_keypoints_accepts_it(registered, tmp_path):
    tiny = KeypointModelConfig(point_channels=[8, 16], attention_heads=2, obs_dim=16, goal_dim=8, token_dim=4)
    cfg = TrainKeypointsCommandConfig(task=registered, scenes=1, heldout_scenes=1, extra_states=1, augment_copies=0,
                                      train=TrainKeypointConfig(model=tiny, steps=2, batch_size=2), workers=1,
                                      output_dir=str(tmp_path))
    m = train_keypoints_command(cfg)
    assert m["names"] == ["block"] and m["train_samples"] == 2 and m["heldout_samples"] == 2
    assert m["config"]["perception"]["table_threshold"] < policy_perception().table_threshold

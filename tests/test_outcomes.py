"""What-if rollouts: every candidate from the same state, the scene left exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.eval.policy import random_candidates
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.outcomes import simulate_candidates


@pytest.mark.slow
def test_simulated_outcomes_match_real_execution_and_leave_the_scene_unchanged():
    with TabletopEnv("place_block") as env:
        env.reset(3)
        expert = env.expert_action(ExpertConfig(noise=0))
        poor = random_candidates(expert.name, 2, np.random.default_rng(0), env.workspace)
        params = np.vstack([expert.params[None], poor.params, expert.params[None]])
        cands = Candidates(expert.name, params, np.zeros(4), np.zeros(4, bool))
        before = env.observe().frames
        out = simulate_candidates(env, cands)
        after = env.observe().frames
        assert env.steps == 0
        assert all(np.array_equal(before[k].rgb, after[k].rgb) for k in before)
        assert out.success.tolist() == [True, False, False, True]
        # the same candidate from the same state gives the same outcome, bit for bit
        assert out.quality[0] == out.quality[3]
        real = env.step(expert)
        assert real.success and real.quality == pytest.approx(out.quality[0], abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("deterministic_pairs", [True, False])
def test_rope_what_if_rollouts_are_exact_only_with_sorted_overlapping_pairs(deterministic_pairs):
    # The rope's many contacts made Bullet's restored states step differently from the state they
    # were saved from: what-if outcomes drifted from the real execution (one oracle episode ended
    # 375 mm off after its what-if promised 12 mm). Sorted pairs make the two bit-identical.
    with TabletopEnv("align_rope", SimConfig(deterministic_pairs=deterministic_pairs)) as env:
        env.reset(100078)
        expert = env.expert_action(ExpertConfig(noise=0))
        poor = random_candidates(expert.name, 1, np.random.default_rng(0), env.workspace)
        params = np.vstack([expert.params[None], poor.params, expert.params[None]])
        cands = Candidates(expert.name, params, np.zeros(3), np.zeros(3, bool))
        out = simulate_candidates(env, cands)
        env.step(expert)
        outcomes = [out.quality[0], out.quality[2], env.quality()]
        if deterministic_pairs:
            assert outcomes[0] == outcomes[1] == outcomes[2]
        else:  # documents why the default is on: if this starts passing, Bullet changed
            assert len(set(outcomes)) > 1

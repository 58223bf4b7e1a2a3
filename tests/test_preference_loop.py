"""The loop end to end: policy candidates -> scripted teacher -> preference store -> scorer ->
best-of-N selection in the sim."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rewards.core.paths import resolve
from robot_rewards.eval.collect import answer_name, collect_teacher_labels
from robot_rewards.eval.loop import EpisodeStats, first_sample, oracle_selector, run_episodes
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import TeacherConfig
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.rewards.preference.config import TrainScorerConfig
from robot_rewards.rewards.preference.scorer import evaluate_pairs, train_scorer
from robot_rewards.sim.outcomes import simulate_candidates

POLICY = "checkpoints/policy_place_block.json"
# Held-out scenes where the shipped policy's first sample misses but several of its 8 samples
# succeed (found by simulating every candidate): there is something for a scorer to find.
SCENES = [100016, 100022, 100028]


def test_answer_names_match_the_store():
    assert [answer_name(v) for v in (1.0, 0.0, 0.5, float("nan"))] == ["a", "b", "tie", "cant_tell"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.sim.env import TabletopEnv

    ck = load_policy(resolve(POLICY), task="place_block")
    env = TabletopEnv("place_block", perception=ck.perception)
    store = PreferenceStore(tmp_path_factory.mktemp("prefs"))
    stats = collect_teacher_labels(env, ck.policy, store, TeacherConfig(), n_labels=3 * 28, n_candidates=8,
                                   pairs_per_query=28, seed=0, episode_seeds=SCENES, max_decisions=1,
                                   progress=False)
    yield env, ck, store, stats
    store.close()
    env.close()


@pytest.mark.slow
def test_teacher_labels_go_through_the_store(loop):
    env, ck, store, stats = loop
    assert (stats.queries, stats.labels, stats.simulated) == (3, 84, 24)
    assert store.label_count(task="place_block") == 84
    pairs = store.pairs(task="place_block")
    assert len(pairs) == 84 and pairs.primitive == "pick_place"
    # the oracle teacher's labels agree with the true values stored with each query
    for q in store.queries(task="place_block"):
        assert len(q.meta["values"]) == 8


@pytest.mark.slow
def test_scorer_from_scripted_labels_picks_better_candidates_than_the_first_sample(loop):
    env, ck, store, _ = loop
    pairs = store.pairs(task="place_block")
    scorer, fit = train_scorer(pairs, TrainScorerConfig(ensemble_size=3, steps=300, val_fraction=0.0,
                                                        init_from_policy=POLICY))
    assert fit["frozen_encoder"] and scorer.k == 3
    assert evaluate_pairs(scorer, pairs)["accuracy"] > 0.8
    first_ok, chosen_ok = [], []
    for seed in SCENES:
        env.reset(seed)
        obs = env.observe()
        cands = ck.policy.sample(obs, 8, seed=seed * 100)  # the candidates the labels were about
        best = int(np.argmax(aggregate(scorer.score(obs, cands), "mean")))
        out = simulate_candidates(env, cands.subset([0, best]))
        first_ok.append(bool(out.success[0]))
        chosen_ok.append(bool(out.success[1]))
    assert sum(first_ok) == 0  # how the scenes were chosen
    assert sum(chosen_ok) >= 2


@pytest.mark.slow
def test_reward_guided_episodes_report_per_condition(loop):
    env, ck, _, _ = loop
    first = run_episodes(env, ck.policy, first_sample, 1, SCENES[0], 8, progress=False)
    oracle = run_episodes(env, ck.policy, oracle_selector(0.02), 1, SCENES[0], 8, progress=False)
    assert isinstance(first, EpisodeStats)
    s_first, s_oracle = first.summary(), oracle.summary()
    # the oracle picks a candidate that succeeds at once; the first sample needs another try
    assert s_oracle["success_rate"] == 1.0 and s_oracle["steps_mean"] == 1.0
    assert s_first["steps_mean"] > 1.0 or s_first["success_rate"] < 1.0
    assert s_oracle["failed_seeds"] == []
    # per-episode values on the same seeds, for paired comparisons of conditions
    assert s_first["seeds"] == s_oracle["seeds"] == [SCENES[0]]
    assert s_first["quality"][0] == pytest.approx(s_first["quality_mean"])


@pytest.mark.slow
def test_clip_condition_scores_each_candidates_simulated_outcome(loop):
    """(e) CLIP: one reward per candidate from its what-if outcome, deterministic, scene untouched."""
    from robot_rewards.eval.loop import clip_selector
    from robot_rewards.rewards.clip.config import ClipRewardConfig

    env, ck, _, _ = loop
    env.reset(SCENES[1])
    obs = env.observe()
    cands = ck.policy.sample(obs, 4, seed=0)
    block = env.world.position(env.task.target_block)
    pick = clip_selector(ClipRewardConfig(model="checkpoints/clip_tabletop.json"), env)
    first, again = pick(env, obs, cands), pick(env, obs, cands)
    assert first.shape == (4,) and np.isfinite(first).all() and np.ptp(first) > 0
    np.testing.assert_allclose(first, again, rtol=1e-5)
    np.testing.assert_allclose(env.world.position(env.task.target_block), block, atol=1e-6)
    assert env.steps == 0


@pytest.mark.slow
def test_heldout_selection_judges_a_scorers_top_choice_by_the_stored_true_values(loop, tmp_path):
    from robot_rewards.preferences.heldout import has_true_values, heldout_calibration, heldout_selection
    from robot_rewards.rewards.base import ScoreSet

    _, _, store, _ = loop
    queries = store.queries(task="place_block")
    values = [np.asarray(q.meta["values"]) for q in queries]
    by_cloud = {store.load_query(q.id)[1].points.tobytes(): v for q, v in zip(queries, values)}

    class Peeking:  # scores each candidate by its true value (members offset): always a best one
        def __init__(self, scale: float = 1.0):
            self.scale = scale

        def score(self, obs, cands):
            v = self.scale * by_cloud[obs.points.tobytes()]
            return ScoreSet.from_members(np.stack([v, v + 1.0]))

    class Flat:  # no preference: argmax takes the first candidate, as the policy alone does
        def score(self, obs, cands):
            return ScoreSet.from_members(np.zeros((2, len(cands))))

    peek = heldout_selection(Peeking(), store, "place_block")
    assert peek["queries"] == 3 and peek["top1_is_best"] == 1.0 and peek["gain_captured"] == pytest.approx(1.0)
    assert peek["top1_value"] == pytest.approx(np.mean([v.max() for v in values])) == peek["best_value"]
    differing = sum(int(v[i] != v[j]) for v in values for i in range(8) for j in range(i + 1, 8))
    assert peek["pairs"] == differing > 0 and peek["pair_accuracy"] == 1.0 == peek["clear_pair_accuracy"]
    assert peek["clear_pairs"] == sum(int(abs(v[i] - v[j]) > 1.0) for v in values for i in range(8) for j in range(i + 1, 8))
    flat = heldout_selection(Flat(), store, "place_block")
    assert flat["top1_value"] == pytest.approx(np.mean([v[0] for v in values])) == flat["first_value"]
    assert flat["gain_captured"] == pytest.approx(0.0) and flat["top1_is_best"] < 1.0
    assert flat["random_value"] == pytest.approx(np.mean([v.mean() for v in values]))
    assert has_true_values(store, "place_block") and not has_true_values(store, "align_rope")
    # calibration over every differing candidate pair: a sure, right scorer vs one that never knows
    sure = heldout_calibration(Peeking(scale=1e4), store, "place_block")
    assert sure["pairs"] == differing and sure["accuracy"] == 1.0 and sure["ece"] < 0.05
    unsure = heldout_calibration(Flat(), store, "place_block")
    y = np.concatenate([[float(v[i] > v[j]) for i in range(8) for j in range(i + 1, 8) if v[i] != v[j]] for v in values])
    assert unsure["ece"] == pytest.approx(abs(0.5 - y.mean())) and unsure["ece_floor"] > 0
    assert unsure["ece_ci"][0] <= unsure["ece"] <= unsure["ece_ci"][1]
    with PreferenceStore(tmp_path / "empty") as empty, pytest.raises(ValueError, match="no query of task"):
        heldout_selection(Flat(), empty, "place_block")

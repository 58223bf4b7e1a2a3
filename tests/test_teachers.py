"""Scripted (B-Pref) and reward-model (AI feedback) teachers, and query selection.

Statistical checks use 4-sigma tolerances of the sample sizes they draw (binomial counts).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.preferences.query_selection import (
    METHODS,
    QuerySelectionError,
    disagreement,
    effective_method,
    entropy,
    pair_probabilities,
    select_across_queries,
    select_pairs,
)
from robot_rewards.preferences.teachers import (
    PRESETS,
    RewardTeacher,
    ScriptedTeacher,
    Teacher,
    TeacherConfig,
    TeacherConfigError,
    TeacherInputError,
    all_pairs,
    teacher_preset,
    true_return,
)
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.rewards.keypoints.reward import FixedKeypointSource, Keypoints, KeypointScorer


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def disjoint_query(rng, m: int, low=-3.0, high=3.0):
    """Values of 2m candidates and m disjoint pairs (i, i + m): independent comparisons."""
    values = rng.uniform(low, high, 2 * m)
    pairs = np.stack([np.arange(m), np.arange(m) + m], axis=1)
    return values, pairs, values[:m] - values[m:]


# -- ground truth, configs, pairs -------------------------------------------------------------

def test_true_return_is_success_minus_scaled_error():
    assert true_return(True, 0.01, 0.02) == pytest.approx(0.5)
    assert true_return(False, 0.1) == pytest.approx(-5.0)  # default scale 0.02 m
    v = true_return(np.array([1, 0, 1]), np.array([0.0, 0.04, 0.02]), 0.02)
    np.testing.assert_allclose(v, [1.0, -2.0, 0.0])
    with pytest.raises(TeacherInputError, match="NaN"):
        true_return(True, np.nan)
    with pytest.raises(TeacherInputError, match="negative"):
        true_return(True, -0.01)
    with pytest.raises(TeacherInputError, match="quality_scale"):
        true_return(True, 0.01, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.6}, "eps"), ({"eps": -0.1}, "eps"), ({"beta": 0.0}, "beta"), ({"beta": math.nan}, "beta"),
    ({"equal_threshold": -1.0}, "equal_threshold"), ({"skip_below": math.inf}, "skip_below"),
    ({"seed": 1.5}, "seed"),
])
def test_config_rejects_out_of_range_settings(kwargs, match):
    with pytest.raises(TeacherConfigError, match=match):
        TeacherConfig(**kwargs)


def test_presets_are_b_pref_teachers_and_combine():
    assert set(PRESETS) == {"oracle", "stochastic", "mistake", "skip", "equal"}
    assert teacher_preset("oracle") == TeacherConfig()
    assert teacher_preset("mistake").eps == 0.1
    assert teacher_preset("stochastic").beta == 1.0
    both = teacher_preset("stochastic+mistake+equal", seed=7)
    assert (both.beta, both.eps, both.equal_threshold, both.seed) == (1.0, 0.1, 0.25, 7)
    assert both.skip_below is None
    with pytest.raises(TeacherConfigError, match="unknown teacher preset 'myopic'.*oracle"):
        teacher_preset("myopic")


def test_all_pairs():
    p = all_pairs(4)
    assert p.shape == (6, 2) and p.dtype == np.int64
    assert p.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert all_pairs(1).shape == (0, 2) and all_pairs(0).shape == (0, 2)
    with pytest.raises(TeacherInputError):
        all_pairs(-1)


def test_bad_values_and_pairs_are_rejected():
    t = ScriptedTeacher(TeacherConfig())
    with pytest.raises(TeacherInputError, match="NaN"):
        t.label([0.0, np.nan], [[0, 1]])
    with pytest.raises(TeacherInputError, match=r"\[0, 2\)"):
        t.label([0.0, 1.0], [[0, 2]])
    with pytest.raises(TeacherInputError, match="itself"):
        t.label([0.0, 1.0], [[1, 1]])
    with pytest.raises(TeacherInputError, match="integer"):
        t.label([0.0, 1.0], [[0.0, 1.0]])
    assert t.label([0.0, 1.0], np.zeros((0, 2), int)).shape == (0,)


# -- scripted teachers ------------------------------------------------------------------------

def test_oracle_always_prefers_the_higher_value():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    pairs = all_pairs(40)
    t = ScriptedTeacher(teacher_preset("oracle"))
    assert isinstance(t, Teacher)
    labels = t.label(values, pairs)
    d = values[pairs[:, 0]] - values[pairs[:, 1]]
    np.testing.assert_array_equal(labels, (d > 0).astype(float))
    s = t.stats()
    assert (s["queried"], s["decided"], s["against_truth"], s["flipped"]) == (780, 780, 0, 0)
    # exactly equal values: an oracle cannot choose
    assert t.label([1.0, 1.0, 0.0], [[0, 1], [2, 0]]).tolist() == [0.5, 0.0]


@pytest.mark.parametrize("eps", [0.1, 0.25])
def test_mistake_rate_matches_eps(eps):
    m = 20_000
    values, pairs, d = disjoint_query(np.random.default_rng(1), m)
    t = ScriptedTeacher(TeacherConfig(eps=eps, seed=3))
    labels = t.label(values, pairs)
    wrong = np.mean(labels != (d > 0))
    tol = 4 * math.sqrt(eps * (1 - eps) / m)
    assert abs(wrong - eps) < tol
    s = t.stats()
    assert s["flipped"] == s["against_truth"] == int(round(wrong * m))
    assert abs(s["mistake_rate"] - eps) < tol


def test_stochastic_matches_sigmoid_of_beta_times_difference():
    beta, m = 1.0, 30_000
    values, pairs, d = disjoint_query(np.random.default_rng(2), m, -2.5, 2.5)
    labels = ScriptedTeacher(TeacherConfig(beta=beta, seed=4)).label(values, pairs)
    assert set(np.unique(labels)) <= {0.0, 1.0}
    edges = np.array([-4.0, -2.0, -0.5, 0.5, 2.0, 4.0])
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (d >= lo) & (d < hi)
        n = inside.sum()
        assert n > 1000
        p_model = sigmoid(beta * d[inside])
        tol = 4 * math.sqrt(np.mean(p_model * (1 - p_model)) / n)
        assert abs(labels[inside].mean() - p_model.mean()) < tol, (lo, hi)
    # a less rational teacher is wrong more often
    noisy = ScriptedTeacher(TeacherConfig(beta=0.3, seed=4)).label(values, pairs)
    assert np.mean(noisy != (d > 0)) > np.mean(labels != (d > 0)) + 0.05


def test_skip_marks_pairs_where_both_are_below_threshold():
    values, pairs, _ = disjoint_query(np.random.default_rng(5), 5000, -5.0, 2.0)
    t = ScriptedTeacher(teacher_preset("skip"))
    labels = t.label(values, pairs)
    both_low = (values[pairs[:, 0]] < -2.5) & (values[pairs[:, 1]] < -2.5)
    np.testing.assert_array_equal(np.isnan(labels), both_low)
    assert t.stats()["skip_rate"] == pytest.approx(both_low.mean())
    assert 0.1 < both_low.mean() < 0.3  # ~ (2.5 / 7)^2, so both kinds are exercised


def test_equal_gives_ties_exactly_where_difference_is_small():
    values, pairs, d = disjoint_query(np.random.default_rng(6), 5000, -1.0, 1.0)
    t = ScriptedTeacher(teacher_preset("equal"))
    labels = t.label(values, pairs)
    small = np.abs(d) < 0.25
    np.testing.assert_array_equal(labels == 0.5, small)
    np.testing.assert_array_equal(labels[~small], (d[~small] > 0).astype(float))
    assert t.stats()["ties"] == small.sum()


def test_combined_config_applies_skip_equal_stochastic_mistake_in_order():
    cfg = TeacherConfig(beta=2.0, eps=0.2, skip_below=-1.0, equal_threshold=0.3, seed=8)
    m = 30_000
    values, pairs, d = disjoint_query(np.random.default_rng(7), m, -2.0, 2.0)
    t = ScriptedTeacher(cfg)
    labels = t.label(values, pairs)
    skipped = (values[:m] < -1.0) & (values[m:] < -1.0)
    tie = ~skipped & (np.abs(d) < 0.3)
    decided = ~skipped & ~tie
    assert (skipped & (np.abs(d) < 0.3)).sum() > 100  # skip wins over equal on these
    np.testing.assert_array_equal(np.isnan(labels), skipped)
    np.testing.assert_array_equal(labels == 0.5, tie)  # ties are never flipped
    assert np.all(np.isin(labels[decided], (0.0, 1.0)))
    # mistakes flip the stochastic choice: P(1) = (1 - eps) sig + eps (1 - sig)
    dd, yd = d[decided], labels[decided]
    for lo, hi in ((-4.0, -0.3), (0.3, 4.0)):
        inside = (dd >= lo) & (dd < hi)
        sig = sigmoid(2.0 * dd[inside])
        p = 0.8 * sig + 0.2 * (1 - sig)
        tol = 4 * math.sqrt(np.mean(p * (1 - p)) / inside.sum())
        assert abs(yd[inside].mean() - p.mean()) < tol
    s = t.stats()
    assert (s["skipped"], s["ties"], s["decided"]) == (skipped.sum(), tie.sum(), decided.sum())
    n = decided.sum()
    assert abs(s["flipped"] / n - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)


def test_same_seed_same_labels_different_seed_different():
    values, pairs, _ = disjoint_query(np.random.default_rng(9), 500)
    cfg = teacher_preset("stochastic+mistake", seed=11)

    def run(config):
        t = ScriptedTeacher(config)
        return np.concatenate([t.label(values, pairs), t.label(values, pairs)])

    a, b = run(cfg), run(cfg)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:500], a[500:])  # the stream moves on between calls
    other = run(TeacherConfig(beta=1.0, eps=0.1, seed=12))
    assert np.mean(a != other) > 0.1


def test_label_outcomes_uses_true_returns():
    t = ScriptedTeacher(TeacherConfig())
    # success 1 cm off (0.5) > failure 3 cm off (-1.5) > failure 10 cm off (-5)
    labels = t.label_outcomes([True, False, False], [0.01, 0.03, 0.10], [[0, 1], [2, 1], [2, 0]])
    assert labels.tolist() == [1.0, 0.0, 0.0]


# -- AI feedback ------------------------------------------------------------------------------

def _candidates(params):
    params = np.asarray(params, dtype=np.float64)
    return Candidates("pick_place", params, np.arange(len(params)), np.zeros(len(params), bool))


def test_reward_teacher_labels_from_a_keypoint_scorer():
    kp = Keypoints(objects=[[0.5, 0.0, 0.02]], targets=[[0.6, 0.1, 0.02]])
    scorer = KeypointScorer(FixedKeypointSource(kp))
    # all pick the object; places 0, 1, 3 and 6 cm from the target
    offsets = [0.0, 0.01, 0.03, 0.06]
    cands = _candidates([[0.5, 0.0, 0.02, 0.6 + o, 0.1, 0.02, 0.0] for o in offsets])
    pairs = all_pairs(4)
    teacher = RewardTeacher(scorer.score)
    labels = teacher.label_query(None, cands, pairs)
    np.testing.assert_array_equal(labels, np.ones(6))  # the lower index is always nearer
    swapped = teacher.label_query(None, cands, pairs[:, ::-1])
    np.testing.assert_array_equal(swapped, np.zeros(6))
    # with an equal threshold of 2.5 cm (keypoint score units are metres) near places tie
    tied = RewardTeacher(scorer, TeacherConfig(equal_threshold=0.025)).label_query(None, cands, pairs)
    assert tied.tolist() == [0.5, 1.0, 1.0, 0.5, 1.0, 1.0]


def test_reward_teacher_uses_the_ensemble_mean_and_checks_the_scorer():
    members = np.array([[3.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])  # means 1, 0, 1
    teacher = RewardTeacher(lambda obs, cands: ScoreSet.from_members(members), TeacherConfig(seed=1))
    cands = _candidates(np.zeros((3, 7)))
    assert teacher.label_query(None, cands, [[0, 1], [1, 2], [0, 2]]).tolist() == [1.0, 0.0, 0.5]
    assert teacher.label([0.0, 2.0], [[0, 1]]).tolist() == [0.0]  # precomputed values
    assert teacher.stats()["queried"] == 4
    wrong_n = RewardTeacher(lambda obs, cands: ScoreSet.from_members([[1.0, 2.0]]))
    with pytest.raises(TeacherInputError, match="2 scores for 3 candidates"):
        wrong_n.label_query(None, cands, [[0, 1]])
    with pytest.raises(TeacherInputError, match="ScoreSet"):
        RewardTeacher(lambda obs, cands: [1.0, 2.0, 3.0]).label_query(None, cands, [[0, 1]])


def test_reward_teacher_prefers_a_scorers_score_method_over_its_call():
    class ModuleLike:  # like an nn.Module: calling it is the forward pass, not `score`
        def __call__(self, *args):
            raise AssertionError("called forward instead of score")

        def score(self, obs, cands):
            return ScoreSet.from_members([[0.0, 1.0]])

    assert RewardTeacher(ModuleLike()).label_query(None, _candidates(np.zeros((2, 7))), [[0, 1]]).tolist() == [0.0]


# -- query selection --------------------------------------------------------------------------

def test_pair_probabilities_and_disagreement_rank_disagreeing_pairs_first():
    # members agree that 0 beats 1; they disagree about candidate 2
    scores = ScoreSet.from_members([[1.0, 0.0, 2.0], [1.0, 0.0, -2.0]])
    probs = pair_probabilities(scores, all_pairs(3))
    np.testing.assert_allclose(probs, sigmoid(np.array([[1.0, -1.0, -2.0], [1.0, 3.0, 2.0]])))
    dis = disagreement(scores, all_pairs(3))
    assert dis[0] == 0.0
    expected = [((sigmoid(3.0) - sigmoid(-1.0)) / 2) ** 2, ((sigmoid(2.0) - sigmoid(-2.0)) / 2) ** 2]
    np.testing.assert_allclose(dis[1:], expected)
    chosen = select_pairs(3, 3, "disagreement", scores, rng=0)
    assert chosen.tolist() == [[1, 2], [0, 2], [0, 1]]
    assert np.all(disagreement(ScoreSet.from_members([[1.0, 0.0, 2.0]]), all_pairs(3)) == 0)


def test_entropy_ranks_near_equal_pairs_first():
    scores = ScoreSet.from_members([[0.0, 0.1, 3.0]])
    h = entropy(scores, all_pairs(3))
    assert h[0] == pytest.approx(math.log(2), abs=0.01) and h[0] < math.log(2)
    assert select_pairs(3, 2, "entropy", scores, rng=0).tolist() == [[0, 1], [1, 2]]
    # entropy uses the member mean: members that cancel out look undecided
    split = ScoreSet.from_members([[3.0, 0.0], [-3.0, 0.0]])
    assert entropy(split, [[0, 1]])[0] == pytest.approx(math.log(2))


def test_uniform_covers_pairs_evenly():
    rng = np.random.default_rng(13)
    draws, k, n_all = 4000, 3, 10
    counts = np.zeros((5, 5), int)
    for _ in range(draws):
        chosen = select_pairs(5, k, "uniform", rng=rng)
        assert len({tuple(p) for p in chosen.tolist()}) == k  # without replacement
        assert np.all(chosen[:, 0] < chosen[:, 1])
        counts[chosen[:, 0], chosen[:, 1]] += 1
    observed = counts[np.triu_indices(5, 1)]
    p = k / n_all
    assert np.all(np.abs(observed - draws * p) < 4 * math.sqrt(draws * p * (1 - p)))


def test_more_pairs_than_available_gives_all_and_ties_break_randomly():
    scores = ScoreSet.from_members(np.zeros((2, 4)))  # every pair has disagreement 0
    orders = {tuple(map(tuple, select_pairs(4, 100, "disagreement", scores, rng=s).tolist())) for s in range(6)}
    assert all(sorted(o) == [tuple(p) for p in all_pairs(4).tolist()] for o in orders)
    assert len(orders) > 1
    assert select_pairs(1, 5).shape == (0, 2)


def test_scorer_methods_fall_back_to_uniform_without_scores(caplog):
    with caplog.at_level(logging.INFO, logger="robot_rewards.preferences.query_selection"):
        chosen = select_pairs(6, 4, "disagreement", None, rng=21)
    assert "first round" in caplog.text
    np.testing.assert_array_equal(chosen, select_pairs(6, 4, "uniform", rng=21))
    assert effective_method("entropy", None) == "uniform"
    assert effective_method("entropy", ScoreSet.from_members([[0.0, 1.0]])) == "entropy"


def test_selection_rejects_bad_requests():
    with pytest.raises(QuerySelectionError, match="uniform.*disagreement.*entropy"):
        select_pairs(4, 2, "random")
    assert METHODS == ("uniform", "disagreement", "entropy")
    with pytest.raises(QuerySelectionError, match="3 candidates"):
        select_pairs(4, 2, "entropy", ScoreSet.from_members([[0.0, 1.0, 2.0]]))
    with pytest.raises(QuerySelectionError, match="n_pairs"):
        select_pairs(4, -1)


def test_select_across_queries_picks_from_the_right_query():
    agree = ScoreSet.from_members([[0.0, 2.0, 4.0], [0.0, 2.0, 4.0]])
    split = ScoreSet.from_members([[0.0, 3.0], [0.0, -3.0]])
    near = ScoreSet.from_members([[5.0, 5.05, 0.0, -5.0], [5.0, 5.05, 0.0, -5.0]])
    sets = [agree, split, near]
    assert select_across_queries(sets, 1, "disagreement", rng=0) == [(1, 0, 1)]
    assert select_across_queries(sets, 1, "entropy", rng=0)[0] == (1, 0, 1)  # mean 0: undecided
    assert select_across_queries([agree, near], 1, "entropy", rng=0) == [(1, 0, 1)]
    everything = select_across_queries(sets, 100, "uniform", rng=0)
    assert sorted(everything) == sorted([(0, a, b) for a, b in all_pairs(3).tolist()] + [(1, 0, 1)]
                                        + [(2, a, b) for a, b in all_pairs(4).tolist()])
    # candidate counts alone (no scorer yet): uniform over the pool
    picked = select_across_queries([3, 2], 4, "entropy", rng=1)
    assert len(picked) == 4 and all(q in (0, 1) and a < b < (3, 2)[q] for q, a, b in picked)
    assert select_across_queries([], 3, "uniform") == []


def test_label_collection_refuses_bad_counts_before_touching_anything():
    from robot_rewards.eval.collect import collect_teacher_labels
    from robot_rewards.preferences.teachers import teacher_preset

    for kw, msg in ((dict(n_labels=0), "n_labels"), (dict(n_labels=5, max_decisions=-1), "max_decisions")):
        with pytest.raises(ValueError, match=msg):
            collect_teacher_labels(None, None, None, teacher_preset("oracle", 0), **kw)

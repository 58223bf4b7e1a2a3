"""The one decision path (`selection.decider`): seeds, methods, the feasibility walk and bad inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Workspace
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.selection import CLIPPED_REASON, Decider, Decision, FeasibilityChecker, SelectionError, decision_seed
from robot_rewards.selection.best_of_n import znorm

OBS = object()  # the Decider hands the observation to the policy and scorers without reading it
REACHABLE = [0.5, 0.0, 0.02, 0.55, 0.1, 0.02, 0.0]


class FakePolicy:
    """Candidate i has x = i / 100 (so a test can tell them apart); records the sampling calls."""

    def __init__(self, clipped=()):
        self.calls: list[tuple[int, int, dict]] = []
        self.clipped = set(clipped)

    def sample(self, obs, n, seed=0, **kwargs):
        self.calls.append((n, seed, kwargs))
        params = np.tile(np.asarray(REACHABLE), (n, 1))
        params[:, 0] = np.arange(n) / 100
        return Candidates("pick_place", params, seed * 1000 + np.arange(n),
                          [i in self.clipped for i in range(n)])


class FixedScorer:
    def __init__(self, members):
        self.members = np.asarray(members, dtype=np.float64)
        self.calls = 0

    def score(self, obs, candidates):
        self.calls += 1
        return ScoreSet.from_members(self.members[:, :len(candidates)])


class RefuseSome:
    """A feasibility checker double: refuses the candidates whose index (x * 100) is listed."""

    def __init__(self, refused):
        self.refused = set(refused)
        self.tried: list[int] = []
        self.q_starts = []

    def check(self, primitive, q_start=None):
        i = int(round(primitive.params[0] * 100))
        self.tried.append(i)
        self.q_starts.append(q_start)
        return f"unreachable: candidate {i}" if i in self.refused else None


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and text
    return text


# --- the seed rule ---------------------------------------------------------------------------------


def test_decision_seed_is_the_sim_loops_rule():
    for episode, k in [(0, 0), (0, 7), (3, 0), (100000, 4), (-2, 5)]:
        assert decision_seed(episode, k) == episode * 100 + k
    assert decision_seed(np.int64(12), np.int64(3)) == 1203
    assert isinstance(decision_seed(np.int64(12), 3), int)


@pytest.mark.parametrize("episode, k, text", [
    (0, -1, "decision index must be >= 0"), (1.5, 0, "episode seed must be an integer"),
    (0, "2", "decision index must be an integer"), (True, 0, "episode seed must be an integer"),
])
def test_decision_seed_refuses_bad_indices(episode, k, text):
    with pytest.raises(SelectionError) as exc:
        decision_seed(episode, k)
    assert text in one_line(exc)


def test_decide_samples_with_the_seed_rule_and_is_deterministic():
    policy = FakePolicy()
    decider = Decider(policy, method="random", n_candidates=5, random_seed=3)
    a = decider.decide(OBS, 7, 2)
    b = decider.decide(OBS, 7, 2)
    assert policy.calls == [(5, 702, {}), (5, 702, {})]  # no steps keyword unless configured
    assert (a.seed, a.episode_seed, a.decision) == (702, 7, 2)
    assert a.ranking == b.ranking and a.chosen == b.chosen
    np.testing.assert_array_equal(a.candidates.seeds, 702 * 1000 + np.arange(5))
    Decider(policy, method="first", steps=4).decide(OBS, 1, 0)
    assert policy.calls[-1] == (8, 100, {"steps": 4})


# --- methods ---------------------------------------------------------------------------------------


def test_first_takes_candidate_zero_without_scoring():
    d = Decider(FakePolicy(), method="first", n_candidates=4).decide(OBS, 0, 0)
    assert d.chosen == 0 and d.ranking == (0, 1, 2, 3) and d.rejected == ()
    assert d.utilities is None and d.scores is None and d.method == "first" and d.feasible
    np.testing.assert_array_equal(d.primitive().params, d.candidates.params[0])


def test_first_with_a_checker_walks_the_policys_order():
    checker = RefuseSome({0, 1})
    d = Decider(FakePolicy(), method="first", n_candidates=4, checker=checker).decide(OBS, 0, 0, q_start="q")
    assert d.chosen == 2 and checker.tried == [0, 1, 2]
    assert d.rejected == ((0, "unreachable: candidate 0"), (1, "unreachable: candidate 1"))
    assert checker.q_starts == ["q", "q", "q"]


def test_random_is_seeded_by_seed_episode_and_decision():
    n = 8
    decider = Decider(FakePolicy(), method="random", n_candidates=n, random_seed=5)
    picks = []
    for episode in range(3):
        for k in range(3):
            d = decider.decide(OBS, episode, k)
            # the sim loop's random condition: uniform pick keyed by (seed, 1201, episode, decision)
            want = int(np.random.default_rng([5, 1201, episode, k]).integers(n))
            assert d.chosen == want and d.utilities is None
            assert d.ranking == tuple([want] + [i for i in range(n) if i != want])
            picks.append(want)
    assert len(set(picks)) > 1
    rng = np.random.default_rng(0)
    want = int(np.random.default_rng(0).integers(n))
    assert decider.decide(OBS, 0, 0, rng=rng).chosen == want  # a caller's own generator


@pytest.mark.parametrize("aggregator", ["mean", "wco", "uwo"])
def test_best_of_n_ranks_by_the_aggregated_family(aggregator):
    members = [[1.0, 5.0, 3.0, 2.0], [2.0, 4.0, 6.0, 0.0]]
    scorer = FixedScorer(members)
    d = Decider(FakePolicy(), {"preference": scorer}, aggregator=aggregator, lam=0.5,
                n_candidates=4).decide(OBS, 0, 0)
    u = aggregate(ScoreSet.from_members(members), aggregator, 0.5)
    np.testing.assert_array_equal(d.utilities, u)  # one family: its utilities unchanged
    assert d.ranking == tuple(np.argsort(-u, kind="stable").tolist()) and d.chosen == d.ranking[0]
    np.testing.assert_array_equal(d.scores["preference"].members, members)
    assert scorer.calls == 1


def test_best_of_n_combines_families_by_weighted_znorm():
    a, b = FixedScorer([[0.0, 1.0, 2.0]]), FixedScorer([[30.0, 10.0, 20.0]])
    d = Decider(FakePolicy(), {"a": a, "b": b}, weights={"a": 1.0, "b": 3.0}, n_candidates=3).decide(OBS, 0, 0)
    want = znorm([0.0, 1.0, 2.0]) + 3.0 * znorm([30.0, 10.0, 20.0])
    np.testing.assert_allclose(d.utilities, want)
    assert d.chosen == int(np.argmax(want)) == 0


def test_best_of_n_by_a_utility_function():
    seen = []

    def utility(obs, cands):
        seen.append(len(cands))
        return -cands.params[:, 0]  # prefers the lowest x: candidate 0

    d = Decider(FakePolicy(), utility=utility, n_candidates=5, checker=RefuseSome({0})).decide(OBS, 0, 0)
    assert seen == [5] and d.ranking == (0, 1, 2, 3, 4) and d.chosen == 1 and d.scores is None


def test_choose_with_scores_from_elsewhere_and_missing_weights():
    cands = FakePolicy().sample(OBS, 3, 0)
    decider = Decider(None, weights={"pref": 2.0, "absent": 1.0}, missing_weight=1.0, checker=RefuseSome(set()))
    d = decider.choose(cands, {"pref": ScoreSet.from_members([[1.0, 3.0, 2.0]]),
                               "other": ScoreSet.from_members([[0.0, 0.0, 9.0]])}, episode_seed=4, decision=1)
    want = 2.0 * znorm([1.0, 3.0, 2.0]) + 1.0 * znorm([0.0, 0.0, 9.0])
    np.testing.assert_allclose(d.utilities, want)
    assert d.chosen == int(np.argmax(want)) and d.seed == 401
    none = decider.choose(cands, {})  # no family scored: all equal, the policy's order
    np.testing.assert_array_equal(none.utilities, np.zeros(3))
    assert none.ranking == (0, 1, 2) and none.chosen == 0


# --- the feasibility walk --------------------------------------------------------------------------


def test_feasibility_walk_follows_the_ranking_and_records_reasons_in_order():
    scorer = FixedScorer([[1.0, 4.0, 3.0, 2.0, 0.0]])  # ranking 1, 2, 3, 0, 4
    checker = RefuseSome({1, 3})
    d = Decider(FakePolicy(clipped={2}), {"preference": scorer}, n_candidates=5,
                checker=checker).decide(OBS, 0, 0)
    assert d.ranking == (1, 2, 3, 0, 4)
    assert d.rejected == ((1, "unreachable: candidate 1"), (2, CLIPPED_REASON), (3, "unreachable: candidate 3"))
    assert d.chosen == 0 and checker.tried == [1, 3, 0]  # a clipped candidate is refused before any check
    assert "chose candidate 0 (rank 4 of 5, utility 1) after rejecting 3" in d.summary()


def test_nothing_feasible_gives_a_decision_without_a_choice():
    d = Decider(FakePolicy(), {"p": FixedScorer([[2.0, 1.0, 3.0]])}, n_candidates=3,
                checker=RefuseSome({0, 1, 2})).decide(OBS, 0, 0)
    assert d.chosen is None and not d.feasible
    assert [i for i, _ in d.rejected] == [2, 0, 1] == list(d.ranking)
    assert d.summary().startswith("no feasible candidate among 3: not executing")
    with pytest.raises(SelectionError) as exc:
        d.primitive()
    assert "nothing to execute" in one_line(exc)


def test_real_checker_refuses_candidates_outside_the_workspace():
    cands = Candidates("pick_place", [[0.5, 0.0, -0.2, 0.55, 0.1, 0.02, 0.0], [0.5, 0.0, 5.0, 0.55, 0.1, 0.02, 0.0]],
                       [0, 1], [False, False])
    with FeasibilityChecker(Workspace()) as checker:  # no IK needed: both fail the workspace check first
        d = Decider(checker=checker, method="first").choose(cands)
    assert d.chosen is None and all(r.startswith("outside workspace") for _, r in d.rejected)


def test_decision_is_frozen_plain_data():
    d = Decider(FakePolicy(), method="first", n_candidates=2).decide(OBS, 0, 0)
    assert isinstance(d, Decision) and d.sample_s >= 0 and d.select_s == d.score_s + d.check_s
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.chosen = 1


# --- bad inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, text", [
    ({"method": "fk_steering"}, "unknown selection method 'fk_steering'"),
    ({"n_candidates": 0}, "n_candidates must be an integer >= 1"),
    ({"n_candidates": 2.5}, "n_candidates must be an integer >= 1"),
    ({"aggregator": "max"}, "unknown aggregator 'max'"),
    ({"scorers": FixedScorer([[1.0]])}, "scorers must map reward family names"),
    ({"scorers": {"p": FixedScorer([[1.0]])}, "utility": lambda o, c: None}, "not both"),
    ({"scorers": {"p": FixedScorer([[1.0]])}, "method": "first"}, "does not score candidates"),
    ({"weights": {"p": -1.0}}, "must be finite and >= 0"),
    ({"missing_weight": -1.0}, "missing_weight must be >= 0"),
])
def test_bad_configurations_raise_one_line_errors(kwargs, text):
    with pytest.raises(SelectionError) as exc:
        Decider(FakePolicy(), **kwargs)
    assert text in one_line(exc)


@pytest.mark.parametrize("decider, text", [
    (lambda: Decider(FakePolicy()), "needs scorers or a utility function"),
    (lambda: Decider(None, method="first"), "no policy to sample from"),
    (lambda: Decider(FakePolicy(), utility=lambda o, c: np.zeros(3)), "3 utilities for 8 candidates"),
    (lambda: Decider(FakePolicy(), utility=lambda o, c: np.full(len(c), np.nan)), "NaN/inf"),
    (lambda: Decider(FakePolicy(), utility=lambda o, c: ScoreSet.from_members(np.zeros((1, len(c))))),
     "returned a ScoreSet"),
    (lambda: Decider(FakePolicy(), {"p": FixedScorer(np.zeros((1, 8)))}, weights={"q": 1.0}),
     "have no weight"),
])
def test_bad_decisions_raise_one_line_errors(decider, text):
    with pytest.raises(SelectionError) as exc:
        decider().decide(OBS, 0, 0)
    assert text in one_line(exc)


def test_choose_refuses_empty_candidates_and_mismatched_utilities():
    cands = FakePolicy().sample(OBS, 3, 0)
    with pytest.raises(SelectionError) as exc:
        Decider().choose(cands.subset(np.zeros(3, bool)))
    assert "no candidates" in one_line(exc)
    with pytest.raises(SelectionError) as exc:
        Decider().choose(cands, utilities_=[1.0, 2.0])
    assert "2 utilities for 3 candidates" in one_line(exc)


def test_evaluate_gives_what_best_of_n_ranks_by():
    cands = FakePolicy().sample(OBS, 3, 0)
    scores, u = Decider(None, {"p": FixedScorer([[1.0, 3.0, 2.0]])}).evaluate(OBS, cands)
    np.testing.assert_array_equal(u, [1.0, 3.0, 2.0])
    np.testing.assert_array_equal(scores["p"].mean, u)
    assert Decider(None, utility=lambda o, c: [5.0, 4.0, 3.0]).evaluate(OBS, cands)[0] is None
    assert Decider(None, method="random").evaluate(OBS, cands) == (None, None)

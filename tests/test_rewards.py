"""Score sets, aggregators, the Bradley-Terry loss/metrics and the preference-scorer ensemble."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.rewards import aggregate
from robot_rewards.rewards.base import ActionScorer, RewardInputError, RewardModelError, ScoreSet
from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
from robot_rewards.rewards.preference.io import ScorerCheckpointError, ScorerMismatchError, load_scorer, save_scorer
from robot_rewards.rewards.preference.scorer import (
    PreferencePairs,
    PreferenceScorer,
    bt_loss,
    evaluate_pairs,
    expected_calibration_error,
    learning_curve,
    preference_accuracy,
    train_scorer,
)
from robot_rewards.rewards.synthetic import planted_observation, planted_pairs, random_candidates

TINY = ScorerConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=16, token_dim=8, hidden=64)


def tiny_train_config(**kw) -> TrainScorerConfig:
    base = dict(scorer=TINY, ensemble_size=3, steps=150, batch_size=32, lr=3e-3, val_fraction=0.25, seed=0)
    base.update(kw)
    return TrainScorerConfig(**base)


# -- ScoreSet and aggregation ------------------------------------------------------------------

def test_conservative_aggregators_ignore_member_offsets():
    # Bradley-Terry members are defined up to a constant each: WCO and UWO must pick the same
    # candidate whatever constants the members settled on; the raw forms do not
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 8))
    offsets = np.array([0.0, 30.0, -25.0, 10.0, -40.0])[:, None]
    a, b = ScoreSet.from_members(base), ScoreSet.from_members(base + offsets)
    for f in (aggregate.wco, lambda s: aggregate.uwo(s, 1.0)):
        np.testing.assert_allclose(f(b) - f(a), offsets.mean())  # same utilities, shifted
    np.testing.assert_allclose(aggregate.mean(b) - aggregate.mean(a), offsets.mean())
    # raw WCO is the lowest-offset member's own ranking
    assert aggregate.argmax(aggregate.wco(b, centre=False)) == int(np.argmax(base[4]))


def test_scoreset_and_aggregators_by_hand():
    members = np.array([[1.0, 4.0, 2.0],
                        [3.0, 0.0, 2.0]])
    s = ScoreSet.from_members(members)
    assert (s.k, s.n) == (2, 3)
    np.testing.assert_allclose(s.mean, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(s.std, [1.0, 2.0, 0.0])  # population std over members
    np.testing.assert_allclose(aggregate.mean(s), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(aggregate.wco(s, centre=False), [1.0, 0.0, 2.0])
    # UWO raw: mean - lambda * var, var = [1, 4, 0]
    np.testing.assert_allclose(aggregate.uwo(s, lam=0.5, centre=False), [1.5, 0.0, 2.0])
    np.testing.assert_allclose(aggregate.aggregate(s, "uwo", lam=2.0, centre=False), [0.0, -6.0, 2.0])
    # centred: member means 7/3 and 5/3 removed -> deviations +-4/3, +-5/3, +-1/3
    np.testing.assert_allclose(aggregate.wco(s), np.array([-4, -5, -1]) / 3 + 2.0)
    np.testing.assert_allclose(aggregate.uwo(s, lam=0.9), 2.0 - 0.9 * np.array([16, 25, 1]) / 9)
    # equal means: the conservative aggregators pick the candidate the members agree on
    assert aggregate.argmax(aggregate.wco(s)) == 2
    assert aggregate.argmax(aggregate.uwo(s)) == 2
    assert aggregate.argmax(aggregate.mean(s)) == 0  # first on ties
    single = ScoreSet.from_members([0.5, -1.0])
    assert single.k == 1 and np.all(single.std == 0)
    np.testing.assert_allclose(aggregate.uwo(single, 10.0), aggregate.mean(single))
    with pytest.raises(ValueError, match="unknown aggregator"):
        aggregate.aggregate(s, "max")
    with pytest.raises(RewardInputError):
        aggregate.argmax([])
    np.testing.assert_allclose(s.subset([2, 0]).members, members[:, [2, 0]])


def test_scoreset_rejects_nan():
    with pytest.raises(RewardModelError, match="NaN"):
        ScoreSet.from_members([[1.0, np.nan]])
    with pytest.raises(RewardModelError):
        ScoreSet.from_members(np.zeros((2, 0)))


# -- Bradley-Terry loss and metrics ------------------------------------------------------------

def test_bt_loss_ties_train_to_half_and_cant_tell_is_excluded():
    logits = torch.tensor([0.0, 2.0, 1.0, -3.0], requires_grad=True)
    labels = torch.tensor([0.5, 1.0, float("nan"), 0.0])
    loss = bt_loss(logits, labels)
    expected = (math.log(2.0) + math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-3.0))) / 3
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    g = logits.grad.numpy()
    assert g[0] == pytest.approx(0.0, abs=1e-7)  # a tie at r_a == r_b is already optimal
    assert g[2] == 0.0  # can't tell: no gradient at all
    assert g[1] < 0 and g[3] > 0
    # a tie with r_a > r_b pulls r_a - r_b back toward 0
    l2 = torch.tensor([1.5], requires_grad=True)
    bt_loss(l2, torch.tensor([0.5])).backward()
    assert l2.grad.item() > 0
    # only can't-tell labels: zero loss that still backpropagates
    l3 = torch.tensor([1.0], requires_grad=True)
    z = bt_loss(l3, torch.tensor([float("nan")]))
    z.backward()
    assert float(z.detach()) == 0.0 and l3.grad.item() == 0.0


def test_ece_and_accuracy_by_hand():
    probs = np.array([0.05, 0.15, 0.85, 0.95, 0.9, 0.5, 0.3])
    labels = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.5, np.nan])
    # bins: [0,.1): {0.05 -> y 0}; [.1,.2): {0.15 -> y 1}; [.5,.6): {0.5 -> 0.5};
    # [.8,.9): {0.85 -> 1}; [.9,1]: {0.95 -> 1, 0.9 -> 0}; the NaN label is dropped (n = 6)
    expected = (abs(0.05 - 0) + abs(0.15 - 1) + 0.0 + abs(0.85 - 1) + 2 * abs(0.925 - 0.5)) / 6
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    assert expected_calibration_error([1.0, 0.0], [1.0, 0.0]) == 0.0  # p = 1 falls in the last bin
    assert math.isnan(expected_calibration_error([0.3], [np.nan]))
    # accuracy over decisive labels only: 0.05/0 ok, 0.15/1 wrong, 0.85/1 ok, 0.95/1 ok, 0.9/0 wrong
    assert preference_accuracy(probs, labels) == pytest.approx(3 / 5)


def test_preference_pairs_validation():
    pairs = planted_pairs(10, seed=1, tie_rate=0.2, cant_tell_rate=0.2)
    assert len(pairs) == 10 and pairs.labelled.sum() == np.sum(~np.isnan(pairs.labels))
    sw = pairs.swapped()
    np.testing.assert_array_equal(sw.params_a, pairs.params_b)
    with pytest.raises(RewardInputError, match="labels must be"):
        PreferencePairs("pick_place", pairs.points, pairs.colors, pairs.goals, pairs.params_a, pairs.params_b,
                        np.full(10, 0.7))
    with pytest.raises(RewardInputError, match="params_a"):
        PreferencePairs("pick_place", pairs.points, pairs.colors, pairs.goals, pairs.params_a[:, :6],
                        pairs.params_b, pairs.labels)
    with pytest.raises(RewardInputError, match="goal text is empty"):
        PreferencePairs("pick_place", pairs.points, pairs.colors, [""] * 10, pairs.params_a, pairs.params_b,
                        pairs.labels)
    with pytest.raises(RewardInputError, match="can't tell"):
        train_scorer(planted_pairs(5, cant_tell_rate=1.0), tiny_train_config(steps=1))


# -- the ensemble scorer -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    pairs = planted_pairs(400, seed=0, n_points=64)
    scorer, metrics = train_scorer(pairs, tiny_train_config())
    return scorer, metrics


@pytest.mark.slow
def test_scorer_learns_planted_preference(trained):
    scorer, metrics = trained
    assert isinstance(scorer, ActionScorer)
    assert metrics["n_val"] == 100 and metrics["val_n_decisive"] == 100
    assert metrics["val_accuracy"] > 0.8, metrics
    assert 0.0 <= metrics["val_ece"] < 0.2
    # fresh scenes: the candidate placing nearest the red mark is ranked high
    obs, mark = planted_observation(seed=123)
    cands = random_candidates(32, seed=5)
    s = scorer.score(obs, cands)
    assert (s.k, s.n) == (3, 32)
    dist = np.linalg.norm(cands.params[:, 3:5] - mark, axis=1)
    rho = np.corrcoef(np.argsort(np.argsort(-s.mean)), np.argsort(np.argsort(dist)))[0, 1]
    assert rho > 0.6, rho
    # K distinct members (own seed + own bootstrap)
    assert not np.allclose(s.members[0], s.members[1]) and not np.allclose(s.members[1], s.members[2])
    assert np.all(s.std > 0)
    # held-out accuracy on new scenes
    ev = evaluate_pairs(scorer, planted_pairs(200, seed=99))
    assert ev["accuracy"] > 0.8


@pytest.fixture(scope="module")
def quick():
    """A barely trained 3-member ensemble: enough for batching and checkpoint checks."""
    return train_scorer(planted_pairs(40, seed=2), tiny_train_config(steps=5))


def test_score_batch_matches_single_calls(quick):
    scorer, _ = quick
    reqs = [(planted_observation(seed=s)[0], random_candidates(n, seed=s)) for s, n in ((1, 4), (2, 9), (3, 1))]
    batched = scorer.score_batch(reqs)
    for (obs, cands), b in zip(reqs, batched):
        np.testing.assert_allclose(b.members, scorer.score(obs, cands).members, atol=1e-5)


def test_checkpoint_round_trip_and_errors(quick, tmp_path):
    scorer, metrics = quick
    path = save_scorer(tmp_path / "scorer", scorer, training=metrics)
    meta = json.loads(path.read_text())
    assert meta["ensemble_size"] == 3 and meta["primitive"] == "pick_place" and meta["vocab"] == scorer.vocab
    loaded = load_scorer(tmp_path / "scorer.safetensors", primitive="pick_place")
    obs, _ = planted_observation(seed=7)
    cands = random_candidates(8, seed=7)
    np.testing.assert_array_equal(loaded.score(obs, cands).members, scorer.score(obs, cands).members)
    with pytest.raises(ScorerMismatchError, match="not 'push'"):
        load_scorer(tmp_path / "scorer", primitive="push")
    # another primitive layout
    bad = dict(meta, param_names=meta["param_names"][::-1])
    (tmp_path / "scorer.json").write_text(json.dumps(bad))
    with pytest.raises(ScorerMismatchError, match="layout"):
        load_scorer(tmp_path / "scorer")
    (tmp_path / "scorer.json").write_text(json.dumps(meta))
    # corrupted weights
    st = tmp_path / "scorer.safetensors"
    data = bytearray(st.read_bytes())
    data[-10:] = b"\x00" * 10
    st.write_bytes(bytes(data))
    with pytest.raises(ScorerCheckpointError, match="corrupted"):
        load_scorer(tmp_path / "scorer")
    (tmp_path / "scorer.json").write_text("{ not json")
    with pytest.raises(ScorerCheckpointError, match="not valid JSON"):
        load_scorer(tmp_path / "scorer")
    with pytest.raises(FileNotFoundError):
        load_scorer(tmp_path / "missing")


def test_seeded_training_is_deterministic():
    pairs = planted_pairs(40, seed=3)
    cfg = tiny_train_config(steps=5, ensemble_size=2)
    a, _ = train_scorer(pairs, cfg)
    b, _ = train_scorer(pairs, cfg)
    c, _ = train_scorer(pairs, tiny_train_config(steps=5, ensemble_size=2, seed=1))
    obs, _ = planted_observation(seed=4)
    cands = random_candidates(6, seed=4)
    np.testing.assert_array_equal(a.score(obs, cands).members, b.score(obs, cands).members)
    assert not np.allclose(a.score(obs, cands).members, c.score(obs, cands).members)


def test_scorer_bad_input_errors():
    scorer = PreferenceScorer(TINY, "pick_place", ["<pad>", "<unk>", "red"], k=2)
    obs, _ = planted_observation(seed=0)
    cands = random_candidates(4)
    assert scorer.score(obs, cands).members.shape == (2, 4)
    with pytest.raises(RewardInputError, match="empty candidate set"):
        scorer.score(obs, cands.subset(np.zeros(4, bool)))
    with pytest.raises(RewardInputError, match="goal text is empty"):
        scorer.score(Observation({}, None, "  ", points=obs.points, colors=obs.colors), cands)
    with pytest.raises(RewardInputError, match="no point cloud"):
        scorer.score(Observation({}, None, obs.goal), cands)
    with pytest.raises(RewardInputError, match="no colours"):
        scorer.score(Observation({}, None, obs.goal, points=obs.points), cands)
    with pytest.raises(RewardInputError, match="scores 'pick_place'"):
        scorer.score(obs, random_candidates(3, primitive="push"))
    nan_cands = Candidates("pick_place", np.full((1, 7), np.nan), [0], [False])
    with pytest.raises(RewardInputError, match="NaN"):
        scorer.score(obs, nan_cands)
    with torch.no_grad():  # a broken model: NaN weights -> an error, never a silent zero
        scorer.members[1].head[-1].bias.fill_(float("nan"))
    with pytest.raises(RewardModelError, match="NaN"):
        scorer.score(obs, cands)


def test_learning_curve_writes_png(tmp_path):
    train, val = planted_pairs(40, seed=5), planted_pairs(20, seed=6)
    rows = learning_curve(train, val, sizes=(10, 40, 500), config=tiny_train_config(steps=5, ensemble_size=1),
                          png=tmp_path / "curve.png")
    assert [r["n_labels"] for r in rows] == [10, 40]  # 500 > the 40 training pairs: skipped
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert (tmp_path / "curve.png").stat().st_size > 1000

"""Selection: best-of-N utilities and rankings, feasibility down the ranked list, FK steering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from robot_rewards.core import Candidates, Observation, Primitive, Workspace
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.policy.config import PolicyConfig
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.selection import (
    CLIPPED_REASON,
    FeasibilityChecker,
    FKSteeringConfig,
    SelectionConfig,
    SelectionError,
    method_order,
    rank,
    select,
    utilities,
)
from robot_rewards.selection.fk_steering import (
    FKSteeringError,
    fk_steer,
    log_potentials,
    normalized_weights,
    resample_indices,
    resample_steps,
)

GOAL = "put the red block in the green bowl"
BIG = Workspace((-2.0, -2.0, 0.0), (2.0, 2.0, 1.5))  # larger than the arm's reach
REACHABLE = Primitive.pick_place((0.5, 0.1, 0.02), (0.6, -0.1, 0.034), 0.3)
FAR = Primitive.pick_place((1.5, 0.0, 0.05), (0.6, -0.1, 0.034), 0.3)  # 1.5 m away: no IK


# -- best-of-N utilities ------------------------------------------------------------------------

def ensemble() -> ScoreSet:
    # candidate 1 is over-rated by one member: best mean, worst worst-case. (Six candidates:
    # WCO/UWO centre each member on the set, and the spike moves member 0's centre by 1/6 of it.)
    return ScoreSet.from_members([[1.0, 3.0, 0.2, 0.4, 0.6, 0.5],
                                  [1.0, 0.5, 0.2, 0.4, 0.6, 0.5],
                                  [1.0, 0.8, 0.2, 0.4, 0.6, 0.5]])


def test_mean_wco_uwo_pick_different_winners():
    fam = {"preference": ensemble()}
    w = {"preference": 1.0}
    u_mean = utilities(fam, w, "mean")
    u_wco = utilities(fam, w, "wco")
    u_uwo = utilities(fam, w, "uwo", lam=1.0)
    members = ensemble().members
    np.testing.assert_allclose(u_mean[:2], [1.0, 4.3 / 3])
    centred = members - members.mean(axis=1, keepdims=True)  # member means 0.95, 0.533, 0.583
    np.testing.assert_allclose(u_wco, centred.min(axis=0) + members.mean())
    np.testing.assert_allclose(u_uwo[0], 1.0 - np.var([0.05, 1.0 - 3.2 / 6, 1.0 - 3.5 / 6]))
    assert rank(u_mean)[0] == 1
    assert rank(u_wco)[0] == 0
    assert rank(u_uwo)[0] == 0
    assert rank(utilities(fam, w, "uwo", lam=0.0))[0] == 1  # lambda 0 is the mean


def test_weighted_families_are_z_normalised():
    pref = ScoreSet.from_members([[2.0, 0.0, 1.0, 3.0], [2.0, 2.0, 1.0, 1.0]])  # mean 2, 1, 1, 2
    keyp = np.array([-0.30, -0.10, -0.20, -0.40])  # metres, a different scale entirely
    flat = np.array([5.0, 5.0, 5.0, 5.0])  # no ranking information: contributes zeros
    u = utilities({"preference": pref, "keypoint": keyp, "flat": flat},
                  {"preference": 1.0, "keypoint": 0.5, "flat": 3.0})
    z = lambda v: (v - v.mean()) / v.std()
    expected = 1.0 * z(np.array([2.0, 1.0, 1.0, 2.0])) + 0.5 * z(keyp)
    np.testing.assert_allclose(u, expected)
    assert rank(u) == [0, 3, 1, 2]
    # One family: its utilities as they are, whatever its (positive) weight.
    np.testing.assert_allclose(utilities({"keypoint": keyp}, {"keypoint": 0.5}), keyp)


def test_utilities_refuse_unweighted_or_missing_families():
    s = ensemble()
    with pytest.raises(SelectionError, match=r"\['keypoint'\] have no weight"):
        utilities({"preference": s, "keypoint": s}, {"preference": 1.0})
    with pytest.raises(SelectionError, match=r"\['clip'\] that were not scored"):
        utilities({"preference": s}, {"preference": 1.0, "clip": 1.0})
    with pytest.raises(SelectionError, match="different numbers of candidates"):
        utilities({"a": s, "b": np.zeros(4)}, {"a": 1.0, "b": 1.0})
    with pytest.raises(SelectionError, match="finite and >= 0"):
        utilities({"preference": s}, {"preference": -1.0})
    with pytest.raises(SelectionError, match="all reward family weights are 0"):
        utilities({"preference": s}, {"preference": 0.0})
    with pytest.raises(ValueError, match="unknown aggregator"):
        utilities({"preference": s}, {"preference": 1.0}, "median")


def test_rank_is_descending_stable_and_refuses_nan():
    assert rank([0.1, 0.5, 0.5, -1.0, 0.5]) == [1, 2, 4, 0, 3]
    with pytest.raises(SelectionError, match=r"candidates \[1\] are NaN"):
        rank([0.1, np.nan, 0.3])
    with pytest.raises(SelectionError, match="empty"):
        rank([])


def test_method_order():
    u = np.array([0.1, 0.9, 0.5])
    assert method_order("first", 3) == [0, 1, 2]
    assert method_order("best_of_n", 3, u) == [1, 2, 0]
    assert method_order("fk_steering", 3, u) == [1, 2, 0]
    perm = method_order("random", 5, seed=7)
    assert sorted(perm) == list(range(5)) and perm == method_order("random", 5, seed=7)
    with pytest.raises(SelectionError, match="needs utilities"):
        method_order("best_of_n", 3)


def test_selection_config_is_hydra_friendly_and_validated():
    cfg = OmegaConf.structured(SelectionConfig)
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(
        ["method=fk_steering", "aggregator=wco", "fk.particles=4", "fk.potential=max",
         "weights.keypoint=0.5"]))
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, SelectionConfig) and isinstance(obj.fk, FKSteeringConfig)
    assert obj.weights == {"preference": 1.0, "keypoint": 0.5}
    assert (obj.method, obj.aggregator) == ("fk_steering", "wco")
    assert (obj.fk.particles, obj.fk.potential) == (4, "max")
    with pytest.raises(ValueError, match="unknown selection method"):
        SelectionConfig(method="best")
    with pytest.raises(ValueError, match="unknown aggregator"):
        SelectionConfig(aggregator="median")
    with pytest.raises(ValueError, match="fk.potential"):
        FKSteeringConfig(potential="sum")
    with pytest.raises(ValueError, match="fk.particles"):
        FKSteeringConfig(particles=0)


# -- feasibility --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kin():
    k = ArmKinematics()
    yield k
    k.close()


def test_checker_reasons(kin):
    checker = FeasibilityChecker(Workspace(), kin=kin)
    out = checker.check(Primitive.pick_place((0.9, 0.1, 0.02), (0.6, -0.1, 0.034), 0.3))
    assert out.startswith("outside workspace: pick point [0.9, 0.1, 0.02]")
    # Inside the box (z >= 0) but the fingertips (8.25 mm below the gripper point) hit the table.
    out = checker.check(Primitive.pick_place((0.5, 0.1, 0.002), (0.6, -0.1, 0.034), 0.3))
    assert out.startswith("below table: at 'grasp' [0.5, 0.1, 0.002]") and "-6.2 mm" in out
    out = checker.check(Primitive.push((0.4, 0.0, 0.015), (0.5, 0.0, 0.005)))
    assert out.startswith("below table: at 'push end'")
    # A required clearance makes a normally fine grasp height too low.
    strict = FeasibilityChecker(Workspace(), kin=kin, clearance=0.015)
    assert strict.check(REACHABLE).startswith("below table: at 'grasp'")
    out = FeasibilityChecker(BIG, kin=kin).check(FAR)
    assert out.startswith("unreachable: above pick: no IK solution at [1.5, 0.0, 0.15]")
    out = checker.check(Primitive.pick_place((np.nan, 0.1, 0.02), (0.6, -0.1, 0.034), 0.3))
    assert out == "invalid parameters: non-finite parameters: pick_x"
    with pytest.raises(ValueError, match="7 finite arm joint"):
        FeasibilityChecker(BIG, kin=kin).check(FAR, q_start=np.zeros(6))


def cands(*prims: Primitive, clipped=None) -> Candidates:
    n = len(prims)
    return Candidates(prims[0].name, np.stack([p.params for p in prims]), np.arange(n),
                      np.zeros(n, bool) if clipped is None else clipped)


def test_select_skips_an_infeasible_top_candidate(kin):
    checker = FeasibilityChecker(BIG, kin=kin)
    c = cands(REACHABLE, FAR, Primitive.pick_place((0.45, -0.1, 0.02), (0.55, 0.1, 0.034), 0.0))
    sel = select(c, [0.5, 0.9, 0.1], checker)
    assert sel.feasible and sel.index == 0 and sel.rank == 1
    assert sel.order == [1, 0, 2]
    assert [i for i, _ in sel.rejected] == [1] and sel.rejected[0][1].startswith("unreachable:")
    assert "chose candidate 0 (rank 2 of 3, utility 0.5) after rejecting 1" in sel.summary()
    # Without checks the top candidate is taken as it is.
    assert select(c, [0.5, 0.9, 0.1], None).index == 1


def test_select_none_feasible_records_every_reason(kin):
    checker = FeasibilityChecker(Workspace(), kin=kin)
    c = cands(REACHABLE,  # flagged clipped by the sampler
              Primitive.pick_place((0.9, 0.1, 0.02), (0.6, -0.1, 0.034), 0.3),
              Primitive.pick_place((0.5, 0.1, 0.001), (0.6, -0.1, 0.034), 0.3),
              clipped=[True, False, False])
    sel = select(c, [0.2, 0.3, 0.1], checker)
    assert not sel.feasible and sel.index is None and sel.rank is None
    assert [i for i, _ in sel.rejected] == [1, 0, 2]
    reasons = dict(sel.rejected)
    assert reasons[0] == CLIPPED_REASON
    assert reasons[1].startswith("outside workspace:") and reasons[2].startswith("below table:")
    text = sel.summary()
    assert text.startswith("no feasible candidate among 3: not executing")
    assert "rejected 0: clipped into the workspace by the sampler" in text


def test_select_clipped_candidate_rejected_then_next(kin):
    checker = FeasibilityChecker(BIG, kin=kin)
    c = cands(REACHABLE, REACHABLE, clipped=[True, False])
    sel = select(c, [1.0, 0.0], checker)
    assert sel.index == 1 and sel.rejected == [(0, CLIPPED_REASON)]


def test_select_validates_inputs(kin):
    checker = FeasibilityChecker(Workspace(), kin=kin)
    c = cands(REACHABLE, REACHABLE)
    with pytest.raises(SelectionError, match="3 utilities for 2 candidates"):
        select(c, [1.0, 2.0, 3.0], checker)
    with pytest.raises(SelectionError, match="outside 0..1"):
        select(c, [1.0, 2.0], checker, order=[2])
    with pytest.raises(SelectionError, match="more than once"):
        select(c, [1.0, 2.0], checker, order=[0, 0])
    with pytest.raises(SelectionError, match="NaN"):
        select(c, [1.0, np.nan], checker)


# -- FK steering --------------------------------------------------------------------------------

def demo_actions(n=32, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pick = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.02)]
    place = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.034)]
    return np.c_[pick, place, rng.uniform(-np.pi, np.pi, n)]


@pytest.fixture(scope="module")
def policy() -> DiffusionPolicy:
    torch.manual_seed(0)
    cfg = PolicyConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=32, token_dim=8,
                       max_goal_tokens=12, width=64, blocks=2, time_dim=16)
    norm = ActionNormalizer.fit("pick_place", demo_actions())
    return DiffusionPolicy(cfg, "pick_place", norm, build_vocab([GOAL])).eval()


@pytest.fixture(scope="module")
def obs() -> Observation:
    rng = np.random.default_rng(0)
    pts = rng.uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (256, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    return Observation(frames={}, proprio=None, goal=GOAL, points=pts, colors=cols)


def pick_x(c: Candidates) -> np.ndarray:
    return c.params[:, 0]


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_fk_without_resampling_is_plain_sampling(policy, obs, eta):
    res = fk_steer(policy, obs, pick_x, FKSteeringConfig(particles=6, resample_every=0, eta=eta), seed=3)
    ref = policy.sample(obs, 6, seed=3, eta=eta)
    np.testing.assert_array_equal(res.candidates.params, ref.params)
    np.testing.assert_array_equal(res.candidates.seeds, ref.seeds)
    np.testing.assert_array_equal(res.rewards, ref.params[:, 0])
    assert res.nfe == 6 * policy.config.inference_steps and res.reward_calls == 1
    assert res.resampled_at == [] and res.ancestors.tolist() == list(range(6))
    assert res.order()[0] == res.best() == int(np.argmax(ref.params[:, 0]))


def test_fk_steering_beats_best_of_n_at_equal_nfe(policy, obs):
    plain, steered = [], []
    for seed in range(4):
        p = fk_steer(policy, obs, pick_x, FKSteeringConfig(particles=16, resample_every=0), seed=seed)
        steer = FKSteeringConfig(particles=16, resample_every=1, lam=10.0)
        s = fk_steer(policy, obs, pick_x, steer, seed=seed)
        assert s.nfe == p.nfe == 16 * 10
        assert s.resampled_at == list(range(9)) and s.reward_calls == 10
        plain.append(p.rewards.mean())
        steered.append(s.rewards.mean())
    plain, steered = np.array(plain), np.array(steered)
    assert np.all(steered > plain)
    assert steered.mean() - plain.mean() > 0.02  # metres of pick x, averaged over seeds
    assert steered.mean() > plain.mean() + 0.5 * plain.std()


def test_fk_steering_is_deterministic(policy, obs):
    cfg = FKSteeringConfig(particles=8, resample_every=2, potential="immediate", resampling="multinomial")
    a = fk_steer(policy, obs, pick_x, cfg, seed=5)
    b = fk_steer(policy, obs, pick_x, cfg, seed=5)
    c = fk_steer(policy, obs, pick_x, cfg, seed=6)
    np.testing.assert_array_equal(a.candidates.params, b.candidates.params)
    np.testing.assert_array_equal(a.ancestors, b.ancestors)
    assert a.ess == b.ess and a.resampled_at == [1, 3, 5, 7]
    assert not np.array_equal(a.candidates.params, c.candidates.params)


def test_fk_pieces():
    assert resample_steps(10, 2) == [1, 3, 5, 7]
    assert resample_steps(10, 1) == list(range(9))
    assert resample_steps(10, 0) == [] and resample_steps(3, 5) == []
    r, prev = np.array([1.0, 2.0]), np.array([0.5, 2.5])
    np.testing.assert_allclose(log_potentials("immediate", 2.0, r, prev, r), [2.0, 4.0])
    np.testing.assert_allclose(log_potentials("difference", 2.0, r, prev, r), [1.0, -1.0])
    np.testing.assert_allclose(log_potentials("max", 2.0, r, prev, np.array([3.0, 2.0])), [6.0, 4.0])
    w = normalized_weights(np.array([1000.0, 1000.0 + np.log(3.0)]))  # no overflow
    np.testing.assert_allclose(w, [0.25, 0.75])
    rng = np.random.default_rng(0)
    assert resample_indices(np.array([0.0, 1.0, 0.0]), rng).tolist() == [1, 1, 1]
    idx = resample_indices(np.array([0.25, 0.25, 0.5, 0.0]), rng)  # systematic: exact counts
    assert np.bincount(idx, minlength=4).tolist() == [1, 1, 2, 0]


def test_fk_refuses_bad_rewards(policy, obs):
    cfg = FKSteeringConfig(particles=4, resample_every=1)
    with pytest.raises(FKSteeringError, match="must return 4 rewards"):
        fk_steer(policy, obs, lambda c: np.zeros(3), cfg)
    with pytest.raises(FKSteeringError, match="NaN/inf rewards for particles \\[2\\]"):
        fk_steer(policy, obs, lambda c: np.where(np.arange(len(c)) == 2, np.nan, 0.0), cfg)
    with pytest.raises(FKSteeringError, match="aggregate it"):
        fk_steer(policy, obs, lambda c: ScoreSet.from_members(np.zeros((2, len(c)))), cfg)

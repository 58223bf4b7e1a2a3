"""DeformPAM's implicit reward: Diffusion-DPO tuning, the scorer, checkpoints and the command.

A toy world: tiny policies over pick_place, random clouds, and a preference that a labeller
could hold in any scene ("pick further to the left": smaller pick x).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from robot_rewards.core import Candidates, Observation
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.policy.checkpoint import save_policy
from robot_rewards.policy.config import PolicyConfig, policy_perception
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.rewards.base import ActionScorer, RewardInputError
from robot_rewards.rewards.implicit.config import TrainImplicitConfig
from robot_rewards.rewards.implicit.dpo import decisive, train_dpo
from robot_rewards.rewards.implicit.reward import (
    ImplicitRewardScorer,
    ReferenceMismatchError,
    evaluate_implicit,
    load_implicit_scorer,
    save_implicit,
)
from robot_rewards.rewards.preference.scorer import PreferencePairs

GOAL = "put the red block in the green bowl"
POINTS = 48


def demo_actions(n: int, rng: np.random.Generator) -> np.ndarray:
    pick = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.02)]
    place = np.c_[rng.uniform(0.4, 0.6, (n, 2)), np.full(n, 0.034)]
    return np.c_[pick, place, rng.uniform(-1.5, 1.5, n)]


def make_policy(seed: int = 0, primitive: str = "pick_place", actions=None) -> DiffusionPolicy:
    torch.manual_seed(seed)
    config = PolicyConfig(point_channels=[8, 16], attention_heads=1, obs_dim=16, goal_dim=8, token_dim=4,
                          max_goal_tokens=8, word_attention=False, width=32, blocks=1, time_dim=8, min_points=8)
    if actions is None:
        actions = demo_actions(64, np.random.default_rng(0))
    return DiffusionPolicy(config, primitive, ActionNormalizer.fit(primitive, actions), build_vocab([GOAL])).eval()


def cloud(rng: np.random.Generator):
    pts = rng.uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (POINTS, 3)).astype(np.float32)
    return pts, rng.integers(0, 256, (POINTS, 3), dtype=np.uint8)


def toy_pairs(n: int, seed: int) -> PreferencePairs:
    """n pairs in n scenes; A wins when its pick is further left (smaller x)."""
    rng = np.random.default_rng(seed)
    clouds = [cloud(rng) for _ in range(n)]
    a, b = demo_actions(n, rng), demo_actions(n, rng)
    return PreferencePairs("pick_place", np.stack([c[0] for c in clouds]), np.stack([c[1] for c in clouds]),
                           [GOAL] * n, a, b, (a[:, 0] < b[:, 0]).astype(float))


def toy_obs(seed: int = 0) -> Observation:
    pts, cols = cloud(np.random.default_rng(seed))
    return Observation(frames={}, proprio=None, goal=GOAL, points=pts, colors=cols)


def toy_candidates(n: int = 5, seed: int = 1) -> Candidates:
    return Candidates("pick_place", demo_actions(n, np.random.default_rng(seed)), np.arange(n), np.zeros(n, bool))


FAST = TrainImplicitConfig(beta=0.5, steps=80, batch_size=32, noise_draws=4, lr=1e-3, score_draws=16,
                           val_fraction=0.0, seed=0)


@pytest.fixture(scope="module")
def trained():
    """One DPO run shared by the tests that need a tuned policy (the expensive part)."""
    torch.set_num_threads(1)
    reference = make_policy(0)
    val = toy_pairs(120, seed=2)
    scorer, metrics = train_dpo(reference, toy_pairs(160, seed=1), FAST, val_pairs=val)
    return reference, scorer, metrics, val


def test_dpo_raises_heldout_pair_accuracy_above_chance(trained):
    reference, scorer, metrics, val = trained
    assert metrics["loss_end"] < metrics["loss_start"] < 0.75  # starts at log 2 = 0.693
    assert metrics["val_accuracy"] >= 0.8 and metrics["train_accuracy"] >= 0.8  # chance: 0.5
    # the reference is untouched: tuned == reference scores everything 0, i.e. chance
    untouched = ImplicitRewardScorer(reference, copy.deepcopy(reference), 2.0, 16)
    assert evaluate_implicit(untouched, val)["mean_abs_margin"] == 0.0
    # seeded: the same run gives the same weights
    again, m2 = train_dpo(make_policy(0), toy_pairs(160, seed=1), FAST, val_pairs=val)
    assert m2["val_accuracy"] == metrics["val_accuracy"]
    for p, q in zip(scorer.tuned.parameters(), again.tuned.parameters()):
        assert torch.equal(p, q)


def test_ties_and_cant_tell_are_excluded():
    pairs = toy_pairs(6, seed=3)
    pairs.labels[:] = [1, 0, 0.5, np.nan, 1, 0.5]
    kept, win, lose = decisive(pairs)
    assert len(kept) == 3
    np.testing.assert_array_equal(win[1], pairs.params_b[1])
    np.testing.assert_array_equal(lose[1], pairs.params_a[1])
    pairs.labels[:] = 0.5
    with pytest.raises(RewardInputError, match="no decisive pairs"):
        train_dpo(make_policy(0), pairs, FAST)


def test_reward_is_exactly_zero_when_tuned_is_the_reference():
    ref = make_policy(0)
    obs, cands = toy_obs(), toy_candidates(7)
    for tuned in (ref, copy.deepcopy(ref)):
        s = ImplicitRewardScorer(tuned, ref, beta=5.0, noise_draws=8, members=2).score(obs, cands)
        assert s.members.shape == (2, 7)
        assert np.all(s.members == 0.0)


def test_scoring_is_deterministic_and_batched_equals_one_at_a_time(trained):
    reference, scorer, _, _ = trained
    assert isinstance(scorer, ActionScorer)
    obs, obs2, cands = toy_obs(0), toy_obs(5), toy_candidates(6)
    s = scorer.score(obs, cands)
    assert s.members.shape == (1, 6) and np.ptp(s.mean) > 0
    same = ImplicitRewardScorer(scorer.tuned, reference, scorer.beta, scorer.noise_draws, scorer.seed)
    np.testing.assert_array_equal(same.score(obs, cands).mean, s.mean)  # same seed, same scores
    other = ImplicitRewardScorer(scorer.tuned, reference, scorer.beta, scorer.noise_draws, seed=1)
    assert not np.array_equal(other.score(obs, cands).mean, s.mean)
    single = np.array([scorer.score(obs, cands.subset([i])).mean[0] for i in range(len(cands))])
    np.testing.assert_allclose(single, s.mean, rtol=1e-5, atol=1e-6)
    both = scorer.score_batch([(obs, cands), (obs2, cands.subset([2, 0]))])
    np.testing.assert_allclose(both[0].mean, s.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[1].mean, scorer.score(obs2, cands).mean[[2, 0]], rtol=1e-5, atol=1e-6)
    # members = groups of the draws; their mean is the one-member score
    grouped = ImplicitRewardScorer(scorer.tuned, reference, scorer.beta, scorer.noise_draws, scorer.seed, members=4)
    g = grouped.score(obs, cands)
    assert g.members.shape == (4, 6)
    np.testing.assert_allclose(g.mean, s.mean, rtol=1e-5, atol=1e-6)


def test_mismatched_reference_is_refused():
    ref = make_policy(0)
    push = make_policy(0, "push", np.random.default_rng(0).uniform(0.4, 0.6, (32, 6)))
    with pytest.raises(ReferenceMismatchError, match="'push'"):
        ImplicitRewardScorer(push, ref)
    other_norm = make_policy(0, actions=demo_actions(64, np.random.default_rng(9)))
    with pytest.raises(ReferenceMismatchError, match="normalise"):
        ImplicitRewardScorer(other_norm, ref)
    with pytest.raises(RewardInputError, match="pick_place"):
        ImplicitRewardScorer(ref, ref).score(toy_obs(), Candidates("push", np.zeros((2, 6)), [0, 1], [False, False]))


def test_checkpoint_round_trip_and_reference_checks(trained, tmp_path):
    from robot_rewards.rewards.config import HostConfig
    from robot_rewards.rewards.host import RewardHost

    reference, scorer, _, _ = trained
    perception = policy_perception()
    ref_path = save_policy(tmp_path / "ref", reference, None, "place_block", perception)
    path = save_implicit(tmp_path / "out" / "implicit", scorer, "place_block", perception, ref_path)
    meta = json.loads(path.read_text())
    assert meta["beta"] == scorer.beta and meta["noise_draws"] == scorer.noise_draws
    assert (tmp_path / "out" / "implicit_tuned.json").is_file()  # the tuned policy, a policy checkpoint
    obs, cands = toy_obs(), toy_candidates(4)
    loaded = load_implicit_scorer(tmp_path / "out")
    np.testing.assert_array_equal(loaded.score(obs, cands).members, scorer.score(obs, cands).members)
    with RewardHost.from_config(HostConfig(scorers={"implicit": str(path)})) as host:  # by config
        np.testing.assert_array_equal(host.score(obs, cands).mean, scorer.score(obs, cands).mean)
    # another task's reference, or a reference with other weights, is refused
    save_policy(tmp_path / "rope", reference, None, "align_rope", perception)
    with pytest.raises(ReferenceMismatchError):
        load_implicit_scorer(path, reference=tmp_path / "rope.json")
    save_policy(tmp_path / "ref", make_policy(3), None, "place_block", perception)
    with pytest.raises(ReferenceMismatchError, match="weights differ"):
        load_implicit_scorer(path)


def test_low_noise_draws_stay_in_their_share_of_the_schedule_and_are_saved(trained, tmp_path):
    """DeformPAM scores with the lowest-noise 10% of timesteps: draws stratified over them only;
    the share is saved with the checkpoint and scores differ from draws over the whole schedule."""
    from robot_rewards.rewards.implicit.reward import NoiseDraws

    d = NoiseDraws.make(0, 100, 7, 100, t_fraction=0.1)
    assert int(d.t.max()) <= 9 and len(set(d.t.tolist())) == 10  # 10 draws per timestep 0..9
    with pytest.raises(ValueError, match="t_fraction"):
        NoiseDraws.make(0, 4, 7, 100, t_fraction=0.0)
    reference, scorer, _, _ = trained
    low = ImplicitRewardScorer(scorer.tuned, scorer.reference, scorer.beta, 20, 0, 1, t_fraction=0.1)
    obs, cands = toy_obs(), toy_candidates(4)
    assert not np.allclose(low.score(obs, cands).members, scorer.score(obs, cands).members)
    ref_path = save_policy(tmp_path / "ref", reference, None, "place_block", policy_perception())
    path = save_implicit(tmp_path / "low", low, "place_block", policy_perception(), ref_path)
    loaded = load_implicit_scorer(path)
    assert loaded.t_fraction == 0.1
    np.testing.assert_array_equal(loaded.score(obs, cands).members, low.score(obs, cands).members)


def test_train_implicit_command_on_a_store(tmp_path):
    from robot_rewards.cli import main
    from robot_rewards.preferences.store import PreferenceStore

    policy_path = save_policy(tmp_path / "policy", make_policy(0), None, "place_block", policy_perception())
    rng = np.random.default_rng(4)
    with PreferenceStore(tmp_path / "store") as store:
        sid = store.start_session("teacher", "place_block")
        for _ in range(6):
            pts, cols = cloud(rng)
            c = Candidates("pick_place", demo_actions(4, rng), np.arange(4), np.zeros(4, bool))
            qid = store.add_query(sid, "place_block", GOAL, c, pts, cols)
            order = list(np.argsort(c.params[:, 0]))
            store.add_ranking(qid, order, "teacher")
    out = tmp_path / "run"
    main(["train-implicit", f"store={tmp_path / 'store'}", f"policy={policy_path}", "train.steps=5",
          "train.score_draws=4", f"output_dir={out}"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train_decisive"] > 0 and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert load_implicit_scorer(out).noise_draws == 4

"""Picks on the cloud (`policy.pick_on_cloud`): inpainting, seeded draws, learning a pick head,
checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rewards.core import Observation
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.policy.checkpoint import load_policy, save_policy
from robot_rewards.policy.config import PolicyConfig, policy_perception
from robot_rewards.policy.model import DiffusionPolicy, PolicyBatch
from robot_rewards.policy.pick import draw_points, pick_targets
from robot_rewards.policy.schedule import NoiseSchedule, row_generators

GOAL = "pick the red point"


def tiny(**kw) -> PolicyConfig:
    return PolicyConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=32, token_dim=8,
                        max_goal_tokens=8, width=64, blocks=2, time_dim=16, pick_on_cloud=True, **kw)


def scene(rng: np.random.Generator, n: int = 128) -> tuple[np.ndarray, np.ndarray, int]:
    """Random grey points and one red point (the one to pick)."""
    pts = rng.uniform([0.35, -0.25, 0.0], [0.7, 0.25, 0.03], (n, 3)).astype(np.float32)
    cols = np.full((n, 3), 128, np.uint8)
    red = int(rng.integers(n))
    cols[red] = (230, 20, 20)
    return pts, cols, red


def make_policy(seed: int = 0, **kw) -> DiffusionPolicy:
    rng = np.random.default_rng(0)
    acts = np.c_[rng.uniform(0.35, 0.7, (64, 1)), rng.uniform(-0.25, 0.25, (64, 1)), np.full(64, 0.01),
                 rng.uniform(0.35, 0.7, (64, 1)), rng.uniform(-0.25, 0.25, (64, 1)), np.full(64, 0.01),
                 rng.uniform(-np.pi, np.pi, 64)]
    torch.manual_seed(seed)
    return DiffusionPolicy(tiny(**kw), "pick_place", ActionNormalizer.fit("pick_place", acts), build_vocab([GOAL]))


def test_given_entries_stay_clean_at_every_step_and_the_rest_is_sampled():
    sched = NoiseSchedule(50)
    gens = row_generators([1, 2, 3])
    values = torch.tensor([[0.5, -0.25, 0.0]] * 3)
    mask = torch.tensor([True, True, False])
    seen = []

    def eps_fn(x, t):
        seen.append(x[:, :2].clone())
        return torch.zeros_like(x)

    x = sched.sample(eps_fn, gens, 3, "cpu", steps=5, known=(values, mask))
    assert torch.equal(x[:, :2], values[:, :2])
    assert not torch.allclose(x[:, 2], torch.zeros(3))  # the free entry came from the sampler
    # the network sees the given entries clean at every step (it was trained so)
    assert all(torch.equal(v, values[:, :2]) for v in seen)


def test_pick_draws_are_seeded_per_candidate():
    logits = torch.randn(200)
    a = draw_points(logits, row_generators([7, 8, 9]))
    b = draw_points(logits, row_generators([9]))
    assert a[2] == b[0]
    assert torch.equal(a, draw_points(logits, row_generators([7, 8, 9])))
    # a very peaked head always picks its peak
    peaked = torch.full((50,), -30.0)
    peaked[13] = 30.0
    assert set(draw_points(peaked, row_generators(range(20))).tolist()) == {13}


def test_pick_targets_put_the_mass_on_the_points_nearest_the_pick():
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.2, 0.0, 0.0]]])
    w = pick_targets(pts, torch.tensor([[0.002, 0.0, 0.0]]), 0.01)
    assert torch.isclose(w.sum(), torch.tensor(1.0)) and w[0, 2] < 1e-10 and w[0, 0] > w[0, 1]
    # off the cloud: the nearest point still gets the most
    w = pick_targets(pts, torch.tensor([[0.5, 0.0, 0.0]]), 0.01)
    assert int(w.argmax()) == 2


@pytest.mark.parametrize("place", [False, True])
def test_sampled_picks_are_cloud_points_and_the_seed_fixes_them(tmp_path, place):
    policy = make_policy(place_on_cloud=place).eval()
    pts, cols, _ = scene(np.random.default_rng(3))
    obs = Observation(frames={}, proprio=None, goal=GOAL, points=pts, colors=cols)
    c = policy.sample(obs, 6, seed=4, steps=5)
    d = np.linalg.norm(c.params[:, None, :2] - pts[None, :, :2], axis=-1).min(1)
    assert np.all(d < 1e-5)
    d = np.linalg.norm(c.params[:, None, 3:5] - pts[None, :, :2], axis=-1).min(1)
    assert np.all(d < 1e-5) == place  # the place is a cloud point only with a place head
    again = policy.sample(obs, 1, seeds=[int(c.seeds[3])], steps=5)
    np.testing.assert_allclose(again.params[0], c.params[3], atol=1e-4)  # batch-size float noise
    # the head travels in the checkpoint
    path = save_policy(tmp_path / "p", policy, None, "align_rope", policy_perception())
    loaded = load_policy(path).policy
    np.testing.assert_allclose(loaded.sample(obs, 6, seed=4, steps=5).params, c.params, atol=1e-6)


def test_the_pick_head_learns_to_pick_the_named_point():
    """Learning improves: trained on scenes whose pick is the red point, the head's most likely
    point on new scenes is the red one far more often than chance (1/128)."""
    policy = make_policy(pick_loss_weight=1.0)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    ids = policy.goal_inputs([GOAL] * 16)

    def batch():
        pts, cols, acts = [], [], []
        for _ in range(16):
            p, c, red = scene(rng)
            pts.append(p)
            cols.append(c)
            acts.append([*p[red], *rng.uniform([0.35, -0.25, 0.01], [0.7, 0.25, 0.01]), 0.0])
        x = policy.normalizer.encode(np.asarray(acts, np.float64)).astype(np.float32)
        return PolicyBatch(torch.from_numpy(np.stack(pts)), torch.from_numpy(np.stack(cols)), ids,
                           torch.from_numpy(x))

    def hits(n=40):
        held = np.random.default_rng(99)
        ok = 0
        with torch.no_grad():
            for _ in range(n):
                p, c, red = scene(held)
                _, per_point = policy.encode_with_picks(torch.from_numpy(p)[None], torch.from_numpy(c)[None], ids[:1])
                ok += int(policy.pick_logits(per_point)[0].argmax()) == red
        return ok / n

    before = hits()
    for _ in range(150):
        loss = policy.loss(batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = hits()
    assert before < 0.2 and after >= 0.8, (before, after)


def test_methods_that_denoise_every_entry_refuse_a_policy_with_heads():
    from robot_rewards.policy.model import PolicyInputError
    from robot_rewards.selection.fk_steering import fk_steer

    policy = make_policy().eval()
    pts, cols, _ = scene(np.random.default_rng(3))
    obs = Observation(frames={}, proprio=None, goal=GOAL, points=pts, colors=cols)
    with pytest.raises(PolicyInputError, match="picks on the cloud"):
        fk_steer(policy, obs, lambda c: np.zeros(len(c)))

"""Smoke test of `bench selection` (best-of-K vs FK steering): one rendered scene, a tiny
random-weight policy and a toy reward instead of the shipped checkpoints. No timing assertions."""

from __future__ import annotations

import json

import numpy as np
import torch

from robot_rewards.bench.selection import bench_selection, methods_of
from robot_rewards.core.primitives import Workspace
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.policy.config import PolicyConfig
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.selection.bench_config import BenchSelectionConfig, FKSetting


def tiny_policy() -> DiffusionPolicy:
    torch.manual_seed(1)
    ws = Workspace()
    box = np.array([[*ws.low, *ws.low, -np.pi], [*ws.high, *ws.high, np.pi]])
    cfg = PolicyConfig(point_channels=[8, 16], attention_heads=1, obs_dim=16, goal_dim=16, token_dim=8,
                       max_goal_tokens=12, width=32, blocks=1, time_dim=8, inference_steps=4)
    vocab = build_vocab([f"put the {c} block in the {d} bowl" for c in
                         ("red", "green", "blue", "yellow", "orange", "purple")
                         for d in ("red", "green", "blue", "yellow", "orange", "purple")])
    return DiffusionPolicy(cfg, "pick_place", ActionNormalizer.fit("pick_place", box), vocab).eval()


def low_pick(obs):
    """Toy reward: prefer a low pick point (any function of the candidates will do)."""
    return lambda cands: -cands.params[:, 2]


def test_bench_selection_smoke(tmp_path):
    cfg = BenchSelectionConfig(scenes=1, particles=[3], best_of_k_eta=[1.0],
                               fk=[FKSetting(resample_every=1, lam=5.0, potential="difference")],
                               device="cpu", progress=False, output_dir=str(tmp_path))
    assert [m.name for m in methods_of(cfg)] == ["best-of-K eta=1", "FK every=1 lam=5 difference"]
    m = bench_selection(cfg, policy=tiny_policy(), reward_for=low_pick)

    bok, fk = m["methods"]
    for s in (bok, fk):
        assert s["k"] == 3 and s["scenes"] == 1
        assert s["nfe"] == 3 * 4  # equal denoiser evaluations: K particles x steps
        assert np.isfinite(s["scorer_reward_mean"]) and np.isfinite(s["error_mean_m"])
        assert s["success_rate"] in (0.0, 1.0) and s["ms_per_decision_mean"] > 0
    assert bok["reward_calls"] == 1 and bok["ess_mean"] is None
    assert fk["reward_calls"] == 4 and 1.0 <= fk["ess_mean"] <= 3.0  # 3 resamplings + the final scoring
    assert fk["error_vs_baseline_m"]["baseline"] == "best-of-K eta=1"
    assert 1 <= m["rollouts"] <= 2  # one what-if rollout per method (fewer when both chose the same)

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["command"] == "bench selection" and len(saved["methods"]) == 2

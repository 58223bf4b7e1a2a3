"""RewardHost: concurrent callers get the same scores as direct calls; micro-batching; errors stay local."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.rewards.host import HostClosedError, RewardHost
from robot_rewards.rewards.keypoints.reward import FixedKeypointSource, Keypoints, KeypointScorer
from robot_rewards.rewards.preference.config import ScorerConfig
from robot_rewards.rewards.preference.scorer import PreferenceScorer
from robot_rewards.rewards.synthetic import planted_observation, random_candidates


def _scorer():
    torch.manual_seed(0)
    cfg = ScorerConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=16, token_dim=8, hidden=64)
    return PreferenceScorer(cfg, "pick_place", ["<pad>", "<unk>", "block", "red", "mark"], k=3).eval()


def test_concurrent_calls_match_direct_calls():
    scorer = _scorer()
    kp = KeypointScorer(FixedKeypointSource(Keypoints([[0.5, 0, 0.02]], [[0.6, 0.1, 0.02]])))
    requests = [(planted_observation(seed=s)[0], random_candidates(1 + s % 7, seed=s)) for s in range(24)]
    direct = [scorer.score(o, c) for o, c in requests]
    results: dict[int, object] = {}
    with RewardHost({"pref": scorer, "kp": kp}, max_batch=8, max_wait_ms=20.0) as host:
        barrier = threading.Barrier(6)

        def client(t: int):
            barrier.wait()
            for i in range(t, len(requests), 6):
                results[i] = host.score(*requests[i], model="pref", timeout=30)
                results[100 + i] = host.score(*requests[i], model="kp", timeout=30)

        threads = [threading.Thread(target=client, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        stats = host.latency_stats()
    for i, (o, c) in enumerate(requests):
        np.testing.assert_allclose(results[i].members, direct[i].members, atol=1e-5)
        np.testing.assert_array_equal(results[100 + i].members, kp.score(o, c).members)
    assert stats["requests"] == 48
    assert stats["p95_ms"] >= stats["p50_ms"] > 0
    assert stats["mean_batch"] > 1.0  # concurrent requests were batched together


def test_bad_request_fails_alone_and_closed_host_refuses():
    scorer = _scorer()
    good = planted_observation(seed=1)[0], random_candidates(5, seed=1)
    no_cloud = Observation({}, None, "put the block on the red mark"), random_candidates(5, seed=2)
    host = RewardHost(scorer, max_batch=4, max_wait_ms=50.0)
    f_bad = host.submit(*no_cloud)
    f_good = host.submit(*good)
    with pytest.raises(RewardInputError, match="no point cloud"):
        f_bad.result(30)
    np.testing.assert_allclose(f_good.result(30).members, scorer.score(*good).members, atol=1e-5)
    with pytest.raises(RewardInputError, match="empty candidate set"):
        host.submit(good[0], good[1].subset(np.zeros(5, bool)))
    with pytest.raises(KeyError, match="unknown reward model"):
        host.submit(*good, model="clip")
    host.close()
    with pytest.raises(HostClosedError):
        host.score(*good)

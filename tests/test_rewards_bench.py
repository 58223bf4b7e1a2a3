"""`bench rewards` runs end to end at a tiny size and writes metrics.json (numbers are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_rewards.bench.rewards import bench_rewards
from robot_rewards.rewards.config import BenchRewardsConfig

SHIPPED_CLIP = Path(__file__).resolve().parents[1] / "checkpoints" / "clip_tabletop.json"


def test_bench_rewards_smoke(tmp_path, capsys):
    cfg = BenchRewardsConfig(n=[2, 4], ensemble_size=2, n_points=128, repeats=1, warmup=1, clients=2,
                             requests_per_client=2, host_n=2, device="cpu", torch_threads=1,
                             output_dir=str(tmp_path))
    metrics = bench_rewards(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["latency_ms"]) == {"2", "4"} and saved["host_latency"]["requests"] == 4
    assert metrics["host_requests_per_s"] > 0
    assert "host / direct throughput" in capsys.readouterr().out


def test_bench_rewards_clip_part(tmp_path, capsys):
    """The CLIP part runs on the shipped checkpoint (batched reward vs the naive one-image loop)."""
    pytest.importorskip("open_clip")
    from robot_rewards.rewards.clip_config import BenchClipConfig, BenchRewardsWithClipConfig

    cfg = BenchRewardsWithClipConfig(n=[2], ensemble_size=1, n_points=128, repeats=1, warmup=1, clients=1,
                                     requests_per_client=1, host_n=2, device="cpu", torch_threads=1,
                                     output_dir=str(tmp_path),
                                     clip=BenchClipConfig(model=str(SHIPPED_CLIP), images=4,
                                                          batch_size=2, repeats=1))
    metrics = bench_rewards(cfg)
    assert metrics["clip"]["images"] == 4 and metrics["clip"]["speedup"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["clip"]["batch_size"] == 2
    assert "CLIP batched / naive throughput" in capsys.readouterr().out

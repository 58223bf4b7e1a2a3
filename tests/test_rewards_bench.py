"""`bench rewards` runs end to end at a tiny size and writes metrics.json (numbers are not asserted)."""

from __future__ import annotations

import json


from robot_rewards.bench.rewards import bench_rewards
from robot_rewards.rewards.config import BenchRewardsConfig


def test_bench_rewards_smoke(tmp_path, capsys):
    cfg = BenchRewardsConfig(n=[2, 4], ensemble_size=2, n_points=128, repeats=1, warmup=1, clients=2,
                             requests_per_client=2, host_n=2, device="cpu", torch_threads=1,
                             output_dir=str(tmp_path))
    metrics = bench_rewards(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["latency_ms"]) == {"2", "4"} and saved["host_latency"]["requests"] == 4
    assert metrics["host_requests_per_s"] > 0
    assert "host / direct throughput" in capsys.readouterr().out

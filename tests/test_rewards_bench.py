"""`bench rewards` runs end to end at a tiny size and writes metrics.json (numbers are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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
    from robot_rewards.rewards.clip.config import BenchClipConfig, BenchRewardsWithClipConfig

    cfg = BenchRewardsWithClipConfig(n=[2], ensemble_size=1, n_points=128, repeats=1, warmup=1, clients=1,
                                     requests_per_client=1, host_n=2, device="cpu", torch_threads=1,
                                     output_dir=str(tmp_path),
                                     clip=BenchClipConfig(model=str(SHIPPED_CLIP), images=4,
                                                          batch_size=2, repeats=1))
    metrics = bench_rewards(cfg)
    assert metrics["clip"]["images"] == 4 and metrics["clip"]["speedup"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["clip"]["batch_size"] == 2
    assert "CLIP batched / naive throughput" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_gpu_runs_every_part_on_the_cpu_and_writes_one_metrics_file(tmp_path):
    """benchmarks/gpu.sh's command, on the CPU with tiny sizes: every row measured, FLOPs counted."""
    import json

    import open_clip

    from robot_rewards.bench.gpu import bench_gpu, peak_tflops
    from robot_rewards.conf.commands import BenchGpuConfig

    tiny = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "rr-bench-tiny.json").write_text(json.dumps(tiny))
    open_clip.add_model_config(tmp_path / "rr-bench-tiny.json")
    cfg = BenchGpuConfig(device="cpu", n=[1, 2], compile_n=[2], decision_n=2, inference_steps=2,
                         compile=["none"], clip_models=["rr-bench-tiny"], clip_batch=2, peak_tflops=1.0,
                         perception_frames=1, repeats=1, warmup=0, output_dir=str(tmp_path / "out"))
    m = bench_gpu(cfg)
    assert set(m["policy"]["decisions_ms"]) == {"fp32/none", "bf16/none"}
    assert all(v > 0 for v in m["policy"]["decisions_ms"]["bf16/none"].values())
    assert m["policy"]["decision_with_scoring_ms"]["fp32/none"] > 0 and m["policy"]["scorer_ms"]["2"] > 0
    clip = m["clip"]["rr-bench-tiny"]
    assert clip["gflops_per_image"] > 0 and 0 < clip["fraction_of_peak"] == clip["achieved_tflops"] / 1.0
    assert m["perception"] and json.loads((tmp_path / "out" / "metrics.json").read_text())["device"].startswith("cpu")
    assert peak_tflops(torch.device("cpu")) is None
    with pytest.raises(ValueError, match="dtypes must be among"):
        bench_gpu(BenchGpuConfig(device="cpu", dtypes=["fp8"], output_dir=str(tmp_path / "bad")))

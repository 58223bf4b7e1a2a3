"""`robot-rewards bench gpu`: the accelerator figures in one run (what `benchmarks/gpu.sh` runs).

1. Policy decisions of the shipped checkpoint for every N, in fp32 and bf16 (autocast), and with
   the denoiser compiled (`torch.compile`, and `reduce-overhead`, which captures CUDA graphs) at
   the N of `compile_n`; a whole decision at `decision_n` = policy sample + ensemble scoring.
2. The preference scorer alone for each N of `compile_n`.
3. CLIP image towers with random weights (ViT-B-32, ViT-L-14) in bf16: images/s, the FLOPs per
   image counted by `torch.utils.flop_counter`, achieved TFLOP/s and its share of the card's
   dense bf16 peak (`PEAK_BF16_TFLOPS`, or `peak_tflops=`).
4. Batched perception on the device (`bench perception`'s workloads).

Everything lands in one `metrics.json`. On a CPU (`device=cpu`, tiny sizes) it runs the same
code, which is how the tests check it.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from robot_rewards.bench.perception import run_perception_bench
from robot_rewards.bench.policy import _observation
from robot_rewards.conf.commands import BenchGpuConfig
from robot_rewards.core.device import resolve_device
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.nn.timing import median_ms
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.preference.io import load_scorer

# Dense bf16 tensor-core peaks (vendor datasheets, TFLOP/s); the first name found in the device
# name wins, so the specific variants come before the family.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("GH200", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0))
COMPILE_MODES = ("none", "default", "reduce-overhead")
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def peak_tflops(device: torch.device, override: float = 0.0) -> float | None:
    """The dense bf16 peak of `device` (None when unknown, e.g. a CPU)."""
    if override > 0:
        return float(override)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tf for key, tf in PEAK_BF16_TFLOPS if key in name), None)


def _autocast(device: torch.device, dtype: str):
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def bench_gpu(cfg: BenchGpuConfig) -> dict:
    """Run the four parts (see the module docstring); print tables, write one metrics.json."""

    bad = [d for d in cfg.dtypes if d not in DTYPES] + [m for m in cfg.compile if m not in COMPILE_MODES]
    if bad or not cfg.n or min(cfg.n) < 1 or cfg.repeats < 1:
        raise ValueError(f"dtypes must be among {list(DTYPES)}, compile among {list(COMPILE_MODES)}, "
                         f"n positive counts and repeats >= 1 (got unknown {bad})")
    device = torch.device(resolve_device(cfg.device))
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}")
    ck = load_policy(resolve(cfg.policy), device=device)
    policy = ck.policy.eval()
    scorer = load_scorer(resolve(cfg.scorer), primitive=policy.primitive).to(device).eval()
    obs = _observation(ck.perception, cfg.seed)
    metrics: dict = {"command": "bench gpu", "config": asdict(cfg), "device": name,
                     "policy": _policy_part(cfg, policy, scorer, obs, device)}
    metrics["clip"] = _clip_part(cfg, device)
    if cfg.perception:
        metrics["perception"] = run_perception_bench(Path(cfg.output_dir) / "perception", cfg.perception_frames,
                                                     cfg.perception_frames, device.type, repeats=cfg.repeats,
                                                     seed=cfg.seed)["workloads"]
    print(f"metrics: {write_metrics(cfg.output_dir, metrics)}")
    return metrics


def _policy_part(cfg: BenchGpuConfig, policy, scorer, obs, device) -> dict:
    steps, rows, out = cfg.inference_steps, [], {"decisions_ms": {}, "decision_with_scoring_ms": {}, "scorer_ms": {}}
    eager = policy.denoiser
    with torch.no_grad():
        for mode in cfg.compile:
            if mode != "none":
                policy.denoiser = torch.compile(eager, mode=mode, dynamic=False)
            ns = sorted(set(cfg.n)) if mode == "none" else sorted(set(cfg.compile_n))
            for dtype in cfg.dtypes:
                key = f"{dtype}/{mode}"
                with _autocast(device, dtype):
                    times = {n: median_ms(lambda n=n: policy.sample(obs, n, seed=cfg.seed, steps=steps),
                                          cfg.repeats, cfg.warmup, device) for n in ns}
                    n = cfg.decision_n

                    def decision():
                        scorer.score(obs, policy.sample(obs, n, seed=cfg.seed, steps=steps))

                    full = median_ms(decision, cfg.repeats, cfg.warmup, device)
                out["decisions_ms"][key] = {str(k): v for k, v in times.items()}
                out["decision_with_scoring_ms"][key] = full
                rows += [(dtype, mode, k, v, v / k) for k, v in times.items()]
                rows.append((dtype, mode, f"{n} + scoring", full, full / n))
            policy.denoiser = eager
        cands = policy.sample(obs, max(cfg.compile_n), seed=cfg.seed, steps=steps)
        for n in sorted(set(cfg.compile_n)):
            sub = cands.subset(list(range(n)))
            out["scorer_ms"][str(n)] = median_ms(lambda sub=sub: scorer.score(obs, sub), cfg.repeats, cfg.warmup, device)
    print(f"\nPolicy decisions ({steps} DDIM steps, {len(obs.points)} points), scorer ensemble of {scorer.k}")
    print(format_table(["dtype", "compile", "N", "ms/decision", "ms/candidate"], rows))
    print("scorer alone: " + ", ".join(f"N={k}: {v:.2f} ms" for k, v in out["scorer_ms"].items()))
    return out


def _clip_part(cfg: BenchGpuConfig, device) -> dict:
    import open_clip

    peak = peak_tflops(device, cfg.peak_tflops)
    results, rows = {}, []
    for name in cfg.clip_models:
        model = open_clip.create_model(name, pretrained=None).to(device).eval()
        size = model.visual.image_size
        h, w = (size, size) if isinstance(size, int) else size
        x = torch.randn(cfg.clip_batch, 3, h, w, device=device)
        with torch.no_grad(), _autocast(device, cfg.clip_dtype):
            counter = FlopCounterMode(display=False)
            with counter:
                model.encode_image(x[:1])
            flops = counter.get_total_flops()
            ms = median_ms(lambda m=model: m.encode_image(x), cfg.repeats, cfg.warmup, device)
        per_s = cfg.clip_batch / (ms / 1000)
        achieved = per_s * flops / 1e12
        results[name] = {"batch": cfg.clip_batch, "dtype": cfg.clip_dtype, "ms_per_batch": ms, "images_per_s": per_s,
                         "gflops_per_image": flops / 1e9, "achieved_tflops": achieved, "peak_tflops": peak,
                         "fraction_of_peak": achieved / peak if peak else None}
        rows.append((name, cfg.clip_dtype, cfg.clip_batch, per_s, flops / 1e9, achieved,
                     f"{100 * achieved / peak:.1f}%" if peak else "n/a"))
    print(f"\nCLIP image towers, random weights (peak {peak or 'unknown'} TFLOP/s dense bf16)")
    print(format_table(["model", "dtype", "batch", "images/s", "GFLOP/image", "TFLOP/s", "of peak"], rows))
    return results

"""`robot-rewards bench policy`: diffusion-policy decision latency vs the number of candidates.

One decision = encode the observation once + `inference_steps` DDIM steps over all N candidates
in one batch. The table shows ms per decision for each N, and the ratio of N single-candidate
calls to one batched call of N (what batching buys). The observation is a real rendered
place_block scene through the policy's perception settings.

With `reference_src=<checkout of real-stanford/diffusion_policy>` (and `einops` installed), the
reference ConditionalUnet1D is built at its published low-dim config (pusht: action dim 2,
horizon 16, 2 observation steps of 20 dims as global conditioning, down_dims 256/512/1024,
kernel 5, 8 groups, FiLM scale) and timed on the same machine for the same batch sizes and the
same number of denoising steps, side by side. Nothing of it is imported unless asked for.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from robot_rewards.core.device import resolve_device
from robot_rewards.core.primitives import Workspace
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.nn.timing import median_ms
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.policy.config import BenchPolicyConfig, PolicyConfig, policy_perception
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.sim.env import TabletopEnv

log = logging.getLogger(__name__)

# The reference's published low-dim setting (its pusht_lowdim task + unet lowdim workspace).
REFERENCE_CONFIG = dict(input_dim=2, global_cond_dim=20 * 2, diffusion_step_embed_dim=256,
                        down_dims=[256, 512, 1024], kernel_size=5, n_groups=8, cond_predict_scale=True)
REFERENCE_HORIZON = 16


def _untrained_policy(device: torch.device):
    """A randomly initialised policy of the default config (latency does not depend on weights)."""

    ws = Workspace()
    corners = np.array([[*ws.low, *ws.low, -1.5], [*ws.high, *ws.high, 1.5]])
    normalizer = ActionNormalizer.fit("pick_place", corners)
    vocab = build_vocab(["put the red block in the green bowl"])
    return DiffusionPolicy(PolicyConfig(), "pick_place", normalizer, vocab).to(device).eval()


def _observation(perception, seed: int):
    with TabletopEnv("place_block", perception=perception) as env:
        env.reset(seed)
        return env.observe()


def load_reference(src: str):
    """The reference ConditionalUnet1D class from a diffusion_policy checkout (needs einops)."""
    root = Path(src).expanduser()
    if not (root / "diffusion_policy" / "model" / "diffusion" / "conditional_unet1d.py").is_file():
        raise FileNotFoundError(
            f"reference_src={src} is not a checkout of real-stanford/diffusion_policy "
            "(no diffusion_policy/model/diffusion/conditional_unet1d.py under it)")
    sys.path.insert(0, str(root))
    try:
        from diffusion_policy.model.diffusion.conditional_unet1d import ConditionalUnet1D
    except ImportError as exc:
        raise ImportError(f"cannot import the reference U-Net from {root}: {exc} "
                          "(it needs `pip install einops`)") from exc
    finally:
        sys.path.remove(str(root))
    return ConditionalUnet1D


def _reference_decision(model, n: int, steps: int, device: torch.device, generator: torch.Generator):
    """A closure running `steps` denoising network evaluations of the reference for n samples
    (its scheduler arithmetic is a few element-wise ops; the network is what costs)."""
    cond = torch.randn(n, REFERENCE_CONFIG["global_cond_dim"], generator=generator).to(device)
    x0 = torch.randn(n, REFERENCE_HORIZON, REFERENCE_CONFIG["input_dim"], generator=generator).to(device)
    timesteps = torch.linspace(99, 0, steps).long().to(device)

    @torch.no_grad()
    def run():
        x = x0
        for t in timesteps:
            eps = model(x, t, global_cond=cond)
            x = x - 0.1 * eps
        return x

    return run


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def bench_policy(cfg: BenchPolicyConfig) -> dict:
    """Time decisions for every N, batched vs sequential, and (optionally) the reference U-Net;
    print a table, write metrics.json and a latency plot into `cfg.output_dir`."""
    if not cfg.n or min(cfg.n) < 1:
        raise ValueError(f"n must list positive candidate counts, got {cfg.n}")
    if cfg.inference_steps < 1 or cfg.repeats < 1:
        raise ValueError("inference_steps and repeats must be >= 1")
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed)
    device = torch.device(resolve_device(cfg.device))
    if cfg.checkpoint:
        ckpt = load_policy(cfg.checkpoint, device=device)
        policy, perception, source = ckpt.policy, ckpt.perception, str(ckpt.path)
    else:
        policy, perception, source = _untrained_policy(device), policy_perception(), "random init"
    obs = _observation(perception, cfg.seed)
    steps = cfg.inference_steps
    ns = sorted(set(int(n) for n in cfg.n))
    print(f"policy: {source}, {_n_params(policy) / 1e6:.2f} M parameters, {len(obs.points)} points, "
          f"{steps} DDIM steps, device {device}, {torch.get_num_threads()} CPU threads")

    ours = {}
    for n in ns:
        ours[n] = median_ms(lambda: policy.sample(obs, n, seed=cfg.seed, steps=steps),
                             cfg.repeats, cfg.warmup, device)
    n_max = ns[-1]
    seeds = np.arange(n_max) + cfg.seed

    def sequential():
        for s in seeds:
            policy.sample(obs, 1, seeds=[int(s)], steps=steps)

    seq_ms = median_ms(sequential, max(1, cfg.repeats // 2), 1, device)

    ref, ref_params = {}, None
    if cfg.reference_src:
        unet_cls = load_reference(cfg.reference_src)
        unet = unet_cls(**REFERENCE_CONFIG).to(device).eval()
        ref_params = _n_params(unet)
        gen = torch.Generator().manual_seed(cfg.seed)
        for n in ns:
            ref[n] = median_ms(_reference_decision(unet, n, steps, device, gen), cfg.repeats, cfg.warmup, device)

    headers = ["N", "ours ms/decision", "ours ms/candidate"]
    if ref:
        headers += ["reference U-Net ms", "reference / ours"]
    rows = []
    for n in ns:
        row = [n, ours[n], ours[n] / n]
        if ref:
            row += [ref[n], ref[n] / ours[n]]
        rows.append(row)
    print(format_table(headers, rows))
    ratio = seq_ms / ours[n_max]
    print(f"{n_max} single-candidate calls: {seq_ms:.1f} ms vs one batched call: {ours[n_max]:.1f} ms "
          f"-> batched is {ratio:.1f}x faster")
    if ref:
        print(f"reference: real-stanford/diffusion_policy ConditionalUnet1D at the pusht low-dim config "
              f"({ref_params / 1e6:.1f} M parameters, horizon {REFERENCE_HORIZON}), same {steps} steps; "
              f"its published inference uses 100 DDPM steps (10x the per-step cost above)")

    out = Path(cfg.output_dir)
    metrics = {
        "command": "bench policy",
        "config": asdict(cfg),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "policy_source": source,
        "policy_params": _n_params(policy),
        "n_points": int(len(obs.points)),
        "ours_ms_per_decision": {str(n): v for n, v in ours.items()},
        "sequential_ms": seq_ms,
        "sequential_n": n_max,
        "batched_speedup": ratio,
        "reference_ms_per_decision": {str(n): v for n, v in ref.items()},
        "reference_params": ref_params,
        "reference_config": dict(REFERENCE_CONFIG, horizon=REFERENCE_HORIZON) if ref else None,
    }
    print(f"metrics: {write_metrics(out, metrics)}")
    plot = _plot(out / "latency.png", ns, ours, ref, steps, str(device))
    if plot:
        print(f"plot: {plot}")
    return metrics


def _plot(path: Path, ns, ours: dict, ref: dict, steps: int, device: str) -> Path | None:
    try:
        matplotlib.use("Agg")
    except ImportError:  # plotting is a convenience; the numbers are in metrics.json
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ns, [ours[n] for n in ns], "o-", label="robot_rewards policy")
    if ref:
        ax.plot(ns, [ref[n] for n in ns], "s--", label="reference ConditionalUnet1D")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("candidates per decision (N)")
    ax.set_ylabel("ms per decision")
    ax.set_title(f"{steps} denoising steps on {device}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""`robot-rewards bench rewards`: preference-scorer latency vs N, and the RewardHost's throughput.

1. Latency of one `score(obs, candidates)` call of a K-member ensemble (default architecture,
   random init: latency does not depend on the weights) for each N, on a real rendered
   place_block cloud (policy perception settings), median over `repeats`.
2. Throughput (requests/s) of `clients` concurrent threads calling a `RewardHost` (micro-batched)
   vs the same requests as direct sequential calls, with the host's p50/p95 request latency.
3. CLIP goal reward (when the config has an enabled `clip` part, `BenchRewardsWithClipConfig`):
   images/s of `ClipReward.score_states` (batched torch preprocessing + batched encoder) vs a
   naive loop (open_clip's own PIL transform and one `encode_image` per image), same model and
   rendered 640x480 frames; random weights (pretrained=None): speed does not depend on them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robot_rewards.core.device import resolve_device
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.timing import median_ms, sync
from robot_rewards.policy.config import policy_perception
from robot_rewards.rewards.clip.config import BenchClipConfig, ClipRewardConfig
from robot_rewards.rewards.clip.model import load_clip
from robot_rewards.rewards.clip.reward import ClipReward
from robot_rewards.rewards.config import BenchRewardsConfig
from robot_rewards.rewards.host import RewardHost
from robot_rewards.rewards.preference.config import ScorerConfig
from robot_rewards.rewards.preference.scorer import PreferenceScorer
from robot_rewards.rewards.synthetic import random_candidates
from robot_rewards.sim.env import TabletopEnv


def _observations(n_points: int, seed: int, count: int):
    """`count` rendered place_block observations (seeds seed, seed+1, ...)."""

    perception = policy_perception()
    perception.n_points = n_points
    out = []
    with TabletopEnv("place_block", perception=perception) as env:
        for s in range(count):
            env.reset(seed + s)
            out.append(env.observe())
    return out


def bench_rewards(cfg: BenchRewardsConfig) -> dict:
    """Time the scorer for every N and the host vs direct calls; print a table, write metrics.json."""

    if not cfg.n or min(cfg.n) < 1 or cfg.ensemble_size < 1 or cfg.repeats < 1 or cfg.clients < 1:
        raise ValueError("n, ensemble_size, repeats and clients must be positive")
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed)
    device = torch.device(resolve_device(cfg.device))
    obs_list = _observations(cfg.n_points, cfg.seed, 4)
    vocab = build_vocab([o.goal for o in obs_list])
    scorer = PreferenceScorer(ScorerConfig(), "pick_place", vocab, cfg.ensemble_size).to(device).eval()
    single = PreferenceScorer(ScorerConfig(), "pick_place", vocab, 1).to(device).eval()
    obs = obs_list[0]
    print(f"scorer: K={cfg.ensemble_size}, {sum(p.numel() for p in scorer.parameters()) / 1e6:.2f} M parameters, "
          f"{len(obs.points)} points, device {device}, {torch.get_num_threads()} CPU threads")

    ns = sorted(set(int(n) for n in cfg.n))
    latency, latency_k1 = {}, {}
    for n in ns:
        cands = random_candidates(n, seed=cfg.seed)
        latency[n] = median_ms(lambda: scorer.score(obs, cands), cfg.repeats, cfg.warmup, device)
        latency_k1[n] = median_ms(lambda: single.score(obs, cands), cfg.repeats, cfg.warmup, device)
    print(format_table(["N", f"K={cfg.ensemble_size} ms/call", "K=1 ms/call", "ms per candidate (K ens.)"],
                       [[n, latency[n], latency_k1[n], latency[n] / n] for n in ns]))

    # host throughput: the same request stream, direct sequential vs concurrent clients on the host
    total = cfg.clients * cfg.requests_per_client
    requests = [(obs_list[i % len(obs_list)], random_candidates(cfg.host_n, seed=i)) for i in range(total)]
    for o, c in requests[: cfg.warmup]:
        scorer.score(o, c)
    sync(device)
    t0 = time.perf_counter()
    for o, c in requests:
        scorer.score(o, c)
    sync(device)
    direct_s = time.perf_counter() - t0

    with RewardHost(scorer, cfg.max_batch, cfg.max_wait_ms) as host:
        for o, c in requests[: cfg.warmup]:
            host.score(o, c)
        host.reset_stats()
        barrier = threading.Barrier(cfg.clients + 1)

        def client(k: int):
            barrier.wait()
            for o, c in requests[k::cfg.clients]:
                host.score(o, c)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(cfg.clients)]
        for th in threads:
            th.start()
        barrier.wait()
        t0 = time.perf_counter()
        for th in threads:
            th.join()
        host_s = time.perf_counter() - t0
        stats = host.latency_stats()
    direct_rps, host_rps = total / direct_s, total / host_s
    print(format_table(["mode", "requests", "req/s", "p50 ms", "p95 ms", "mean batch"],
                       [["direct (sequential)", total, direct_rps, 1000 * direct_s / total, "-", 1],
                        [f"host ({cfg.clients} clients)", total, host_rps, stats["p50_ms"], stats["p95_ms"],
                         stats["mean_batch"]]]))
    print(f"host / direct throughput: {host_rps / direct_rps:.2f}x (N={cfg.host_n} candidates per request)")
    metrics = {
        "command": "bench rewards",
        "config": asdict(cfg),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "n_points": int(len(obs.points)),
        "scorer_params": int(sum(p.numel() for p in scorer.parameters())),
        "latency_ms": {str(n): v for n, v in latency.items()},
        "latency_k1_ms": {str(n): v for n, v in latency_k1.items()},
        "direct_requests_per_s": direct_rps,
        "host_requests_per_s": host_rps,
        "host_speedup": host_rps / direct_rps,
        "host_latency": stats,
    }
    clip_cfg = getattr(cfg, "clip", None)
    if clip_cfg is not None and clip_cfg.enabled:
        frames = [o.frames[next(iter(o.frames))].rgb for o in obs_list]
        metrics["clip"] = bench_clip(clip_cfg, frames, obs.goal, device)
    print(f"metrics: {write_metrics(Path(cfg.output_dir), metrics)}")
    return metrics


def bench_clip(cfg: BenchClipConfig, frames: list, goal: str, device: torch.device) -> dict:
    """Images/s of the batched CLIP reward vs a naive one-image-at-a-time open_clip loop."""
    import open_clip


    if cfg.images < 1 or cfg.batch_size < 1 or cfg.repeats < 1:
        raise ValueError("clip.images, clip.batch_size and clip.repeats must be positive")
    images = [frames[i % len(frames)] for i in range(cfg.images)]
    loaded = load_clip(cfg.model, cfg.pretrained)
    reward = ClipReward(loaded, ClipRewardConfig(model=cfg.model, device=str(device), batch_size=cfg.batch_size))
    model = reward.model
    pcfg = open_clip.get_model_preprocess_cfg(model)
    transform = open_clip.image_transform(pcfg["size"], is_train=False, mean=pcfg.get("mean"), std=pcfg.get("std"))
    g = reward.goal_embedding(goal).g  # text once for both: only the image path is compared

    def naive():
        out = []
        with torch.no_grad():
            for im in images:
                x = transform(Image.fromarray(im)).unsqueeze(0).to(device)
                e = torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1)
                out.append(float(e[0] @ g))
        return np.array(out)

    batched_ms = median_ms(lambda: reward.score_states(images, goal), cfg.repeats, 1, device)
    naive_ms = median_ms(naive, cfg.repeats, 1, device)
    batched, single = cfg.images / (batched_ms / 1000), cfg.images / (naive_ms / 1000)
    params = sum(p.numel() for p in model.parameters())
    h, w = images[0].shape[:2]
    print(f"\nCLIP reward: {loaded.source}, {params / 1e6:.1f} M parameters, {cfg.images} frames of {w}x{h}, "
          f"device {device}, {torch.get_num_threads()} CPU threads")
    print(format_table(["mode", "images/s", "ms/image"],
                       [[f"batched (batch {cfg.batch_size})", batched, batched_ms / cfg.images],
                        ["naive loop (PIL + 1 image/call)", single, naive_ms / cfg.images]]))
    print(f"CLIP batched / naive throughput: {batched / single:.2f}x")
    return {"model": loaded.source, "parameters": params, "images": cfg.images, "frame_size": [w, h],
            "batch_size": cfg.batch_size, "batched_images_per_s": batched, "naive_images_per_s": single,
            "speedup": batched / single}

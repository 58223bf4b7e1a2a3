"""`train-clip` and `eval-clip`: domain-adapted CLIP goal rewards (VLM-RM)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.rewards.clip.config import EvalClipConfig, TrainClipConfig
from robot_rewards.rewards.clip.data import frames_for
from robot_rewards.rewards.clip.eval import evaluate_reward, summary_table
from robot_rewards.rewards.clip.reward import ClipReward
from robot_rewards.rewards.clip.train import train_clip as _train


def train_clip(cfg: TrainClipConfig) -> dict:
    """Train a CLIP on captioned sim frames (see robot_rewards/rewards/clip/train.py)."""
    return _train(cfg)


def eval_clip(cfg: EvalClipConfig) -> dict:
    """Each captioned task's figure (place_block ROC AUC, align_rope Spearman) of a CLIP reward
    on held-out frames."""


    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if not cfg.alphas:
        raise ValueError("alphas is empty: give at least one VLM-RM alpha")
    frames = frames_for(cfg.data or Path(cfg.output_dir) / "clip_frames_eval.h5", cfg.generate)
    reward = ClipReward.from_config(cfg.reward)
    t0 = time.perf_counter()
    result = evaluate_reward(reward, frames, cfg.alphas)
    seconds = time.perf_counter() - t0
    params = sum(p.numel() for p in reward.model.parameters())
    print(f"\nCLIP reward {reward.loaded.source}: {params / 1e6:.2f} M parameters, {len(frames)} held-out frames "
          f"(seeds from {cfg.generate.seed}), {len(frames) / seconds:.1f} frames/s")
    print(format_table(*summary_table(result)))
    metrics = {"command": "eval-clip", "config": asdict(cfg), "model": reward.loaded.source, "parameters": params,
               "frames": len(frames), "frames_per_s": len(frames) / seconds,
               "by_alpha": {str(a): m for a, m in result.items()}}
    print(f"metrics: {write_metrics(cfg.output_dir, metrics)}")
    return metrics

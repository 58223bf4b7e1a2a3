"""`train-policy` and `eval-policy`: the diffusion policy over action primitives."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import torch

from robot_rewards.core.device import resolve_device
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.core.workers import JobsFailed, check_executor, resolve_workers
from robot_rewards.eval.policy import evaluate_policy
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.policy.config import EvalPolicyConfig, TrainPolicyConfig
from robot_rewards.policy.train import train_policy as _train

log = logging.getLogger(__name__)


def train_policy(cfg: TrainPolicyConfig) -> dict:
    """Train a diffusion policy on demonstrations (see robot_rewards/policy/train.py)."""

    return _train(cfg, evaluate_policy)


def eval_policy(cfg: EvalPolicyConfig) -> dict:
    """Closed-loop success of a checkpoint (or the random-primitive baseline); table + metrics.json."""

    if cfg.episodes <= 0:
        raise ValueError(f"episodes must be positive, got {cfg.episodes}")
    workers = resolve_workers(cfg.workers)
    check_executor(cfg.executor, cfg.ray_address)
    # one torch thread per process unless told otherwise: the workers already use every core, and
    # the thread count changes float sums, so it must not depend on the number of workers
    threads = cfg.torch_threads or 1
    torch.set_num_threads(threads)
    policy, perception, info = None, None, {}
    if cfg.checkpoint:
        ck = load_policy(cfg.checkpoint, task=cfg.task or None, device=resolve_device(cfg.device))
        policy, perception, task = ck.policy, ck.perception, ck.task
        info = {"checkpoint": str(ck.path), "trained_steps": ck.meta.get("training", {}).get("step")}
    elif cfg.selection != "random_primitive":
        raise ValueError("eval-policy needs checkpoint=PATH (only selection=random_primitive runs without one)")
    elif not cfg.task:
        raise ValueError("selection=random_primitive without a checkpoint needs task=...")
    else:
        task = cfg.task
    video = Path(cfg.output_dir) / "videos" / f"{task}_seed{cfg.seed}" if cfg.video else None
    try:
        r = evaluate_policy(policy, task, cfg.episodes, cfg.seed, perception, cfg.n_candidates, cfg.selection,
                            cfg.inference_steps, cfg.diversity, cfg.sim, video, workers=workers,
                            torch_threads=threads, executor=cfg.executor, ray_address=cfg.ray_address)
    except JobsFailed as exc:  # the finished episodes are kept beside the error
        def without_frames(rec: dict) -> dict:
            return {k: v for k, v in rec.items() if k != "frames"}

        write_metrics(Path(cfg.output_dir) / f"partial_{task}", exc.report(without_frames))
        raise
    div = r.get("diversity", {})
    row = (task, cfg.selection, r["episodes"], f"{100 * r['success_rate']:.1f}%",
           f"[{100 * r['success_ci95'][0]:.1f}, {100 * r['success_ci95'][1]:.1f}]",
           1000 * r["quality_mean"], r["steps_mean"], r["not_executed"], r["clipped_fraction"])
    print(f"\nPolicy {info.get('checkpoint', '(none: random primitives)')}, N={cfg.n_candidates}, "
          f"seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1}")
    print(format_table(["task", "selection", "episodes", "success", "95% CI", "quality (mm)", "steps",
                        "not executed", "clipped"], [row]))
    if div:
        print("candidate diversity at the first decision (mean over episodes):")
        print(format_table(list(div), [[float(v) for v in div.values()]]))
    metrics = {"command": "eval-policy", "config": asdict(cfg), **info, "tasks": {task: r}}
    print(f"metrics: {write_metrics(cfg.output_dir, metrics)}")
    return metrics

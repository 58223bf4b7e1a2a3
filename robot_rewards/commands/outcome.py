"""`collect-transitions` and `train-outcome`: an outcome model from the robot's own executed
transitions (docs/rewards.md, "Outcome models")."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import write_metrics
from robot_rewards.data.transitions import Transitions, load_transitions, save_transitions
from robot_rewards.eval.transitions import collect_transitions
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.outcome.config import CollectTransitionsConfig, TrainOutcomeCommandConfig
from robot_rewards.rewards.outcome.model import save_outcome_model, task_outcome, train_outcome_model


def collect_transitions_command(cfg: CollectTransitionsConfig) -> dict:
    """Play the policy on `episodes` scenes and save their transitions; returns the metrics."""
    task_outcome(cfg.task)  # a task without a cloud outcome is refused before any episode
    if cfg.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {cfg.episodes}")
    policy_path = resolve(cfg.policy or f"checkpoints/policy_{cfg.task}.json")
    ckpt = load_policy(policy_path, task=cfg.task)
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(cfg.output_dir)
    t0 = time.perf_counter()
    seeds = list(range(cfg.seed, cfg.seed + cfg.episodes))
    print(f"collect-transitions {cfg.task}: {cfg.episodes} episodes (seeds {seeds[0]}..{seeds[-1]}), "
          f"{cfg.per_state} of {cfg.n_candidates} candidates executed per state ...", flush=True)
    data = collect_transitions(cfg.task, cfg.sim, ckpt.perception, ckpt.policy.eval(), seeds, cfg.n_candidates,
                               cfg.per_state, cfg.max_decisions, cfg.workers, cfg.torch_threads,
                               primitive=ckpt.policy.primitive, meta={"policy": ckpt.identity(), "per_state": cfg.per_state,
                                                               "seeds": [seeds[0], seeds[-1]]})
    path = save_transitions(out / "transitions.npz", data)
    metrics = {"command": "collect-transitions", "task": cfg.task, "config": asdict(cfg), "states": data.n_states,
               "transitions": len(data), "seconds": time.perf_counter() - t0, "data": str(path)}
    print(f"{data.n_states} states, {len(data)} transitions in {metrics['seconds']:.0f} s -> {path}")
    write_metrics(out, metrics)
    return metrics


def train_outcome_command(cfg: TrainOutcomeCommandConfig) -> dict:
    """Train an outcome model on the named transitions files; returns the metrics."""
    if not cfg.data:
        raise ValueError("name the transitions to learn from: 'data=[runs/tr/transitions.npz]' (collect-transitions)")
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    parts = [load_transitions(p) for p in cfg.data]
    data = Transitions.concat(parts)
    policies = {str((p.meta.get("policy") or {}).get("sha256", "")) for p in parts}
    out = Path(cfg.output_dir)
    t0 = time.perf_counter()
    print(f"train-outcome {data.task}: {len(data)} transitions from {data.n_states} states, "
          f"{cfg.train.model.ensemble_size} members x {cfg.train.steps} steps ...", flush=True)
    model, fit = train_outcome_model(data, cfg.train, keypoint_model=cfg.keypoint_model)
    path = save_outcome_model(out / "outcome", model, data.task, data.primitive, keypoint_model=cfg.keypoint_model, training={
        **fit, "data": [str(p) for p in cfg.data], "steps": cfg.train.steps, "seed": cfg.train.seed,
        "policies": sorted(p for p in policies if p)})
    metrics = {"command": "train-outcome", "task": data.task, "config": asdict(cfg), **fit,
               "seconds": time.perf_counter() - t0, "checkpoint": str(path)}
    names = task_outcome(data.task, cfg.keypoint_model).measure_names
    if "val_mae" in fit:
        mae = ", ".join(f"{n} {fit['val_mae'][n]:.3f}" for n in names)
        print(f"held-out states ({fit['val_states']}): mean absolute error {mae}; two actions from one state "
              f"ordered as measured: {fit['val_same_state_pair_accuracy']:.1%} of {fit['val_same_state_pairs']} pairs")
    print(f"model: {path}\nmetrics: {write_metrics(out, metrics)}")
    return metrics

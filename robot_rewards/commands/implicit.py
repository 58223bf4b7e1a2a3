"""`robot-rewards train-implicit`: DeformPAM's implicit reward from a preference store's labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.rewards.implicit.config import TrainImplicitCommandConfig
from robot_rewards.rewards.implicit.dpo import train_dpo
from robot_rewards.rewards.implicit.reward import save_implicit
from robot_rewards.rewards.preference.scorer import evaluate_pairs, split_pairs
from robot_rewards.rewards.registry import load_action_scorer


def train_implicit_command(cfg: TrainImplicitCommandConfig) -> dict:
    """DPO-tune the task's policy on the store's pairs; print held-out pair accuracy of the
    implicit reward (and of a Bradley-Terry scorer on the same pairs, if one is named); save
    `<output_dir>/implicit.json` + the tuned policy `<output_dir>/implicit_tuned.*`."""
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(cfg.output_dir)
    policy_path = cfg.policy or f"checkpoints/policy_{cfg.task}.json"
    ck = load_policy(resolve(policy_path), task=cfg.task)
    with PreferenceStore(cfg.store, create=False) as store:
        pairs = store.pairs(task=cfg.task, primitive=ck.policy.primitive)
    val = None
    if cfg.heldout_store:
        with PreferenceStore(cfg.heldout_store, create=False) as held:
            val = held.pairs(task=cfg.task, primitive=ck.policy.primitive)
    y = pairs.labels
    print(f"{cfg.store}: {len(pairs)} labelled pairs for {cfg.task} ({int(np.sum(y == 0.5))} ties, excluded); "
          f"reference policy {policy_path}")
    scorer, fit = train_dpo(ck.policy, pairs, cfg.train, val_pairs=val, progress=True)
    metrics: dict = {"command": "train-implicit", "store": cfg.store, "task": cfg.task, "policy": policy_path,
                     "heldout_store": cfg.heldout_store, **fit}
    rows = [["implicit reward (DPO)", fit.get("val_pairs", 0), _pct(fit.get("val_accuracy")),
             _pct(fit["train_accuracy"])]]
    if cfg.compare_scorer and "val_accuracy" in fit:

        held = val
        if held is None:  # the same seeded split train_dpo made
            held = pairs.subset(split_pairs(pairs, cfg.train.val_fraction, cfg.train.seed)[1])
        bt = evaluate_pairs(load_action_scorer(resolve(cfg.compare_scorer), primitive=ck.policy.primitive,
                                               family="preference"), held)
        metrics.update({"compare_scorer": cfg.compare_scorer, "compare_val_accuracy": bt["accuracy"],
                        "compare_val_ece": bt["ece"]})
        rows.append([f"Bradley-Terry {Path(cfg.compare_scorer).name}", len(held), _pct(bt["accuracy"]), "-"])
    print(format_table(["scorer", "held-out pairs", "held-out accuracy", "train accuracy"], rows))
    ckpt = save_implicit(out / "implicit", scorer, ck.task, ck.perception, policy_path,
                         training={k: v for k, v in metrics.items() if k != "history"})
    metrics["checkpoint"] = str(ckpt)
    print(f"implicit reward: {ckpt}\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _pct(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"

"""`robot-rewards train-scorer`: the preference scorer from the labels in a preference store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.config import TrainScorerCommandConfig
from robot_rewards.preferences.recipes import scorer_recipe
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.rewards.preference.io import save_scorer
from robot_rewards.rewards.preference.scorer import evaluate_pairs, learning_curve, split_pairs, train_scorer


def labels_policy(store: PreferenceStore, task: str, policy: str) -> dict:
    """The policy ({"path", "sha256"}) whose candidates the labels to train on judge: the
    checkpoint `policy` names (ValueError if no label of `task` judges its candidates), else the
    one policy every label session records; {} when some session records none (older stores).
    ValueError for labels of several policies without `policy`."""
    held = store.label_policies(task)
    known = {sha: path for sha, path in held.items() if sha}
    if policy:
        ident = load_policy(resolve(policy), task=task).identity()
        if ident["sha256"] not in held:
            have = ", ".join(f"{p or '?'} ({s[:12]})" for s, p in sorted(known.items())) or "none recorded"
            raise ValueError(f"{store}: no {task} labels judge the candidates of {policy} "
                             f"({ident['sha256'][:12]}); the labels' policies: {have}")
        return ident
    if len(known) > 1:
        names = ", ".join(f"{p or '?'} ({s[:12]})" for s, p in sorted(known.items()))
        raise ValueError(f"{store}: the {task} labels judge the candidates of {len(known)} policies ({names}); "
                         "pass policy=<checkpoint> to train on one policy's labels")
    if len(known) == 1 and "" not in held:
        sha, path = next(iter(known.items()))
        return {"path": path, "sha256": sha}
    return {}


def train_scorer_command(cfg: TrainScorerCommandConfig) -> dict:
    """Train on the store's labels for `cfg.task`; print validation accuracy and ECE, save the
    ensemble as `<output_dir>/scorer.{json,safetensors}` and plot accuracy vs number of labels."""
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    cfg = replace(cfg, train=scorer_recipe(cfg.recipe, cfg.task, cfg.train))
    out = Path(cfg.output_dir)
    with PreferenceStore(cfg.store, create=False) as store:
        policy = labels_policy(store, cfg.task, cfg.policy)
        pairs = store.pairs(task=cfg.task, policy_sha256=policy.get("sha256") or None)
    if cfg.heldout_store:
        with PreferenceStore(cfg.heldout_store, create=False) as held:
            val = held.pairs(task=cfg.task, policy_sha256=policy.get("sha256") if cfg.policy else None)
        train = pairs
        tcfg = replace(cfg.train, val_fraction=0.0)
    else:
        train_idx, val_idx = split_pairs(pairs, cfg.train.val_fraction, cfg.train.seed)
        train, val = pairs.subset(train_idx), pairs.subset(val_idx) if len(val_idx) else None
        tcfg = replace(cfg.train, val_fraction=0.0)
    print(f"{cfg.store}: {len(pairs)} labelled pairs for {cfg.task} ({int(np.sum(~pairs.labelled))} can't tell); "
          f"training on {len(train)}, validating on {0 if val is None else len(val)}")
    scorer, fit = train_scorer(train, tcfg, progress=True)
    metrics: dict = {"command": "train-scorer", "store": cfg.store, "task": cfg.task, "train_pairs": len(train), **fit}
    if policy:  # as experiment records it: a scorer used with another policy is refused
        metrics.update(policy=policy["path"], policy_sha256=policy["sha256"])
    if val is not None and len(val):
        ev = evaluate_pairs(scorer, val)
        metrics.update({"val_accuracy": ev["accuracy"], "val_ece": ev["ece"], "val_loss": ev["loss"],
                        "val_member_accuracy": ev["member_accuracy"], "val_pairs": len(val)})
        print(format_table(["val pairs", "accuracy", "ECE", "loss"],
                           [[len(val), f"{100 * ev['accuracy']:.1f}%", ev["ece"], ev["loss"]]]))
        sizes = [n for n in cfg.curve if n < len(train)] + [len(train)]
        rows = learning_curve(train, val, sizes, tcfg, png=out / "accuracy_vs_labels.png")
        metrics["curve"] = rows
        print(format_table(["labels", "val accuracy", "ECE"],
                           [[r["n_labels"], f"{100 * r['accuracy']:.1f}%", r["ece"]] for r in rows]))
    ckpt = save_scorer(out / "scorer", scorer, training={k: v for k, v in metrics.items() if k != "curve"})
    metrics["checkpoint"] = str(ckpt)
    print(f"scorer: {ckpt}\nmetrics: {write_metrics(out, metrics)}")
    return metrics

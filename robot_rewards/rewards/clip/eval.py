"""How good a CLIP reward is on held-out sim frames: place_block ROC AUC, align_rope Spearman.

Each captioned task names its measure (`CaptionSpec.metric`):

- "auc" (place_block): does the reward of the goal separate frames where the goal holds (task
  success) from frames where it does not? ROC AUC (0.5 = chance, 1 = perfect).
- "spearman" (align_rope): does the reward order frames like the task's quality (mean distance
  of the rope to the marks' segment; lower is better)? Spearman rank correlation of reward and
  -quality, and of reward and straightness (end-to-end distance / length).

Images are embedded once; every alpha reuses the embeddings.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.rewards.clip.data import FrameSet, caption_tasks
from robot_rewards.sim.tasks import TASKS


def ranks(x) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    return (sums / counts)[inverse]


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n+ n-)); NaN without both classes."""
    labels = np.asarray(labels, dtype=bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    r = ranks(scores)
    return float((r[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def spearman(a, b) -> float:
    """Spearman rank correlation (Pearson of average ranks); NaN for fewer than 3 values or constants."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def reward_metrics(rewards: np.ndarray, frames: FrameSet) -> dict:
    """AUC / Spearman figures of per-frame `rewards` (each frame scored for its own goal):
    `<task>_auc_<kind>`, `<task>_n_<kind>`, `<task>_positive_<kind>` for "auc" tasks,
    `<task>_spearman_<kind>`, `<task>_spearman_straightness_<kind>`, `<task>_n_<kind>` for
    "spearman" tasks; kind: arranged, episode, all."""
    out: dict = {}
    for kind in ("arranged", "episode", None):
        name = kind or "all"
        for task in caption_tasks():
            rows = frames.rows(task, kind)
            if not len(rows):
                continue
            metric = TASKS[task].captioning.metric
            if metric == "auc":
                out[f"{task}_auc_{name}"] = roc_auc(rewards[rows], frames.success[rows])
                out[f"{task}_n_{name}"] = int(len(rows))
                out[f"{task}_positive_{name}"] = int(frames.success[rows].sum())
            elif metric == "spearman":
                out[f"{task}_spearman_{name}"] = spearman(rewards[rows], -frames.quality[rows])
                out[f"{task}_spearman_straightness_{name}"] = spearman(rewards[rows], frames.straightness[rows])
                out[f"{task}_n_{name}"] = int(len(rows))
            else:
                raise ValueError(f"task '{task}': unknown CLIP metric '{metric}' (use auc or spearman)")
    return out


def summary_table(by_alpha: dict) -> tuple[list[str], list[list]]:
    """(header, rows) of the headline figures per alpha: per "auc" task its AUC over all,
    arranged and episode frames, per "spearman" task its Spearman with -quality and with
    straightness; "-" where a figure is missing."""
    header, keys = ["alpha"], []
    for task in caption_tasks():
        spec = TASKS[task].captioning
        if spec.metric == "auc":
            header += [f"{spec.config_prefix} AUC", "AUC arranged", "AUC episodes"]
            keys += [f"{task}_auc_all", f"{task}_auc_arranged", f"{task}_auc_episode"]
        else:
            header += [f"{spec.config_prefix} Spearman", "vs straightness"]
            keys += [f"{task}_spearman_all", f"{task}_spearman_straightness_all"]
    rows = [[a, *("-" if m.get(k) is None else m[k] for k in keys)] for a, m in by_alpha.items()]
    return header, rows


def headline(metrics: dict) -> str:
    """One line of the main figure per captioned task, e.g. "place_block AUC 0.912, align_rope
    Spearman 0.640" (nan where missing)."""
    parts = []
    for task in caption_tasks():
        word, key = ("AUC", "auc") if TASKS[task].captioning.metric == "auc" else ("Spearman", "spearman")
        parts.append(f"{task} {word} {metrics.get(f'{task}_{key}_all', float('nan')):.3f}")
    return ", ".join(parts)


def evaluate_reward(reward, frames: FrameSet, alphas=(0.0, 0.5, 1.0)) -> dict:
    """{alpha: metrics} of a `ClipReward` on `frames` (each frame with its own goal)."""
    x = reward.embed_images(list(frames.images))
    result = {}
    for alpha in alphas:
        r = np.empty(len(frames))
        for goal in np.unique(frames.goal):
            rows = np.flatnonzero(frames.goal == goal)
            r[rows] = reward.score_embeddings(x[rows], str(goal), alpha)
        result[float(alpha)] = reward_metrics(r, frames)
    return result

"""Offline best-of-N on held-out queries whose candidates' true values are known.

A scripted teacher stores every candidate's true return with its query (`meta["values"]`,
from what-if rollouts). That lets a scorer's *choice* be judged without running episodes:
per query, the value of its top candidate against the first sample (what the policy alone
executes), a random one (the mean) and the best. Pair accuracy weighs every pair alike,
near-ties included; best-of-N selection depends only on which candidate comes out on top.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.core.observation import Observation
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.rewards.preference.scorer import expected_calibration_error


def queries_with_values(store: PreferenceStore, task: str):
    """(true values (N,), observation, candidates) of every query of `task` that carries them;
    ValueError where a query's values do not match its candidates."""
    for rec in store.queries(task=task):
        values = rec.meta.get("values")
        if values is None:
            continue
        values = np.asarray(values, np.float64)
        _, arrays = store.load_query(rec.id)
        cands = arrays.candidates(rec.primitive)
        if len(values) != len(cands):
            raise ValueError(f"query {rec.id}: {len(values)} true values for {len(cands)} candidates")
        yield values, Observation(frames={}, proprio=None, goal=rec.goal, points=arrays.points,
                                  colors=arrays.colors), cands


def has_true_values(store: PreferenceStore, task: str) -> bool:
    """Whether any query of `task` carries its candidates' true values (scripted teachers store them)."""
    return any("values" in rec.meta for rec in store.queries(task=task))


def heldout_selection(scorer, store: PreferenceStore, task: str, aggregator: str = "mean",
                      clear_margin: float = 1.0) -> dict:
    """Top-1 choice of `scorer` on every query of `task` in `store` that carries true values.

    Returns means over queries of the true value of the first, a random (mean), the scorer's
    and the best candidate; `top1_is_best` (fraction of queries where the choice is a best
    one); `gain_captured` = (top1 - first) / (best - first), the share of the possible gain
    over the first sample that the choice realises. Also the ordering accuracy over every
    candidate pair of every query with different values (`pair_accuracy`) and over those whose
    values differ by more than `clear_margin` (`clear_pair_accuracy`; 1 = one success, or
    quality_scale of error). ValueError when no query has values.
    """
    first, mean, top, best, is_best = [], [], [], [], []
    gaps, right = [], []
    for values, obs, cands in queries_with_values(store, task):
        utility = aggregate(scorer.score(obs, cands), aggregator)
        choice = int(np.argmax(utility))
        a, b = np.triu_indices(len(values), 1)
        differ = values[a] != values[b]
        gaps.append(np.abs(values[a] - values[b])[differ])
        right.append(((utility[a] > utility[b]) == (values[a] > values[b]))[differ])
        first.append(values[0])
        mean.append(values.mean())
        top.append(values[choice])
        best.append(values.max())
        is_best.append(bool(np.isclose(values[choice], values.max())))
    if not top:
        raise ValueError(f"no query of task '{task}' in {store} has true candidate values "
                         "(only scripted-teacher queries store them)")
    first_m, top_m, best_m = float(np.mean(first)), float(np.mean(top)), float(np.mean(best))
    room = best_m - first_m
    gaps, right = np.concatenate(gaps), np.concatenate(right)
    clear = gaps > clear_margin
    return {"queries": len(top), "first_value": first_m, "random_value": float(np.mean(mean)),
            "top1_value": top_m, "best_value": best_m, "top1_is_best": float(np.mean(is_best)),
            "gain_captured": (top_m - first_m) / room if room > 0 else float("nan"),
            "pairs": int(len(gaps)), "pair_accuracy": float(np.mean(right)) if len(gaps) else float("nan"),
            "clear_pairs": int(clear.sum()), "clear_margin": clear_margin,
            "clear_pair_accuracy": float(np.mean(right[clear])) if clear.any() else float("nan")}


def calibration_floor(probs: np.ndarray, reps: int = 500, seed: int = 0) -> float:
    """The ECE a perfectly calibrated predictor would still measure on these pairs: the mean
    ECE (10 bins) of `probs` against labels drawn as Bernoulli(probs). With 200 pairs it is
    about 0.07, so a target of 0.05 needs more held-out pairs than that to be seen at all."""
    p = np.asarray(probs, np.float64)
    rng = np.random.default_rng([seed, 13])
    return float(np.mean([expected_calibration_error(p, (rng.random(p.size) < p).astype(float))
                          for _ in range(reps)]))


def heldout_calibration(scorer, store: PreferenceStore, task: str, boot: int = 500, seed: int = 0) -> dict:
    """Calibration of a Bradley-Terry ensemble on *every* candidate pair of the held-out queries
    that carry true values (8 candidates -> 28 pairs per query, not only the labelled ones).

    A pair's label is the clean oracle's: 1 when A's true value is higher, 0 when lower; equal
    values are left out. P(A > B) is the members' mean of sigmoid(s_A - s_B), as in training.
    Returns the pairs' count, accuracy, ECE (10 bins) with a 95% bootstrap interval over queries
    (pairs of one scene are not independent), and `ece_floor`, what a perfectly calibrated
    predictor would measure on the same pairs (`calibration_floor`)."""
    probs, labels, query = [], [], []
    for values, obs, cands in queries_with_values(store, task):
        members = scorer.score(obs, cands).members
        a, b = np.triu_indices(len(values), 1)
        differ = values[a] != values[b]
        a, b = a[differ], b[differ]
        # the logistic as 0.5 (1 + tanh(d / 2)): equal, and no overflow for a very sure scorer
        probs.append((0.5 * (1.0 + np.tanh(0.5 * (members[:, a] - members[:, b])))).mean(axis=0))
        labels.append((values[a] > values[b]).astype(np.float64))
        query.append(np.full(len(a), len(query)))
    if not probs:
        raise ValueError(f"no query of task '{task}' in {store} has true candidate values")
    p, y, q = np.concatenate(probs), np.concatenate(labels), np.concatenate(query)
    rng = np.random.default_rng([seed, 17])
    groups = [np.flatnonzero(q == i) for i in range(len(probs))]
    draws = []
    for _ in range(boot):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        draws.append(expected_calibration_error(p[idx], y[idx]))
    return {"pairs": int(len(p)), "queries": len(probs), "accuracy": float(np.mean((p > 0.5) == (y == 1.0))),
            "ece": expected_calibration_error(p, y), "ece_ci": [float(np.percentile(draws, 2.5)),
                                                            float(np.percentile(draws, 97.5))],
            "ece_floor": calibration_floor(p, seed=seed)}

"""Best-of-N aggregation of ensemble scores into one utility per candidate.

With an ensemble of K reward models, picking argmax of the mean over-optimises: the winner
is often a candidate that one member overrates. Conservative aggregation (Coste et al.,
"Reward model ensembles help mitigate overoptimization") removes most of that effect:

- mean: (1/K) sum_k r_k
- WCO (worst-case optimisation): min_k r_k
- UWO (uncertainty-weighted optimisation): mean - lambda * var_k(r_k)  (population variance)
"""

from __future__ import annotations

import numpy as np

from robot_rewards.rewards.base import RewardInputError, ScoreSet

AGGREGATORS = ("mean", "wco", "uwo")


def mean(scores: ScoreSet) -> np.ndarray:
    """(N,) mean over members."""
    return scores.members.mean(axis=0)


def wco(scores: ScoreSet) -> np.ndarray:
    """(N,) worst case: the minimum over members."""
    return scores.members.min(axis=0)


def uwo(scores: ScoreSet, lam: float = 1.0) -> np.ndarray:
    """(N,) mean - lam * variance over members (population variance; 0 for K = 1)."""
    if lam < 0:
        raise ValueError(f"uwo lambda must be >= 0, got {lam}")
    return scores.members.mean(axis=0) - lam * scores.members.var(axis=0)


def aggregate(scores: ScoreSet, method: str = "mean", lam: float = 1.0) -> np.ndarray:
    """(N,) utilities by name: mean | wco | uwo (lam: the UWO variance weight)."""
    if method == "mean":
        return mean(scores)
    if method == "wco":
        return wco(scores)
    if method == "uwo":
        return uwo(scores, lam)
    raise ValueError(f"unknown aggregator '{method}'; use one of {AGGREGATORS}")


def argmax(utilities) -> int:
    """Index of the best candidate (the first one on ties); errors on empty or NaN input."""
    u = np.asarray(utilities, dtype=np.float64).reshape(-1)
    if u.size == 0:
        raise RewardInputError("argmax of an empty set of utilities")
    if not np.all(np.isfinite(u)):
        raise RewardInputError("utilities contain NaN/inf")
    return int(np.argmax(u))

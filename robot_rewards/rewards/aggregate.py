"""Best-of-N aggregation of ensemble scores into one utility per candidate.

With an ensemble of K reward models, picking argmax of the mean over-optimises: the winner
is often a candidate that one member overrates. Conservative aggregation (Coste et al.,
"Reward model ensembles help mitigate overoptimization") removes most of that effect:

- mean: (1/K) sum_k r_k
- WCO (worst-case optimisation): min_k r_k
- UWO (uncertainty-weighted optimisation): mean - lambda * var_k(r_k)  (population variance)

WCO and UWO first centre each member on the candidate set (subtract its mean over the N
candidates). A Bradley-Terry member is defined only up to an additive constant, and bootstrapped
members settle on very different ones: on place_block decisions the shipped scorer's members'
means differ by ~21 (std) while one member spreads the 8 candidates by ~8, so the raw variance
over members (~500) is mostly offsets, not disagreement about the candidates (~25 once centred),
and min over members is mostly "the member with the lowest constant". Centring leaves the
mean's ranking unchanged. `centre=False` gives the raw forms.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.rewards.base import RewardInputError, ScoreSet

AGGREGATORS = ("mean", "wco", "uwo")


def mean(scores: ScoreSet) -> np.ndarray:
    """(N,) mean over members."""
    return scores.members.mean(axis=0)


def centred_members(scores: ScoreSet) -> np.ndarray:
    """(K, N) member scores minus each member's mean over the N candidates."""
    return scores.members - scores.members.mean(axis=1, keepdims=True)


def wco(scores: ScoreSet, centre: bool = True) -> np.ndarray:
    """(N,) worst case: the minimum over (centred) members, shifted by the overall mean so the
    utilities stay on the scores' scale."""
    if not centre:
        return scores.members.min(axis=0)
    return centred_members(scores).min(axis=0) + scores.members.mean()


def uwo(scores: ScoreSet, lam: float = 1.0, centre: bool = True) -> np.ndarray:
    """(N,) mean - lam * variance over (centred) members (population variance; 0 for K = 1)."""
    if lam < 0:
        raise ValueError(f"uwo lambda must be >= 0, got {lam}")
    m = centred_members(scores) if centre else scores.members
    return scores.members.mean(axis=0) - lam * m.var(axis=0)


def aggregate(scores: ScoreSet, method: str = "mean", lam: float = 1.0, centre: bool = True) -> np.ndarray:
    """(N,) utilities by name: mean | wco | uwo (lam: the UWO variance weight; centre: see the
    module docstring)."""
    if method == "mean":
        return mean(scores)
    if method == "wco":
        return wco(scores, centre)
    if method == "uwo":
        return uwo(scores, lam, centre)
    raise ValueError(f"unknown aggregator '{method}'; use one of {AGGREGATORS}")


def argmax(utilities) -> int:
    """Index of the best candidate (the first one on ties); errors on empty or NaN input."""
    u = np.asarray(utilities, dtype=np.float64).reshape(-1)
    if u.size == 0:
        raise RewardInputError("argmax of an empty set of utilities")
    if not np.all(np.isfinite(u)):
        raise RewardInputError("utilities contain NaN/inf")
    return int(np.argmax(u))

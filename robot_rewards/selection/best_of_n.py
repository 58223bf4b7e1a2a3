"""Best-of-N: reward families -> one utility per candidate -> a ranking.

Each reward family (the preference ensemble, keypoint rewards, a CLIP reward, ...) scores the
N candidates as a `ScoreSet`; its ensemble members are aggregated (mean | WCO | UWO, see
`rewards.aggregate`). With several families their scales differ (Bradley-Terry logits vs
metres vs cosine similarities), so each family's utilities are z-normalised within the
candidate set before the weighted sum: a weight then says how much a family's *ranking*
counts, whatever its units.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.rewards.base import ScoreSet

ZERO_STD = 1e-12  # a family that scores every candidate the same carries no ranking information


class SelectionError(ValueError):
    """Selection inputs that cannot be ranked (missing weights, NaN utilities, wrong sizes)."""


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The weights as a plain dict, or SelectionError unless they are finite, >= 0 and not all 0."""
    if not weights:
        raise SelectionError("no reward family weights given (e.g. weights={'preference': 1.0})")
    out = {}
    for name, w in weights.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise SelectionError(f"weight of reward family '{name}' is not a number: {w!r}") from None
        if not math.isfinite(w) or w < 0:
            raise SelectionError(f"weight of reward family '{name}' must be finite and >= 0, got {w}")
        out[str(name)] = w
    if not any(w > 0 for w in out.values()):
        raise SelectionError(f"all reward family weights are 0: {out}")
    return out


def znorm(u: np.ndarray) -> np.ndarray:
    """(u - mean) / std within the candidate set (population std); zeros when std is ~0."""
    u = np.asarray(u, dtype=np.float64)
    std = u.std()
    if std < ZERO_STD:
        return np.zeros_like(u)
    return (u - u.mean()) / std


def utilities(families: Mapping[str, ScoreSet], weights: Mapping[str, float],
              aggregator: str = "mean", lam: float = 1.0) -> np.ndarray:
    """(N,) utility of every candidate.

    families: reward family name -> ScoreSet (or (K, N) / (N,) member scores). One family ->
    its aggregated utilities unchanged; several -> sum_f weights[f] * znorm(aggregate(f)).
    aggregator: mean | wco | uwo (lam: UWO's variance weight). Every family needs a weight and
    every weight a family (a typo in a config must not silently drop a reward).
    """
    if not families:
        raise SelectionError("no reward families to rank the candidates by")
    weights = check_weights(weights)
    missing = sorted(set(families) - set(weights))
    if missing:
        raise SelectionError(f"reward families {missing} have no weight; weights are given for "
                             f"{sorted(weights)}")
    absent = sorted(set(weights) - set(families))
    if absent:
        raise SelectionError(f"weights name reward families {absent} that were not scored; scored: "
                             f"{sorted(families)}")
    sets = {name: s if isinstance(s, ScoreSet) else ScoreSet.from_members(s) for name, s in families.items()}
    sizes = {name: s.n for name, s in sets.items()}
    if len(set(sizes.values())) != 1:
        raise SelectionError(f"reward families scored different numbers of candidates: {sizes}")
    agg = {name: aggregate(s, aggregator, lam) for name, s in sets.items()}
    if len(agg) == 1:
        (name, u), = agg.items()
        if weights[name] <= 0:
            raise SelectionError(f"the only reward family '{name}' has weight 0")
        return u
    return sum(weights[name] * znorm(u) for name, u in agg.items())


def rank(utilities_: np.ndarray) -> list[int]:
    """Candidate indices by descending utility; ties keep index order (stable)."""
    u = np.asarray(utilities_, dtype=np.float64)
    if u.ndim != 1:
        raise SelectionError(f"utilities must be (N,), got {u.shape}")
    if u.size == 0:
        raise SelectionError("cannot rank an empty set of utilities")
    if not np.all(np.isfinite(u)):
        bad = np.flatnonzero(~np.isfinite(u)).tolist()
        raise SelectionError(f"utilities of candidates {bad} are NaN/inf")
    return np.argsort(-u, kind="stable").tolist()


def method_order(method: str, n: int, utilities_: np.ndarray | None = None, seed: int = 0) -> list[int]:
    """The order in which `select` tries the candidates for a `SelectionConfig.method`.

    first: 0, 1, ... (candidate 0 is a plain policy rollout); random: a seeded permutation;
    best_of_n / fk_steering: by descending utility (FK steering's final particles are ranked
    like best-of-N samples).
    """
    if n < 1:
        raise SelectionError(f"no candidates to order (n={n})")
    if method == "first":
        return list(range(n))
    if method == "random":
        return np.random.default_rng(seed).permutation(n).tolist()
    if method in ("best_of_n", "fk_steering"):
        if utilities_ is None:
            raise SelectionError(f"selection method '{method}' needs utilities")
        if len(utilities_) != n:
            raise SelectionError(f"{len(utilities_)} utilities for {n} candidates")
        return rank(utilities_)
    raise SelectionError(f"unknown selection method '{method}'")

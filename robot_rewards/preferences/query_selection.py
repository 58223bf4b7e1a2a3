"""Which candidate pairs to ask a labeller about (B-Pref / PEBBLE query selection).

Criteria, from an ensemble scorer's `ScoreSet` (K members x N candidates) and Bradley-Terry
probabilities p_k = sigmoid(r_k(a) - r_k(b)):

- uniform: random pairs, no scorer needed (the first round, before any scorer exists);
- disagreement: variance over members of p_k (members disagree -> a label teaches the most);
- entropy: binary entropy (nats) of the member-mean p (the ensemble cannot call it).

A non-uniform method without scores falls back to uniform and logs it; `effective_method`
tells a caller which criterion was actually used, e.g. to record it with the labels.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from robot_rewards.preferences.teachers import all_pairs, check_pairs
from robot_rewards.rewards.base import ScoreSet

log = logging.getLogger(__name__)

METHODS = ("uniform", "disagreement", "entropy")


class QuerySelectionError(ValueError):
    """A selection request that cannot be served (unknown method, mismatched scores, n < 0)."""


def pair_probabilities(scores: ScoreSet, pairs) -> np.ndarray:
    """(K, M) per-member P(A > B) = sigmoid(r_k(a) - r_k(b)) for `pairs` (M, 2)."""
    p = check_pairs(pairs, scores.n)
    diff = scores.members[:, p[:, 0]] - scores.members[:, p[:, 1]]
    return 0.5 * (1.0 + np.tanh(0.5 * diff))  # overflow-free sigmoid


def disagreement(scores: ScoreSet, pairs) -> np.ndarray:
    """(M,) variance over ensemble members of P(A > B); 0 for a single member."""
    return pair_probabilities(scores, pairs).var(axis=0)


def entropy(scores: ScoreSet, pairs) -> np.ndarray:
    """(M,) binary entropy in nats (max ln 2 at p = 0.5) of the member-mean P(A > B)."""
    p = np.clip(pair_probabilities(scores, pairs).mean(axis=0), 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


_CRITERIA = {"disagreement": disagreement, "entropy": entropy}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise QuerySelectionError(f"unknown query selection method '{method}'; use one of {list(METHODS)}")


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise QuerySelectionError(f"{what} must be an int >= 0, got {n!r}")
    return int(n)


def effective_method(method: str, scores) -> str:
    """The criterion `select_pairs`/`select_across_queries` apply: `method`, or "uniform" when
    a scorer-based method has no scores yet."""
    _check_method(method)
    return "uniform" if method != "uniform" and scores is None else method


def _top(criterion: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k largest values, largest first, exact ties in random order."""
    order = np.lexsort((rng.random(len(criterion)), -criterion))
    return order[:k]


def select_pairs(n_candidates: int, n_pairs: int, method: str = "uniform",
                 scores: ScoreSet | None = None, rng=None) -> np.ndarray:
    """(min(n_pairs, C), 2) pairs (i < j) of `n_candidates`, C = n(n-1)/2, chosen by `method`.

    uniform: a random subset in random order; disagreement / entropy: the highest-scoring
    pairs, best first, exact ties broken by `rng`. Without `scores` those two fall back to
    uniform (logged at INFO; see `effective_method`). rng: a Generator or a seed (None =
    unseeded).
    """
    _check_method(method)
    n_candidates, n_pairs = _check_count(n_candidates, "n_candidates"), _check_count(n_pairs, "n_pairs")
    rng = np.random.default_rng(rng)
    if scores is not None and scores.n != n_candidates:
        raise QuerySelectionError(f"scores cover {scores.n} candidates, selection asked for {n_candidates}")
    pool = all_pairs(n_candidates)
    k = min(n_pairs, len(pool))
    used = effective_method(method, scores)
    if used != method:
        log.info("query selection '%s' has no scores yet (first round): choosing pairs uniformly", method)
    if used == "uniform":
        return pool[rng.permutation(len(pool))[:k]]
    return pool[_top(_CRITERIA[used](scores, pool), k, rng)]


def select_across_queries(score_sets: Sequence[ScoreSet | int], n_pairs: int, method: str = "uniform",
                          rng=None) -> list[tuple[int, int, int]]:
    """Choose `n_pairs` (query_index, a, b) with a < b from the pooled pairs of several queries.

    score_sets: one ScoreSet per query, or its candidate count (int) where no scorer exists
    yet; any int makes a scorer-based method fall back to uniform over the pool (logged).
    Ordering and tie-breaking as in `select_pairs`.
    """
    _check_method(method)
    n_pairs = _check_count(n_pairs, "n_pairs")
    rng = np.random.default_rng(rng)
    sizes = []
    for i, s in enumerate(score_sets):
        if isinstance(s, ScoreSet):
            sizes.append(s.n)
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            sizes.append(_check_count(s, f"candidate count of query {i}"))
        else:
            raise QuerySelectionError(f"query {i}: expected a ScoreSet or a candidate count, "
                                      f"got {type(s).__name__}")
    have_scores = all(isinstance(s, ScoreSet) for s in score_sets)
    used = effective_method(method, score_sets if have_scores else None)
    if used != method:
        log.info("query selection '%s' lacks scores for some queries: choosing pairs uniformly", method)

    per_query = [all_pairs(n) for n in sizes]
    if not per_query:
        return []
    qidx = np.concatenate([np.full(len(p), q, np.int64) for q, p in enumerate(per_query)])
    pool = np.concatenate(per_query)
    k = min(n_pairs, len(pool))
    if used == "uniform":
        chosen = rng.permutation(len(pool))[:k]
    else:
        crit = np.concatenate([_CRITERIA[used](s, p) for s, p in zip(score_sets, per_query)])
        chosen = _top(crit, k, rng)
    return [(int(qidx[c]), int(pool[c, 0]), int(pool[c, 1])) for c in chosen]

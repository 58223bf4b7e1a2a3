"""Rankings of a candidate set expanded into pairwise labels (as in DeformPAM).

A labeller orders some (or all) of the N candidates best first. Each ranked candidate beats
every later-ranked one and every unranked one; the unranked ones, judged "no better than the
ranked ones", are ties among themselves when `rest_equal`, else left uncompared.
"""

from __future__ import annotations

import collections
import operator
from typing import Sequence

from robot_rewards.preferences.errors import LabelError
from robot_rewards.preferences.records import checked_index

BETTER = 1.0  # label of (a, b): a better
TIE = 0.5


def check_ranking(order: Sequence[int], n: int) -> list[int]:
    """`order` as a list of ints, after checking every index is in [0, n) and none repeats."""
    try:
        n = operator.index(n)
    except TypeError:
        raise LabelError(f"number of candidates must be an integer, got {n!r}") from None
    if n < 1:
        raise LabelError(f"number of candidates must be >= 1, got {n}")
    if isinstance(order, (str, bytes)):
        raise LabelError(f"a ranking is a sequence of candidate indices, got {order!r}")
    try:
        items = list(order)
    except TypeError:
        raise LabelError(f"a ranking is a sequence of candidate indices, got {order!r}") from None
    if len(items) > n:
        raise LabelError(f"a ranking of {n} candidates lists {len(items)} indices")
    out = [checked_index(i, n, f"ranking {items!r}: index") for i in items]
    if len(set(out)) != len(out):
        dup = sorted(i for i, c in collections.Counter(out).items() if c > 1)
        raise LabelError(f"ranking {out} repeats candidate(s) {dup}")
    return out


def ranking_to_pairs(order: Sequence[int], n: int, rest_equal: bool = True) -> list[tuple[int, int, float]]:
    """Pairwise labels `(a, b, label)` of a best-first ranking of some of `n` candidates.

    label 1.0: a is better (every ranked candidate vs each later-ranked and each unranked one);
    0.5: a tie (unranked vs unranked, only when `rest_equal`). Pairs come in ranking order, then
    the ties in ascending index order. Raises LabelError on out-of-range or repeated indices.
    """
    ranked = check_ranking(order, n)
    in_ranking = set(ranked)
    rest = [i for i in range(n) if i not in in_ranking]
    pairs = [(a, b, BETTER) for k, a in enumerate(ranked) for b in ranked[k + 1:] + rest]
    if rest_equal:
        pairs += [(a, b, TIE) for k, a in enumerate(rest) for b in rest[k + 1:]]
    return pairs

"""Teachers that label preference pairs without a person: scripted from sim ground truth
(B-Pref style) and AI feedback from a reward model (RL-VLM-F style).

A teacher sees the values of the N candidates of one query and labels M index pairs (a, b)
with the `PreferencePairs` convention: 1 = A better, 0 = B better, 0.5 = tie, NaN = can't tell.

Value scale. `true_return(success, quality_m)` = float(success) - quality_m / quality_scale,
with quality the task's error in metres (lower is better) and quality_scale 0.02 m by default
(the tasks' success tolerance). One value unit is therefore "one success" or "2 cm of error";
the presets' beta and thresholds are in these units.

Rules (every `TeacherConfig` field applies at once, in B-Pref's order):

1. skip: both values below `skip_below` -> NaN (neither outcome is worth judging);
2. equal: |vA - vB| < `equal_threshold` -> 0.5;
3. rational: beta = inf (oracle) labels the higher value, an exact tie gives 0.5; finite beta
   draws label 1 with P = sigmoid(beta * (vA - vB)) (Bradley-Terry / Boltzmann-rational);
4. mistake: each label decided in 3 (0 or 1) is flipped with probability `eps`.

A teacher owns a seeded `np.random.Generator`, so the same config and the same sequence of
calls give the same labels, and it counts what it did (`stats()`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from robot_rewards.rewards.base import ScoreSet

DEFAULT_QUALITY_SCALE = 0.02  # metres of error worth one value unit (= one success)

TIE = 0.5


class TeacherConfigError(ValueError):
    """A teacher setting out of range (eps outside [0, 0.5], beta <= 0, unknown preset, ...)."""


class TeacherInputError(ValueError):
    """Values or pairs a teacher cannot label (wrong shape, NaN values, indices out of range)."""


# -- ground truth ----------------------------------------------------------------------------

def true_return(success, quality_m, quality_scale: float = DEFAULT_QUALITY_SCALE):
    """Ground-truth value of outcomes: float(success) - quality_m / quality_scale.

    quality_m is the task's error in metres (lower is better). Scalars give a float, arrays
    (broadcast together) an ndarray. Raises TeacherInputError on NaN/inf or negative quality
    and on quality_scale <= 0.
    """
    if not (math.isfinite(quality_scale) and quality_scale > 0):
        raise TeacherInputError(f"quality_scale must be a finite length > 0 (m), got {quality_scale}")
    s = np.asarray(success, dtype=np.float64)
    q = np.asarray(quality_m, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise TeacherInputError("quality contains NaN/inf: the outcome was not measured")
    if np.any(q < 0):
        raise TeacherInputError(f"quality is an error in metres and cannot be negative, got min {q.min()}")
    if not np.all((s == 0) | (s == 1)):
        raise TeacherInputError("success must be boolean (0/1)")
    v = s - q / quality_scale
    return float(v) if v.ndim == 0 else v


# -- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TeacherConfig:
    """How a rule-based teacher labels (see the module docstring for the order of the rules).

    beta: rationality; inf = oracle, finite > 0: P(A better) = sigmoid(beta * (vA - vB)).
    eps: probability in [0, 0.5] of flipping a decided label (mistake teacher).
    skip_below: if both values are below it, the pair is "can't tell" (NaN); None = never.
    equal_threshold: |vA - vB| below it is a tie (0.5); 0 = only exact ties (oracle).
    seed: seed of the teacher's random generator.
    """

    beta: float = math.inf
    eps: float = 0.0
    skip_below: float | None = None
    equal_threshold: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if math.isnan(self.beta) or self.beta <= 0:
            raise TeacherConfigError(f"beta must be > 0 (inf = oracle), got {self.beta}")
        if not 0.0 <= self.eps <= 0.5:
            raise TeacherConfigError(f"eps (mistake probability) must be in [0, 0.5], got {self.eps}")
        if self.skip_below is not None and not math.isfinite(self.skip_below):
            raise TeacherConfigError(f"skip_below must be finite or None, got {self.skip_below}")
        if not (math.isfinite(self.equal_threshold) and self.equal_threshold >= 0):
            raise TeacherConfigError(f"equal_threshold must be finite and >= 0, got {self.equal_threshold}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise TeacherConfigError(f"seed must be an int, got {self.seed!r}")


# B-Pref's standard teachers, each one departure from the oracle, in value units (module doc).
# B-Pref sets the skip/equal thresholds at 10% of a typical segment return; with returns of
# order one unit here they are set from what the units mean instead.
_PRESETS: dict[str, dict] = {
    "oracle": {},
    "stochastic": {"beta": 1.0},  # 1 unit (2 cm) better -> preferred 73% of the time
    "mistake": {"eps": 0.1},
    "skip": {"skip_below": -2.5},  # both failed and more than 5 cm from the goal
    "equal": {"equal_threshold": 0.25},  # within 5 mm of each other: indistinguishable
}
PRESETS = tuple(_PRESETS)


def teacher_preset(name: str, seed: int = 0) -> TeacherConfig:
    """The B-Pref teacher `name` (oracle, stochastic, mistake, skip, equal), or several joined
    by '+' (e.g. "stochastic+mistake": each sets its own field, so they combine)."""
    fields: dict = {}
    for part in str(name).split("+"):
        part = part.strip()
        if part not in _PRESETS:
            raise TeacherConfigError(f"unknown teacher preset '{part}'; known: {list(PRESETS)}")
        fields.update(_PRESETS[part])
    return TeacherConfig(seed=seed, **fields)


# -- pairs -----------------------------------------------------------------------------------

def all_pairs(n: int) -> np.ndarray:
    """(n(n-1)/2, 2) int64 array of every index pair (i, j) with i < j, row-major order."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise TeacherInputError(f"number of candidates must be an int >= 0, got {n!r}")
    i, j = np.triu_indices(int(n), k=1)
    return np.stack([i, j], axis=1).astype(np.int64)


def check_pairs(pairs, n: int) -> np.ndarray:
    """`pairs` as an (M, 2) int64 array of distinct indices into n candidates, or TeacherInputError."""
    p = np.asarray(pairs)
    if p.size == 0:
        return np.zeros((0, 2), np.int64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise TeacherInputError(f"pairs must be (M, 2) index pairs, got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise TeacherInputError(f"pairs must be integer indices, got dtype {p.dtype}")
    p = p.astype(np.int64)
    bad = (p < 0) | (p >= n)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))[:5].tolist()
        raise TeacherInputError(f"pair indices must be in [0, {n}); bad rows {rows}")
    same = p[:, 0] == p[:, 1]
    if same.any():
        rows = np.flatnonzero(same)[:5].tolist()
        raise TeacherInputError(f"a candidate cannot be compared with itself; rows {rows}")
    return p


def _check_values(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise TeacherInputError(f"values must be (N,) one per candidate, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        bad = np.flatnonzero(~np.isfinite(v))[:5].tolist()
        raise TeacherInputError(f"values contain NaN/inf at candidates {bad}")
    return v


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


# -- the rules -------------------------------------------------------------------------------

_STAT_KEYS = ("queried", "skipped", "ties", "decided", "flipped", "against_truth")


def apply_rules(values, pairs, config: TeacherConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Label `pairs` (M, 2) of `values` (N,) by `config`'s rules; returns labels (M,) and counts.

    Counts: queried (M), skipped (NaN), ties (0.5), decided (0/1), flipped (mistakes), and
    against_truth (decided labels that prefer the lower value, from noise or mistakes).
    Always draws 2M uniforms, so the random stream does not depend on which rules fire.
    """
    v = _check_values(values)
    p = check_pairs(pairs, len(v))
    m = len(p)
    u_choice, u_flip = rng.random(m), rng.random(m)
    va, vb = v[p[:, 0]], v[p[:, 1]]
    d = va - vb
    labels = np.full(m, np.nan)

    skipped = np.zeros(m, bool)
    if config.skip_below is not None:
        skipped = (va < config.skip_below) & (vb < config.skip_below)
    tie = ~skipped & (np.abs(d) < config.equal_threshold)
    open_ = ~skipped & ~tie
    if math.isinf(config.beta):
        tie |= open_ & (d == 0)  # an oracle cannot prefer one of two equal values
        open_ &= d != 0
        choice = d > 0
    else:
        choice = u_choice < _sigmoid(config.beta * d)
    flip = open_ & (u_flip < config.eps)
    choice = choice ^ flip
    labels[tie] = TIE
    labels[open_] = choice[open_].astype(np.float64)

    counts = {
        "queried": m,
        "skipped": int(skipped.sum()),
        "ties": int(tie.sum()),
        "decided": int(open_.sum()),
        "flipped": int(flip.sum()),
        "against_truth": int((open_ & (d != 0) & (choice != (d > 0))).sum()),
    }
    return labels, counts


# -- the family ------------------------------------------------------------------------------

@runtime_checkable
class Teacher(Protocol):
    """Labels index pairs of one query's candidates (1 A better, 0 B better, 0.5 tie, NaN skip)."""

    def label(self, values, pairs) -> np.ndarray:
        """(M,) labels of `pairs` (M, 2) given per-candidate `values` (N,)."""
        ...


class _RuleTeacher:
    """Shared machinery: a config, a seeded generator and running counts."""

    def __init__(self, config: TeacherConfig | None = None):
        self.config = config if config is not None else TeacherConfig()
        if not isinstance(self.config, TeacherConfig):
            raise TeacherConfigError(f"expected a TeacherConfig, got {type(self.config).__name__}")
        self.rng = np.random.default_rng(self.config.seed)
        self._counts = dict.fromkeys(_STAT_KEYS, 0)

    def label(self, values, pairs) -> np.ndarray:
        """(M,) labels of `pairs` (M, 2) given per-candidate `values` (N,), by the config's rules."""
        labels, counts = apply_rules(values, pairs, self.config, self.rng)
        for k, c in counts.items():
            self._counts[k] += c
        return labels

    def stats(self) -> dict:
        """Counts since construction (see `apply_rules`) plus the rates they imply:
        skip_rate and tie_rate over queried pairs, mistake_rate over decided ones."""
        c = dict(self._counts)
        q, dec = c["queried"], c["decided"]
        c["skip_rate"] = c["skipped"] / q if q else math.nan
        c["tie_rate"] = c["ties"] / q if q else math.nan
        c["mistake_rate"] = c["flipped"] / dec if dec else math.nan
        return c

    def reset_stats(self) -> None:
        """Zero the counts (the random stream goes on)."""
        self._counts = dict.fromkeys(_STAT_KEYS, 0)


class ScriptedTeacher(_RuleTeacher):
    """B-Pref scripted teacher: values are true returns of simulated outcomes."""

    def label_outcomes(self, success, quality_m, pairs,
                       quality_scale: float = DEFAULT_QUALITY_SCALE) -> np.ndarray:
        """Labels of `pairs` from each candidate's simulated outcome (success flag, error in m)."""
        values = np.atleast_1d(true_return(success, quality_m, quality_scale))
        return self.label(values, pairs)


ScoreFn = Callable[..., ScoreSet]


class RewardTeacher(_RuleTeacher):
    """AI feedback (RL-VLM-F style): a reward model's mean score is the value, labelled by the
    same rules, so a scorer can be pre-trained on machine labels before people label.

    score_fn(obs, candidates) -> ScoreSet, e.g. `KeypointScorer(...).score` or a CLIP-based
    scorer's `.score`; an object with a `.score` method is accepted as well.
    """

    def __init__(self, score_fn: ScoreFn, config: TeacherConfig | None = None):
        super().__init__(config)
        # a scorer object means its `.score`, even if it is callable itself (an nn.Module's
        # __call__ is its forward pass, not the ActionScorer interface)
        if callable(getattr(score_fn, "score", None)):
            score_fn = score_fn.score
        if not callable(score_fn):
            raise TeacherConfigError(f"score_fn must be callable (obs, candidates) -> ScoreSet, "
                                     f"got {type(score_fn).__name__}")
        self.score_fn = score_fn

    def label_query(self, obs, candidates, pairs) -> np.ndarray:
        """Score the query's candidates and label `pairs` from the mean over ensemble members."""
        scores = self.score_fn(obs, candidates)
        if not isinstance(scores, ScoreSet):
            raise TeacherInputError(f"score_fn must return a ScoreSet, got {type(scores).__name__}")
        n = len(candidates)
        if scores.n != n:
            raise TeacherInputError(f"score_fn returned {scores.n} scores for {n} candidates")
        return self.label(scores.mean, pairs)


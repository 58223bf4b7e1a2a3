"""Interfaces of reward models and the scores they return.

Two kinds of reward model:

- `StateReward.score_states(observations_or_images, goal) -> (B,) rewards`: how well a state
  (an observation or an image) matches a goal; keypoint rewards now, CLIP/VLM rewards later.
- `ActionScorer.score(obs, candidates) -> ScoreSet`: how good each of N candidate primitives is
  in the current observation, per ensemble member (K = 1 for a single model).

Every scorer validates its inputs with the helpers here, so a bad request fails with the same
clear message whatever model serves it, and NaN outputs are an error, never a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation


class RewardInputError(ValueError):
    """A request a reward model cannot score (empty candidates, no goal, no point cloud, ...)."""


class RewardModelError(RuntimeError):
    """A reward model produced unusable output (NaN/inf scores, wrong shape)."""


@dataclass(frozen=True, eq=False)
class ScoreSet:
    """Scores of N candidates by an ensemble of K members (higher is better).

    members: (K, N) per-member scores; mean, std: (N,) over members (std is the population
    standard deviation, 0 for K = 1). Build it with `ScoreSet.from_members`.
    """

    mean: np.ndarray
    members: np.ndarray
    std: np.ndarray

    def __post_init__(self):
        m = np.asarray(self.members, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
            raise RewardModelError(f"member scores must be (K, N) with K, N >= 1, got {m.shape}")
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if mean.shape != (m.shape[1],) or std.shape != (m.shape[1],):
            raise RewardModelError(f"mean {mean.shape} and std {std.shape} must be ({m.shape[1]},)")
        for name, arr in (("members", m), ("mean", mean), ("std", std)):
            if not np.all(np.isfinite(arr)):
                raise RewardModelError(f"reward model returned non-finite scores ({name} has NaN/inf)")
        object.__setattr__(self, "members", m)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def from_members(cls, members) -> ScoreSet:
        """ScoreSet of (K, N) (or (N,) for a single model) member scores; raises on NaN/inf."""
        m = np.asarray(members, dtype=np.float64)
        if m.ndim == 1:
            m = m[None]
        if m.ndim != 2:
            raise RewardModelError(f"member scores must be (K, N), got {m.shape}")
        if not np.all(np.isfinite(m)):
            bad = np.argwhere(~np.isfinite(m))[:5].tolist()
            raise RewardModelError(f"reward model returned NaN/inf scores at (member, candidate) {bad}")
        return cls(m.mean(axis=0), m, m.std(axis=0))

    @property
    def n(self) -> int:
        """Number of candidates."""
        return self.members.shape[1]

    @property
    def k(self) -> int:
        """Number of ensemble members."""
        return self.members.shape[0]

    def __len__(self) -> int:
        return self.n

    def subset(self, index) -> ScoreSet:
        """Scores of the candidates at `index` (int array or mask)."""
        return ScoreSet.from_members(self.members[:, index])


@runtime_checkable
class ActionScorer(Protocol):
    """Scores N candidate primitives for one observation (higher is better)."""

    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        """(K, N) member scores of the candidates in `obs` (goal: `obs.goal`)."""
        ...


@runtime_checkable
class StateReward(Protocol):
    """Rewards of states (observations or images) for a goal sentence."""

    def score_states(self, observations_or_images: Sequence, goal: str) -> np.ndarray:
        """(B,) rewards, one per observation/image, higher = closer to the goal."""
        ...


def score_batch(scorer: ActionScorer, requests: Sequence[tuple[Observation, Candidates]]) -> list[ScoreSet]:
    """Score many (obs, candidates) requests: one batched call if the scorer has `score_batch`,
    else one `score` per request."""
    fn = getattr(scorer, "score_batch", None)
    if fn is not None:
        return list(fn(requests))
    return [scorer.score(o, c) for o, c in requests]


# -- input checks shared by every model -------------------------------------------------------

def check_goal(goal) -> str:
    """The goal sentence, or RewardInputError if it is missing/blank."""
    if not isinstance(goal, str) or not goal.strip():
        raise RewardInputError(f"goal text is empty ({goal!r}): reward models are goal-conditioned")
    return goal


def check_candidates(candidates: Candidates, primitive: str | None = None) -> Candidates:
    """`candidates` if non-empty, finite and (optionally) of `primitive`; else RewardInputError."""
    if not isinstance(candidates, Candidates):
        raise RewardInputError(f"expected Candidates, got {type(candidates).__name__}")
    if len(candidates) == 0:
        raise RewardInputError("empty candidate set: nothing to score")
    if primitive is not None and candidates.name != primitive:
        raise RewardInputError(f"this scorer scores '{primitive}' candidates, got '{candidates.name}'")
    if not np.all(np.isfinite(candidates.params)):
        bad = np.flatnonzero(~np.all(np.isfinite(candidates.params), axis=1)).tolist()
        raise RewardInputError(f"candidates {bad} have NaN/inf parameters")
    return candidates


def check_point_cloud(obs: Observation, need_colors: bool = False, min_points: int = 1) -> None:
    """RewardInputError unless `obs` carries a finite (P, 3) cloud (with matching colours)."""
    if not isinstance(obs, Observation):
        raise RewardInputError(f"expected an Observation, got {type(obs).__name__}")
    if obs.points is None:
        raise RewardInputError(
            "observation has no point cloud: build it with perceive(...) or TabletopEnv(perception=...)")
    pts = np.asarray(obs.points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise RewardInputError(f"point cloud must be (P, 3), got {pts.shape}")
    if len(pts) < min_points:
        raise RewardInputError(f"point cloud has {len(pts)} points, fewer than {min_points}")
    if not np.all(np.isfinite(pts)):
        raise RewardInputError(f"point cloud has {int((~np.isfinite(pts).all(axis=1)).sum())} NaN/inf points")
    if need_colors:
        if obs.colors is None:
            raise RewardInputError("this model uses colour but the observation's cloud has no colours")
        if np.shape(obs.colors) != pts.shape:
            raise RewardInputError(f"colours {np.shape(obs.colors)} do not match points {pts.shape}")

"""Best-of-N by predicted outcome: each candidate scored by what the task's measures are predicted
to read on the cloud after it (`OutcomeModelScorer`, the registry's `outcome` family)."""

from __future__ import annotations

import os

import numpy as np
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardInputError, ScoreSet, check_candidates, check_point_cloud
from robot_rewards.rewards.outcome.model import OutcomeCheckpoint, load_outcome_model


class OutcomeModelScorer:
    """`ActionScorer` from an outcome model: member k's score of a candidate is the task's score
    (`CloudOutcome.score`) of member k's predicted measures, so the ensemble's spread is the
    model's uncertainty. Scores only clouds of the model's task, for its primitive."""

    def __init__(self, checkpoint: OutcomeCheckpoint):
        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.outcome = checkpoint.outcome

    def predict(self, obs: Observation, candidates: Candidates) -> np.ndarray:
        """(K, N, M) predicted measures of the cloud after each candidate."""
        check_candidates(candidates, self.checkpoint.primitive)
        check_point_cloud(obs, min_points=2)
        try:
            x = self.outcome.inputs(obs.points, candidates.params, obs.colors, obs.goal)
        except ValueError as exc:
            raise RewardInputError(f"outcome model ({self.checkpoint.task}): {exc}") from exc
        return self.model.predict(x)

    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        pred = self.predict(obs, candidates)
        return ScoreSet.from_members(np.stack([self.outcome.score(p) for p in pred]))


def load_outcome_scorer(path: str | os.PathLike, primitive: str | None = None,
                        device: str | torch.device = "cpu") -> OutcomeModelScorer:
    """The registry's loader: an `OutcomeScorer` from an outcome-model file."""
    ckpt = load_outcome_model(path, device=str(device))
    if primitive is not None and ckpt.primitive != primitive:
        raise RewardInputError(f"{ckpt.path} predicts outcomes of '{ckpt.primitive}' actions, not '{primitive}'")
    return OutcomeModelScorer(ckpt)

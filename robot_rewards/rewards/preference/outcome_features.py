"""Candidate features from a learned outcome model (`ScorerConfig.outcome_model`).

The outcome model (`robot_rewards.rewards.outcome`) was trained without labels on the robot's own
transitions to predict what the task's measures will read on the cloud after a candidate. Its
predictions (ensemble mean and spread per measure) are what a preference head then weighs: a few
weights to learn from labels instead of the rope's physics (the rope scorer on patches stayed at
57% on clearly different pairs from 500 labels; docs/experiments.md).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from robot_rewards.core.paths import resolve
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.rewards.outcome.model import load_outcome_model, task_outcome


class OutcomeFeaturizer:
    """Per-candidate features [mean of each predicted measure, their spread over members].

    Like the keypoint model, the outcome model is not part of the scorer's weights: the scorer
    names the file and its weights' SHA-256 is checked when the scorer loads."""

    def __init__(self, path: str):
        self.path = str(path)
        ckpt = load_outcome_model(resolve(path))
        self.model, self.task, self.primitive = ckpt.model, ckpt.task, ckpt.primitive
        self.outcome = task_outcome(ckpt.task)
        self.sha256 = str(ckpt.meta.get("weights_sha256", ""))

    @property
    def dim(self) -> int:
        return 2 * len(self.outcome.measure_names)

    def features(self, points: np.ndarray, params: np.ndarray) -> torch.Tensor:
        """(N, dim) float32 features of N candidates (N, D) in one cloud (P, 3)."""
        try:
            x = self.outcome.inputs(np.asarray(points), np.asarray(params))
        except ValueError as exc:
            raise RewardInputError(f"outcome features ({self.path}): {exc}") from exc
        pred = self.model.predict(x)  # (K, N, M)
        return torch.as_tensor(np.concatenate([pred.mean(axis=0), pred.std(axis=0)], axis=1), dtype=torch.float32)

    def pair_features(self, points: np.ndarray, params_a: np.ndarray, params_b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, dim) features of both sides of M pairs; pairs from the same cloud (several pairs
        are labelled per decision) share one reading of it and one model call."""
        groups: dict[bytes, list[int]] = {}
        for i, cloud in enumerate(points):
            groups.setdefault(hashlib.blake2b(np.ascontiguousarray(cloud).tobytes(), digest_size=16).digest(), []).append(i)
        fa = torch.empty((len(points), self.dim))
        fb = torch.empty((len(points), self.dim))
        for rows in groups.values():
            f = self.features(points[rows[0]], np.concatenate([params_a[rows], params_b[rows]]))
            fa[rows], fb[rows] = f[:len(rows)], f[len(rows):]
        return fa, fb

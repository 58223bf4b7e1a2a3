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
from robot_rewards.rewards.outcome.model import load_outcome_model


class OutcomeFeaturizer:
    """Per-candidate features [mean of each predicted measure, their spread over members, and
    for each signed measure (`CloudOutcome.signed_measures`) the probability that it ends
    positive]. That probability is Phi(mean / sigma), sigma combining the members' spread with
    the model's held-out error on that measure: a linear head cannot turn a predicted offset into
    "which side of the target" (a person's "in the half nearest me"), a step it can weigh.

    Like the keypoint model, the outcome model is not part of the scorer's weights: the scorer
    names the file and its weights' SHA-256 is checked when the scorer loads."""

    def __init__(self, path: str):
        self.path = str(path)
        ckpt = load_outcome_model(resolve(path))
        self.model, self.task, self.primitive = ckpt.model, ckpt.task, ckpt.primitive
        self.outcome = ckpt.outcome
        self.sha256 = str(ckpt.meta.get("weights_sha256", ""))
        names = list(self.outcome.measure_names)
        self.signed = [names.index(n) for n in self.outcome.signed_measures]
        mae = (ckpt.meta.get("training") or {}).get("val_mae") or {}
        self.error = np.array([float(mae.get(names[j], 0.0)) for j in self.signed])

    @property
    def dim(self) -> int:
        return 2 * len(self.outcome.measure_names) + len(self.signed)

    def features(self, points: np.ndarray, params: np.ndarray, colors: np.ndarray | None = None,
                 goal: str = "") -> torch.Tensor:
        """(N, dim) float32 features of N candidates (N, D) in one cloud (P, 3)."""
        try:
            x = self.outcome.inputs(np.asarray(points), np.asarray(params), colors, goal)
        except ValueError as exc:
            raise RewardInputError(f"outcome features ({self.path}): {exc}") from exc
        pred = self.model.predict(x)  # (K, N, M)
        mean, spread = pred.mean(axis=0), pred.std(axis=0)
        parts = [mean, spread]
        if self.signed:
            sigma = np.sqrt(spread[:, self.signed] ** 2 + self.error ** 2) + 1e-6
            z = torch.as_tensor(mean[:, self.signed] / (sigma * np.sqrt(2.0)))
            parts.append(0.5 * (1.0 + torch.special.erf(z).numpy()))
        return torch.as_tensor(np.concatenate(parts, axis=1), dtype=torch.float32)

    def pair_features(self, points: np.ndarray, params_a: np.ndarray, params_b: np.ndarray,
                      colors: np.ndarray | None = None, goals=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, dim) features of both sides of M pairs; pairs from the same cloud (several pairs
        are labelled per decision) share one reading of it and one model call."""
        groups: dict[bytes, list[int]] = {}
        for i, cloud in enumerate(points):
            groups.setdefault(hashlib.blake2b(np.ascontiguousarray(cloud).tobytes(), digest_size=16).digest(), []).append(i)
        fa = torch.empty((len(points), self.dim))
        fb = torch.empty((len(points), self.dim))
        for rows in groups.values():
            i = rows[0]
            f = self.features(points[i], np.concatenate([params_a[rows], params_b[rows]]),
                              None if colors is None else colors[i], "" if goals is None else goals[i])
            fa[rows], fb[rows] = f[:len(rows)], f[len(rows):]
        return fa, fb

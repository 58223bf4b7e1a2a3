"""Candidate features relative to learned keypoints (`ScorerConfig.keypoint_model`).

A scorer that must discover from a few hundred labels that "the pick should be on the rope end
nearer its mark and the place on that mark" learns slowly from raw coordinates and patches.
A keypoint model trained without labels (sim ground truth at training time, the observed cloud
only at run time; nothing privileged) already says where the objects and their targets are, so
the head gets, per keypoint k, the candidate's first point relative to object k and its second
point relative to target k (pick -> place; push start -> end), their distances, and the analytic
keypoint score. Preferences then only have to weigh these (RAPL / REED: label efficiency from a
representation that already carries the task's structure).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from robot_rewards.core.paths import resolve
from robot_rewards.rewards.keypoints.io import load_keypoint_model
from robot_rewards.rewards.keypoints.net import predict_keypoints

SCALE = 0.1  # m: offsets and distances are given in units of 10 cm


def keypoint_feature_dim(n_keypoints: int) -> int:
    """Features per candidate: 3 + 3 offsets and 2 distances per keypoint, and the analytic score."""
    return 8 * n_keypoints + 1


def candidate_keypoint_features(objects: torch.Tensor, targets: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, N, 8K + 1) features of N candidates per observation.

    objects, targets: (B, K, 3) keypoints; points: (B, N, Q, 3) the candidates' points in metres
    (Q >= 2: the first is judged against the objects, the second against the targets)."""
    first, second = points[:, :, 0, None], points[:, :, 1, None]  # (B, N, 1, 3)
    d_obj = (first - objects[:, None]) / SCALE  # (B, N, K, 3)
    d_tgt = (second - targets[:, None]) / SCALE
    n_obj, n_tgt = d_obj.norm(dim=-1), d_tgt.norm(dim=-1)  # (B, N, K)
    score = -(n_obj + n_tgt).min(dim=-1).values  # the analytic keypoint score (one keypoint pair at a time)
    b, n = points.shape[:2]
    return torch.cat([d_obj.reshape(b, n, -1), d_tgt.reshape(b, n, -1), n_obj, n_tgt, score[..., None]], dim=-1)


class KeypointFeaturizer:
    """Keypoints of observed clouds from a keypoint-model file, and candidate features at them.

    The model is not part of the scorer's weights: the scorer names the file (and its weights'
    SHA-256 is checked when the scorer loads), so one keypoint model serves many scorers."""

    def __init__(self, path: str):
        self.path = str(path)
        ckpt = load_keypoint_model(resolve(path))
        self.model = ckpt.model.eval()
        self.task = ckpt.task
        self.sha256 = str(ckpt.meta.get("weights_sha256", ""))
        self.n_keypoints = int(self.model.config.n_keypoints)

    @property
    def dim(self) -> int:
        return keypoint_feature_dim(self.n_keypoints)

    @torch.no_grad()
    def keypoints(self, points: np.ndarray, colors: np.ndarray | None, goals: Sequence[str],
                  batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, K, 3) object and target keypoints of M clouds (float32, CPU)."""
        objs, tgts = [], []
        for s in range(0, len(goals), batch):
            sl = slice(s, s + batch)
            o, t = predict_keypoints(self.model, points[sl], None if colors is None else colors[sl], list(goals[sl]))
            objs.append(o)
            tgts.append(t)
        return (torch.as_tensor(np.concatenate(objs), dtype=torch.float32),
                torch.as_tensor(np.concatenate(tgts), dtype=torch.float32))

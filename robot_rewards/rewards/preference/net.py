"""One preference-scorer member: r(point cloud, goal, candidate params) -> scalar.

Observation side (reused from the policy): `VocabGoalEncoder` turns the goal sentence into a
feature; the goal-FiLM `PointEncoder` turns the cloud into a feature (its attention pools also
report where the goal's objects are, which is what a place point is judged against). Candidate
side: parameters normalised by `workspace_normalizer` (points -> [-1, 1] over the workspace
box, the gripper yaw -> (cos 2yaw, sin 2yaw), as the policy's ActionNormalizer does). An MLP
over [obs feature, goal feature, candidate] gives the score.

Local patches (config.local_k > 0): for each xyz point of a candidate (pick and place, or push
start and end) the k nearest cloud points within a radius, relative to that point, with their
colours, go through a small PointNet; these features join the head's input. A global scene
feature learned from a few hundred labels generalises poorly to new scenes; what lies under
the gripper at the pick and at the place does.

The observation is encoded once per observation and broadcast over its N candidates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from robot_rewards.core.primitives import PRIMITIVE_SPECS, Workspace
from robot_rewards.nn.encoders import LocalPatchEncoder, PointEncoder, VocabGoalEncoder
from robot_rewards.nn.normalizer import ActionNormalizer, feature_names
from robot_rewards.rewards.preference.config import ScorerConfig


def workspace_normalizer(primitive: str, workspace: Workspace | None = None) -> ActionNormalizer:
    """An ActionNormalizer fixed by the workspace box (not fitted to data), so a scorer trained
    on few labels still maps any candidate the policy can propose into [-1, 1]."""
    if primitive not in PRIMITIVE_SPECS:
        raise ValueError(f"unknown primitive '{primitive}'; known: {sorted(PRIMITIVE_SPECS)}")
    ws = workspace or Workspace()
    spec = PRIMITIVE_SPECS[primitive]
    low, high = [], []
    for name in feature_names(spec):
        if name.startswith(("cos_k_", "sin_k_")):
            low.append(-1.0)
            high.append(1.0)
        else:
            axis = "xyz".index(name[-1])
            low.append(ws.low[axis])
            high.append(ws.high[axis])
    return ActionNormalizer(primitive, np.array(low), np.array(high))


def candidate_points(primitive: str, params) -> torch.Tensor:
    """(..., Q, 3) float32: the xyz points of candidates (..., D) of `primitive`, in metres."""
    spec = PRIMITIVE_SPECS[primitive]
    p = torch.as_tensor(np.asarray(params, dtype=np.float32)) if not torch.is_tensor(params) else params.float()
    idx = [spec.param_names.index(f"{name}_x") for name in spec.points]
    return torch.stack([p[..., i:i + 3] for i in idx], dim=-2)


class ScorerNet(nn.Module):
    """One ensemble member (see the module docstring)."""

    def __init__(self, config: ScorerConfig, action_dim: int, vocab: Sequence[str],
                 workspace: Workspace | None = None, n_action_points: int = 2, keypoint_dim: int = 0):
        """keypoint_dim > 0: the head also reads that many keypoint features per candidate."""
        super().__init__()
        self.keypoint_dim = int(keypoint_dim)
        self.config = config
        self.goal_encoder = VocabGoalEncoder(vocab, config.token_dim, config.max_goal_tokens, config.goal_dim)
        self.point_encoder = PointEncoder(config.point_channels, config.goal_dim, config.obs_dim,
                                          config.attention_heads, config.use_rgb, workspace or Workspace(),
                                          config.token_dim if config.word_attention else 0,
                                          config.max_goal_tokens, config.neighbourhood_radius)
        self.local = (LocalPatchEncoder(config.local_k, config.local_radius, config.local_channels, config.use_rgb)
                      if config.local_k > 0 else None)
        local_dim = self.local.out_dim * n_action_points if self.local is not None else 0
        obs_dim = config.obs_dim if config.use_global else 0
        action_dim = action_dim if config.use_actions else 0
        dims = [obs_dim + config.goal_dim + action_dim + local_dim + self.keypoint_dim] + [config.hidden] * config.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        layers.append(nn.Linear(dims[-1], 1))
        self.head = nn.Sequential(*layers)

    def encode(self, points: torch.Tensor, colors: torch.Tensor | None, goal_ids: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim + goal_dim) context of B observations (goal_dim only without the global feature)."""
        g = self.goal_encoder(goal_ids)
        if not self.config.use_global:
            return g
        tokens = mask = None
        if self.point_encoder.max_tokens:
            tokens, mask = self.goal_encoder.token_features(goal_ids)
        return torch.cat([self.point_encoder(points, colors, g, tokens, mask), g], dim=-1)

    def local_features(self, points: torch.Tensor, colors: torch.Tensor | None,
                       action_points: torch.Tensor) -> torch.Tensor:
        """(B, N, Q * C) patch features of N candidates' Q points (B, N, Q, 3) in clouds (B, P, 3)."""
        bsz, n, q, _ = action_points.shape
        f = self.local(points, colors, action_points.reshape(bsz, n * q, 3))
        return f.reshape(bsz, n, -1)

    def score_context(self, context: torch.Tensor, actions: torch.Tensor, local: torch.Tensor | None = None,
                      keypoint: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, N) of N normalised candidates (B, N, F) under contexts (B, C); local: their
        patch features (B, N, L) when the member uses them; keypoint: their keypoint features."""
        c = context[:, None].expand(-1, actions.shape[1], -1)
        parts = [c] + ([actions] if self.config.use_actions else []) + ([local] if local is not None else [])
        if self.keypoint_dim:
            if keypoint is None:
                raise ValueError("this scorer reads keypoint features: pass them")
            parts.append(keypoint)
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)

    def forward(self, points, colors, goal_ids, actions, action_points=None, keypoint=None) -> torch.Tensor:
        """Scores (B, N); action_points (B, N, Q, 3) in metres, needed when local patches are on;
        keypoint (B, N, keypoint_dim) when the member reads keypoint features."""
        local = None
        if self.local is not None:
            if action_points is None:
                raise ValueError("this scorer uses local patches: pass the candidates' points")
            local = self.local_features(points, colors, action_points)
        return self.score_context(self.encode(points, colors, goal_ids), actions, local, keypoint)

"""Picks that are a choice among the observed cloud's points (`PolicyConfig.pick_on_cloud`).

A diffusion policy regressing pick coordinates puts many picks beside a thin object (a rope: 15%
of first picks within 3 cm of an end, the expert 85%). DeformPAM snaps each primitive point to the
nearest observed point; Transporter/CLIPort pick as a distribution over pixels. Here a per-point
head scores every cloud point (from the encoder's per-point features and the pooled scene
feature), each candidate draws its pick point from the softmax with its own seed, and the
diffusion model fills in the rest of the primitive (place, yaw, heights) conditioned on that
pick (it trains with the demonstrated pick given clean). Distinct modes survive: two rope ends
are two peaks of one distribution.

Training target: a Gaussian (width `pick_sigma`) over the points around the demonstrated pick,
normalised over the cloud (the nearest points always get the mass, even when the pick lies off
the cloud), and the loss is its cross-entropy with the head's softmax.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class PickHead(nn.Module):
    """Per-point logits (B, P) from per-point features (B, P, C), the normalised points
    (B, P, 3) and a per-row conditioning vector (B, D): the pooled observation feature for the
    pick; that and the chosen pick (normalised xyz) for the place."""

    def __init__(self, point_dim: int, obs_dim: int, width: int = 128):
        super().__init__()
        self.scene = nn.Linear(obs_dim, width)
        self.point = nn.Linear(point_dim + 3, width)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, h: torch.Tensor, xyz: torch.Tensor, scene: torch.Tensor) -> torch.Tensor:
        return self.out(self.point(torch.cat([h, xyz], dim=-1)) + self.scene(scene)[:, None]).squeeze(-1)


def pick_targets(points: torch.Tensor, picks: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, P) target distribution over the points: Gaussian in the table plane around each
    demonstrated pick (B, 3), normalised per row."""
    d2 = ((points[..., :2] - picks[:, None, :2]) ** 2).sum(-1)
    return torch.softmax(-d2 / (2 * sigma**2), dim=1)


def pick_loss(logits: torch.Tensor, points: torch.Tensor, picks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Cross-entropy of the head's softmax with `pick_targets`, averaged over the batch."""
    target = pick_targets(points, picks, sigma)
    return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()


def draw_points(logits: torch.Tensor, gens: Sequence[torch.Generator], temperature: float = 1.0) -> torch.Tensor:
    """One point index per generator from softmax(logits / temperature) of ONE cloud (P,); row i
    uses only gens[i], so a candidate's pick does not depend on how many are drawn with it."""
    p = torch.softmax(logits.double().cpu() / max(temperature, 1e-6), dim=0)
    cdf = torch.cumsum(p, 0)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in gens]) * cdf[-1]
    return torch.searchsorted(cdf, u).clamp(max=len(p) - 1)

"""The noise-prediction network: a residual MLP over the normalised action vector.

Primitive parameters are a short vector (6-8 numbers), not a trajectory, so a 1D U-Net
(Chi et al.) has nothing to convolve over; a residual MLP with FiLM conditioning on
[observation feature, goal feature, timestep embedding] is the equivalent for this shape.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robot_rewards.nn.encoders import Film


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of integer timesteps (Vaswani et al. / Ho et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(emb, (0, dim % 2))


class ResidualBlock(nn.Module):
    """LayerNorm -> Linear -> FiLM(cond) -> GELU -> Linear, added back to the input."""

    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.film = Film(cond_dim, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.gelu(self.film(self.fc1(self.norm(h)), cond)))


class Denoiser(nn.Module):
    """eps_hat = f(x_t, t, cond): x_t (B, action_dim), t (B,) long, cond (B, cond_dim)."""

    def __init__(self, action_dim: int, cond_dim: int, width: int = 256, blocks: int = 3, time_dim: int = 64,
                 local_dim: int = 0):
        """local_dim > 0: forward also takes (B, local_dim) features that depend on x itself (the
        cloud around the noisy candidate's points); they join x at the input."""
        super().__init__()
        self.time_dim = time_dim
        self.cond = nn.Sequential(nn.Linear(cond_dim + time_dim, width), nn.GELU(), nn.Linear(width, width))
        self.inp = nn.Linear(action_dim + local_dim, width)
        self.local_dim = local_dim
        self.blocks = nn.ModuleList(ResidualBlock(width, width) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, action_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                local: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond(torch.cat([cond, timestep_embedding(t, self.time_dim)], dim=-1))
        if self.local_dim:
            if local is None:
                raise ValueError("this denoiser reads local patches: pass local")
            x = torch.cat([x, local], dim=-1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)

"""Planar data augmentation: one random turn about the vertical axis and one shift per sample,
applied to the point cloud and to the action alike.

Why: with a few hundred demonstrations the network can memorise each training scene's answer
from its global shape instead of finding the named object, and then fails on every new scene.
Moving the whole scene, cloud and action together, keeps every demonstration physically valid
(the table is flat and the task does not care where on it things are) while making
memorisation impossible: the only way to predict the action is to locate the objects.

Angles follow the gripper: the fingers close along the direction pi/2 - yaw (see
`robots.kinematics.down_quat`), so turning the scene by theta changes the yaw by -theta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robot_rewards.core.primitives import PrimitiveSpec


@dataclass(frozen=True)
class PlanarAugmentation:
    """Turn by U(-max_rotation, max_rotation) about the vertical line through `centre`, then
    shift by U(-max_shift, max_shift) in x and y (metres, radians)."""

    max_rotation: float = math.pi
    max_shift: float = 0.05
    centre: tuple[float, float] = (0.5, 0.0)

    @property
    def enabled(self) -> bool:
        return self.max_rotation > 0 or self.max_shift > 0

    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(angles (n,), shifts (n, 2)) drawn from `gen` (on the CPU, so runs are reproducible)."""
        theta = (2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1) * self.max_rotation
        shift = (2 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 1) * self.max_shift
        return theta, shift

    @staticmethod
    def turn(vectors: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Per-point vectors (B, P, 3) (e.g. neighbourhood offsets) turned with their samples'
        clouds; shifts do not move vectors."""
        c, s = torch.cos(theta).to(vectors), torch.sin(theta).to(vectors)
        out = vectors.clone()
        x, y = vectors[..., 0], vectors[..., 1]
        out[..., 0] = c[:, None] * x - s[:, None] * y
        out[..., 1] = s[:, None] * x + c[:, None] * y
        return out

    def apply(self, points: torch.Tensor, params: torch.Tensor, spec: PrimitiveSpec,
              theta: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move clouds (B, P, 3) and primitive parameters (B, D) by per-sample turns and shifts."""
        dev = points.device
        c, s = torch.cos(theta), torch.sin(theta)
        rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)
        centre = torch.tensor(self.centre, dtype=torch.float64)

        def move(xy: torch.Tensor) -> torch.Tensor:  # (B, ..., 2) float64 on the CPU
            flat = xy.reshape(xy.shape[0], -1, 2) - centre
            out = torch.einsum("bij,bpj->bpi", rot, flat) + centre + shift[:, None]
            return out.reshape(xy.shape)

        pts = points.clone()
        pts[..., :2] = move(points[..., :2].double().cpu()).to(dev, points.dtype)
        out = params.clone()
        names = spec.param_names
        for point in spec.points:
            i = names.index(f"{point}_x")
            out[:, i:i + 2] = move(params[:, i:i + 2].double().cpu()).to(params.device, params.dtype)
        for angle in spec.angles:
            j = names.index(angle)
            out[:, j] = params[:, j] - theta.to(params.device, params.dtype)
        return pts, out

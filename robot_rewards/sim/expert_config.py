"""Scripted-expert imperfections, so recorded demos look like imperfect human demos."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class ExpertConfig:
    """`noise` scales every imperfection at once: 0 gives the clean expert, 1 the defaults.

    - position jitter: noise * pos_std metres (Gaussian, per coordinate);
    - yaw jitter: noise * yaw_std radians;
    - deliberately poor actions (wrong target, wrong direction): probability noise * poor_rate.
    `multimodal` makes the expert choose among several valid grasps/placements at random.
    """

    noise: float = 1.0
    pos_std: float = 0.004
    yaw_std: float = 0.08
    poor_rate: float = 0.1
    multimodal: bool = True


def expert_config(cfg) -> ExpertConfig:
    """The ExpertConfig part of a command config that extends it."""
    return ExpertConfig(**{f.name: getattr(cfg, f.name) for f in fields(ExpertConfig)})

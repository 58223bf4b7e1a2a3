"""Structured (hydra) configs of candidate selection: best-of-N and FK steering.

Plain dataclasses with `default_factory` for nested/mutable fields (hydra's structured
configs need that); the checks in `__post_init__` run whenever a config object is built
(directly, or by `OmegaConf.to_object` after the overrides are applied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional

from robot_rewards.rewards.aggregate import AGGREGATORS
from robot_rewards.selection.best_of_n import check_weights

METHODS = ("first", "random", "best_of_n", "fk_steering")
POTENTIALS = ("difference", "immediate", "max")
RESAMPLERS = ("systematic", "multinomial")


@dataclass
class FKSteeringConfig:
    """Feynman-Kac steering of the policy's DDIM sampler (Singhal et al. 2025).

    particles: K samples denoised together (nfe = steps * K, the same as best-of-K).
    resample_every: resample after every this many denoising steps (never after the last one,
        whose clean-sample prediction is the final sample); 0 = never, i.e. plain best-of-K.
    lam: the potentials' inverse temperature: exp(lam * reward-term).
    potential: difference exp(lam (r_t - r_prev)) | immediate exp(lam r_t) | max exp(lam max_s r_s).
    eta: DDIM noise. With eta = 0 the sampler is deterministic and resampled copies of a
        particle stay identical forever, so steering needs eta > 0 to explore around the copies.
    steps: DDIM steps; None = the policy's `inference_steps`.
    """

    particles: int = 8
    resample_every: int = 2
    lam: float = 10.0
    potential: str = "difference"
    resampling: str = "systematic"
    eta: float = 1.0
    steps: Optional[int] = None

    def __post_init__(self):
        if self.particles < 1:
            raise ValueError(f"fk.particles must be >= 1, got {self.particles}")
        if self.resample_every < 0:
            raise ValueError(f"fk.resample_every must be >= 0 (0 = never), got {self.resample_every}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ValueError(f"fk.lam must be a finite number >= 0, got {self.lam}")
        if self.potential not in POTENTIALS:
            raise ValueError(f"unknown fk.potential '{self.potential}'; use one of {POTENTIALS}")
        if self.resampling not in RESAMPLERS:
            raise ValueError(f"unknown fk.resampling '{self.resampling}'; use one of {RESAMPLERS}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"fk.eta must be in [0, 1], got {self.eta}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"fk.steps must be >= 1 (or None for the policy's), got {self.steps}")


@dataclass
class SelectionConfig:
    """How one candidate is chosen from the policy's N.

    method: first (candidate 0) | random (seeded) | best_of_n (rank by utility) | fk_steering
        (steer the sampler, then rank its final particles by utility).
    aggregator: mean | wco | uwo over ensemble members (`rewards.aggregate`); uwo_lambda: UWO's
        variance weight.
    weights: reward family name -> weight. Several families are z-normalised within the
        candidate set before the weighted sum (their scales differ); every family scored must
        have a weight, and every weight a family.
    check_feasibility: walk down the ranking until a candidate passes the checks (workspace,
        table clearance, IK); False = take the top candidate as it is.
    table_clearance: metres the gripper's fingertips must stay above the table top.
    """

    method: str = "best_of_n"
    aggregator: str = "mean"
    uwo_lambda: float = 1.0
    weights: Dict[str, float] = field(default_factory=lambda: {"preference": 1.0})
    check_feasibility: bool = True
    table_clearance: float = 0.0
    fk: FKSteeringConfig = field(default_factory=FKSteeringConfig)

    def __post_init__(self):
        check_weights(self.weights)
        if self.method not in METHODS:
            raise ValueError(f"unknown selection method '{self.method}'; use one of {METHODS}")
        if self.aggregator not in AGGREGATORS:
            raise ValueError(f"unknown aggregator '{self.aggregator}'; use one of {AGGREGATORS}")
        if not math.isfinite(self.uwo_lambda) or self.uwo_lambda < 0:
            raise ValueError(f"uwo_lambda must be a finite number >= 0, got {self.uwo_lambda}")
        if not math.isfinite(self.table_clearance) or self.table_clearance < 0:
            raise ValueError(f"table_clearance must be >= 0 metres, got {self.table_clearance}")

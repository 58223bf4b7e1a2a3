"""Structured (hydra) config of `robot-rewards bench selection`: best-of-K vs FK steering.

Kept apart from `bench/selection.py` (which imports torch, the policy and the simulator) so the
CLI can list and parse commands without loading any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from robot_rewards.selection.config import POTENTIALS, RESAMPLERS, FKSteeringConfig
from robot_rewards.sim.config import SimConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class FKSetting:
    """One FK-steering variant compared (the rest comes from the bench config: K, eta, steps)."""

    resample_every: int = 1
    lam: float = 1.0
    potential: str = "difference"


def _default_fk() -> List[FKSetting]:
    # The shipped scorer's ensemble means spread by ~1-3 logits within a candidate set, so lam = 1
    # keeps several particles alive and lam = 3 is already close to greedy (ESS near 1).
    return [FKSetting(1, 1.0, "difference"), FKSetting(1, 3.0, "difference"),
            FKSetting(3, 1.0, "difference"), FKSetting(1, 1.0, "max")]


@dataclass
class BenchSelectionConfig:
    """`robot-rewards bench selection`: best-of-K vs FK steering at equal denoiser evaluations.

    For each of `scenes` held-out scenes (seeds `seed`, seed+1, ...) and each K in `particles`:
    best-of-K (K plain samples, argmax of the scorer's aggregated ensemble) for every eta in
    `best_of_k_eta`, and FK steering with K particles for every entry of `fk`, argmax of the
    final particles. All use steps * K denoiser evaluations and the same candidate seeds. The
    chosen candidate of every method is executed once from the scene (what-if rollout) for its
    true success and final error.

    fk on the command line: fk='[{resample_every:1,lam:1.0,potential:difference}]'.
    """

    policy: str = "checkpoints/policy_place_block.json"
    scorer: str = "checkpoints/scorer_place_block.json"
    scenes: int = 30
    seed: int = 100_000
    particles: List[int] = field(default_factory=lambda: [4, 8])
    best_of_k_eta: List[float] = field(default_factory=lambda: [0.0, 1.0])  # 0 = the shipped sampler
    fk: List[FKSetting] = field(default_factory=_default_fk)
    eta: float = 1.0  # DDIM noise of the FK runs (steering needs eta > 0)
    resampling: str = "systematic"
    steps: Optional[int] = None  # DDIM steps; None = the policy's inference_steps
    aggregator: str = "mean"  # of the scorer's ensemble: mean | wco | uwo
    uwo_lambda: float = 1.0
    device: str = "auto"
    torch_threads: Optional[int] = None
    progress: bool = True
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("bench-selection")

    def __post_init__(self):
        if self.scenes < 1:
            raise ValueError(f"scenes must be >= 1, got {self.scenes}")
        if not self.particles or min(self.particles) < 1:
            raise ValueError(f"particles must list K >= 1, got {self.particles}")
        if not self.best_of_k_eta and not self.fk:
            raise ValueError("nothing to compare: best_of_k_eta and fk are both empty")
        for eta in self.best_of_k_eta:
            if not 0.0 <= eta <= 1.0:
                raise ValueError(f"best_of_k_eta values must be in [0, 1], got {eta}")
        if self.resampling not in RESAMPLERS:
            raise ValueError(f"unknown resampling '{self.resampling}'; use one of {RESAMPLERS}")
        for s in self.fk:
            if s.potential not in POTENTIALS:
                raise ValueError(f"unknown fk potential '{s.potential}'; use one of {POTENTIALS}")
            self.fk_config(s, 1)  # FKSteeringConfig checks the rest (lam, resample_every, eta, steps)

    def fk_config(self, setting: FKSetting, k: int) -> FKSteeringConfig:
        """The FKSteeringConfig of one FK variant with K particles."""
        return FKSteeringConfig(particles=k, resample_every=setting.resample_every, lam=setting.lam,
                                potential=setting.potential, resampling=self.resampling, eta=self.eta,
                                steps=self.steps)

    def best_of_k_config(self, eta: float, k: int) -> FKSteeringConfig:
        """Plain best-of-K sampling as an FKSteeringConfig (no resampling)."""
        return FKSteeringConfig(particles=k, resample_every=0, eta=eta, steps=self.steps)

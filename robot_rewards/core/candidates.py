"""N candidate primitives proposed for one decision (by a policy, or a random baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.core.primitives import PRIMITIVE_SPECS, Primitive


@dataclass(eq=False)
class Candidates:
    """`params[i]` is candidate i of primitive `name` (layout: `PRIMITIVE_SPECS[name]`).

    seeds: the noise seed each candidate was sampled from (re-sampling with `seeds=[s]` gives
    the same candidate again); clipped: True where a sampled point left the workspace box and
    was clipped back into it (such a candidate is not what the model proposed).
    """

    name: str
    params: np.ndarray  # (N, D) float64
    seeds: np.ndarray  # (N,) int64
    clipped: np.ndarray  # (N,) bool

    def __post_init__(self):
        if self.name not in PRIMITIVE_SPECS:
            raise ValueError(f"unknown primitive '{self.name}'; known: {sorted(PRIMITIVE_SPECS)}")
        dim = PRIMITIVE_SPECS[self.name].dim
        self.params = np.asarray(self.params, dtype=np.float64).reshape(-1, dim)
        n = len(self.params)
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)
        self.clipped = np.asarray(self.clipped, dtype=bool).reshape(-1)
        if self.seeds.shape != (n,) or self.clipped.shape != (n,):
            raise ValueError(f"{n} candidates need {n} seeds and clipped flags, got "
                             f"{self.seeds.shape[0]} and {self.clipped.shape[0]}")

    def __len__(self) -> int:
        return len(self.params)

    def primitive(self, i: int) -> Primitive:
        """Candidate i as a Primitive."""
        return Primitive(self.name, self.params[i])

    def primitives(self) -> list[Primitive]:
        """All candidates as Primitive objects, in order."""
        return [Primitive(self.name, p) for p in self.params]

    def subset(self, index) -> Candidates:
        """The candidates at `index` (an int array or boolean mask)."""
        return Candidates(self.name, self.params[index], self.seeds[index], self.clipped[index])

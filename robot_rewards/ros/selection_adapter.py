"""Selection for the policy node, on `robot_rewards.selection` (best-of-N + feasibility).

Utilities come from `best_of_n.utilities` over the score families the reward server returned
(a family without a configured weight weighs 1.0; weights of families that were not scored
are left out, so one failing model does not block the decision). Without any scores the
ranking is the policy's own order. `feasibility.select` then walks the ranking until a
candidate passes the workspace, table and IK checks from the current joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Workspace
from robot_rewards.primitives.config import MotionConfig
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.selection import best_of_n, feasibility

SELECTOR = "robot_rewards.selection"


@dataclass(eq=False)
class SelectionResult:
    """The chosen index (None: nothing feasible), the ranking, why candidates were skipped."""

    index: int | None
    order: list[int]
    rejected: dict[int, str] = field(default_factory=dict)
    utilities: np.ndarray | None = None
    selector: str = SELECTOR


class Selector:
    """Ranks candidates by utility and walks the ranking until one is feasible from q_start."""

    def __init__(self, workspace: Workspace, kin, motion: MotionConfig | None = None,
                 weights: Mapping[str, float] | None = None, aggregator: str = "mean", lam: float = 1.0):
        self.weights = dict(weights or {})
        self.aggregator, self.lam = aggregator, float(lam)
        self.checker = feasibility.FeasibilityChecker(workspace, kin, motion=motion or MotionConfig())

    def utilities(self, families: Mapping[str, ScoreSet], n: int) -> np.ndarray:
        """(N,) utilities of the scored families (zeros without scores: the policy's order)."""
        if not families:
            return np.zeros(n)
        weights = {name: self.weights.get(name, 1.0) for name in families}
        return np.asarray(best_of_n.utilities(dict(families), weights, self.aggregator, self.lam), np.float64)

    def select(self, candidates: Candidates, families: Mapping[str, ScoreSet], q_start) -> SelectionResult:
        """Utilities, ranking and the first feasible candidate of the ranking."""
        utilities = self.utilities(families, len(candidates))
        sel = feasibility.select(candidates, utilities, self.checker, q_start)
        return SelectionResult(None if sel.index is None else int(sel.index), [int(i) for i in sel.order],
                               {int(i): str(reason) for i, reason in sel.rejected}, utilities, SELECTOR)

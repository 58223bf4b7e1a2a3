"""What-if rollouts: the true outcome of every candidate from the current scene.

Each candidate is executed from the same saved physics state and undone afterwards, so the
scene is left exactly as it was. This is the simulator's ground truth for scripted teachers
(labels) and for the oracle selector of the experiment; a real robot has no such thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.sim.env import TabletopEnv


@dataclass(frozen=True, eq=False)
class CandidateOutcomes:
    """Per candidate: task success and quality (metres, lower is better) after executing it,
    whether it executed, and why not."""

    success: np.ndarray  # (N,) bool
    quality: np.ndarray  # (N,) float64
    executed: np.ndarray  # (N,) bool
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.success)


def simulate_candidates(env: TabletopEnv, candidates: Candidates) -> CandidateOutcomes:
    """Execute each candidate from the current state and restore the state after each one
    (`TabletopEnv.what_if`).

    The episode's step counter and the scene are unchanged on return. A candidate that does
    not execute keeps the current quality (nothing moved) and counts as unsuccessful.
    """
    results = env.what_if(candidates)
    return CandidateOutcomes(np.array([r.success and r.executed for r in results], bool),
                             np.array([r.quality for r in results], np.float64),
                             np.array([r.executed for r in results], bool),
                             [r.reason for r in results])

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
    """Execute each candidate from the current state and restore the state after each one.

    The episode's step counter and the scene are unchanged on return. A candidate that does
    not execute keeps the current quality (nothing moved) and counts as unsuccessful.
    """
    world = env.world
    snap = world.snapshot()
    steps = env.steps
    success = np.zeros(len(candidates), bool)
    quality = np.zeros(len(candidates))
    executed = np.zeros(len(candidates), bool)
    reasons: list[str] = []
    try:
        for i, prim in enumerate(candidates.primitives()):
            result = env.step(prim)
            success[i] = result.success and result.executed
            quality[i] = result.quality
            executed[i] = result.executed
            reasons.append(result.reason)
            world.restore(snap)
            env.steps = steps
    finally:
        world.restore(snap)
        world.discard(snap)
        env.steps = steps
    return CandidateOutcomes(success, quality, executed, reasons)

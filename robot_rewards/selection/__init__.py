"""Candidate selection: best-of-N utilities and rankings, feasibility down the ranked list, and
Feynman-Kac steering of the policy's sampler as an alternative to best-of-N.

- `decider`: `Decider` (sample -> score -> aggregate -> feasibility), `Decision`, `decision_seed`
  (the one candidate-seed rule of every caller that samples per decision).
- `config`: `SelectionConfig`, `FKSteeringConfig` (hydra structured configs).
- `best_of_n`: `utilities` (aggregate ensembles, combine reward families), `rank`, `method_order`.
- `feasibility`: `FeasibilityChecker` (workspace, table clearance, IK plan), `select`, `Selection`.
- `fk_steering`: `fk_steer` -> `FKResult` (imports torch and the policy, so it is loaded lazily).
"""

from robot_rewards.selection.best_of_n import (
    SelectionError,
    check_weights,
    method_order,
    rank,
    utilities,
    znorm,
)
from robot_rewards.selection.config import FKSteeringConfig, SelectionConfig
from robot_rewards.selection.decider import Decider, Decision, decision_seed
from robot_rewards.selection.feasibility import CLIPPED_REASON, FeasibilityChecker, Selection, select

_LAZY = {"fk_steer", "FKResult", "FKSteeringError"}


def __getattr__(name):
    # FK steering pulls in torch and the policy; selecting from scored candidates does not need them.
    if name in _LAZY:
        from robot_rewards.selection import fk_steering

        return getattr(fk_steering, name)
    raise AttributeError(f"module 'robot_rewards.selection' has no attribute '{name}'")


__all__ = [
    "CLIPPED_REASON",
    "Decider",
    "Decision",
    "FKResult",
    "FKSteeringConfig",
    "FKSteeringError",
    "FeasibilityChecker",
    "Selection",
    "SelectionConfig",
    "SelectionError",
    "check_weights",
    "decision_seed",
    "fk_steer",
    "method_order",
    "rank",
    "select",
    "utilities",
    "znorm",
]

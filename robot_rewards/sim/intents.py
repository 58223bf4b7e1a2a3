"""Intents: a person's own way of doing a task that the task metric ignores, with ground truth
from sim state (issue 28, "preferences that steer behaviour, not only success").

An intent is judged on one primitive's outcome: `before(task, world)` records what it needs of
the pre-step state, `satisfied(task, world, before)` looks at the post-step state. Each task
declares its intents in its own module, as the class attribute `intents` ({name: Intent}; a task
without one has none), and code outside asks through `task_intents` / `make_intent`, never by a
task's name. `what_if_intent` runs both around `TabletopEnv.what_if`, so every candidate of a
decision is judged from the same state, which is left as it was.

Scripted teachers add `intent_weight * satisfied` to a candidate's true return
(`eval.collect.LabelEpisodes`); experiment episodes record, per decision, whether the chosen
candidate and whether any of the N candidates satisfies the intent (`eval.loop.IntentRecorder`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

if TYPE_CHECKING:  # annotations only: the task modules import this one, and sim.env imports them
    from robot_rewards.sim.env import StepResult, TabletopEnv
    from robot_rewards.sim.tasks.base import Task
    from robot_rewards.sim.world import World


class UnknownIntentError(ValueError):
    """An intent name the task does not declare."""


class Intent(ABC):
    """A preference about how a task is done, judged on one primitive's outcome (privileged
    sim state: a teacher's and the experiment's ground truth, never the scorer's input)."""

    name: ClassVar[str]
    description: ClassVar[str]

    def before(self, task: Task, world: World) -> Any:
        """What `satisfied` needs of the state before the primitive (default: nothing)."""
        return None

    @abstractmethod
    def satisfied(self, task: Task, world: World, before: Any) -> bool:
        """Whether the state after the primitive (in `world`) satisfies the intent."""


def task_intents(task: Task | type[Task]) -> Mapping[str, Intent]:
    """{name: Intent} a task (instance or class) declares in its `intents` attribute."""
    return dict(getattr(task, "intents", None) or {})


def make_intent(task: Task | type[Task], name: str) -> Intent:
    """The intent `name` of `task`, or UnknownIntentError naming the ones it has."""
    intents = task_intents(task)
    if name not in intents:
        known = ", ".join(sorted(intents)) or "none"
        raise UnknownIntentError(f"task '{task.name}' has no intent '{name}'; its intents: {known}")
    return intents[name]


@dataclass(frozen=True, eq=False)
class IntentOutcomes:
    """Per candidate of one decision: the task's success and quality (m) after it, whether it
    executed, and whether it satisfies the intent (a candidate that did not execute never does)."""

    success: np.ndarray  # (N,) bool
    quality: np.ndarray  # (N,) float64
    executed: np.ndarray  # (N,) bool
    satisfied: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.satisfied)


def what_if_intent(env: TabletopEnv, candidates, intent: Intent) -> IntentOutcomes:
    """Roll out every candidate from the current state (`TabletopEnv.what_if`, scene restored)
    and judge each outcome by `intent`; success and quality are those `sim.outcomes.
    simulate_candidates` reports (success only where the candidate executed)."""
    before = intent.before(env.task, env.world)

    def measure(result: StepResult) -> tuple[bool, bool, float, bool]:
        ok = bool(result.executed and intent.satisfied(env.task, env.world, before))
        return bool(result.success and result.executed), bool(result.executed), float(result.quality), ok

    rows = env.what_if(candidates, measure)
    success, executed, quality, satisfied = (np.array(col) for col in zip(*rows)) if rows else ([],) * 4
    return IntentOutcomes(np.asarray(success, bool), np.asarray(quality, np.float64),
                          np.asarray(executed, bool), np.asarray(satisfied, bool))

"""Run scripted-expert episodes in a TabletopEnv."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from robot_rewards.core.observation import Observation
from robot_rewards.sim.env import StepResult, TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig


@dataclass
class EpisodeOutcome:
    """Summary of one episode."""

    seed: int
    goal: str
    success: bool
    quality: float
    steps: int
    not_executed: int
    step_seconds: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def run_expert_episode(
    env: TabletopEnv,
    seed: int,
    cfg: ExpertConfig,
    on_observation: Callable[[Observation], None] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> EpisodeOutcome:
    """Reset from `seed` and let the expert act until success or the step budget.

    With `on_observation`, the scene is rendered before every step and after the last one.
    """
    goal = env.reset(seed)
    outcome = EpisodeOutcome(seed, goal, False, env.quality(), 0, 0)
    while not env.done:
        if on_observation is not None:
            on_observation(env.observe())
        result = env.step(env.expert_action(cfg))
        if on_step is not None:
            on_step(result)
        outcome.steps += 1
        outcome.step_seconds.append(result.wall_time)
        if not result.executed:
            outcome.not_executed += 1
            outcome.reasons.append(result.reason)
    if on_observation is not None:
        on_observation(env.observe())
    outcome.success, outcome.quality = env.success(), env.quality()
    return outcome

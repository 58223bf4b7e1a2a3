"""Scripted-expert episodes as a job runner (eval-expert, on every core)."""

from __future__ import annotations

import numpy as np

from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.rollout import EpisodeOutcome, run_expert_episode


class ExpertRunner:
    """One simulator per worker; `runner((seed, record_video))` -> (outcome, video frames)."""

    def __init__(self, task: str, sim, expert: ExpertConfig):
        self.env, self.expert = TabletopEnv(task, sim), expert

    def __call__(self, job: tuple[int, bool]) -> tuple[EpisodeOutcome, list[np.ndarray]]:
        seed, record = job
        frames: list[np.ndarray] = []
        if record:
            self.env.record_frames(frames.append)
        outcome = run_expert_episode(self.env, seed, self.expert)
        if record:
            self.env.record_frames(None)
        return outcome, frames

    def close(self) -> None:
        self.env.close()

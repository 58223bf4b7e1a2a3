"""An `ActionScorer` from a state reward: each candidate is scored by the reward of the state it
leads to.

A CLIP reward judges states, not actions; given a way to see each candidate's outcome, it
ranks candidates too. The outcome predictor is pluggable: `sim_outcome_images` executes each
candidate in the simulator from a saved state and renders the result (a what-if rollout, the
simulator's privileged look-ahead: ~0.2-1 s per candidate, so for evaluation and teachers,
not a real robot). A learned dynamics or image-prediction model can take its place.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardModelError, ScoreSet, StateReward, check_candidates, check_goal

OutcomePredictor = Callable[[Observation, Candidates], Sequence[np.ndarray]]


class OutcomeScorer:
    """`ActionScorer`: K = 1 member, score_i = reward(predicted outcome image of candidate i, goal)."""

    def __init__(self, reward: StateReward, predict: OutcomePredictor):
        self.reward = reward
        self.predict = predict

    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        check_candidates(candidates)
        goal = check_goal(obs.goal)
        images = list(self.predict(obs, candidates))
        if len(images) != len(candidates):
            raise RewardModelError(f"outcome predictor returned {len(images)} images for {len(candidates)} candidates")
        return ScoreSet.from_members(np.asarray(self.reward.score_states(images, goal))[None])


def sim_outcome_images(env, camera: str | None = None) -> OutcomePredictor:
    """Predictor for a `TabletopEnv`: execute each candidate from the current state, render
    `camera`, restore the state (`TabletopEnv.what_if`: scene and step counter unchanged)."""

    def predict(obs: Observation, candidates: Candidates) -> list[np.ndarray]:
        return env.what_if(candidates, lambda _result: env.world.render(camera).rgb)

    return predict

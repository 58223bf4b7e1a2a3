"""Success detection by a VLM: does this frame show the goal done? YES -> 1.0, NO -> 0.0,
anything else -> NaN (can't tell, counted). On a real robot, where no simulator reports
success, this is the task status; as a `StateReward` it is the registry's `vlm` family
(`vlm?model=...&base_url=...`)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from robot_rewards.core.coerce import coerce_config
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardInputError, check_goal
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.config import VLMConfig
from robot_rewards.rewards.vlm.prompts import SUCCESS_WORDS, success_prompt
from robot_rewards.rewards.vlm.verdict import STATUSES, Verdict, word_verdict


def frame_image(obs_or_image, camera: str = "") -> np.ndarray:
    """The RGB image of an Observation (its `camera` frame, default the first) or an image itself."""
    if isinstance(obs_or_image, Observation):
        if not obs_or_image.frames:
            raise RewardInputError("the observation has no camera frames for a VLM to look at")
        if camera and camera not in obs_or_image.frames:
            raise RewardInputError(f"no camera '{camera}' in the observation (has {sorted(obs_or_image.frames)})")
        return obs_or_image.frames[camera or next(iter(obs_or_image.frames))].rgb
    img = np.asarray(obs_or_image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise RewardInputError(f"a VLM looks at (H, W, 3) uint8 RGB images, got {img.shape} {img.dtype}")
    return img


class SuccessDetector:
    """`StateReward` whose reward is the VLM's verdict that the goal is done: 1.0 (yes), 0.0
    (no) or NaN (can't tell: unsure, malformed or failed; see `stats()`)."""

    def __init__(self, client: VLMClient, camera: str = ""):
        self.client, self.camera = client, camera
        self.counts = dict.fromkeys(STATUSES, 0)

    def ask(self, obs_or_image, goal: str) -> Verdict:
        """The model's verdict on one frame."""
        v = word_verdict(self.client.ask(success_prompt(check_goal(goal)), [frame_image(obs_or_image, self.camera)]),
                         SUCCESS_WORDS)
        self.counts[v.status] += 1
        return v

    def probability(self, obs_or_image, goal: str | None = None) -> float:
        """1.0, 0.0 or NaN for one frame (goal: the observation's own by default)."""
        if goal is None:
            goal = obs_or_image.goal if isinstance(obs_or_image, Observation) else ""
        return self.ask(obs_or_image, goal).label

    def success(self, obs: Observation) -> bool | None:
        """The task status of an observation: True, False, or None when the model cannot tell."""
        p = self.probability(obs)
        return None if math.isnan(p) else p >= 0.5

    def score_states(self, observations_or_images: Sequence, goal: str) -> np.ndarray:
        """(B,) verdicts (1.0 / 0.0 / NaN) for a goal sentence."""
        items = list(observations_or_images)
        if not items:
            raise RewardInputError("no observations to score")
        return np.array([self.ask(o, goal).label for o in items], dtype=np.float64)

    def stats(self) -> dict:
        """Verdict counts, plus the client's request counts."""
        return {**self.counts, **self.client.stats()}


def vlm_success_reward(device: str = "cpu", camera: str = "", **options) -> SuccessDetector:
    """The registry's `vlm` state-reward factory: `vlm?model=Qwen/Qwen2.5-VL-7B-Instruct&
    base_url=http://gpu-host:8000/v1&api_key_env=` (options are `VLMConfig` fields; the key is
    read from the variable api_key_env names). device: unused (the model runs on the server)."""
    return SuccessDetector(VLMClient(coerce_config(VLMConfig, options)), camera=camera)

"""Pairwise preference by a VLM (RL-VLM-F style, on action candidates): two candidates of a
decision are drawn on the camera image as A and B, and the model says which is better for the
goal. Drawing the actions on the image is what VARP found to raise VLM preference accuracy.

The drawing is the console's (`robot_rewards.console.overlay.draw_candidates`), passed in by
whoever builds the judge (`pair_renderer(draw_candidates)`): the console sits above the reward
models in the package layers, so this module cannot import it.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.config import PAIR_ORDERS
from robot_rewards.rewards.vlm.prompts import PAIR_WORDS, pair_prompt
from robot_rewards.rewards.vlm.verdict import STATUSES, Verdict, word_verdict

# (rgb, camera, candidates, first, second) -> the image with candidate `first` drawn as "A" and
# `second` as "B" (and no other)
PairRenderer = Callable[[np.ndarray, CameraModel, Candidates, int, int], np.ndarray]


def pair_renderer(draw: Callable[..., np.ndarray], scale: float = 1.0) -> PairRenderer:
    """A PairRenderer from a `draw_candidates`-like function (rgb, camera, candidates, labels=,
    show=, scale=, ticks=): only the two candidates, labelled A and B, no pixel ruler."""
    if not (math.isfinite(scale) and scale >= 1.0):
        raise ValueError(f"render scale must be >= 1, got {scale}")

    def render(rgb, camera, candidates, first, second):
        labels = [""] * len(candidates)
        labels[first], labels[second] = "A", "B"
        return draw(rgb, camera, candidates, labels=labels, show=[first, second], scale=scale, ticks=0)

    return render


class PairJudge:
    """Asks which of candidates a and b is better; labels in the `PreferencePairs` convention
    (1 = a better, 0 = b better, 0.5 = tie, NaN = can't tell).

    order: "random" shows a or b as "A" by a seeded coin (a model's position bias then becomes
    noise instead of a bias toward lower indices), "as_is" always shows a as "A".
    """

    def __init__(self, client: VLMClient, render: PairRenderer, order: str = "random", seed: int = 0):
        if order not in PAIR_ORDERS:
            raise ValueError(f"order must be one of {list(PAIR_ORDERS)}, got {order!r}")
        if not callable(render):
            raise TypeError(f"render must be a PairRenderer callable, got {type(render).__name__}")
        self.client, self.render, self.order = client, render, order
        self.rng = np.random.default_rng([int(seed), 7211])
        self.counts = dict.fromkeys(STATUSES, 0)

    def image(self, rgb, camera: CameraModel, candidates: Candidates, first: int, second: int) -> np.ndarray:
        """The image the model sees with `first` drawn as A and `second` as B."""
        return self.render(rgb, camera, candidates, int(first), int(second))

    def judge(self, rgb, camera: CameraModel, candidates: Candidates, a: int, b: int, goal: str) -> Verdict:
        """The model's verdict on candidates a vs b (label 1 = a better)."""
        if a == b or not (0 <= a < len(candidates) and 0 <= b < len(candidates)):
            raise ValueError(f"pair ({a}, {b}) is not two different candidates of {len(candidates)}")
        swap = self.order == "random" and bool(self.rng.random() < 0.5)
        first, second = (b, a) if swap else (a, b)
        v = word_verdict(self.client.ask(pair_prompt(goal), [self.image(rgb, camera, candidates, first, second)]),
                         PAIR_WORDS)
        if swap and v.answered:
            v = Verdict(1.0 - v.label, v.status, v.text, v.cached)
        self.counts[v.status] += 1
        return v

    def judge_pairs(self, rgb, camera: CameraModel, candidates: Candidates, pairs, goal: str) -> list[Verdict]:
        """Verdicts on each (a, b) row of `pairs`."""
        return [self.judge(rgb, camera, candidates, int(a), int(b), goal) for a, b in np.asarray(pairs).reshape(-1, 2)]

    def stats(self) -> dict:
        """Verdict counts, plus the client's request counts."""
        return {**self.counts, **self.client.stats()}


def labels_of(verdicts: Sequence[Verdict]) -> np.ndarray:
    """(M,) labels of verdicts (NaN = can't tell)."""
    return np.array([v.label for v in verdicts], dtype=np.float64)

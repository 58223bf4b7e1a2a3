"""AI feedback from a vision-language model over an OpenAI-compatible endpoint: a teacher that
labels pairs of a decision's candidates by asking the model (`rewards.vlm.PairJudge`) and stores
the answers in the `PreferenceStore` like a person's, under its own labeller id (`vlm:<model>`).

Labels follow the teachers' convention (1 = a better, 0 = b better, 0.5 = tie, NaN = can't tell).
An answer the model gives but that is not one of the allowed words (prose, say) is stored as
"cant_tell" and counted; a request that failed after its retries stores nothing (it says nothing
about the pair) and is counted too (`stats()`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.preferences.records import ANSWERS
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import check_pairs
from robot_rewards.rewards.vlm.pairwise import PairJudge
from robot_rewards.rewards.vlm.verdict import Verdict

_ANSWER_OF = {v: k for k, v in ANSWERS.items() if not math.isnan(v)}


def answer_of(label: float) -> str:
    """The store's answer name of a label (NaN -> "cant_tell")."""
    return "cant_tell" if math.isnan(label) else _ANSWER_OF[float(label)]


class VLMTeacher:
    """Labels candidate pairs by a VLM's verdicts; `labeller` defaults to `vlm:<model>`."""

    def __init__(self, judge: PairJudge, labeller: str = ""):
        if not isinstance(judge, PairJudge):
            raise TypeError(f"VLMTeacher needs a PairJudge, got {type(judge).__name__}")
        self.judge = judge
        self.labeller = labeller or f"vlm:{judge.client.model}"
        self.stored = 0

    def verdicts(self, rgb, camera: CameraModel, candidates: Candidates, goal: str, pairs) -> list[Verdict]:
        """The model's verdicts on `pairs` (M, 2) of the decision's candidates."""
        p = check_pairs(pairs, len(candidates))
        return self.judge.judge_pairs(rgb, camera, candidates, p, goal)

    def label(self, rgb, camera: CameraModel, candidates: Candidates, goal: str, pairs) -> np.ndarray:
        """(M,) labels of `pairs` (NaN where the model could not tell or did not answer)."""
        return np.array([v.label for v in self.verdicts(rgb, camera, candidates, goal, pairs)], dtype=np.float64)

    def label_query(self, store: PreferenceStore, query_id: int, rgb, camera: CameraModel, candidates: Candidates,
                    goal: str, pairs) -> list[Verdict]:
        """Ask about `pairs` of a stored query's candidates and store each answer under `labeller`
        (failed requests store nothing); returns the verdicts, one per pair."""
        verdicts = self.verdicts(rgb, camera, candidates, goal, pairs)
        for (a, b), v in zip(np.asarray(pairs).reshape(-1, 2), verdicts):
            if v.storable:
                store.add_pair(query_id, int(a), int(b), answer_of(v.label), self.labeller)
                self.stored += 1
        return verdicts

    def stats(self) -> dict:
        """Verdict counts (answered, unsure, malformed, error), labels stored, and the client's
        request counts (requests, retries, cache hits, tokens, ...)."""
        return {"stored": self.stored, **self.judge.stats()}


def agreement(verdicts: Sequence[Verdict], pairs, values) -> dict:
    """How the decided verdicts (0/1) compare with the candidates' true values: counts of
    `decided`, `agree` (the label prefers the higher value) and `disagree` (pairs of equal
    value are left out)."""
    v = np.asarray(values, dtype=np.float64)
    out = {"decided": 0, "agree": 0, "disagree": 0}
    for (a, b), verdict in zip(np.asarray(pairs).reshape(-1, 2), verdicts):
        if verdict.label in (0.0, 1.0) and v[a] != v[b]:
            out["decided"] += 1
            out["agree" if (verdict.label == 1.0) == (v[a] > v[b]) else "disagree"] += 1
    return out

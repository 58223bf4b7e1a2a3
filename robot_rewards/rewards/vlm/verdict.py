"""What one VLM question came to: a label in our convention (NaN = can't tell) and why."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot_rewards.rewards.vlm.client import Reply
from robot_rewards.rewards.vlm.parse import normalise, parse_word
from robot_rewards.rewards.vlm.prompts import UNSURE

# answered: a valid answer; unsure: the model said it cannot tell; malformed: anything else it
# said (prose, another word) or a response that is no chat completion; error: no answer at all
# (the request failed after its retries)
STATUSES = ("answered", "unsure", "malformed", "error")


@dataclass(frozen=True)
class Verdict:
    """label: the parsed value (NaN unless answered); status: one of `STATUSES`; text: the raw
    answer (None if there was none); cached: the answer came from the cache."""

    label: float
    status: str
    text: str | None = None
    cached: bool = False

    @property
    def answered(self) -> bool:
        return self.status == "answered"

    @property
    def storable(self) -> bool:
        """Whether this is the model's answer (a label to keep, "can't tell" included), not a
        failed request (which says nothing about the question)."""
        return self.status != "error"


def word_verdict(reply: Reply, words: dict[str, float]) -> Verdict:
    """The Verdict of a one-word answer among `words` (or UNSURE)."""
    if reply.status == "error":
        return Verdict(math.nan, "error", None, reply.cached)
    if reply.status != "ok":
        return Verdict(math.nan, "malformed", reply.text, reply.cached)
    value = parse_word(reply.text, words)
    if value is not None:
        return Verdict(float(value), "answered", reply.text, reply.cached)
    status = "unsure" if normalise(reply.text) == UNSURE else "malformed"
    return Verdict(math.nan, status, reply.text, reply.cached)


def count(verdicts, counts: dict | None = None) -> dict:
    """Counts of verdict statuses (added to `counts` if given)."""
    out = counts if counts is not None else dict.fromkeys(STATUSES, 0)
    for v in verdicts:
        out[v.status] = out.get(v.status, 0) + 1
    return out

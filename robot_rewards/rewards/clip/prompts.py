"""Sentences of the CLIP reward: state captions of sim scenes, and goal -> state prompts.

Task goals are instructions ("put the red block in the green bowl"); a frame shows a state.
CLIP compares images with *descriptions*, so the reward turns an instruction into the state
sentences that hold once it is done ("the red block is in the green bowl"), in exactly the
wording that `train-clip` captions sim frames with. Unknown goals pass through unchanged.

Every caption is a closed-world fact: a sentence is true of a frame iff it is in the frame's
list of true facts, which is what the multi-positive contrastive loss needs (see clip_train).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Generic scene descriptions: the VLM-RM baseline prompts (true of every frame of the task).
PLACE_BASELINE = "blocks and bowls on a table"
ROPE_BASELINE = "a rope on a table"
DEFAULT_BASELINE = "objects on a table"

# Rope straightness (end-to-end distance / rope length) and alignment (task quality, m) bins:
# ordered, and fine enough that the captions rank ropes (3 coarse bins plateaued at Spearman ~0.5).
STRAIGHTNESS_BINS = ((0.97, "the rope is straight"), (0.90, "the rope is almost straight"),
                     (0.80, "the rope is slightly bent"), (0.65, "the rope is bent"),
                     (-1.0, "the rope is curled up"))
ALIGN_BINS = ((0.02, "the rope lies on the line between {marks}"),  # 0.02 m: the task's success threshold
              (0.035, "the rope is almost on the line between {marks}"),
              (0.05, "the rope is near the line between {marks}"),
              (0.08, "the rope is off the line between {marks}"),
              (float("inf"), "the rope is far from the line between {marks}"))
TWO_MARKS = "the two marks"


@dataclass(frozen=True)
class GoalPrompts:
    """The VLM-RM prompts of one goal: what the goal state looks like, and the generic scene."""

    goal: tuple[str, ...]
    baseline: tuple[str, ...]


def block_in_bowl(block: str, bowl: str) -> str:
    return f"the {block} block is in the {bowl} bowl"


def block_outside(block: str) -> str:
    return f"the {block} block is not in a bowl"


def bowl_empty(bowl: str) -> str:
    return f"the {bowl} bowl is empty"


def straightness_caption(straightness: float) -> str:
    """The straightness bin of a rope (end-to-end distance over its length)."""
    return next(text for lo, text in STRAIGHTNESS_BINS if straightness >= lo)


def rope_captions(straightness: float, quality: float, marks: tuple[str, str]) -> tuple[list[str], list[str]]:
    """(true, false) captions of a rope scene with mark colours `marks`."""
    a, b = marks
    shape = straightness_caption(straightness)
    true = [shape, ROPE_BASELINE]
    false = [t for _, t in STRAIGHTNESS_BINS if t != shape]
    hit = next(i for i, (hi, _) in enumerate(ALIGN_BINS) if quality < hi)
    for i, (_, text) in enumerate(ALIGN_BINS):
        forms = [text.format(marks=m) for m in (marks_phrase(a, b), marks_phrase(b, a), TWO_MARKS)]
        (true if i == hit else false).extend(forms)
    return true, false


def marks_phrase(a: str, b: str) -> str:
    return f"the {a} and {b} marks"


def baseline_for(prompt: str) -> str:
    """The generic scene sentence (VLM-RM baseline) of a goal or state prompt."""
    words = set(prompt.lower().split())
    if "rope" in words:
        return ROPE_BASELINE
    if words & {"block", "bowl"}:
        return PLACE_BASELINE
    return DEFAULT_BASELINE


_PLACE = re.compile(r"^put the (\w+) block in the (\w+) bowl$")
_ROPE_MARKS = re.compile(r"the (\w+)(?: mark)? and (?:the )?(\w+) marks?|from the (\w+) mark to the (\w+) mark")


def goal_prompts(goal: str) -> GoalPrompts:
    """State prompts of a task goal (place_block and align_rope wording), else the goal itself.

    >>> goal_prompts("put the red block in the green bowl").goal
    ('the red block is in the green bowl',)
    """
    text = " ".join(goal.lower().strip().rstrip(".").split())
    m = _PLACE.match(text)
    if m:
        return GoalPrompts((block_in_bowl(*m.groups()),), (PLACE_BASELINE,))
    if "rope" in text and ("straight" in text or "align" in text):
        m = _ROPE_MARKS.search(text)
        colours = [g for g in m.groups() if g] if m else []
        marks = marks_phrase(*colours) if len(colours) == 2 and "two" not in colours else TWO_MARKS
        return GoalPrompts((STRAIGHTNESS_BINS[0][1], ALIGN_BINS[0][1].format(marks=marks)), (ROPE_BASELINE,))
    return GoalPrompts((goal.strip(),), (baseline_for(goal),))

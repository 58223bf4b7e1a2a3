"""Sentences of the CLIP reward: goal -> state prompts, and the generic scene (baseline) prompts.

Task goals are instructions ("put the red block in the green bowl"); a frame shows a state.
CLIP compares images with *descriptions*, so the reward turns an instruction into the state
sentences that hold once it is done ("the red block is in the green bowl"), in exactly the
wording that `train-clip` captions sim frames with. That wording belongs to each task
(`Task.goal_prompts`, `Task.captions`, `Task.baseline`); unknown goals pass through unchanged.

Every caption is a closed-world fact: a sentence is true of a frame iff it is in the frame's
list of true facts, which is what the multi-positive contrastive loss needs (see clip_train).
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_rewards.sim.tasks import TASKS

# The VLM-RM baseline prompt of a goal no task's wording covers.
DEFAULT_BASELINE = "objects on a table"


@dataclass(frozen=True)
class GoalPrompts:
    """The VLM-RM prompts of one goal: what the goal state looks like, and the generic scene."""

    goal: tuple[str, ...]
    baseline: tuple[str, ...]


def baseline_for(prompt: str) -> str:
    """The generic scene sentence (VLM-RM baseline) of a goal or state prompt: the `baseline`
    of a task whose `scene_words` the prompt uses. Later-registered tasks are asked first, so a
    specific scene (the rope) wins over the generic blocks for a prompt that names both."""
    words = set(prompt.lower().split())
    for cls in reversed(TASKS.values()):
        if cls.baseline and words & cls.scene_words:
            return cls.baseline
    return DEFAULT_BASELINE


def goal_prompts(goal: str) -> GoalPrompts:
    """State prompts of a task goal (in the wording of the task it belongs to), else the goal itself.

    >>> goal_prompts("put the red block in the green bowl").goal
    ('the red block is in the green bowl',)
    """
    text = " ".join(goal.lower().strip().rstrip(".").split())
    for cls in TASKS.values():
        prompts = cls.goal_prompts(text)
        if prompts is not None:
            return GoalPrompts(*prompts)
    return GoalPrompts((goal.strip(),), (baseline_for(goal),))

"""The questions the VLM family asks. Each asks for one word or one number (parsed strictly,
`parse.py`) so an answer costs a few completion tokens and cannot be misread.

`question_kind(prompt)` tells the questions apart by their fixed sentences (the test suite's
stand-in server uses it to know what it is being asked)."""

from __future__ import annotations

_SCENE = "The image shows a robot's tabletop workspace seen by a camera."

# the sentence that identifies each question (kept verbatim in its template)
PAIR_QUESTION = "Which of the two actions makes more progress on the task?"
SUCCESS_QUESTION = "Is the task complete in this image?"
OBJECT_QUESTION = "Which numbered point lies on the object the robot has to move for the task?"
TARGET_QUESTION = "Which numbered point marks the place that object has to be moved to?"

PAIR_WORDS = {"A": 1.0, "B": 0.0, "TIE": 0.5}  # label of the candidate shown as A
SUCCESS_WORDS = {"YES": 1.0, "NO": 0.0}
UNSURE = "UNSURE"


def pair_prompt(goal: str) -> str:
    """Which of the two candidates drawn as A and B is better for `goal`."""
    return (f"{_SCENE} Two candidate actions for the robot are drawn on it, labelled A and B. A "
            "pick-and-place action is an arrow from where the gripper picks to where it places (the "
            "bar across its tail shows the direction the fingers close); a push is an arrow from where "
            f"the pusher starts to where it stops.\nTask: {goal}\n{PAIR_QUESTION} Answer with exactly "
            "one word: A, B, TIE (equally good) or UNSURE (you cannot tell).")


def success_prompt(goal: str) -> str:
    """Whether the frame shows `goal` done."""
    return f"{_SCENE}\nTask: {goal}\n{SUCCESS_QUESTION} Answer with exactly one word: YES, NO or UNSURE."


def keypoint_prompt(goal: str, count: int, which: str) -> str:
    """Which of `count` numbered marks is on the object to move (`which`="object") or at the
    place it has to go (`which`="target")."""
    if which not in ("object", "target"):
        raise ValueError(f"which must be 'object' or 'target', got {which!r}")
    question = OBJECT_QUESTION if which == "object" else TARGET_QUESTION
    return (f"{_SCENE} {count} numbered points are marked on it.\nTask: {goal}\n{question} Answer with "
            f"exactly one number from 1 to {count}, or NONE if no point fits.")


def question_kind(prompt: str) -> str:
    """"pair", "success", "keypoint_object" or "keypoint_target" ("" for none of them)."""
    for kind, sentence in (("pair", PAIR_QUESTION), ("success", SUCCESS_QUESTION),
                           ("keypoint_object", OBJECT_QUESTION), ("keypoint_target", TARGET_QUESTION)):
        if sentence in prompt:
            return kind
    return ""


def goal_of(prompt: str) -> str:
    """The task sentence of one of these prompts ("" if there is none)."""
    for line in prompt.splitlines():
        if line.startswith("Task: "):
            return line[len("Task: "):]
    return ""

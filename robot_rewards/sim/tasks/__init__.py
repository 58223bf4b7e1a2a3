"""Task registry: `make_task("place_block")`; adding a task: docs/adding-a-task.md.

Everything about a task lives in its module (`sim/tasks/<task>.py`): scene, goal, success,
quality, expert, and the optional hooks the rest of the package asks for (keypoints,
perturbations, captions and goal prompts, flat targets; see `Task`). Code outside `sim/tasks/`
looks tasks up here and never branches on a task's name (tests/test_layout.py checks it).
"""

from __future__ import annotations

from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.sim.tasks.align_rope import AlignRope
from robot_rewards.sim.tasks.base import CloudOutcome, KeypointReading, Task
from robot_rewards.sim.tasks.place_block import PlaceBlock
from robot_rewards.sim.tasks.push_block import PushBlock
from robot_rewards.sim.tasks.stack_blocks import StackBlocks

# Name -> task class, in registration order (the order of `all` in the commands' task lists).
TASKS: dict[str, type[Task]] = {}


class UnknownTaskError(ValueError):
    """A task name that is not registered."""


def register_task(cls: type[Task]) -> type[Task]:
    """Add a task class to `TASKS` (usable as a class decorator); checks the class attributes
    every command relies on. Worker processes import this module afresh, so a task used with
    workers > 1 must be registered here, at import time (see docs/adding-a-task.md)."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"task class {cls.__name__} needs a `name` that is an identifier, got {name!r}")
    if name in TASKS and TASKS[name] is not cls:
        raise ValueError(f"a task named '{name}' is already registered ({TASKS[name].__name__})")
    if getattr(cls, "primitive", None) not in PRIMITIVE_SPECS:
        raise ValueError(f"task '{name}': primitive must be one of {sorted(PRIMITIVE_SPECS)}")
    if not isinstance(getattr(cls, "max_steps", None), int) or cls.max_steps < 1:
        raise ValueError(f"task '{name}': max_steps must be a positive int")
    if cls.keypoint_names and not isinstance(cls.keypoint_names, tuple):
        raise ValueError(f"task '{name}': keypoint_names must be a tuple of names")
    if cls.scorer_recipe not in ("", "keypoints", "patches", "patches_keypoints", "outcome"):
        raise ValueError(f"task '{name}': scorer_recipe must be '', keypoints, patches, patches_keypoints or outcome")
    if cls.cloud_outcome is not None and not isinstance(cls.cloud_outcome, CloudOutcome):
        raise ValueError(f"task '{name}': cloud_outcome must be a CloudOutcome (sim/tasks/base.py)")
    if cls.outcome_from_keypoints is not None and not isinstance(cls.outcome_from_keypoints, KeypointReading):
        raise ValueError(f"task '{name}': outcome_from_keypoints must be a KeypointReading or None (sim/tasks/base.py)")
    TASKS[name] = cls
    return cls


for _cls in (PlaceBlock, PushBlock, StackBlocks, AlignRope):
    register_task(_cls)


def make_task(name: str) -> Task:
    """A fresh task instance by name."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task '{name}'; available tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]()


__all__ = ["TASKS", "Task", "UnknownTaskError", "make_task", "register_task"]

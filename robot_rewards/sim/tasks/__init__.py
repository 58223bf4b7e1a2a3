"""Task registry: `make_task("place_block")`."""

from __future__ import annotations

from robot_rewards.sim.tasks.align_rope import AlignRope
from robot_rewards.sim.tasks.base import Task
from robot_rewards.sim.tasks.place_block import PlaceBlock
from robot_rewards.sim.tasks.push_block import PushBlock
from robot_rewards.sim.tasks.stack_blocks import StackBlocks

TASKS: dict[str, type[Task]] = {t.name: t for t in (PlaceBlock, PushBlock, StackBlocks, AlignRope)}


class UnknownTaskError(ValueError):
    """A task name that is not registered."""


def make_task(name: str) -> Task:
    """A fresh task instance by name."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task '{name}'; available tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]()


__all__ = ["TASKS", "Task", "UnknownTaskError", "make_task"]

"""Where an episode command's episodes run (robot_rewards/core/workers.py); commands inherit the keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ParallelConfig:
    """`workers=auto|K executor=local|ray ray_address=HOST:PORT`: K processes (or Ray actors), each
    with its own simulator ("auto": every available core); the same results for any number."""

    workers: Any = "auto"
    executor: str = "local"  # local | ray (a Ray cluster at ray_address; empty = a local one)
    ray_address: str = ""

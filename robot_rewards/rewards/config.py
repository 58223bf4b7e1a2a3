"""Structured configs of the reward host and the reward bench (plain dataclasses, hydra-overridable).

Each reward family keeps its own configs in its sub-package (`preference/config.py`,
`implicit/config.py`, `keypoints/config.py`, `clip/config.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class HostConfig:
    """`RewardHost`: named scorer checkpoints served from one device with micro-batching."""

    # name -> checkpoint path of any registered family (rewards/registry.py: train-scorer,
    # train-implicit, train-keypoints files), loaded by the format its JSON names
    scorers: dict = field(default_factory=dict)
    device: str = "cpu"
    max_batch: int = 8  # requests per batched model call
    max_wait_ms: float = 2.0  # how long the first request of a batch waits for company


@dataclass
class BenchRewardsConfig:
    """`robot-rewards bench rewards`: scorer latency vs N and the host's throughput."""

    n: List[int] = field(default_factory=lambda: [8, 64])
    ensemble_size: int = 5
    n_points: int = 1024  # points in the observation's cloud (a rendered place_block scene)
    repeats: int = 20
    warmup: int = 3
    clients: int = 4  # concurrent client threads for the host throughput
    requests_per_client: int = 25
    host_n: int = 8  # candidates per host request
    max_batch: int = 8
    max_wait_ms: float = 2.0
    device: str = "auto"
    torch_threads: Optional[int] = None
    seed: int = 0
    output_dir: str = _OUT.format("bench-rewards")

"""Executed transitions in simulation, as a robot running its policy would log them.

At each decision the policy samples N candidates; `per_state` of them are executed from that
state, each followed by an observation of the cloud after it (in simulation the state is restored
between them: `per_state` robots in the same state; `per_state=1` is exactly one robot's log);
then the policy's first sample is executed and the episode goes on. Only clouds and executed
parameters are kept, nothing privileged: this is the data an outcome model learns from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.workers import JobPool, resolve_workers
from robot_rewards.data.transitions import Transitions
from robot_rewards.selection.decider import Decider
from robot_rewards.sim.env import TabletopEnv


@dataclass(frozen=True)
class StateRecord:
    """One decision: its cloud, the executed candidates' parameters and the clouds after them."""

    seed: int
    decision: int
    goal: str
    points: np.ndarray
    params: np.ndarray
    next_points: np.ndarray
    colors: np.ndarray | None = None
    next_colors: np.ndarray | None = None


class TransitionEpisodes:
    """Plays episodes in one simulator, logging `per_state` transitions at each decision."""

    def __init__(self, env: TabletopEnv, policy, n_candidates: int, per_state: int, max_decisions: int = 0):
        if not 1 <= per_state <= n_candidates:
            raise ValueError(f"per_state must be 1..n_candidates ({n_candidates}), got {per_state}")
        self.env, self.per_state, self.max_decisions = env, per_state, max_decisions
        self.decider = Decider(policy, method="first", n_candidates=n_candidates)

    @classmethod
    def build(cls, task: str, sim, perception, policy, n_candidates: int, per_state: int, max_decisions: int,
              torch_threads: int = 1) -> TransitionEpisodes:
        """In a worker process: its own simulator."""
        torch.set_num_threads(max(1, int(torch_threads)))
        return cls(TabletopEnv(task, sim, perception=perception), policy, n_candidates, per_state, max_decisions)

    def __call__(self, seed: int) -> list[StateRecord]:
        env, out = self.env, []
        env.reset(seed)
        while not env.done and not (self.max_decisions and len(out) >= self.max_decisions):
            obs = env.observe()
            d = self.decider.decide(obs, seed, len(out))
            c, k = d.candidates, self.per_state
            tried = Candidates(c.name, c.params[:k], c.seeds[:k], c.clipped[:k])
            after = env.what_if(tried, lambda _result: env.observe())
            colored = obs.colors is not None and all(a.colors is not None for a in after)
            out.append(StateRecord(int(seed), len(out), obs.goal, obs.points.astype(np.float32), tried.params.copy(),
                                   np.stack([a.points.astype(np.float32) for a in after]),
                                   np.asarray(obs.colors, np.uint8) if colored else None,
                                   np.stack([np.asarray(a.colors, np.uint8) for a in after]) if colored else None))
            env.step(d.primitive())
        return out

    def close(self) -> None:
        pass  # the simulator belongs to whoever built it


def collect_transitions(task: str, sim, perception, policy, seeds: Sequence[int], n_candidates: int = 8,
                        per_state: int = 8, max_decisions: int = 0, workers: Any = 1, torch_threads: int = 1,
                        primitive: str = "", meta: dict | None = None, progress: bool = True) -> Transitions:
    """Transitions of the policy's episodes on `seeds` (see the module docstring); the same data
    for any number of workers (each episode is seeded by its own seed)."""
    if not seeds:
        raise ValueError("no episode seeds to collect transitions from")
    n_workers = resolve_workers(workers)
    factory = partial(TransitionEpisodes.build, task, sim, perception, policy, n_candidates, per_state,
                      max_decisions, torch_threads)
    records: list[StateRecord] = []
    with JobPool(factory, n_workers) as pool:
        for trace in pool.map(list(seeds), progress=progress):
            records.extend(trace)
    if not records:
        raise ValueError(f"the episodes of seeds {seeds[0]}..{seeds[-1]} had no decisions")
    sizes = {r.points.shape for r in records} | {r.next_points.shape[1:] for r in records}
    if len(sizes) != 1:
        raise ValueError(f"clouds of different sizes {sorted(sizes)}: set the perception's point count")
    counts = [len(r.params) for r in records]
    colored = all(r.colors is not None for r in records)
    return Transitions(task, primitive, np.stack([r.points for r in records]), [r.goal for r in records],
                       [r.seed for r in records], [r.decision for r in records],
                       np.concatenate([r.params for r in records]), np.repeat(np.arange(len(records)), counts),
                       np.concatenate([r.next_points for r in records]), dict(meta or {}),
                       np.stack([r.colors for r in records]) if colored else None,
                       np.concatenate([r.next_colors for r in records]) if colored else None)

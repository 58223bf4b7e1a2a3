"""Reward-guided episodes: the policy proposes N candidates, a selector picks one, the sim runs it.

A selector is a function (env, obs, candidates) -> utilities (N,) or None. None means "no
reward model": the first sample is executed as it is (condition "first"). With utilities the
candidates are walked from the best down until one passes the feasibility checks
(`selection.feasibility.select`); if none passes, the episode stops without moving the arm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from tqdm import tqdm

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.preferences.teachers import true_return
from robot_rewards.reporting import mean_ci, wilson_interval
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.selection.feasibility import FeasibilityChecker, select
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.outcomes import simulate_candidates

Selector = Callable[[TabletopEnv, Observation, Candidates], Optional[np.ndarray]]


def first_sample(env, obs, cands) -> None:
    """(a) the policy alone: its first sample, executed as it is."""
    return None


def random_sample(seed: int) -> Selector:
    """(b) a uniformly random one of the N samples (seeded)."""
    rng = np.random.default_rng([seed, 1201])

    def pick(env, obs, cands):
        u = np.zeros(len(cands))
        u[rng.integers(len(cands))] = 1.0
        return u

    return pick


def scorer_selector(scorer, aggregator: str = "mean", lam: float = 1.0) -> Selector:
    """Best-of-N by an ActionScorer's ensemble scores, aggregated (mean | wco | uwo)."""
    def pick(env, obs, cands):
        return aggregate(scorer.score(obs, cands), aggregator, lam)

    return pick


def oracle_selector(quality_scale: float) -> Selector:
    """(f) the true outcome of each candidate (what-if rollouts): the upper bound of best-of-N."""
    def pick(env, obs, cands):
        out = simulate_candidates(env, cands)
        return np.atleast_1d(true_return(out.success, out.quality, quality_scale))

    return pick


@dataclass
class EpisodeStats:
    success: list = field(default_factory=list)
    quality: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    stopped: int = 0  # decisions where no candidate was feasible (the arm did not move)
    rejected: int = 0  # candidates refused by the feasibility walk
    not_executed: int = 0  # executed candidates the sim refused (unreachable, ...)
    select_s: list = field(default_factory=list)
    seeds: list = field(default_factory=list)

    def summary(self) -> dict:
        lo, hi = wilson_interval(int(np.sum(self.success)), len(self.success))
        q, q_lo, q_hi = mean_ci(self.quality)
        return {"episodes": len(self.success), "success_rate": float(np.mean(self.success)),
                "success_ci95": [lo, hi], "quality_mean": q, "quality_ci95": [q_lo, q_hi],
                "steps_mean": float(np.mean(self.steps)), "stopped": self.stopped,
                "rejected_candidates": self.rejected, "not_executed": self.not_executed,
                "select_ms": 1000 * float(np.mean(self.select_s)) if self.select_s else 0.0,
                "failed_seeds": [s for s, ok in zip(self.seeds, self.success) if not ok],
                # per episode, for paired comparisons of conditions on the same seeds and for
                # merging runs split over seed ranges (`experiment-merge`)
                "seeds": [int(s) for s in self.seeds], "quality": [float(q) for q in self.quality],
                "success": [bool(s) for s in self.success], "steps": [int(s) for s in self.steps]}


def run_episodes(env: TabletopEnv, policy, selector: Selector, episodes: int, seed: int, n_candidates: int = 8,
                 checker: FeasibilityChecker | None = None, desc: str = "", progress: bool = True,
                 on_decision: Callable | None = None) -> EpisodeStats:
    """Episodes with seeds seed, seed+1, ...; every selector sees the same candidates at the
    same decision of the same seed (candidate seeds depend on episode seed and decision).
    on_decision(env, obs, cands, chosen_index, utilities) is called before each execution."""
    stats = EpisodeStats()
    for k in tqdm(range(episodes), desc=desc, unit="ep", disable=not progress):
        ep_seed = seed + k
        env.reset(ep_seed)
        decision = 0
        while not env.done:
            obs = env.observe()
            cands = policy.sample(obs, n_candidates, seed=ep_seed * 100 + decision)
            t0 = time.perf_counter()
            u = selector(env, obs, cands)
            if u is None:
                index = 0
            else:
                sel = select(cands, u, checker, env.world.panda.joint_positions())
                stats.rejected += len(sel.rejected)
                index = sel.index
            stats.select_s.append(time.perf_counter() - t0)
            if index is None:
                stats.stopped += 1
                break
            if on_decision is not None:
                on_decision(env, obs, cands, index, u)
            if not env.step(cands.primitive(index)).executed:
                stats.not_executed += 1
            decision += 1
        stats.seeds.append(ep_seed)
        stats.success.append(env.success())
        stats.quality.append(env.quality())
        stats.steps.append(env.steps)
    return stats

"""Closed-loop evaluation of a policy in the simulator (used by eval-policy and train-policy).

Per decision the policy samples N candidates from the current observation and one is executed:
`first` (candidate 0: a plain policy rollout), `random` (a uniformly random one of the N), or
`random_primitive` (no policy: uniformly random parameters inside the workspace box and the
angle range; the baseline any policy must beat).

Candidate diversity, measured on the N candidates of the first decision of every episode:

* `<point>_spread_m`: mean pairwise distance (m) between the candidates' <point>s (pick, place,
  start, end);
* `<point>_modes`: how many distinct places those points cover: greedy leader clustering
  (a point joins the first cluster whose leader is within `MODE_RADIUS` = 2 cm, else starts
  one), so 1 = all candidates agree, N = all differ by more than 2 cm;
* `<angle>_modes` (pick_place yaw): the same on the gripper's half-turn circle, with
  `ANGLE_TOL` = 0.25 rad; for a cube, the two ways to grasp (either pair of faces) are yaws
  pi/2 apart, so 2 means both grasps are proposed.

The reported figures are means over episodes. For tasks that name their grasp targets
(`Task.grasp_targets`: the rope's two ends, the block to place), `first_picks_near_target` is
the fraction of those first-decision candidates whose pick lies within `TARGET_TOL` (3 cm, in
the table plane) of one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import PRIMITIVE_SPECS, Workspace
from robot_rewards.core.reporting import mean_ci, save_video, wilson_interval
from robot_rewards.core.workers import run_jobs
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.policy.model import PolicyInputError
from robot_rewards.selection.decider import Decider
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.tasks import make_task

log = logging.getLogger(__name__)

SELECTIONS = ("first", "random", "random_primitive")
MODE_RADIUS = 0.02
ANGLE_TOL = 0.25
TARGET_TOL = 0.03


def leader_clusters(dist: np.ndarray, tol: float) -> int:
    """Number of greedy leader clusters given a pairwise distance matrix."""
    leaders: list[int] = []
    for i in range(len(dist)):
        if not any(dist[i, j] <= tol for j in leaders):
            leaders.append(i)
    return len(leaders)


def candidate_diversity(cands: Candidates) -> dict[str, float]:
    """Spread and mode counts of one decision's candidates (see the module docstring)."""
    spec = PRIMITIVE_SPECS[cands.name]
    out: dict[str, float] = {}
    n = len(cands)
    for point in spec.points:
        i = spec.param_names.index(f"{point}_x")
        xyz = cands.params[:, i : i + 3]
        d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        out[f"{point}_spread_m"] = float(d[np.triu_indices(n, 1)].mean()) if n > 1 else 0.0
        out[f"{point}_modes"] = float(leader_clusters(d, MODE_RADIUS))
    for angle in spec.angles:
        a = cands.params[:, spec.param_names.index(angle)]
        diff = np.abs(a[:, None] - a[None])
        period = np.pi  # gripper yaw: half-turn symmetric
        d = np.minimum(diff % period, period - diff % period)
        out[f"{angle}_modes"] = float(leader_clusters(d, ANGLE_TOL))
    return out


def picks_near_targets(cands: Candidates, targets: np.ndarray | None, tol: float = TARGET_TOL) -> float | None:
    """Fraction of the candidates whose pick is within `tol` (xy) of a target; None without a
    pick point or targets."""
    spec = PRIMITIVE_SPECS[cands.name]
    if targets is None or "pick" not in spec.points:
        return None
    i = spec.param_names.index("pick_x")
    d = np.linalg.norm(cands.params[:, None, i:i + 2] - np.asarray(targets)[None, :, :2], axis=-1)
    return float((d.min(axis=1) <= tol).mean())


def random_candidates(primitive: str, n: int, rng: np.random.Generator,
                      workspace: Workspace | None = None) -> Candidates:
    """n primitives with parameters uniform inside the workspace box / angle range."""
    low, high = PRIMITIVE_SPECS[primitive].bounds(workspace or Workspace())
    return Candidates(primitive, rng.uniform(low, high, size=(n, len(low))), np.zeros(n, np.int64),
                      np.zeros(n, bool))


@dataclass(frozen=True)
class PolicyEvalSpec:
    """What a worker process needs to evaluate a policy (pickled to each worker)."""

    task: str
    policy: Any  # None for selection=random_primitive
    perception: PerceptionConfig | None = None
    n_candidates: int = 8
    selection: str = "first"
    inference_steps: int | None = None
    diversity: bool = True
    sim: SimConfig | None = None
    torch_threads: int | None = None  # None: leave torch's setting alone


class PolicyEvalRunner:
    """One simulator; `runner((seed, record_video))` plays one episode and returns its record."""

    def __init__(self, spec: PolicyEvalSpec):
        if spec.torch_threads:
            torch.set_num_threads(int(spec.torch_threads))
        self.spec = spec
        self.use_policy = spec.selection != "random_primitive"
        self.env = TabletopEnv(spec.task, spec.sim, perception=spec.perception if self.use_policy else None)
        # No feasibility checks: this measures the policy itself (the sim refuses what it cannot run).
        self.decider = Decider(spec.policy if self.use_policy else None,
                               method="random" if spec.selection == "random" else "first",
                               n_candidates=spec.n_candidates, steps=spec.inference_steps)

    def close(self) -> None:
        self.env.close()

    def __call__(self, job: tuple[int, bool]) -> dict:
        ep_seed, record = job
        spec, env = self.spec, self.env
        rng = np.random.default_rng([ep_seed, 7919])  # random primitives and random picks
        frames: list[np.ndarray] = []
        if record:
            env.record_frames(frames.append)
        env.reset(ep_seed)
        rec = {"seed": int(ep_seed), "not_executed": 0, "clipped": 0, "n_cands": 0, "sample_s": [],
               "diversity": None, "reasons": []}
        decision = 0
        while not env.done:
            if self.use_policy:
                obs = env.observe()
                try:  # random picks draw from the episode's generator, one draw per decision
                    d = self.decider.decide(obs, ep_seed, decision, rng=rng)
                except PolicyInputError as exc:
                    rec["reasons"].append(str(exc))
                    rec["not_executed"] += 1
                    break
                rec["sample_s"].append(d.sample_s)
            else:
                d = self.decider.choose(random_candidates(env.task.primitive, spec.n_candidates, rng, env.workspace),
                                        episode_seed=ep_seed, decision=decision)
            cands = d.candidates
            if spec.diversity and decision == 0:
                rec["diversity"] = candidate_diversity(cands)
                near = picks_near_targets(cands, env.task.grasp_targets(env.world))
                if near is not None:
                    rec["diversity"]["first_picks_near_target"] = near
            rec["clipped"] += int(cands.clipped.sum())
            rec["n_cands"] += len(cands)
            result = env.step(d.primitive())
            if not result.executed:
                rec["not_executed"] += 1
                rec["reasons"].append(result.reason)
            decision += 1
        if record:
            env.record_frames(None)
        rec.update(success=bool(env.success()), quality=float(env.quality()), steps=int(env.steps), frames=frames)
        return rec


def evaluate_policy(policy, task: str, episodes: int, seed: int, perception: PerceptionConfig | None = None,
                    n_candidates: int = 8, selection: str = "first", inference_steps: int | None = None,
                    diversity: bool = True, sim: SimConfig | None = None, video_path: Path | None = None,
                    progress: bool = True, workers: Any = 1, torch_threads: int | None = None,
                    executor: str = "local", ray_address: str = "") -> dict:
    """Success rate (Wilson 95% CI), quality, steps and candidate diversity over `episodes`
    episodes with seeds seed, seed+1, ... on `workers` processes (the same per-episode results
    for any number). `policy` may be None for selection=random_primitive."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection '{selection}' (use {', '.join(SELECTIONS)})")
    if episodes <= 0 or n_candidates < 1:
        raise ValueError(f"episodes and n_candidates must be positive, got {episodes}, {n_candidates}")
    if policy is None and selection != "random_primitive":
        raise ValueError(f"selection={selection} needs a policy checkpoint")
    primitive = make_task(task).primitive
    if policy is not None and policy.primitive != primitive:
        raise ValueError(f"task {task} uses {primitive}; the policy predicts {policy.primitive}")
    spec = PolicyEvalSpec(task, policy, perception, n_candidates, selection, inference_steps, diversity, sim,
                          torch_threads)
    jobs = [(seed + k, video_path is not None and k == 0) for k in range(episodes)]
    recs = run_jobs(partial(PolicyEvalRunner, spec), jobs, workers, f"eval {task} ({selection})", progress,
                    executor, ray_address)
    if video_path is not None and recs[0]["frames"]:
        log.info("video: %s", save_video(video_path, recs[0]["frames"]))
    succ = [r["success"] for r in recs]
    quality = [r["quality"] for r in recs]
    sample_s = [t for r in recs for t in r["sample_s"]]
    div = [r["diversity"] for r in recs if r["diversity"] is not None]
    lo, hi = wilson_interval(int(sum(succ)), len(succ))
    q, q_lo, q_hi = mean_ci(quality)
    out = {
        "episodes": len(succ),
        "selection": selection,
        "n_candidates": n_candidates,
        "success_rate": float(np.mean(succ)),
        "success_ci95": [lo, hi],
        "quality_mean": q,
        "quality_ci95": [q_lo, q_hi],
        "steps_mean": float(np.mean([r["steps"] for r in recs])),
        "not_executed": sum(r["not_executed"] for r in recs),
        "clipped_fraction": sum(r["clipped"] for r in recs) / max(sum(r["n_cands"] for r in recs), 1),
        "sample_seconds": float(np.mean(sample_s)) if sample_s else float("nan"),
        "failed_seeds": [r["seed"] for r in recs if not r["success"]],
        "not_executed_reasons": sorted({x for r in recs for x in r["reasons"]})[:10],
        # per episode, for paired comparisons and for checking runs against each other
        "seeds": [r["seed"] for r in recs], "success": succ, "quality": quality,
        "steps": [r["steps"] for r in recs],
    }
    if div:
        out["diversity"] = {key: float(np.mean([d[key] for d in div])) for key in div[0]}
    return out

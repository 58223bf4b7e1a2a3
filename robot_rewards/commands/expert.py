"""`eval-expert` and `collect-demos`: scripted experts in the simulator."""

from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from robot_rewards.conf.commands import CollectDemosConfig, EvalExpertConfig
from robot_rewards.core.reporting import format_table, mean_ci, save_video, wilson_interval, write_metrics
from robot_rewards.core.workers import JobsFailed, check_executor, resolve_workers, run_jobs
from robot_rewards.data.episodes import Episode, EpisodeWriter
from robot_rewards.eval.expert import ExpertRunner
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import expert_config
from robot_rewards.sim.rollout import run_expert_episode
from robot_rewards.sim.tasks import TASKS, make_task

log = logging.getLogger(__name__)


def task_names(task: str) -> list[str]:
    """`all` or one registered task name (an unknown one raises with the list of tasks)."""
    if task == "all":
        return list(TASKS)
    make_task(task)
    return [task]


def evaluate_task(task: str, cfg: EvalExpertConfig, video_path: Path | None = None) -> dict:
    """Success rate (Wilson 95% CI), quality and timing of the expert on one task."""
    jobs = [(cfg.seed + k, video_path is not None and k == 0) for k in range(cfg.episodes)]
    try:
        runs = run_jobs(partial(ExpertRunner, task, cfg.sim, expert_config(cfg)), jobs, cfg.workers,
                        f"{task} (noise={cfg.noise:g})", executor=cfg.executor, ray_address=cfg.ray_address)
    except JobsFailed as exc:  # the finished episodes are kept beside the error
        write_metrics(Path(cfg.output_dir) / f"partial_{task}", exc.report(lambda r: asdict(r[0])))
        raise
    outcomes = [o for o, _ in runs]
    if runs[0][1]:
        log.info("video of %s seed %d: %s", task, cfg.seed, save_video(video_path, runs[0][1]))
    succ = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(succ, len(outcomes))
    q, q_lo, q_hi = mean_ci([o.quality for o in outcomes])
    # The recorded episode renders video frames while it runs: keep it out of the timing.
    timed = outcomes[1:] if video_path is not None and len(outcomes) > 1 else outcomes
    step_s = [s for o in timed for s in o.step_seconds]
    return {
        "episodes": len(outcomes),
        "success_rate": succ / len(outcomes),
        "success_ci95": [lo, hi],
        "quality_mean": q,
        "quality_ci95": [q_lo, q_hi],
        "steps_mean": float(np.mean([o.steps for o in outcomes])),
        "not_executed": int(sum(o.not_executed for o in outcomes)),
        "seconds_per_primitive": float(np.mean(step_s)) if step_s else float("nan"),
        "failed_seeds": [o.seed for o in outcomes if not o.success],
        "seeds": [o.seed for o in outcomes], "success": [bool(o.success) for o in outcomes],
        "steps": [int(o.steps) for o in outcomes],
        "quality": [float(o.quality) for o in outcomes],
        "not_executed_reasons": sorted({r for o in outcomes for r in o.reasons})[:10],
    }


def eval_expert(cfg: EvalExpertConfig) -> dict:
    """Evaluate the scripted expert on one or all tasks; print a table, write metrics.json."""
    if cfg.episodes <= 0:
        raise ValueError(f"episodes must be positive, got {cfg.episodes}")
    resolve_workers(cfg.workers)
    check_executor(cfg.executor, cfg.ray_address)
    out = Path(cfg.output_dir)
    results = {}
    for task in task_names(cfg.task):
        video = out / "videos" / f"{task}_seed{cfg.seed}" if cfg.video else None
        results[task] = evaluate_task(task, cfg, video)
    rows = [
        (t, r["episodes"], f"{100 * r['success_rate']:.1f}%",
         f"[{100 * r['success_ci95'][0]:.1f}, {100 * r['success_ci95'][1]:.1f}]",
         1000 * r["quality_mean"], r["steps_mean"], r["not_executed"], r["seconds_per_primitive"])
        for t, r in results.items()
    ]
    print(f"\nScripted expert, noise={cfg.noise:g}, seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1}")
    print(format_table(["task", "episodes", "success", "95% CI", "quality (mm)", "steps",
                        "not executed", "s/primitive"], rows))
    metrics = {"command": "eval-expert", "config": asdict(cfg), "tasks": results}
    print(f"metrics: {write_metrics(out, metrics)}")
    return metrics


# One simulator per worker process, kept between its episodes.
_ENV: dict[str, TabletopEnv] = {}


def _demo_episode(job: tuple) -> tuple[Episode, bool]:
    """Record one expert episode (in this process's simulator): (episode, success)."""
    task, sim, seed, expert = job
    env = _ENV.get(task)
    if env is None:
        env = _ENV[task] = TabletopEnv(task, sim)
    ep = Episode(seed=seed, goal="", primitive=env.task.primitive)
    outcome = run_expert_episode(env, seed, expert, ep.add_observation, ep.add_step)
    ep.goal = outcome.goal
    return ep, outcome.success


def _demo_episodes(workers: int, jobs: list[tuple]):
    """Episodes of `jobs` in seed order, from this process or a pool of `workers`; streamed to
    the writer as they finish (a whole dataset of images would not fit in memory)."""
    if workers <= 1:
        yield from map(_demo_episode, jobs)
        return
    # spawn: a forked PyBullet client or torch thread pool is not safe to use in the child
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_demo_episode, jobs)


def collect_demos(cfg: CollectDemosConfig) -> dict:
    """Record expert episodes (observations, primitives, outcomes) into an HDF5 dataset.

    With `workers` > 1 the episodes run in parallel processes and are written by this one in
    seed order, so the file is the same as a single process would write.
    """
    if cfg.n <= 0:
        raise ValueError(f"n must be positive, got {cfg.n}")
    workers = resolve_workers(cfg.workers)
    task = make_task(cfg.task)
    path = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / f"demos_{cfg.task}.h5"
    expert = expert_config(cfg)
    jobs = [(cfg.task, cfg.sim, cfg.seed + k, expert) for k in range(cfg.n)]
    successes = 0
    try:
        with TabletopEnv(cfg.task, cfg.sim) as env:
            cameras = list(env.world.cameras.values())
            if workers <= 1:
                _ENV[cfg.task] = env  # the camera models' simulator records the episodes too
            with EpisodeWriter(path, cfg.task, task.primitive, cameras) as writer:
                start = len(writer)
                bar = tqdm(_demo_episodes(workers, jobs), total=cfg.n, desc=f"collect {cfg.task}", unit="ep")
                for ep, success in bar:
                    writer.write(ep)
                    successes += success
                total = len(writer)
    finally:
        _ENV.clear()
    metrics = {"command": "collect-demos", "config": asdict(cfg), "dataset": str(path),
               "episodes_written": cfg.n, "episodes_in_file": total, "first_new_episode": start,
               "success_rate": successes / cfg.n}
    print(f"wrote {cfg.n} episodes of {cfg.task} to {path} ({total} in file, "
          f"{100 * successes / cfg.n:.1f}% successful)")
    write_metrics(cfg.output_dir, metrics)
    return metrics

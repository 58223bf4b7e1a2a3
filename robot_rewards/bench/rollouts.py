"""`robot-rewards bench rollouts`: how episode throughput scales with worker processes and Ray.

Each setting runs the same episodes (same seeds, same policy and scorer) of one selection rule,
timed from the start of the command's work to the last result, worker start-up included (that is
what a user waits for). Scaling efficiency = rate(K) / (K * rate(1)); the per-episode results of
every setting are checked to be identical.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict

from robot_rewards.conf.commands import BenchRolloutsConfig
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.core.workers import available_cores
from robot_rewards.eval.loop import LoopSpec, run_condition
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.preference.io import load_scorer


def bench_rollouts(cfg: BenchRolloutsConfig) -> dict:
    """Episodes/minute per setting (workers = each of `cfg.workers`, then Ray); table + metrics.json."""
    if cfg.episodes < 1 or not cfg.workers:
        raise ValueError("episodes must be >= 1 and workers must list at least one count")
    ck = load_policy(resolve(f"checkpoints/policy_{cfg.task}.json"), task=cfg.task)
    scorer = None
    if cfg.condition.startswith("scorer"):
        scorer = load_scorer(resolve(f"checkpoints/scorer_{cfg.task}.json"), primitive=ck.policy.primitive)
    spec = LoopSpec(cfg.task, ck.policy.eval(), cfg.condition, cfg.n_candidates, scorer, ck.perception, cfg.sim)
    settings = [("local", int(k)) for k in cfg.workers]
    if cfg.ray:
        if importlib.util.find_spec("ray") is None:
            print("Ray is not installed: its row is skipped (pip install 'robot_rewards[ray]')")
        else:
            settings.append(("ray", max(int(k) for k in cfg.workers)))
    rows, results, reference = [], {}, None
    for executor, k in settings:
        t0 = time.perf_counter()
        stats = run_condition(spec, cfg.episodes, cfg.seed, k, f"{executor} x{k}", executor=executor)
        seconds = time.perf_counter() - t0
        per_episode = stats.summary()
        same = (per_episode["quality"], per_episode["success"])
        reference = reference or same
        name = f"{executor} x{k}"
        results[name] = {"executor": executor, "workers": k, "seconds": seconds,
                         "episodes_per_minute": 60 * cfg.episodes / seconds,
                         "identical_to_first": same == reference, "success_rate": per_episode["success_rate"]}
    base = results[f"{settings[0][0]} x{settings[0][1]}"]
    for name, r in results.items():
        r["speedup"] = r["episodes_per_minute"] / base["episodes_per_minute"]
        r["efficiency"] = r["speedup"] * base["workers"] / r["workers"]
        rows.append((name, r["seconds"], r["episodes_per_minute"], r["speedup"], r["efficiency"],
                     "yes" if r["identical_to_first"] else "NO"))
    print(f"\n{cfg.task}, condition '{cfg.condition}', {cfg.episodes} episodes per setting "
          f"(N = {cfg.n_candidates}), {available_cores()} cores available")
    print(format_table(["setting", "seconds", "episodes/min", "speed-up", "efficiency", "same episodes"], rows))
    metrics = {"command": "bench rollouts", "config": asdict(cfg), "cores": available_cores(), "settings": results}
    print(f"metrics: {write_metrics(cfg.output_dir, metrics)}")
    return metrics

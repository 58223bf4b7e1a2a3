"""`robot-rewards bench sim`: simulator throughput per task and sim profile, rendering on."""

from __future__ import annotations

import time
from dataclasses import asdict, replace

from tqdm import tqdm

from robot_rewards.conf.commands import BenchSimConfig
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.sim.config import SimConfig, apply_profile
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks import make_task


def bench_task(task: str, cfg: BenchSimConfig, sim: SimConfig) -> dict:
    """Observe (render every camera) + plan + execute expert primitives until `cfg.primitives`."""
    make_task(task)
    render_s = step_s = 0.0
    n = 0
    seed = cfg.seed
    with TabletopEnv(task, sim) as env:
        env.reset(seed)
        ticks0 = env.world.ticks
        bar = tqdm(total=cfg.primitives, desc=f"bench {task} ({sim.profile})", unit="prim")
        while n < cfg.primitives:
            if env.done:
                seed += 1
                env.reset(seed)
            t0 = time.perf_counter()
            env.observe()
            t1 = time.perf_counter()
            env.step(env.expert_action(ExpertConfig(noise=0.0)))
            t2 = time.perf_counter()
            render_s += t1 - t0
            step_s += t2 - t1
            n += 1
            bar.update()
        bar.close()
        ticks = env.world.ticks - ticks0
    total = render_s + step_s
    return {
        "primitives": n,
        "primitives_per_s": n / total,
        "render_ms": 1000 * render_s / n,
        "execute_ms": 1000 * step_s / n,
        "physics_steps_per_s": ticks / step_s,  # includes planning and control overhead
        "steps_per_primitive": ticks / n,
        "timestep": env.world.cfg.timestep,
    }


def bench_sim(cfg: BenchSimConfig) -> dict:
    """Run the simulator benchmark on every configured task under every configured profile;
    the speed-up column compares each profile with the last one (the baseline)."""
    if not cfg.profiles:
        raise ValueError("profiles must name at least one sim profile")
    sims = {name: replace(cfg.sim, profile=name) for name in cfg.profiles}
    for sim in sims.values():
        apply_profile(sim)  # an unknown name fails here, before any run
    results = {t: {name: bench_task(t, cfg, sim) for name, sim in sims.items()} for t in cfg.tasks}
    base = cfg.profiles[-1]
    cams = ", ".join(f"{c.name}" for c in cfg.sim.cameras)
    print(f"\nSimulator throughput (observe with cameras [{cams}] + plan + execute, one core); "
          f"speed-up vs profile '{base}'")
    rows = []
    for t, per in results.items():
        for name, r in per.items():
            r["speedup_vs_" + base] = r["primitives_per_s"] / per[base]["primitives_per_s"]
            rows.append((t, name, r["primitives_per_s"], r["render_ms"], r["execute_ms"],
                         r["physics_steps_per_s"], r["steps_per_primitive"], r["speedup_vs_" + base]))
    print(format_table(["task", "profile", "primitives/s", "render ms", "execute ms", "physics steps/s",
                        "steps/primitive", "speed-up"], rows))
    metrics = {"command": "bench sim", "config": asdict(cfg), "baseline_profile": base, "tasks": results}
    print(f"metrics: {write_metrics(cfg.output_dir, metrics)}")
    return metrics

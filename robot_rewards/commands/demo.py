"""`robot-rewards demo`: what `make demo` runs.

Until the reward models and the preference loop exist, the demo shows the two halves that do:
the scripted experts on every task, then the shipped diffusion policies (one sample per
decision) on their tasks, each with a table and a video under `output_dir`.
"""

from __future__ import annotations

from pathlib import Path

from robot_rewards.commands.expert import eval_expert
from robot_rewards.conf.commands import DemoConfig, EvalExpertConfig
from robot_rewards.paths import resolve
from robot_rewards.reporting import format_table, write_metrics


def demo(cfg: DemoConfig) -> dict:
    """Scripted experts on every task, then each shipped policy checkpoint; videos and
    `metrics.json` under `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    experts = eval_expert(EvalExpertConfig(
        task="all", episodes=cfg.episodes, seed=cfg.seed, noise=cfg.noise, video=True,
        sim=cfg.sim, output_dir=str(out / "experts"),
    ))
    policies = {}
    for ckpt in cfg.policies:
        policies.update(_run_policy(cfg, ckpt, out))
    if policies:
        rows = [(task, f"{100 * experts['tasks'][task]['success_rate']:.0f}%",
                 f"{100 * r['success_rate']:.0f}%", 1000 * r["quality_mean"], r["steps_mean"])
                for task, r in policies.items()]
        print(f"\nShipped policies vs the scripted expert (noise={cfg.noise:g}), {cfg.policy_episodes} "
              f"episodes per task from seed {cfg.policy_seed}")
        print(format_table(["task", "expert success", "policy success", "policy quality (mm)",
                            "policy steps"], rows))
    metrics = {"command": "demo", "experts": experts["tasks"], "policies": policies}
    print(f"videos: {out}/*/videos/\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _run_policy(cfg: DemoConfig, checkpoint: str, out: Path) -> dict:
    import torch

    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.policy.evaluate import evaluate_policy

    torch.set_num_threads(1)  # the sim dominates; one thread avoids oversubscribing small CPUs
    ck = load_policy(resolve(checkpoint))
    video = out / "policies" / "videos" / f"{ck.task}_seed{cfg.policy_seed}"
    print(f"\npolicy {ck.path.name} on {ck.task}: {cfg.policy_episodes} episodes, one sample per decision")
    r = evaluate_policy(ck.policy, ck.task, cfg.policy_episodes, cfg.policy_seed, ck.perception,
                        n_candidates=1, selection="first", diversity=False,
                        sim=cfg.sim, video_path=video)
    return {ck.task: r}

"""`robot-rewards demo`: what `make demo` runs.

Until the learned policy and reward models exist, the demo runs the scripted experts on every
task in headless simulation, prints the success table and writes one video per task.
"""

from __future__ import annotations

from robot_rewards.conf.commands import DemoConfig, EvalExpertConfig
from robot_rewards.commands.expert import eval_expert


def demo(cfg: DemoConfig) -> dict:
    """A short scripted-expert evaluation with videos under `cfg.output_dir`."""
    return eval_expert(EvalExpertConfig(
        task="all", episodes=cfg.episodes, seed=cfg.seed, noise=cfg.noise, video=True,
        sim=cfg.sim, output_dir=cfg.output_dir,
    ))

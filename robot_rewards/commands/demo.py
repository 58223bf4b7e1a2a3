"""`robot-rewards demo`: what `make demo` runs.

1. the scripted experts on every task (what the demonstrations look like);
2. the preference loop's payoff with the shipped checkpoints: per task, the diffusion policy
   alone (a: its first sample executed) against best-of-N selection by the shipped
   preference scorer (c: N candidates, ensemble mean, walked down until feasible), on the
   same scenes and candidates. Videos show the N candidates overlaid, the chosen one marked.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from robot_rewards.commands.experiment_report import first_try_rate
from robot_rewards.commands.expert import eval_expert
from robot_rewards.conf.commands import DemoConfig, EvalExpertConfig
from robot_rewards.console.overlay import draw_candidates
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, save_video, write_metrics
from robot_rewards.eval.loop import first_sample, run_episodes, scorer_selector
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.registry import load_action_scorer
from robot_rewards.selection.feasibility import FeasibilityChecker
from robot_rewards.sim.env import TabletopEnv


def demo(cfg: DemoConfig) -> dict:
    """Experts on every task, then (a) vs (c) per task; videos and `metrics.json` under
    `cfg.output_dir`."""
    out = Path(cfg.output_dir)
    experts = eval_expert(EvalExpertConfig(
        task="all", episodes=cfg.episodes, seed=cfg.seed, noise=cfg.noise, video=True,
        sim=cfg.sim, output_dir=str(out / "experts"),
    ))
    loops = {task: _run_loop(cfg, task, out) for task in cfg.tasks}
    if loops:
        rows = []
        for task, r in loops.items():
            a, c = r["first"], r["scorer"]
            rows.append([task, f"{100 * experts['tasks'][task]['success_rate']:.0f}%",
                         f"{100 * a['success_rate']:.0f}%", f"{100 * c['success_rate']:.0f}%",
                         f"{100 * a['first_try_rate']:.0f}%", f"{100 * c['first_try_rate']:.0f}%",
                         f"{1000 * a['quality_mean']:.1f}", f"{1000 * c['quality_mean']:.1f}"])
        print(f"\nThe loop with the shipped checkpoints: {cfg.policy_episodes} episodes per task from seed "
              f"{cfg.policy_seed}, N = {cfg.n_candidates} candidates per decision")
        print(format_table(["task", "expert", "(a) policy alone", "(c) best-of-N scorer",
                            "(a) 1st try", "(c) 1st try", "(a) error mm", "(c) error mm"], rows))
        print("(a) executes the policy's first sample; (c) executes the best of N by the preference scorer. "
              "Success is within the task's step budget; '1st try' is success with the first primitive. "
              "Full comparison with 95% CIs: `robot-rewards experiment` (docs/experiments.md).")
    metrics = {"command": "demo", "experts": experts["tasks"], "loop": loops}
    print(f"videos: {out}/*/videos/\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _run_loop(cfg: DemoConfig, task: str, out: Path) -> dict:

    torch.set_num_threads(1)  # the sim dominates; one thread avoids oversubscribing small CPUs
    ck = load_policy(resolve(Path(cfg.checkpoints) / f"policy_{task}.json"), task=task)
    scorer = load_action_scorer(resolve(Path(cfg.checkpoints) / f"scorer_{task}.json"), primitive=ck.policy.primitive,
                                family="preference")
    videos = out / "loop" / "videos"
    results = {}
    print(f"\n{task}: policy {ck.path.name} + scorer {task} (K={scorer.k}), {cfg.policy_episodes} episodes")
    with (TabletopEnv(task, cfg.sim, perception=ck.perception) as env,
          FeasibilityChecker(env.workspace, arm=env.world.arm.description) as checker):
        for name, selector in (("first", first_sample), ("scorer", scorer_selector(scorer, "mean"))):
            recorder = _Recorder(env, name)
            stats = run_episodes(env, ck.policy, selector, cfg.policy_episodes, cfg.policy_seed, cfg.n_candidates,
                                 None if name == "first" else checker, desc=f"{task} {name}",
                                 on_decision=recorder.decision)
            recorder.stop()
            results[name] = stats.summary()
            results[name]["first_try_rate"] = first_try_rate(results[name])
            results[name]["video"] = str(save_video(videos / f"{task}_{name}.mp4", recorder.frames))
    return results


class _Recorder:
    """Video of the first episode: the candidates overlaid before each decision, then the motion."""

    def __init__(self, env, condition: str, hold_frames: int = 12):
        self.env, self.condition, self.hold = env, condition, hold_frames
        self.frames: list[np.ndarray] = []
        self.episode_seed = None
        env.record_frames(self.frames.append)

    def decision(self, env, obs, cands, index, utilities) -> None:

        if self.episode_seed is None:
            self.episode_seed = env.seed
        if env.seed != self.episode_seed:  # only the first episode goes into the video
            env.record_frames(None)
            return
        frame = next(iter(obs.frames.values()))
        tag = "policy's first sample" if utilities is None else "best of N by the scorer"
        img = draw_candidates(frame.rgb, frame.camera, cands, highlight={index: "chosen"}, ticks=0,
                              title=f"{env.task.name} ({self.condition}): {tag}")
        h, w = self.frames[0].shape[:2] if self.frames else (img.shape[0] // 2, img.shape[1] // 2)
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        self.frames.extend([small] * self.hold)

    def stop(self) -> None:
        self.env.record_frames(None)

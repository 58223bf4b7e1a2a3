"""`robot-rewards demo`: what `make demo` runs, on every core.

1. the scripted experts on every task (what the demonstrations look like);
2. the preference loop's payoff with the shipped checkpoints: per task, the diffusion policy
   alone (a: its first sample executed) against best-of-N selection by the shipped
   preference scorer (c: N candidates, ensemble mean, walked down until feasible), on the
   same scenes and candidates, with 95% intervals (Wilson for rates; a paired interval of the
   (c) - (a) final error on the same scenes). Videos of each task's first scene show the N
   candidates overlaid, the chosen one marked.

Every episode of every task and condition is one job of a single pool of worker processes
(`core.workers.run_jobs`; each worker builds one `eval.loop.LoopRunner` per task and
condition), so no core waits for a slow task's last episode while another task is left.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from robot_rewards.commands.experiment_report import first_try_rate, paired_vs
from robot_rewards.commands.expert import eval_expert
from robot_rewards.conf.commands import DemoConfig, EvalExpertConfig
from robot_rewards.console.overlay import draw_candidates
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, save_video, wilson_interval, write_metrics
from robot_rewards.core.workers import resolve_workers, run_jobs
from robot_rewards.eval.loop import EpisodeResult, EpisodeStats, LoopRunner, LoopSpec, run_episode
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.registry import load_action_scorer
from robot_rewards.sim.tasks import TASKS

CONDITIONS = {"first": "(a) policy alone", "scorer": "(c) best-of-N scorer"}


def demo(cfg: DemoConfig) -> dict:
    """Experts on every task, then (a) vs (c) per task on `cfg.workers` processes; videos and
    `metrics.json` under `cfg.output_dir`."""
    start = time.perf_counter()
    workers = resolve_workers(cfg.workers)
    scenes = {task: scene_count(cfg, task) for task in cfg.tasks}  # a bad count fails before any work
    out = Path(cfg.output_dir)
    experts = eval_expert(EvalExpertConfig(
        task="all", episodes=cfg.episodes, seed=cfg.seed, noise=cfg.noise, video=True,
        sim=cfg.sim, output_dir=str(out / "experts"), workers=workers,
    ))
    loops = run_loops(cfg, scenes, workers, out / "loop" / "videos") if scenes else {}
    if loops:
        print(f"\nThe loop with the shipped checkpoints: the same scenes (seeds from {cfg.policy_seed}) for "
              f"(a) and (c), N = {cfg.n_candidates} candidates per decision, 95% intervals in brackets")
        print(loop_table(loops, experts["tasks"]))
        print("(a) executes the policy's first sample; (c) executes the best of N by the preference scorer. "
              "Success is within the task's step budget; '1st try' is success with the first primitive; "
              "error is the final distance to the goal; (c)-(a) pairs the two on each scene "
              "(negative: (c) ends closer)." + _first_try_note(loops, experts["tasks"]))
        print("The full table (random, WCO/UWO, keypoint, CLIP and oracle best-of-N, 100 scenes per task): "
              "`robot-rewards experiment` (docs/experiments.md).")
    seconds = time.perf_counter() - start
    metrics = {"command": "demo", "workers": workers, "seconds": seconds, "experts": experts["tasks"],
               "loop": loops}
    print(f"videos: {out}/*/videos/\nmetrics: {write_metrics(out, metrics)}\n"
          f"{seconds:.0f} s on {workers} worker process(es)")
    return metrics


def scene_count(cfg: DemoConfig, task: str) -> int:
    """Scenes of `task` for (a) and (c): `policy_episodes` if set, else the task's entry in
    `task_episodes`, else its `other` entry (a task added since)."""
    n = cfg.policy_episodes or cfg.task_episodes.get(task, cfg.task_episodes.get("other", 0))
    if n <= 0:
        raise ValueError(f"demo: no scene count for task '{task}' (task_episodes has "
                         f"{sorted(cfg.task_episodes)}); set policy_episodes=K or +task_episodes.{task}=K")
    return int(n)


def run_loops(cfg: DemoConfig, scenes: dict[str, int], workers: int, videos: Path) -> dict:
    """(a) and (c) on `scenes[task]` scenes of every task, all episodes in one pool; per task and
    condition the episode summary, its first-try rate and the video of the first scene; (c)
    also carries its paired difference to (a) (`vs_first`)."""
    specs = {}
    for task in scenes:
        ck = load_policy(resolve(Path(cfg.checkpoints) / f"policy_{task}.json"), task=task)
        scorer = load_action_scorer(resolve(Path(cfg.checkpoints) / f"scorer_{task}.json"),
                                    primitive=ck.policy.primitive, family="preference")
        print(f"{task}: policy {ck.path.name} + scorer {task} (K={scorer.k}), {scenes[task]} scenes")
        for cond in CONDITIONS:
            specs[task, cond] = LoopSpec(task, ck.policy.eval(), cond, cfg.n_candidates,
                                         scorer if cond == "scorer" else None, ck.perception, cfg.sim)
    # grouped by task (a worker keeps one task's simulators at a time), the slowest task first and
    # each task's recorded scene first, so the pool ends on short episodes
    order = sorted(scenes, key=_slowness, reverse=True)
    jobs = [(task, cond, cfg.policy_seed + k, k == 0) for task in order for k in range(scenes[task])
            for cond in CONDITIONS]
    done = run_jobs(partial(DemoRunner, specs), jobs, workers, "demo (a) and (c)")
    results: dict[str, dict] = {task: {} for task in scenes}
    for task in scenes:
        for cond in CONDITIONS:
            mine = [(job, r) for job, r in zip(jobs, done) if job[:2] == (task, cond)]
            mine.sort(key=lambda jr: jr[0][2])  # seed order
            summary = EpisodeStats.of(r for _, (r, _, _) in mine).summary()
            summary["first_try_rate"] = first_try_rate(summary)
            # CPU seconds of an unrecorded episode: what sizing task_episodes for a machine needs
            cpu = [s for (*_, record), (_, _, s) in mine if not record]
            summary["cpu_s_per_episode"] = float(np.mean(cpu)) if cpu else float("nan")
            summary["video"] = str(save_video(videos / f"{task}_{cond}.mp4", mine[0][1][1]))
            results[task][cond] = summary
        results[task]["scorer"]["vs_first"] = paired_vs(results[task]["first"], results[task]["scorer"])
    return results


def _slowness(task: str) -> int:
    """Rough relative episode cost (the task's step budget), to start the slow tasks first."""
    return TASKS[task].max_steps if task in TASKS else 0


class DemoRunner:
    """A worker's loop runners, one per (task, condition), built on first use; a job
    (task, condition, seed, record) -> (EpisodeResult, video frames (empty unless record), the
    episode's CPU seconds in this process).
    Only the current task's runners are kept: jobs come grouped by task, so a worker seldom
    goes back to one it has closed (it would rebuild it)."""

    def __init__(self, specs: dict[tuple[str, str], LoopSpec]):
        self.specs = specs
        self.runners: dict[tuple[str, str], LoopRunner] = {}

    def __call__(self, job: tuple[str, str, int, bool]) -> tuple[EpisodeResult, list[np.ndarray], float]:
        task, cond, seed, record = job
        start = time.process_time()
        for key in [k for k in self.runners if k[0] != task]:
            self.runners.pop(key).close()
        if (task, cond) not in self.runners:
            self.runners[task, cond] = LoopRunner(self.specs[task, cond])
        runner = self.runners[task, cond]
        if not record:
            return runner(seed), [], time.process_time() - start
        recorder = Recorder(runner.env, CONDITIONS[cond])
        try:
            result = run_episode(runner.env, runner.spec.policy, runner.selector, seed, runner.spec.n_candidates,
                                 runner.checker, recorder.decision)
        finally:
            recorder.stop()
        return result, recorder.frames, time.process_time() - start

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()


class Recorder:
    """Video of one episode: the candidates overlaid before each decision, then the motion."""

    def __init__(self, env, condition: str, hold_frames: int = 12):
        self.env, self.condition, self.hold = env, condition, hold_frames
        self.frames: list[np.ndarray] = []
        env.record_frames(self.frames.append)

    def decision(self, env, obs, cands, index, utilities) -> None:
        """An `on_decision` hook: the candidates over the camera image, held for a moment."""
        frame = next(iter(obs.frames.values()))
        tag = "policy's first sample" if utilities is None else "best of N by the scorer"
        img = draw_candidates(frame.rgb, frame.camera, cands, highlight={index: "chosen"}, ticks=0,
                              title=f"{env.task.name} {self.condition}: {tag}")
        h, w = self.frames[0].shape[:2] if self.frames else (img.shape[0] // 2, img.shape[1] // 2)
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        self.frames.extend([small] * self.hold)

    def stop(self) -> None:
        self.env.record_frames(None)


def loop_table(loops: dict, experts: dict) -> str:
    """One row per task: scenes, the expert's success, final and first-try success of (a) and (c)
    with Wilson intervals, their final errors and the paired (c) - (a) error difference."""
    rows = []
    for task, r in loops.items():
        a, c = r["first"], r["scorer"]
        p = c.get("vs_first")
        diff = "-" if p is None else _mm_ci(p["quality_diff"], p["quality_diff_ci95"], sign=True)
        rows.append([task, a["episodes"], f"{100 * experts[task]['success_rate']:.0f}%" if task in experts else "-",
                     _rate(a["success"]), _rate(c["success"]), _rate(_first(a)), _rate(_first(c)),
                     f"{1000 * a['quality_mean']:.1f}", f"{1000 * c['quality_mean']:.1f}", diff])
    return format_table(["task", "scenes", "expert", "(a) success", "(c) success", "(a) 1st try", "(c) 1st try",
                         "(a) error mm", "(c) error mm", "(c)-(a) error mm"], rows)


def _first_try_note(loops: dict, experts: dict) -> str:
    """Why a task's first try reads 0% whatever the policy does: its expert never succeeds with
    one primitive either (e.g. stacking two blocks takes two)."""
    multi = [t for t in loops if experts.get(t, {}).get("success") and
             min((st for ok, st in zip(experts[t]["success"], experts[t]["steps"]) if ok), default=1) >= 2]
    return (f" {', '.join(multi)}: the expert needs at least two primitives, so the first try cannot succeed."
            if multi else "")


def _first(summary: dict) -> list[bool]:
    """Per scene: succeeded with the first primitive."""
    return [ok and st == 1 for ok, st in zip(summary["success"], summary["steps"])]


def _rate(flags: list[bool]) -> str:
    """A rate with its Wilson 95% interval, in percent."""
    k, n = int(sum(flags)), len(flags)
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]" if n else "-"


def _mm_ci(m: float, ci: list[float], sign: bool = False) -> str:
    f = "{:+.1f}" if sign else "{:.1f}"
    return f"{f.format(1000 * m)} [{f.format(1000 * ci[0])}, {f.format(1000 * ci[1])}]"

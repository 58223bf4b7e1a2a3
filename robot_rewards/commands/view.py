"""`robot-rewards view`: the policy + scorer deciding in the simulator, logged to Rerun."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.registry import load_action_scorer
from robot_rewards.selection.decider import Decider
from robot_rewards.selection.feasibility import FeasibilityChecker
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.viz.config import ViewConfig
from robot_rewards.viz.figure import decision_figure
from robot_rewards.viz.rerun_log import DecisionLog, check_writable


def view(cfg: ViewConfig) -> dict:
    """Run `episodes` sim episodes, logging every decision; prints where the recording is."""
    if cfg.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {cfg.episodes}")
    out = Path(cfg.output_dir)
    rrd = Path(cfg.rrd) if cfg.rrd else out / "decisions.rrd"
    check_writable(rrd)  # before loading anything: a bad path fails at once
    ck = load_policy(resolve(cfg.policy or f"checkpoints/policy_{cfg.task}.json"), task=cfg.task, device=cfg.device)
    scorers = {}
    if cfg.scorer != "none":
        scorers = {"preference": load_action_scorer(resolve(cfg.scorer or f"checkpoints/scorer_{cfg.task}.json"),
                                                    primitive=ck.policy.primitive, device=cfg.device)}
    rows, figure, decisions, rejected = [], None, 0, 0
    with TabletopEnv(cfg.task, cfg.sim, perception=ck.perception) as env, \
            FeasibilityChecker(env.workspace, arm=env.world.arm.description) as checker, \
            DecisionLog(rrd, spawn=cfg.spawn) as log:
        decider = Decider(ck.policy, scorers or None, checker=checker, n_candidates=cfg.n_candidates,
                          method="best_of_n" if scorers else "first")
        for k in tqdm(range(cfg.episodes), desc=f"view {cfg.task}", unit="ep"):
            seed = cfg.seed + k
            env.reset(seed)
            step = 0
            while not env.done:
                obs = env.observe()
                d = decider.decide(obs, seed, step, env.world.arm.joint_positions())
                log.log_decision(obs, d, episode=k)
                decisions += 1
                rejected += len(d.rejected)
                if cfg.figure and figure is None:
                    figure = decision_figure(obs, d, out / "decision.png",
                                             f"{cfg.task} seed {seed}: {obs.goal}")
                if d.chosen is None:
                    break
                env.step(d.primitive())
                log.log_outcome(env.quality(), env.success())
                step += 1
            rows.append((seed, step, env.success(), round(env.quality() * 1000, 1)))
    print(format_table(["seed", "steps", "success", "quality (mm)"], rows))
    print(f"\n{decisions} decisions ({rejected} rejections) in {rrd}; open it with `rerun {rrd}`")
    metrics = {"command": "view", "config": asdict(cfg), "rrd": str(rrd), "decisions": decisions,
               "rejected": rejected, "episodes": [dict(zip(("seed", "steps", "success", "quality_mm"), r))
                                                  for r in rows],
               "figure": str(figure) if figure else None}
    write_metrics(out, metrics)
    return metrics

"""`robot-rewards console`: the teleop + labelling console on a robot (`backend=sim` or `ros`).

The command picks the robot, loads the policy (and scorer) and runs `console.app.Console`;
the console itself knows only the `Robot` interface.
"""

from __future__ import annotations

import sys
from typing import TextIO

import torch

from robot_rewards.console.app import IMAGE_NAME, Console, output_dir_for
from robot_rewards.console.config import ConsoleConfig, RosConsoleConfig
from robot_rewards.console.window import Window
from robot_rewards.core.paths import resolve
from robot_rewards.core.primitives import Workspace
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.rewards.registry import load_action_scorer
from robot_rewards.robots.base import Robot
from robot_rewards.ros.console_backend import RosRobot
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.robot import SimRobot
from robot_rewards.viz.rerun_log import LIVE, check_target, open_decision_log


def make_backend(kind: str, task: str, sim: SimConfig | None = None,
                 perception: PerceptionConfig | None = None, workspace: Workspace | None = None,
                 ros=None) -> Robot:
    """The backend named by the console's `backend` setting (`ros`: a RosConsoleConfig)."""
    if kind == "sim":
        return SimRobot(task, sim, perception, workspace)
    if kind == "ros":
        return RosRobot(ros or RosConsoleConfig())
    raise ValueError(f"unknown backend '{kind}'; use 'sim' or 'ros'")


def run_console(cfg: ConsoleConfig, input_stream: TextIO | None = None, output: TextIO | None = None) -> dict:
    """Run a labelling session; returns the metrics also written to `<output_dir>/metrics.json`.

    input_stream: lines of keys/commands (default stdin), read by a background thread (so the
    window stays responsive and answer times are exact) until the session ends: one session
    per stream. output: where prompts go (default stdout). Answers are in the preference store
    at `cfg.store` as soon as they are given.
    """
    input_stream = sys.stdin if input_stream is None else input_stream
    output = sys.stdout if output is None else output
    torch.set_num_threads(max(1, cfg.torch_threads))
    check_target(cfg.rerun)  # a bad recording path fails before anything loads
    out_dir = output_dir_for(cfg.output_dir)
    ck = load_policy(resolve(cfg.checkpoint_path()), task=cfg.task, device=cfg.device)
    scorer = None
    if cfg.scorer:
        scorer = load_action_scorer(resolve(cfg.scorer), primitive=ck.policy.primitive, device=cfg.device)
    backends: list[Robot] = []
    store = console = window = log = None
    try:
        # The sim enforces its arm's configured workspace, not the checkpoint's (which the
        # console narrows to the robot's: `robots.workspace.narrowed`).
        backends.append(make_backend(cfg.backend, cfg.task, cfg.sim, ck.perception, None, cfg.ros))
        if backends[0].can_reset and not cfg.execute_after_label and cfg.prefetch:
            spare = backends[0].spare()  # a second world prepares the next scene
            if spare is not None:
                backends.append(spare)
        store = PreferenceStore(cfg.store, create=True)
        window = Window.open(cfg.window)
        log = open_decision_log(cfg.rerun)
        console = Console(cfg, ck.policy, scorer, backends, store, output, out_dir, window, log,
                          policy_identity=ck.identity())
        output.write(f"robot-rewards console: {cfg.task}, {cfg.mode} mode, {cfg.n_candidates} candidates, "
                     f"labeller {console.labeller}, store {store.root}\n"
                     f"window: {'on' if window else 'off'}; the image is always at {out_dir / IMAGE_NAME}\n")
        try:
            console.run(input_stream)
        except KeyboardInterrupt:
            output.write("\ninterrupted: quitting (answers are stored)\n")
        metrics = console.metrics()
    finally:
        if console is not None:
            console.close()
        if window is not None:
            window.close()
        if log is not None:
            log.close()
        if store is not None:
            store.close()
        for b in backends:
            b.close()
    lat = metrics["next_query_latency_ms"]
    rows = [("queries done", metrics["queries_done"]), ("answers", metrics["answers"]),
            ("labels in store (task)", metrics["labels"]), ("demonstrations", metrics["demonstrations"]),
            ("next query median (ms)", "-" if lat["median"] is None else round(lat["median"], 1)),
            ("next query p95 (ms)", "-" if lat["p95"] is None else round(lat["p95"], 1))]
    output.write("\n" + format_table(["console", "value"], rows) + "\n")
    if cfg.rerun:
        metrics["rerun"] = cfg.rerun
        output.write(f"queries logged to Rerun: {cfg.rerun}"
                     + ("" if cfg.rerun == LIVE else f" (open it with `rerun {cfg.rerun}`)") + "\n")
    output.write(f"metrics: {write_metrics(out_dir, metrics)}\n")
    output.flush()
    return metrics

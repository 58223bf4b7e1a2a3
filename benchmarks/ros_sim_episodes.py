"""Success of the ROS 2 sim graph over episodes, beside the Python loop on the same scenes.

    source <ROS 2 Jazzy>/setup.bash; source <colcon ws>/install/setup.bash
    python benchmarks/ros_sim_episodes.py TASK EPISODES [SEED] [LOOP_METRICS] [OUT_DIR] [name:=value ...]

Launches `ros2 launch robot_rewards sim.launch.py task:=TASK seed:=SEED` (its log goes to
OUT_DIR/launch.log), then for each episode waits until the policy stops (`/policy/status` done:
task_succeeded or max_decisions), records the episode's `/task/status` (success, quality), its
decisions and their timing, and calls `/sim_bridge/reset` for the next scene (seed + 1). The
policy samples decision k of an episode with that scene's seed (`episode_seeds`), as
`robot-rewards eval-policy seed=SEED` does, so LOOP_METRICS (that command's metrics.json) can be
compared scene by scene. Prints one row per episode, the success rate of both and the seconds
per decision; writes OUT_DIR/episodes.json. Arguments with `:=` go to the launch (e.g.
`scorers:=pref=checkpoints/scorer_align_rope.json`; a scorer changes the choice, so compare with
the loop only without one). Runs for minutes: start it with `nice -n 10`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from robot_rewards.core.reporting import format_table

EPISODE_TIMEOUT_S = 900.0  # the rope graph on 2 loaded cores: 6 decisions of ~35 s, with margin
STOP_CODES = ("task_succeeded", "max_decisions")


def loop_by_seed(loop_metrics: str) -> dict[int, tuple[bool, float, int]]:
    """{seed: (success, quality in m, steps)} from `robot-rewards eval-policy`'s metrics.json
    ("" = no loop run to compare with)."""
    if not loop_metrics:
        return {}
    r = next(iter(json.loads(Path(loop_metrics).read_text())["tasks"].values()))
    return {s: (ok, q, n) for s, ok, q, n in zip(r["seeds"], r["success"], r["quality"], r["steps"])}


def loop_comparison(records: list[dict], loop: dict, rate: float) -> dict:
    """The loop's success on the recorded seeds, the difference from `rate` in points, and how
    many scenes end the same way in both."""
    both = [r for r in records if r["seed"] in loop]
    loop_rate = sum(loop[r["seed"]][0] for r in both) / max(len(both), 1)
    return {"loop_success": loop_rate, "difference_points": 100 * (rate - loop_rate),
            "scenes_agreeing": sum(loop[r["seed"]][0] == r["success"] for r in both)}


def report(out: Path, summary: dict, records: list[dict]) -> dict:
    """Print the summary and write it with the episodes to OUT_DIR/episodes.json."""
    print(json.dumps(summary, indent=1))
    (out / "episodes.json").write_text(json.dumps({"summary": summary, "episodes": records}, indent=1))
    return summary


def launch(task: str, seed: int, log_path: Path, extra: list[str]) -> subprocess.Popen:
    """`ros2 launch` in its own process group (so all its nodes can be stopped together)."""
    log = open(log_path, "w")
    return subprocess.Popen(["ros2", "launch", "robot_rewards", "sim.launch.py", f"task:={task}", f"seed:={seed}",
                             *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGINT to the launch's process group (nodes shut down cleanly), SIGTERM if that is not enough."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


class Watcher:
    """Records the graph's typed status topics; `spin(seconds, until)` spins until a condition."""

    def __init__(self):
        # rclpy and the generated interfaces exist only in a sourced ROS 2 workspace
        import rclpy
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_srvs.srv import Trigger

        from robot_rewards_interfaces.msg import CandidateSet, ExecutorStatus, PolicyStatus, TaskStatus

        self.rclpy = rclpy
        rclpy.init()
        self.node = Node("episode_probe")
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.policy = None  # the latest PolicyStatus
        self.task = None  # the latest TaskStatus
        self.sets: dict[int, float] = {}  # decision id -> when its candidate set came (s)
        self.scored: dict[int, list[str]] = {}  # decision id -> the models that scored its candidates
        self.ends: dict[int, tuple[float, str]] = {}  # decision id -> (when it ended, state)
        self.t0 = time.monotonic()
        self.node.create_subscription(PolicyStatus, "/policy/status", self._policy, latched)
        self.node.create_subscription(TaskStatus, "/task/status", self._task, reliable)
        self.node.create_subscription(CandidateSet, "/policy/candidates", self._set, latched)
        self.node.create_subscription(ExecutorStatus, "/executor/status", self._executor, reliable)
        self.reset_client = self.node.create_client(Trigger, "/sim_bridge/reset")
        self.trigger = Trigger

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _policy(self, msg) -> None:
        self.policy = msg

    def _task(self, msg) -> None:
        self.task = msg

    def _set(self, msg) -> None:
        self.sets.setdefault(int(msg.decision_id), self.now())
        self.scored[int(msg.decision_id)] = [s.name for s in msg.scores]

    def _executor(self, msg) -> None:
        if msg.state not in ("executing", "accepted"):
            self.ends.setdefault(int(msg.decision_id), (self.now(), str(msg.state)))

    def spin(self, seconds: float, until) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.2)
            if until():
                return True
        return False

    def reset(self) -> str:
        if not self.reset_client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError("nobody serves /sim_bridge/reset")
        future = self.reset_client.call_async(self.trigger.Request())
        self.spin(60.0, future.done)
        if not future.done() or not future.result().success:
            raise RuntimeError(f"/sim_bridge/reset failed: {future.result().message if future.done() else 'no answer'}")
        return future.result().message

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.shutdown()


def run_episode(w: Watcher, seed: int) -> dict:
    """Wait for the policy to stop in the episode of scene `seed`; its record."""
    start = w.now()
    first_set = len(w.sets)

    def stopped() -> bool:
        p = w.policy
        return p is not None and p.has_task and p.episode == seed and p.state == "done" and p.code in STOP_CODES

    finished = w.spin(EPISODE_TIMEOUT_S, stopped)
    # the task status after the last motion (the policy stopped on it)
    w.spin(60.0, lambda: w.task is not None and w.task.episode == seed)
    ids = sorted(w.sets)[first_set:]
    w.spin(5.0, lambda: all(i in w.ends for i in ids))  # the executor's last status may follow the result
    times = [w.ends[i][0] - w.sets[i] for i in ids if i in w.ends]
    p, t = w.policy, w.task
    return {"seed": seed, "success": bool(t.success) if t is not None and t.episode == seed else False,
            "quality": float(t.quality) if t is not None and t.episode == seed else float("nan"),
            "decisions": int(p.decisions) if p is not None else 0, "stopped": p.code if finished else "timeout",
            "seconds": w.now() - start, "execute_s": times,
            "results": [w.ends[i][1] for i in ids if i in w.ends], "scored_by": [w.scored.get(i, []) for i in ids]}


def main(task: str, episodes: int, seed: int = 0, loop_metrics: str = "", out_dir: str = "",
         launch_args: list[str] | None = None) -> dict:
    out = Path(out_dir or f"outputs/ros-sim-episodes/{task}")
    out.mkdir(parents=True, exist_ok=True)
    proc = launch(task, seed, out / "launch.log", list(launch_args or []))
    w = Watcher()
    records = []
    try:
        for k in range(episodes):
            if k:
                print(f"reset: {w.reset()}", flush=True)
            rec = run_episode(w, seed + k)
            records.append(rec)
            print(f"episode {k + 1}/{episodes} seed {rec['seed']}: success {rec['success']}, quality "
                  f"{rec['quality']:.4f}, {rec['decisions']} decisions ({rec['stopped']}), {rec['seconds']:.0f} s, "
                  f"results {rec['results']}, scored by {rec['scored_by']}", flush=True)
            if rec["stopped"] == "timeout":
                break
    finally:
        stop(proc)  # first: closing rclpy after Ctrl-C raises (its handler already shut it down)
        try:
            w.close()
        except Exception as exc:
            print(f"closing the probe: {exc}", file=sys.stderr)
    loop = loop_by_seed(loop_metrics)
    rows = []
    for rec in records:
        lp = loop.get(rec["seed"])
        rows.append([rec["seed"], rec["success"], 1000 * rec["quality"], rec["decisions"],
                     rec["seconds"] / max(rec["decisions"], 1),
                     "" if lp is None else lp[0], "" if lp is None else 1000 * lp[1], "" if lp is None else lp[2]])
    print(format_table(["seed", "graph success", "graph quality (mm)", "graph decisions", "s/decision",
                        "loop success", "loop quality (mm)", "loop steps"], rows))
    n = len(records)
    graph_rate = sum(r["success"] for r in records) / max(n, 1)
    decisions = sum(r["decisions"] for r in records)
    summary = {"task": task, "episodes": n, "graph_success": graph_rate,
               "graph_seconds_per_decision": sum(r["seconds"] for r in records) / max(decisions, 1),
               "graph_execute_s_mean": (sum(sum(r["execute_s"]) for r in records)
                                        / max(sum(len(r["execute_s"]) for r in records), 1))}
    if loop:
        summary.update(loop_comparison(records, loop, graph_rate))
    return report(out, summary, records)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    extra = [x for x in sys.argv[1:] if ":=" in x]
    a = [x for x in sys.argv[1:] if ":=" not in x]
    main(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 0, a[3] if len(a) > 3 else "", a[4] if len(a) > 4 else "", extra)

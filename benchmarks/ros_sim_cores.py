"""The sim graph's node logic in simulated time, without ROS, beside the Python loop on the same scenes.

    python benchmarks/ros_sim_cores.py TASK EPISODES [SEED] [LOOP_METRICS] [OUT_DIR]

Runs, in one process and on the sim's own clock, what the nodes of `sim.launch.py` run: episode e
is the sim bridge's `env.reset(e)` (as `eval-policy seed=e`); each decision k renders the sim
bridge's camera messages, turns them into a cloud with the perception core (the checkpoint's
perception settings), samples the policy with `decision_seed(e, k)`, takes the first feasible
candidate from the arm's joint state (no scorers, as the policy node without a reward model), has
the executor core plan it with config/sim.yaml's executor parameters and sends its goals to the sim
bridge's trajectory and gripper controllers (10 ms control steps); the next decision comes after
1.5 s of physics, as the graph waits for a fresh cloud. An episode ends at the task's success or
its step budget.

What it leaves out is the wall clock: on the real graph, timers, DDS and a loaded machine decide
how many physics ticks fall between two goals, so the graph's episodes are not repeatable; this
one is, runs ~20x faster than the graph and needs no ROS install, so it can compare the graph's
logic with the loop over many scenes. LOOP_METRICS: `robot-rewards eval-policy ... metrics.json` of
the same seeds; prints one row per scene, both success rates and the scenes agreeing, writes
OUT_DIR/episodes.json. Runs for minutes (rope: ~1-2 s per decision on a loaded core): start it
with `nice -n 10`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import yaml
from ros_sim_episodes import loop_by_seed, loop_comparison, report  # the graph benchmark beside this one (no ROS at import)

from robot_rewards.core.reporting import format_table
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.ros import convert as rc
from robot_rewards.ros.config import ExecutorConfig, PerceptionNodeConfig, SimBridgeConfig
from robot_rewards.ros.executor_core import STATUS_SUCCEEDED, ExecutorCore
from robot_rewards.ros.observation import cloud_observation
from robot_rewards.ros.params import coerce_config
from robot_rewards.ros.payloads import PrimitiveCommand
from robot_rewards.ros.perception_core import PerceptionCore
from robot_rewards.ros.sim_bridge_core import SimBridgeCore
from robot_rewards.ros.trajectory_goal import TrajectoryRejected
from robot_rewards.selection.decider import Decider
from robot_rewards.selection.feasibility import FeasibilityChecker

ROOT = Path(__file__).resolve().parents[1]
CONTROL_DT = 0.01  # s per control step: the sim bridge's control_rate of 100 Hz
BETWEEN_DECISIONS_S = 1.5  # s of physics before the next decision (the graph waits for a new cloud)
STEP_TIMEOUT_S = 30.0  # s of sim time one action goal may take before the run is called stuck


def action_message_types():
    """Message classes with the control_msgs action goals the executor core builds (the rosbags
    store has no action types): the rclpy double's, from tests/ros_double."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ros_double.messages import message_types  # test helper: generated-class stand-ins with actions

    return message_types()


class _Result:
    """An action result as the executor core reads it (FollowJointTrajectory / GripperCommand fields)."""

    def __init__(self, outcome):
        self.error_code, self.error_string = outcome.error_code, outcome.error_string
        for key, value in outcome.gripper.items():
            setattr(self, key, value)


def execute(bridge: SimBridgeCore, executor: ExecutorCore, primitive, decision: int) -> str:
    """One primitive through the executor core's goals and the sim bridge's controllers, as the
    executor node and the sim bridge node do; returns the executor's final state."""
    executor.on_joint_state(bridge.joint_state_message((0, 0)))
    statuses, step = executor.on_primitive(PrimitiveCommand(decision, primitive))
    while step is not None:
        goal = executor.goal_message(step)
        outcomes: list = []
        if step.kind == "arm":
            try:  # the sim bridge node rejects such a goal, and the executor stops the primitive
                checked = bridge.check_goal(goal.trajectory)
                tolerances = bridge.goal_tolerances([(t.name, t.position) for t in goal.path_tolerance],
                                                    [(t.name, t.position) for t in goal.goal_tolerance])
            except TrajectoryRejected as exc:
                print(f"decision {decision}: '{step.label}' rejected: {exc}", flush=True)
                return executor.on_goal_response(False)[0][-1].state
            wait = goal.goal_time_tolerance
            bridge.start_trajectory(checked, outcomes.append, wait.sec + wait.nanosec * 1e-9, tolerances)
        else:
            bridge.start_gripper(goal.command.position, goal.command.max_effort, outcomes.append)
        for _ in range(int(STEP_TIMEOUT_S / CONTROL_DT)):
            if outcomes:
                break
            bridge.step(CONTROL_DT)
        else:
            raise RuntimeError(f"decision {decision}: step '{step.label}' did not end in {STEP_TIMEOUT_S} s")
        statuses, step = executor.on_result(STATUS_SUCCEEDED, _Result(outcomes[0]))
    return statuses[-1].state


def main(task: str, episodes: int, seed: int = 0, loop_metrics: str = "", out_dir: str = "") -> dict:
    torch.set_num_threads(1)  # as eval-policy and the policy node (torch_threads)
    out = Path(out_dir or f"outputs/ros-sim-cores/{task}")
    out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "config" / "sim.yaml").read_text())
    ck_path = f"checkpoints/policy_{task}.json"
    ck = load_policy(ROOT / ck_path, device="cpu")
    kin = ArmKinematics()
    types = rc.ROSBAGS_TYPES
    executor = ExecutorCore(coerce_config(ExecutorConfig, params["executor"]["ros__parameters"]), kin,
                            action_message_types())
    decider = Decider(ck.policy, checker=FeasibilityChecker(ck.policy.workspace, kin), n_candidates=8,
                      missing_weight=1.0)
    bridge = SimBridgeCore(SimBridgeConfig(task=task, seed=seed), types)
    perception_cfg = PerceptionNodeConfig(max_rate=0.0, perception_from_checkpoint=str(ROOT / ck_path))
    records = []
    try:
        for e in range(seed, seed + episodes):
            t0 = time.perf_counter()
            bridge.reset(e)
            env = bridge.env
            bridge.step(0.5)
            k, results, not_first = 0, [], 0
            while not (env.success() or k >= env.task.max_steps):
                perception = PerceptionCore(perception_cfg, types)
                stamp = (100 + k, 0)
                frame = bridge.camera_messages(stamp)
                perception.on_camera_info(frame["color_info"])
                perception.on_tf(bridge.static_tf_message(stamp), True)
                perception.on_color(frame["color"])
                obs = cloud_observation(perception.on_depth(frame["depth"]).msg, bridge.goal)
                d = decider.choose(decider.sample(obs, e, k), {}, q_start=bridge.joint_positions(),
                                   episode_seed=e, decision=k)
                k += 1
                if d.chosen is None:
                    results.append("infeasible")
                    continue
                not_first += int(d.chosen != 0)
                results.append(execute(bridge, executor, d.primitive(), k))
                bridge.step(BETWEEN_DECISIONS_S)
            rec = {"seed": e, "success": bool(env.success()), "quality": float(env.quality()), "decisions": k,
                   "results": results, "not_candidate_0": not_first, "seconds": time.perf_counter() - t0}
            records.append(rec)
            print(f"episode {e - seed + 1}/{episodes} seed {e}: success {rec['success']}, quality "
                  f"{rec['quality']:.4f}, {k} decisions, results {results}, {rec['seconds']:.0f} s", flush=True)
    finally:
        bridge.close()
    loop = loop_by_seed(loop_metrics)
    rows = []
    for rec in records:
        lp = loop.get(rec["seed"])
        rows.append([rec["seed"], rec["success"], 1000 * rec["quality"], rec["decisions"],
                     "" if lp is None else lp[0], "" if lp is None else 1000 * lp[1], "" if lp is None else lp[2]])
    print(format_table(["seed", "cores success", "cores quality (mm)", "cores decisions", "loop success",
                        "loop quality (mm)", "loop steps"], rows))
    n = len(records)
    summary = {"task": task, "episodes": n, "cores_success": sum(r["success"] for r in records) / max(n, 1),
               "decisions_not_candidate_0": sum(r["not_candidate_0"] for r in records),
               "decisions": sum(r["decisions"] for r in records)}
    if loop:
        both = [r for r in records if r["seed"] in loop]
        summary.update(loop_comparison(records, loop, summary["cores_success"]))
        summary["cores_only"] = sum(r["success"] and not loop[r["seed"]][0] for r in both)
        summary["loop_only"] = sum(loop[r["seed"]][0] and not r["success"] for r in both)
    return report(out, summary, records)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    a = sys.argv[1:]
    main(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 0, a[3] if len(a) > 3 else "", a[4] if len(a) > 4 else "")

"""The node graphs of the launch files, as plain data (tested without ROS).

`launch/*.launch.py` declare the arguments listed here and turn the NodeSpecs returned by
`sim_graph`, `robot_graph` and `calibrate_graph` into launch_ros Node actions. Launch
arguments arrive as strings; each one that is set overrides a parameter of a node, converted
and checked against that node's config dataclass (a wrong value fails at launch time, with the
parameter named). Parameters not set by an argument come from the YAML file in config/.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from robot_rewards.calibration.camera_info import load_transform
from robot_rewards.core import transforms
from robot_rewards.core.paths import data_file, resolve
from robot_rewards.ros.config import (
    CalibrationCaptureConfig,
    ConsoleNodeConfig,
    ExecutorConfig,
    PerceptionNodeConfig,
    PolicyNodeConfig,
    RewardServerConfig,
    SimBridgeConfig,
)
from robot_rewards.ros.params import coerce_config

PACKAGE = "robot_rewards"


@dataclass(frozen=True)
class LaunchArg:
    name: str
    default: str
    description: str


@dataclass
class NodeSpec:
    """One node to launch: executable, node name, parameter files/dicts, command-line arguments."""

    executable: str
    name: str
    parameters: list = field(default_factory=list)
    package: str = PACKAGE
    arguments: list[str] = field(default_factory=list)


_COMMON = [
    LaunchArg("params_file", "", "parameter YAML for every node ('' = the package's config/<graph>.yaml)"),
    LaunchArg("policy_checkpoint", "", "policy checkpoint ('' = checkpoints/policy_<task>.json with task:=, else the YAML's)"),
    LaunchArg("scorers", "", "reward-server scorers as comma-separated name=checkpoint entries"),
    LaunchArg("state_reward", "", "goal reward model as module:factory"),
    LaunchArg("device", "", "torch device of the reward models and the policy (cpu, cuda, ...)"),
    LaunchArg("n_candidates", "", "candidates per decision"),
    LaunchArg("max_decisions", "", "the policy stops after this many decisions of an episode (0 = no limit)"),
    LaunchArg("on_score_timeout", "", "idle (no decision while the reward server does not answer) | first_candidate"),
    LaunchArg("console", "false", "true: the console node chooses what is executed"),
    LaunchArg("chooser", "", "console chooser as module:factory ('' = accept the policy's choice)"),
    LaunchArg("console_mode", "", "chooser | operator (a person chooses at `robot-rewards console backend=ros`)"),
]
SIM_ARGS = [
    LaunchArg("task", "", "sim task (place_block, push_block, stack_blocks, align_rope)"),
    LaunchArg("seed", "", "seed of the first scene"),
    LaunchArg("gui", "", "open the PyBullet window (true/false)"),
    *_COMMON,
]
ROBOT_ARGS = [
    LaunchArg("color_topic", "", "colour image topic of the camera driver"),
    LaunchArg("depth_topic", "", "depth image topic, registered to colour (e.g. /camera/aligned_depth_to_color/image_raw)"),
    LaunchArg("camera_info_topic", "", "camera_info of the registered images"),
    LaunchArg("joint_states_topic", "", "joint states of the arm"),
    LaunchArg("base_frame", "", "robot base frame"),
    LaunchArg("camera_frame", "", "camera optical frame ('' = the images' frame_id)"),
    LaunchArg("trajectory_action", "", "FollowJointTrajectory action of the arm controller"),
    LaunchArg("gripper_action", "", "GripperCommand action of the gripper"),
    LaunchArg("joint_names", "", "comma-separated controller joint names (e.g. fr3_joint1,...,fr3_joint7)"),
    LaunchArg("extrinsics", "", "hand-eye result YAML published as the base -> camera static TF ('' = TF comes from elsewhere)"),
    LaunchArg("time_scale", "", "trajectory durations multiplied by this (>1 is slower)"),
    *_COMMON,
]
CALIBRATE_ARGS = [
    LaunchArg("sim", "false", "true: run the sim bridge as the camera and arm"),
    LaunchArg("params_file", "", "parameter YAML ('' = the package's config/calibrate.yaml)"),
    LaunchArg("color_topic", "", "colour image topic"),
    LaunchArg("camera_info_topic", "", "camera_info topic"),
    LaunchArg("base_frame", "", "robot base frame"),
    LaunchArg("ee_frame", "", "hand frame the board (eye-to-hand) or camera (eye-in-hand) is fixed to"),
    LaunchArg("output_dir", "", "folder for images/, robot_poses.yaml, camera_info.yaml"),
    LaunchArg("auto_capture_period", "", "s between automatic captures (0 = on ~/capture only)"),
]


def _truthy(value: str, name: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"launch argument {name}:={value} is not true/false")


def _params_file(args: dict[str, str], graph: str) -> str:
    if args.get("params_file"):
        return args["params_file"]

    return str(data_file("config", f"{graph}.yaml"))


def _overrides(cls, mapping: dict[str, str], args: dict[str, str]) -> dict[str, Any]:
    """{parameter: typed value} for the launch arguments that are set ('' = not set)."""
    raw: dict[str, Any] = {}
    for arg, param in mapping.items():
        value = args.get(arg, "")
        if value == "":
            continue
        field_type = cls.__dataclass_fields__[param].type
        raw[param] = [v.strip() for v in value.split(",") if v.strip()] if "List" in str(field_type) else value
    config = coerce_config(cls, raw)
    return {k: getattr(config, k) for k in raw}


def _node(executable: str, cls, params_file: str, mapping: dict[str, str], args: dict[str, str],
          extra: dict[str, Any] | None = None) -> NodeSpec:
    overrides = {**_overrides(cls, mapping, args), **(extra or {})}
    return NodeSpec(executable, executable, [params_file, overrides] if overrides else [params_file])


def _decision_nodes(args: dict[str, str], params_file: str, topic_args: dict[str, str]) -> list[NodeSpec]:
    """perception, reward_server, policy, executor (+ console) of a graph."""
    console = _truthy(args.get("console", "false"), "console")
    perception_args = {k: k for k in topic_args if k in PerceptionNodeConfig.__dataclass_fields__}
    perception = _node("perception", PerceptionNodeConfig, params_file,
                       {**perception_args, "policy_checkpoint": "perception_from_checkpoint"}, args)
    rewards = _node("reward_server", RewardServerConfig, params_file,
                    {"scorers": "scorers", "state_reward": "state_reward", "device": "device",
                     **{k: k for k in ("color_topic",) if k in topic_args}}, args)
    policy = _node("policy", PolicyNodeConfig, params_file,
                   {"policy_checkpoint": "checkpoint", "device": "device", "n_candidates": "n_candidates",
                    "max_decisions": "max_decisions", "on_score_timeout": "on_score_timeout",
                    **{k: k for k in ("joint_states_topic", "joint_names") if k in topic_args}}, args,
                   # with a console the policy only proposes: the console sends the ExecutePrimitive goals
                   {"execute_chosen": False} if console else None)
    executor = _node("executor", ExecutorConfig, params_file,
                     {k: k for k in ("joint_states_topic", "trajectory_action", "gripper_action", "joint_names",
                                     "time_scale") if k in topic_args}, args)
    nodes = [perception, rewards, policy, executor]
    if console:
        nodes.append(_node("console", ConsoleNodeConfig, params_file,
                           {"chooser": "chooser", "console_mode": "mode"}, args))
    return nodes


def sim_graph(args: dict[str, str]) -> list[NodeSpec]:
    """sim_bridge + perception + reward_server + policy + executor (+ console)."""
    params_file = _params_file(args, "sim")
    if args.get("task") and not args.get("policy_checkpoint"):
        # the task's shipped policy (and the perception it was trained with): task:=align_rope
        # alone must not keep the YAML's place_block policy
        args = {**args, "policy_checkpoint": f"checkpoints/policy_{args['task']}.json"}
    bridge = _node("sim_bridge", SimBridgeConfig, params_file, {"task": "task", "seed": "seed", "gui": "gui"}, args)
    return [bridge, *_decision_nodes(args, params_file, {})]


def static_tf_arguments(extrinsics_file: str) -> list[str]:
    """tf2_ros static_transform_publisher arguments publishing a transform YAML (parent -> child)."""

    parent, child, T = load_transform(resolve(extrinsics_file))
    q = transforms.matrix_to_quat(T[:3, :3])
    values = {"--x": T[0, 3], "--y": T[1, 3], "--z": T[2, 3], "--qx": q[0], "--qy": q[1], "--qz": q[2], "--qw": q[3]}
    out = []
    for flag, value in values.items():
        out += [flag, repr(float(value))]
    return out + ["--frame-id", parent, "--child-frame-id", child]


def robot_graph(args: dict[str, str]) -> list[NodeSpec]:
    """The decision graph on a real arm and camera (+ the calibrated camera TF if given)."""
    params_file = _params_file(args, "robot")
    topic_args = {k: k for k in ("color_topic", "depth_topic", "camera_info_topic", "joint_states_topic",
                                 "base_frame", "camera_frame", "trajectory_action", "gripper_action",
                                 "joint_names", "time_scale")}
    nodes = _decision_nodes(args, params_file, topic_args)
    if args.get("extrinsics"):
        nodes.insert(0, NodeSpec("static_transform_publisher", "camera_extrinsics", [], "tf2_ros",
                                 static_tf_arguments(args["extrinsics"])))
    return nodes


def calibrate_graph(args: dict[str, str]) -> list[NodeSpec]:
    """calibration_capture (+ the sim bridge as camera and arm with sim:=true)."""
    params_file = _params_file(args, "calibrate")
    mapping = {k: k for k in ("color_topic", "camera_info_topic", "base_frame", "ee_frame", "output_dir",
                              "auto_capture_period")}
    nodes = [_node("calibration_capture", CalibrationCaptureConfig, params_file, mapping, args)]
    if _truthy(args.get("sim", "false"), "sim"):
        nodes.insert(0, _node("sim_bridge", SimBridgeConfig, params_file, {}, args))
    return nodes


GRAPHS = {"sim": (SIM_ARGS, sim_graph), "robot": (ROBOT_ARGS, robot_graph), "calibrate": (CALIBRATE_ARGS, calibrate_graph)}


def launch_nodes(graph: str, context) -> list:
    """launch_ros Node actions of a graph, with argument values read from a launch context."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    declared, build = GRAPHS[graph]
    args = {a.name: LaunchConfiguration(a.name).perform(context) for a in declared}
    return [Node(package=s.package, executable=s.executable, name=s.name, parameters=s.parameters,
                 arguments=s.arguments, output="screen", emulate_tty=True, on_exit=stop_if_failed)
            for s in build(args)]


# A node stopped by Ctrl-C / the launch itself exits with one of these (or 0).
STOPPED_CODES = (0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT)


def stop_if_failed(event, context):
    """`on_exit` of every node: a node that failed (a bad parameter, no GPU for device:=cuda, a
    missing checkpoint: its [FATAL] line says which) ends the whole launch, which would otherwise
    keep running without it and look like a hang."""
    if event.returncode in STOPPED_CODES:
        return None
    from launch.actions import Shutdown

    return Shutdown(reason=f"{event.process_name} exited with code {event.returncode} (its [FATAL] line above "
                           "says why): stopping the graph")


def launch_description(graph: str):
    """The LaunchDescription of a graph: its declared arguments and an OpaqueFunction building the nodes."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchDescription

    declared, _ = GRAPHS[graph]
    return LaunchDescription([
        *(DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in declared),
        OpaqueFunction(function=lambda context: launch_nodes(graph, context)),
    ])

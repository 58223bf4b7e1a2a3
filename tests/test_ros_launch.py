"""Launch files, parameter YAMLs, entry points and package.xml agree with the node code."""

from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import ros_double
import yaml

from robot_rewards.calibration.camera_info import load_transform
from robot_rewards.core import transforms
from robot_rewards.ros.config import NODE_CONFIGS
from robot_rewards.ros.launch_graph import CALIBRATE_ARGS, ROBOT_ARGS, SIM_ARGS, robot_graph, sim_graph
from robot_rewards.ros.params import ParameterError, coerce_config

ROOT = Path(__file__).resolve().parents[1]


def console_scripts() -> dict[str, str]:
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(\w+) = (robot_rewards\.ros\.nodes\.\w+:main)"', text))


@pytest.fixture(scope="module")
def fake():
    with ros_double.installed() as rclpy:
        yield rclpy


def evaluate(name: str, **args) -> list:
    from ros_double.fake_launch import evaluate as run

    spec = importlib.util.spec_from_file_location(f"launch_{name}", ROOT / "launch" / f"{name}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return run(module.generate_launch_description(), args)


@pytest.mark.parametrize("name, declared", [("sim", SIM_ARGS), ("robot", ROBOT_ARGS), ("calibrate", CALIBRATE_ARGS)])
def test_launch_files_start_installed_executables_with_existing_parameter_files(fake, name, declared):
    nodes = evaluate(name)
    scripts = console_scripts()
    assert nodes
    for node in nodes:
        assert node.package == "robot_rewards" and node.executable in scripts and node.name == node.executable
        params_file = Path(node.parameters[0])
        assert params_file.is_file() and params_file.parent.name == "config"
        section = yaml.safe_load(params_file.read_text())[node.name]["ros__parameters"]
        coerce_config(NODE_CONFIGS[node.name], section)  # every key known, every value of its type
    assert all(a.description for a in declared)


def test_sim_launch_arguments_override_typed_parameters(fake):
    nodes = {n.name: n for n in evaluate("sim", n_candidates="16", seed="4", gui="true", console="true",
                                         scorers="a=x.json, b=y.json", chooser="ros_double.plugins:last_candidate")}
    assert set(nodes) == {"sim_bridge", "perception", "reward_server", "policy", "executor", "console"}
    assert nodes["policy"].parameters[1] == {"n_candidates": 16, "execute_chosen": False}
    assert nodes["sim_bridge"].parameters[1] == {"seed": 4, "gui": True}
    assert nodes["reward_server"].parameters[1] == {"scorers": ["a=x.json", "b=y.json"]}
    assert len(nodes["executor"].parameters) == 1  # the console sends its goals to the same action
    assert nodes["console"].parameters[1] == {"chooser": "ros_double.plugins:last_candidate"}
    operator = {n.name: n for n in evaluate("sim", console="true", console_mode="operator")}
    assert operator["console"].parameters[1] == {"mode": "operator"}
    plain = {n.name: n for n in evaluate("sim")}
    assert "console" not in plain and len(plain["policy"].parameters) == 1  # the YAML alone
    rope = {n.name: n for n in evaluate("sim", task="align_rope")}  # the task's policy and its perception
    assert rope["policy"].parameters[1] == {"checkpoint": "checkpoints/policy_align_rope.json"}
    assert rope["perception"].parameters[1] == {"perception_from_checkpoint": "checkpoints/policy_align_rope.json"}
    assert rope["sim_bridge"].parameters[1] == {"task": "align_rope"}
    stop = {n.name: n for n in evaluate("sim", max_decisions="5", on_score_timeout="first_candidate")}
    assert stop["policy"].parameters[1] == {"max_decisions": 5, "on_score_timeout": "first_candidate"}
    mine = {n.name: n for n in evaluate("sim", task="align_rope", policy_checkpoint="/my/policy.json")}
    assert mine["policy"].parameters[1] == {"checkpoint": "/my/policy.json"}
    with pytest.raises(ParameterError, match="parameter 'n_candidates': expected int, got 'many'"):
        sim_graph({"n_candidates": "many"})
    with pytest.raises(ValueError, match="console:=maybe is not true/false"):
        sim_graph({"console": "maybe"})


def test_robot_launch_maps_topics_frames_controller_and_extrinsics(fake):
    nodes = evaluate("robot", depth_topic="/camera/aligned_depth_to_color/image_raw",
                     trajectory_action="/fr3_arm_controller/follow_joint_trajectory",
                     joint_names=",".join(f"fr3_joint{i}" for i in range(1, 8)), time_scale="2",
                     policy_checkpoint="/models/policy.json", extrinsics="calibration/front_camera_extrinsics.yaml")
    by_name = {n.name: n for n in nodes}
    tf = by_name["camera_extrinsics"]
    assert (tf.package, tf.executable) == ("tf2_ros", "static_transform_publisher")
    args = dict(zip(tf.arguments[::2], tf.arguments[1::2]))
    parent, child, T = load_transform(ROOT / "calibration" / "front_camera_extrinsics.yaml")
    assert (args["--frame-id"], args["--child-frame-id"]) == (parent, child)
    q = [float(args[k]) for k in ("--qx", "--qy", "--qz", "--qw")]
    t = [float(args[k]) for k in ("--x", "--y", "--z")]
    np.testing.assert_allclose(transforms.make_transform(q, t), T, atol=1e-12)
    assert by_name["perception"].parameters[1] == {"depth_topic": "/camera/aligned_depth_to_color/image_raw",
                                                   "perception_from_checkpoint": "/models/policy.json"}
    executor = by_name["executor"].parameters[1]
    assert executor["trajectory_action"] == "/fr3_arm_controller/follow_joint_trajectory"
    assert executor["joint_names"][0] == "fr3_joint1" and executor["time_scale"] == 2.0
    assert by_name["policy"].parameters[1] == {"checkpoint": "/models/policy.json",
                                               "joint_names": [f"fr3_joint{i}" for i in range(1, 8)]}
    assert "camera_extrinsics" not in {n.name for n in robot_graph({})}


def test_calibrate_launch_with_and_without_sim(fake):
    assert [n.name for n in evaluate("calibrate")] == ["calibration_capture"]
    nodes = evaluate("calibrate", sim="true", output_dir="/tmp/views")
    assert [n.name for n in nodes] == ["sim_bridge", "calibration_capture"]
    assert nodes[1].parameters[1] == {"output_dir": "/tmp/views"}


def test_every_config_yaml_section_is_a_node_with_known_parameters():
    for path in sorted((ROOT / "config").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for node, body in doc.items():
            assert node in NODE_CONFIGS, f"{path.name}: unknown node '{node}'"
            coerce_config(NODE_CONFIGS[node], body["ros__parameters"])


def test_the_sim_graphs_executor_plans_the_trajectories_of_the_python_loop():
    # The sim graph is compared with `eval-policy` on the same scenes: its executor must plan what
    # World.execute plans in the same sim (SimConfig's motion). At the executor's own (robot)
    # speeds a rope primitive took twice as long and dragged the rope differently.
    from ros_double.messages import message_types  # rclpy-style classes, with the action types

    from robot_rewards.core.primitives import Primitive
    from robot_rewards.primitives.config import limit_motion
    from robot_rewards.primitives.planner import ArmSegment, plan_primitive
    from robot_rewards.robots.kinematics import ArmKinematics
    from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
    from robot_rewards.ros.config import ExecutorConfig
    from robot_rewards.ros.convert import ROSBAGS_TYPES, joint_state_to_msg
    from robot_rewards.ros.executor_core import ExecutorCore
    from robot_rewards.ros.payloads import PrimitiveCommand
    from robot_rewards.sim.config import SimConfig, apply_profile

    arm = get_arm(DEFAULT_ARM)
    params = yaml.safe_load((ROOT / "config" / "sim.yaml").read_text())["executor"]["ros__parameters"]
    core = ExecutorCore(coerce_config(ExecutorConfig, params), ArmKinematics(), message_types())
    core.on_joint_state(joint_state_to_msg(list(arm.joint_names), arm.home_positions, ("", (0, 0)), ROSBAGS_TYPES))
    primitive = Primitive("pick_place", [0.5, 0.0, 0.02, 0.55, 0.1, 0.02, 0.0])
    _, first = core.on_primitive(PrimitiveCommand(1, primitive))
    assert first is not None
    loop = [s for s in plan_primitive(ArmKinematics(), primitive, arm.home_positions,
                                      limit_motion(apply_profile(SimConfig()).motion, arm))
            if isinstance(s, ArmSegment)]
    graph = [s for s in core.steps if s.kind == "arm"]
    assert [s.label for s in graph] == [s.label for s in loop]
    for g, want in zip(graph, loop):
        np.testing.assert_allclose(g.times, want.times, atol=1e-9)
        np.testing.assert_allclose(g.positions, want.positions, atol=1e-9)


def test_entry_points_and_installed_data(fake):
    scripts = console_scripts()
    assert set(scripts) == set(NODE_CONFIGS)
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))
    text = (ROOT / "setup.py").read_text()
    assert '*data_tree("launch")' in text and '*data_tree("config")' in text
    assert {p.name for p in (ROOT / "launch").glob("*.launch.py")} == {
        "sim.launch.py", "robot.launch.py", "calibrate.launch.py"}


def _ros_imports() -> set[str]:
    """Top-level ROS packages imported by the node shells and the launch helpers."""
    out = set()
    files = [*(ROOT / "robot_rewards" / "ros" / "nodes").glob("*.py"), ROOT / "robot_rewards" / "ros" / "launch_graph.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                out.update(a.name.split(".")[0] for a in node.names)
    import sys

    return {m for m in out if m not in sys.stdlib_module_names and m not in ("robot_rewards", "numpy")}


def test_package_xml_lists_every_ros_dependency():
    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot() if e.tag in ("exec_depend", "depend")}
    needed = _ros_imports() | {"tf2_ros", "action_msgs", "builtin_interfaces", "rcl_interfaces", "ros2launch"}
    assert needed <= deps, sorted(needed - deps)
    assert ET.parse(ROOT / "package.xml").getroot().find("export/build_type").text == "ament_python"


def test_a_node_that_fails_stops_the_launch_but_a_normal_stop_does_not(fake):
    """device:=cuda without a GPU: the policy's [FATAL] line, then the whole graph stops (it kept
    running without the policy, which looked like a hang)."""
    from ros_double.fake_launch import ProcessExited

    from robot_rewards.ros.launch_graph import stop_if_failed

    nodes = evaluate("robot")
    assert nodes and all(n.on_exit is stop_if_failed for n in nodes)
    stop = stop_if_failed(ProcessExited(process_name="policy-3", returncode=1), None)
    assert "policy-3 exited with code 1" in stop.reason
    for code in (0, -2, -15, 130):  # Ctrl-C, the launch's own SIGINT / SIGTERM
        assert stop_if_failed(ProcessExited(process_name="policy-3", returncode=code), None) is None


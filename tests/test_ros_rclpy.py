"""The nodes under the real rclpy: run where ROS 2 (Jazzy or Humble) is sourced; skipped elsewhere."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.ros


@pytest.fixture
def rclpy():
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    yield rclpy
    rclpy.shutdown()


def test_light_nodes_declare_described_parameters(rclpy, tmp_path):
    from rclpy.parameter import Parameter

    from robot_rewards.ros.config import NODE_CONFIGS
    from robot_rewards.ros.nodes.calibration_capture import CalibrationCaptureNode
    from robot_rewards.ros.nodes.console import ConsoleNode
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.params import descriptions

    nodes = {"console": ConsoleNode(), "executor": ExecutorNode(parameter_overrides=[Parameter("time_scale", value=2)]),
             "calibration_capture": CalibrationCaptureNode(parameter_overrides=[
                 Parameter("output_dir", value=str(tmp_path))])}
    try:
        for name, node in nodes.items():
            for param, text in descriptions(NODE_CONFIGS[name]).items():
                assert node.describe_parameter(param).description == text
        assert nodes["executor"].cfg.time_scale == 2.0  # an integer override of a double parameter
        assert nodes["executor"].cfg.joint_names[0] == "panda_joint1"
    finally:
        for node in nodes.values():
            getattr(node, "close", lambda: None)()
            node.destroy_node()


@pytest.mark.slow
def test_sim_graph_executes_a_decision_under_rclpy(rclpy):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from robot_rewards.ros.nodes._common import RELIABLE_QOS
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.perception import PerceptionNode
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode
    from robot_rewards.ros.payloads import ExecutorStatus

    nodes = [SimBridgeNode(parameter_overrides=[Parameter("image_scale", value=0.5)]), PerceptionNode(),
             RewardServerNode(), PolicyNode(parameter_overrides=[Parameter("max_decisions", value=1)]), ExecutorNode()]
    probe = Node("probe")
    statuses = []
    probe.create_subscription(String, "/executor/status", lambda m: statuses.append(ExecutorStatus.from_json(m.data)),
                              RELIABLE_QOS)
    executor = SingleThreadedExecutor()
    for node in [*nodes, probe]:
        executor.add_node(node)
    deadline = time.monotonic() + 120.0
    try:
        while not any(s.terminal for s in statuses) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert statuses and statuses[-1].state == "succeeded", statuses[-1:] or "no status"
    finally:
        for node in [*nodes, probe]:
            getattr(node, "close", lambda: None)()
            node.destroy_node()

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
    from robot_rewards.ros.payloads import ExecutorStatus, PolicyStatus

    policy = PolicyNode()
    nodes = [SimBridgeNode(parameter_overrides=[Parameter("image_scale", value=0.5)]), PerceptionNode(),
             RewardServerNode(), policy, ExecutorNode()]
    probe = Node("probe")
    statuses, policy_status = [], []
    probe.create_subscription(String, "/executor/status", lambda m: statuses.append(ExecutorStatus.from_json(m.data)),
                              RELIABLE_QOS)
    probe.create_subscription(String, "/policy/status", lambda m: policy_status.append(PolicyStatus.from_json(m.data)),
                              RELIABLE_QOS)
    executor = SingleThreadedExecutor()
    for node in [*nodes, probe]:
        executor.add_node(node)
    deadline = time.monotonic() + 120.0
    try:
        while not any(s.terminal for s in statuses) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert statuses and statuses[-1].state == "succeeded", statuses[-1:] or "no status"
        # the sim bridge's task status says success (seed 0 is solved in one step): the policy stops
        while (not policy_status or policy_status[-1].state != "done") and time.monotonic() < deadline + 20.0:
            executor.spin_once(timeout_sec=0.1)
        assert policy_status and policy_status[-1].code == "task_succeeded", policy_status[-1:]
    finally:
        for node in [*nodes, probe]:
            getattr(node, "close", lambda: None)()
            node.destroy_node()


def test_the_rclpy_logger_refuses_what_the_double_refuses(rclpy):
    """The double's model of logging call sites, checked against the real RcutilsLogger."""
    from rclpy.node import Node

    node = Node("logger_probe")
    log = node.get_logger()
    try:
        def site(level):
            getattr(log, level)("x")

        def chosen(ok):
            (log.info if ok else log.error)("capture")

        site("warning")
        with pytest.raises(ValueError, match="Logger severity cannot be changed between calls."):
            site("error")
        chosen(True)
        with pytest.raises(ValueError, match="severity cannot be changed"):
            chosen(False)
        assert log.debug("disabled at the default level") is False

        def filtered(**kwargs):
            return log.info("f", **kwargs)

        filtered(throttle_duration_sec=1.0)
        with pytest.raises(ValueError, match="Logging filter parameters cannot be changed"):
            filtered(throttle_duration_sec=2.0)
        with pytest.raises(ValueError, match="Requested logging filters cannot be changed"):
            filtered()
    finally:
        node.destroy_node()


def test_policy_node_says_why_under_rclpy(rclpy):
    """A wrong cloud topic and no reward server, as ~/decide answers them on a real graph."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from robot_rewards.ros.nodes.policy import PolicyNode

    policy = PolicyNode(parameter_overrides=[Parameter("goal", value="anything"),
                                             Parameter("cloud_topic", value="/perception/pointz")])
    probe = Node("why_probe")
    client = probe.create_client(Trigger, "/policy/decide")
    executor = SingleThreadedExecutor()
    for node in (policy, probe):
        executor.add_node(node)
    try:
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=10.0)
        reply = future.result()
        assert not reply.success and "no cloud on /perception/pointz" in reply.message
        assert "0 publisher(s): check the topic name / remapping" in reply.message
    finally:
        for node in (policy, probe):
            getattr(node, "close", lambda: None)()
            node.destroy_node()

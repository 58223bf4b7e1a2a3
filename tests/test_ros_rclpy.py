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
    """The sim graph on one executor: scores through the ScoreCandidates service, the choice through
    the ExecutePrimitive action (feedback per segment), typed statuses; the policy stops at success."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from robot_rewards.ros.convert_interfaces import executor_status_from_msg, policy_status_from_msg
    from robot_rewards.ros.nodes._common import LATCHED_QOS, RELIABLE_QOS
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.perception import PerceptionNode
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode
    from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg
    from robot_rewards_interfaces.msg import PolicyStatus as PolicyStatusMsg

    policy = PolicyNode()
    nodes = [SimBridgeNode(parameter_overrides=[Parameter("image_scale", value=0.5)]), PerceptionNode(),
             RewardServerNode(), policy, ExecutorNode()]
    probe = Node("probe")
    statuses, policy_status = [], []
    probe.create_subscription(ExecutorStatusMsg, "/executor/status",
                              lambda m: statuses.append(executor_status_from_msg(m)), RELIABLE_QOS)
    probe.create_subscription(PolicyStatusMsg, "/policy/status",
                              lambda m: policy_status.append(policy_status_from_msg(m)), LATCHED_QOS)
    feedback = []
    on_feedback = policy.core.on_feedback
    policy.core.on_feedback = lambda *args: (feedback.append(args), on_feedback(*args))
    executor = SingleThreadedExecutor()
    for node in [*nodes, probe]:
        executor.add_node(node)
    deadline = time.monotonic() + 120.0
    try:
        while not any(s.terminal for s in statuses) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert statuses and statuses[-1].state == "succeeded", statuses[-1:] or "no status"
        assert [f[1] for f in feedback] == list(range(statuses[-1].segments))  # ExecutePrimitive feedback
        # the sim bridge's task status says success (seed 0 is solved in one step): the policy stops
        while (not policy_status or policy_status[-1].state != "done") and time.monotonic() < deadline + 20.0:
            executor.spin_once(timeout_sec=0.1)
        assert policy_status and policy_status[-1].code == "task_succeeded", policy_status[-1:]
        assert policy_status[-1].scorer["topic"] == "/reward_server/score_candidates"
        assert policy_status[-1].scorer["subscribers"] == 1  # the service's server
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


def test_reward_server_service_and_executor_action_under_rclpy(rclpy):
    """ScoreCandidates answers a bad request with an error and a parked one after request_timeout
    (the async callback wakes the executor from the reward host's thread); ExecutePrimitive with
    no controller ends NO_SERVER, and a second goal while one runs is rejected."""
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from robot_rewards.core.primitives import Primitive
    from robot_rewards.ros.convert import joint_state_to_msg, rclpy_types
    from robot_rewards.ros.convert_interfaces import primitive_goal_to_msg
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards.ros.payloads import EXECUTOR_NO_SERVER, PrimitiveCommand
    from robot_rewards_interfaces.action import ExecutePrimitive
    from robot_rewards_interfaces.srv import ScoreCandidates

    server = RewardServerNode(parameter_overrides=[Parameter("request_timeout", value=0.5)])
    executor_node = ExecutorNode(parameter_overrides=[Parameter("server_timeout", value=0.5),
                                                      Parameter("trajectory_action", value="/nobody/here")])
    probe = Node("service_probe")
    client = probe.create_client(ScoreCandidates, "/reward_server/score_candidates")
    action = ActionClient(probe, ExecutePrimitive, "/executor/execute")
    joints = probe.create_publisher(type(joint_state_to_msg(["a"], [0.0], ("", (0, 0)), rclpy_types())),
                                    "/joint_states", 10)
    executor = SingleThreadedExecutor()
    for node in (server, executor_node, probe):
        executor.add_node(node)

    def wait(future, seconds=10.0):
        end = time.monotonic() + seconds
        while not future.done() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert future.done()
        return future.result()

    try:
        assert client.wait_for_service(timeout_sec=10.0) and action.wait_for_server(timeout_sec=10.0)
        bad = wait(client.call_async(ScoreCandidates.Request(request_id="bad", primitive="fly", params=[0.0])))
        assert bad.request_id == "bad" and bad.errors[0].model == "request" and "fly" in bad.errors[0].message
        start = time.monotonic()
        parked = wait(client.call_async(ScoreCandidates.Request(request_id="p", primitive="pick_place",
                                                                params=[0.5] * 7)))
        assert parked.errors[0].model == "server" and "no cloud stamped" in parked.errors[0].message
        assert time.monotonic() - start < 3.0
        from robot_rewards.robots.registry import DEFAULT_ARM, get_arm

        arm = get_arm(DEFAULT_ARM)
        joints.publish(joint_state_to_msg(list(arm.joint_names), arm.home_positions,
                                          ("", divmod(probe.get_clock().now().nanoseconds, 10**9)), rclpy_types()))
        goal = primitive_goal_to_msg(PrimitiveCommand(1, Primitive("pick_place", [0.5, 0.0, 0.02, 0.55, 0.1, 0.02,
                                                                                   0.0])), rclpy_types())
        handle = wait(action.send_goal_async(goal))
        assert handle.accepted
        second = wait(action.send_goal_async(goal))
        assert not second.accepted  # one primitive at a time
        response = wait(handle.get_result_async())
        assert response.result.error_code == EXECUTOR_NO_SERVER and response.result.state == "failed"
    finally:
        for node in (server, executor_node, probe):
            getattr(node, "close", lambda: None)()
            node.destroy_node()

"""What took nodes down on a real graph, modelled by the rclpy double and driven on every node.

rclpy refuses a second severity from one logging call site (ValueError), and an exception in a
subscription, timer or service callback ends spin and with it the node. The double models both
(tests/ros_double/fake_rclpy.py); here every node gets bad messages on every topic it listens
to and calls of every service it offers, in rounds that log warnings then errors then
warnings again, and must keep spinning.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ros_double.fixtures import ctx, rclpy  # noqa: F401 (fixtures)

import robot_rewards.ros as ros_package

NOT_JSON = ["garbage", '{"schema": 1}', "[" * 40 + "]" * 40, '{"schema": "robot_rewards/primitive", "version": true}']


# --- the double's model of rclpy -------------------------------------------------------------------


def test_logger_call_sites_keep_their_severity_name_and_filters(rclpy, ctx):
    from rclpy.node import Node

    log = Node("sites").get_logger()

    def site(level, **kwargs):  # one call site for every level
        return getattr(log, level)("x", **kwargs)

    def chosen(ok):  # the calibration node's old pattern: one call, two severities
        (log.info if ok else log.error)("capture")

    assert site("warning")
    with pytest.raises(ValueError, match="Logger severity cannot be changed between calls."):
        site("error")
    chosen(True)
    with pytest.raises(ValueError, match="severity cannot be changed"):
        chosen(False)
    # two sites on two lines are two contexts
    log.warning("a")
    log.error("b")
    # debug is disabled at the default level: no context is made, nothing is checked
    assert log.debug("d") is False

    def filtered(**kwargs):
        return log.info("f", **kwargs)

    assert filtered(throttle_duration_sec=1.0)
    assert not filtered(throttle_duration_sec=1.0)  # within the period
    ctx.advance(1.5)
    assert filtered(throttle_duration_sec=1.0)
    with pytest.raises(ValueError, match="Logging filter parameters cannot be changed"):
        filtered(throttle_duration_sec=2.0)
    with pytest.raises(ValueError, match="Requested logging filters cannot be changed"):
        filtered()

    def once():
        return log.info("o", once=True)

    assert once() and not once()
    with pytest.raises(TypeError, match="unsupported logging arguments"):
        log.info("x", every=3)


def test_a_callback_exception_ends_spin_and_run_names_it(rclpy, ctx, capsys):
    from rclpy.node import Node

    from robot_rewards.ros.nodes import _common

    node = Node("raising")

    def boom():
        raise ValueError("callback failed")

    node.create_timer(0.1, boom)
    with pytest.raises(ValueError, match="callback failed"):
        rclpy.spin(node)
    node.destroy_node()
    rclpy.shutdown()

    class Raising(Node):
        def __init__(self):
            super().__init__("raising")
            self.create_timer(0.1, boom)

    assert _common.run(Raising) == 1  # what a node that raises in a callback does: it ends
    assert "[FATAL] ValueError: callback failed" in capsys.readouterr().err
    rclpy.init()  # for the fixture's teardown


def test_an_action_execute_exception_aborts_the_goal_and_spin_goes_on(rclpy, ctx):
    from control_msgs.action import GripperCommand
    from rclpy.action import ActionClient, ActionServer
    from rclpy.node import Node

    node = Node("server")

    async def execute(goal_handle):
        raise RuntimeError("execute failed")

    ActionServer(node, GripperCommand, "/g", execute)
    client = ActionClient(Node("client"), GripperCommand, "/g")
    sent = client.send_goal_async(GripperCommand.Goal())
    assert ctx.run_until(sent.done, timeout=1.0)
    result = sent.result().get_result_async()
    assert ctx.run_until(result.done, timeout=1.0)
    assert result.result().status == 6  # ABORTED, with an empty result
    assert any("Error raised in execute callback: execute failed" in line for line in ctx.log_lines("error"))


def test_a_coroutine_service_callback_holds_its_callback_group_until_it_returns(rclpy, ctx):
    """rclpy's executor holds a callback's group while a coroutine callback awaits: in the node's
    default (mutually exclusive) group nothing else of the node runs meanwhile (what deadlocked
    reward_server's first ScoreCandidates service); a reentrant group does not wait."""
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.node import Node
    from rclpy.task import Future
    from std_srvs.srv import Trigger

    for group, ticks_while_waiting in ((None, 0), (ReentrantCallbackGroup(), 5)):
        node = Node("grouped")
        ticks, gate = [], Future()

        async def serve(request, response, gate=gate):
            await gate
            response.success = True
            return response

        node.create_timer(0.1, lambda ticks=ticks: ticks.append(1))
        node.create_service(Trigger, "/serve", serve, callback_group=group)
        future = Node("caller").create_client(Trigger, "/serve").call_async(Trigger.Request())
        ctx.advance(0.55)
        assert len(ticks) == ticks_while_waiting and not future.done()
        gate.set_result(True)
        ctx.advance(0.0)
        assert future.done() and future.result().success
        ctx.advance(0.1)
        assert len(ticks) >= 1  # released: the node's timer runs again
        node.destroy_node()


# --- the package ----------------------------------------------------------------------------------


def _dynamic_severity_calls(tree: ast.AST) -> list[int]:
    """Lines of calls whose logger method is picked at run time: `(a.info if ok else a.error)(...)`
    or `getattr(log, level)(...)` (one call site, several severities)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.IfExp):
            lines.append(node.lineno)
        elif (isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr"
              and len(func.args) >= 2 and not isinstance(func.args[1], ast.Constant)):
            lines.append(node.lineno)
    return lines


def test_no_logging_call_site_picks_its_severity_at_run_time():
    root = Path(ros_package.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        lines = _dynamic_severity_calls(ast.parse(path.read_text(), str(path)))
        if lines:
            found[str(path.relative_to(root))] = lines
    assert found == {}, f"calls that choose their callee at run time (a logger severity?): {found}"


def _bad_messages(msg_type) -> list:
    from std_msgs.msg import String

    if msg_type is String:
        return [String(data=text) for text in NOT_JSON]
    return [msg_type()]  # empty images, clouds, camera_infos, joint states: each is wrong somewhere


def _fuzz(rclpy, ctx, node, rounds: int = 2) -> None:
    """Bad messages on every topic `node` subscribes to and every service it offers, in rounds."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    probe = Node(f"fuzz_{node.get_name()}")
    subs = [sub for subs in ctx.subscriptions.values() for sub in subs if sub.node is node]
    pubs = {sub.topic: probe.create_publisher(sub.msg_type, sub.topic, QoSProfile(
        depth=10, reliability=sub.qos.reliability, durability=sub.qos.durability)) for sub in subs}
    services = [s for s in ctx.services.values() if s.node is node]
    clients = [probe.create_client(s.srv_type, s.srv_name) for s in services]
    from rclpy.action import ActionClient

    actions = [ActionClient(probe, a.action_type, a.name) for a in ctx.action_servers.values() if a.node is node]
    for _ in range(rounds):
        for client in clients:  # e.g. ~/decide before any input: warnings
            client.call_async(client.srv_type.Request())
        for action in actions:  # an empty goal (no primitive name): refused with the reason
            action.send_goal_async(action.action_type.Goal())
        ctx.advance(0.5)
        for sub in subs:  # errors
            for msg in _bad_messages(sub.msg_type):
                pubs[sub.topic].publish(msg)
        ctx.advance(1.0)
    probe.destroy_node()


NODES = {
    "perception": ("robot_rewards.ros.nodes.perception", "PerceptionNode", {"max_rate": 0.0}),
    "reward_server": ("robot_rewards.ros.nodes.reward_server", "RewardServerNode",
                      {"state_reward": "ros_double.plugins:MeanHeight", "state_reward_input": "observation"}),
    "policy": ("robot_rewards.ros.nodes.policy", "PolicyNode", {"score_timeout": 0.5}),
    "executor": ("robot_rewards.ros.nodes.executor", "ExecutorNode", {"server_timeout": 0.2}),
    "console": ("robot_rewards.ros.nodes.console", "ConsoleNode", {}),
    "calibration_capture": ("robot_rewards.ros.nodes.calibration_capture", "CalibrationCaptureNode", {}),
}


@pytest.mark.parametrize("name", sorted(NODES))
def test_every_node_keeps_spinning_through_bad_messages_and_service_calls(rclpy, ctx, tmp_path, name):
    import importlib

    from rclpy.parameter import Parameter

    module, cls, values = NODES[name]
    if name == "calibration_capture":
        values = {"output_dir": str(tmp_path / "capture")}
    node = getattr(importlib.import_module(module), cls)(
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    _fuzz(rclpy, ctx, node)
    assert node in ctx.nodes
    assert ctx.log_lines("error", name), f"{name} logged no error for the bad input"


def test_sim_bridge_logs_its_refusals_and_keeps_serving(rclpy, ctx):
    """Goals it refuses (errors), a reset while the arm moves (error), then good goals."""
    import numpy as np
    from control_msgs.action import FollowJointTrajectory, GripperCommand
    from rclpy.action import ActionClient
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from robot_rewards.ros import convert as rc
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode

    bridge = SimBridgeNode(parameter_overrides=[Parameter("image_scale", value=0.25),
                                                Parameter("camera_rate", value=1.0)])
    probe = Node("sim_probe")
    arm = ActionClient(probe, FollowJointTrajectory, "/joint_trajectory_controller/follow_joint_trajectory")
    gripper = ActionClient(probe, GripperCommand, "/gripper_controller/gripper_cmd")
    reset = probe.create_client(Trigger, "/sim_bridge/reset")
    names, q = list(bridge.cfg.joint_names), bridge.core.joint_positions()
    types = rc.rclpy_types()

    def goal(positions, times, tolerance=None):
        g = FollowJointTrajectory.Goal(trajectory=rc.joint_trajectory_to_msg(names, np.asarray(positions), times,
                                                                              None, types))
        if tolerance is not None:
            from control_msgs.msg import JointTolerance

            g.goal_tolerance = [JointTolerance(name=tolerance[0], position=tolerance[1])]
        return arm.send_goal_async(g)

    def done(future):
        assert ctx.run_until(future.done, timeout=10.0)
        return future.result()

    assert not done(goal([q + 0.5], [0.0])).accepted  # far from the arm at t=0
    assert not done(goal([q], [1.0], ("elbow", 0.1))).accepted  # a tolerance for another joint
    bad_grip = GripperCommand.Goal()
    bad_grip.command.position = float("nan")
    assert not done(gripper.send_goal_async(bad_grip)).accepted
    moving = done(goal([q, q + 0.05], [0.0, 1.0]))
    assert moving.accepted
    ctx.advance(0.2)
    assert not done(reset.call_async(Trigger.Request())).success  # refused while the arm moves
    assert done(moving.get_result_async()).result.error_code == 0
    assert done(reset.call_async(Trigger.Request())).success
    errors = ctx.log_lines("error", "sim_bridge")
    assert len(errors) == 4 and any("names joint 'elbow'" in line for line in errors)


def test_calibration_capture_logs_a_failed_capture_after_a_good_one(rclpy, ctx, tmp_path):
    """The capture node logged both outcomes from one call site: info, then error, took it down."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger

    from robot_rewards.ros.nodes.calibration_capture import CalibrationCaptureNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode

    SimBridgeNode(parameter_overrides=[Parameter("image_scale", value=0.25), Parameter("camera_rate", value=2.0)])
    CalibrationCaptureNode(parameter_overrides=[Parameter("output_dir", value=str(tmp_path))])
    probe = Node("capture_probe")
    capture = probe.create_client(Trigger, "/calibration_capture/capture")
    ctx.advance(1.0)

    def call():
        future = capture.call_async(Trigger.Request())
        assert ctx.run_until(future.done, timeout=1.0)
        return future.result()

    assert call().success
    probe.create_publisher(Image, "/camera/color/image_raw", 5).publish(Image(encoding="bayer_rggb8"))
    ctx.drain()
    reply = call()
    assert not reply.success and "image rejected" in reply.message
    assert ctx.log_lines("info", "calibration_capture") and ctx.log_lines("error", "calibration_capture")


def test_reward_server_answers_bad_score_requests_with_an_error(rclpy, ctx):
    """ScoreCandidates never raises: a malformed request gets a response naming what is wrong."""
    import math

    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from robot_rewards.ros.convert_interfaces import score_response_from_msg
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards_interfaces.srv import ScoreCandidates

    RewardServerNode(parameter_overrides=[Parameter("request_timeout", value=0.05)])  # s of the wall clock
    client = Node("score_probe").create_client(ScoreCandidates, "/reward_server/score_candidates")
    assert client.service_is_ready()

    def call(**fields):
        future = client.call_async(ScoreCandidates.Request(**fields))
        assert ctx.run_until(future.done, timeout=1.0)
        return future.result()

    bad = {"a": ("fly", [0.0] * 4, "unknown primitive 'fly'"),
           "b": ("pick_place", [0.1] * 5, "5 values do not split into rows of 7"),
           "c": ("pick_place", [math.nan] * 7, "expected a finite (N, D) array")}
    for request_id, (name, values, why) in bad.items():
        answer = call(request_id=request_id, primitive=name, params=values)
        assert answer.request_id == request_id and len(answer.errors) == 1 and not answer.scores
        assert answer.errors[0].model == "request" and why in answer.errors[0].message
    # a good request whose cloud never comes: the service awaits it, then answers the server's error
    future = client.call_async(ScoreCandidates.Request(request_id="ok", primitive="pick_place", params=[0.5] * 7))
    assert ctx.run_until(future.done, timeout=10.0)
    response = score_response_from_msg(future.result())
    assert response.request_id == "ok" and "no cloud stamped" in response.errors["server"]
    assert len(ctx.log_lines("error", "reward_server")) == 4

"""`robot-rewards console backend=ros`: the labelling console on the live graph, through the
rclpy test double (tests/ros_double).

The policy node proposes candidate sets, the console's ROS backend shows them (cloud by stamp,
camera frame + TF for the overlay), labels go to a temporary preference store, and executing
publishes the operator's choice for the executor node, which runs it on a fake controller.
"""

from __future__ import annotations

import io
import sys
import threading
import time

import numpy as np
import pytest
from ros_double.fixtures import ctx, rclpy  # noqa: F401 (fixtures)

from robot_rewards.console.config import ConsoleConfig, RosConsoleConfig
from robot_rewards.robots.base import RobotError
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.ros import config as ros_config
from robot_rewards.ros import convert as rc
from robot_rewards.ros import convert_interfaces as ci
from robot_rewards.ros.payloads import CandidateSet

HOME, JOINT_NAMES = get_arm(DEFAULT_ARM).home_positions, get_arm(DEFAULT_ARM).joint_names

SEC = 1_000_000_000
GOAL = "put the block on the red mark"




def params(**values):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in values.items()]


class Controller:
    """FollowJointTrajectory + GripperCommand servers that accept and succeed every goal."""

    def __init__(self):
        from control_msgs.action import FollowJointTrajectory, GripperCommand
        from rclpy.action import ActionServer
        from rclpy.node import Node

        self.node = Node("controller")
        self.goals = []

        def arm(handle):
            self.goals.append(handle.request)
            handle.succeed()
            return FollowJointTrajectory.Result(error_code=0)

        def grip(handle):
            self.goals.append(handle.request)
            handle.succeed()
            return GripperCommand.Result(position=handle.request.command.position, reached_goal=True)

        cfg = ros_config.ExecutorConfig()
        ActionServer(self.node, FollowJointTrajectory, cfg.trajectory_action, arm)
        ActionServer(self.node, GripperCommand, cfg.gripper_action, grip)


class Sensors:
    """Publishes what the camera, perception and the arm driver would: a static camera TF, a
    colour/depth/camera_info frame and a base-frame cloud at the same stamp, and joint states
    on a timer (the executor plans only from a fresh one)."""

    def __init__(self, ctx):
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from robot_rewards.ros.nodes._common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, TF_STATIC_QOS
        from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg
        from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg

        self.ctx, self.types = ctx, rc.rclpy_types()
        self.node = node = Node("sensors")
        self.pub = {
            "tf_static": node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS),
            "color": node.create_publisher(Image, ros_config.COLOR_TOPIC, SENSOR_QOS),
            "depth": node.create_publisher(Image, ros_config.DEPTH_TOPIC, SENSOR_QOS),
            "info": node.create_publisher(CameraInfo, ros_config.COLOR_INFO_TOPIC, SENSOR_QOS),
            "cloud": node.create_publisher(PointCloud2, ros_config.CLOUD_TOPIC, RELIABLE_QOS),
            "goal": node.create_publisher(String, ros_config.GOAL_TOPIC, LATCHED_QOS),
            "joints": node.create_publisher(JointState, ros_config.JOINT_STATES_TOPIC, SENSOR_QOS),
            "candidates": node.create_publisher(CandidateSetMsg, ros_config.CANDIDATES_TOPIC, LATCHED_QOS),
        }
        node.create_timer(0.1, self.joint_state)
        self.statuses = []
        self.commands = []  # the ExecutePrimitive goals the executor got (console_graph records them)
        node.create_subscription(ExecutorStatusMsg, ros_config.EXECUTOR_STATUS_TOPIC,
                                 lambda m: self.statuses.append(ci.executor_status_from_msg(m)), RELIABLE_QOS)

    def joint_state(self):
        self.pub["joints"].publish(rc.joint_state_to_msg(list(JOINT_NAMES), HOME, ("", divmod(self.ctx.now_ns, SEC)),
                                                         self.types))

    def scene(self, seed: int = 0):
        """One camera frame and the cloud perception made of it (same stamp); returns the stamp."""
        from ros_double.scenes import synthetic_frame
        from std_msgs.msg import String

        from robot_rewards.rewards.synthetic import planted_observation

        t, stamp_ns = self.types, self.ctx.now_ns
        color, depth, info, base_T_cam = synthetic_frame(stamp_ns)
        self.pub["tf_static"].publish(rc.transforms_to_tf_msg(
            [rc.StampedTransform.from_matrix(base_T_cam, ros_config.BASE_FRAME, "cam")], t))
        self.pub["goal"].publish(String(data=GOAL))
        self.pub["info"].publish(rc.camera_info_to_msg(rc.msg_to_camera_info(info)[0], info.header, t))
        self.pub["color"].publish(rc.image_to_msg(rc.msg_to_rgb(color), "rgb8", color.header, t))
        self.pub["depth"].publish(rc.depth_to_msg(rc.msg_to_depth(depth), depth.header, t))
        obs, _ = planted_observation(seed=seed, n_points=256)
        self.pub["cloud"].publish(rc.points_to_msg(obs.points, (ros_config.BASE_FRAME, divmod(stamp_ns, SEC)), t,
                                                   rgb=obs.colors))
        return stamp_ns


def console_graph(ctx):
    """policy (proposes only) + executor + console node in operator mode: the graph `ros2 launch
    ... console:=true` starts, with the console standing aside. The sensors record the goals the
    executor gets."""
    from robot_rewards.ros.nodes.console import ConsoleNode
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.policy import PolicyNode

    PolicyNode(parameter_overrides=params(n_candidates=4, execute_chosen=False, score_candidates=False))
    executor = ExecutorNode()
    ConsoleNode(parameter_overrides=params(mode="operator"))
    Controller()
    sensors = Sensors(ctx)
    on_primitive = executor.core.on_primitive

    def recording(goal):
        sensors.commands.append(ci.primitive_goal_from_msg(goal))
        return on_primitive(goal)

    executor.core.on_primitive = recording
    return sensors


def operator_node(ctx, name="console_operator", timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        node = next((n for n in list(ctx.nodes) if n.get_name() == name), None)
        if node is not None:
            return node
        time.sleep(0.01)
    raise AssertionError(f"the console never made its node '{name}'")


def run_in_thread(fn, *args):
    result = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


# -- configuration --------------------------------------------------------------------------------


def test_ros_settings_default_to_the_nodes_topics_and_are_checked():
    cfg = RosConsoleConfig()
    assert (cfg.candidates_topic, cfg.execute_action, cfg.status_topic, cfg.cloud_topic, cfg.decision_cloud_topic) == (
        ros_config.CANDIDATES_TOPIC, ros_config.EXECUTE_ACTION, ros_config.EXECUTOR_STATUS_TOPIC,
        ros_config.CLOUD_TOPIC, ros_config.DECISION_CLOUD_TOPIC)
    assert (cfg.color_topic, cfg.depth_topic, cfg.camera_info_topic, cfg.goal_topic, cfg.base_frame) == (
        ros_config.COLOR_TOPIC, ros_config.DEPTH_TOPIC, ros_config.COLOR_INFO_TOPIC, ros_config.GOAL_TOPIC,
        ros_config.BASE_FRAME)
    assert ConsoleConfig(backend="ros").ros.source == "policy"
    with pytest.raises(ValueError, match="ros.source must be one of policy, local"):
        RosConsoleConfig(source="bag")
    with pytest.raises(ValueError, match="ros.candidates_timeout must be positive"):
        RosConsoleConfig(candidates_timeout=0)


def test_backend_ros_without_rclpy_says_to_source_ros(monkeypatch):
    from robot_rewards.commands.console import make_backend

    monkeypatch.setitem(sys.modules, "rclpy", None)  # as in a shell where ROS 2 is not sourced
    with pytest.raises(ValueError, match="needs ROS 2's rclpy.*source your ROS 2 setup"):
        make_backend("ros", "place_block")


def test_console_node_in_operator_mode_forwards_nothing(rclpy, ctx):
    """operator mode sends no goal; chooser mode sends the chosen one as an ExecutePrimitive goal."""
    from rclpy.action import ActionServer
    from rclpy.node import Node

    from robot_rewards.rewards.synthetic import random_candidates
    from robot_rewards.ros.nodes.console import ConsoleNode
    from robot_rewards.ros.params import ParameterError
    from robot_rewards_interfaces.action import ExecutePrimitive
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg

    operator = ConsoleNode(parameter_overrides=params(mode="operator"))
    probe = Node("probe")
    chosen = []

    def execute(handle):
        chosen.append(ci.primitive_goal_from_msg(handle.request))
        handle.succeed()
        return ExecutePrimitive.Result(state="succeeded")

    ActionServer(probe, ExecutePrimitive, ros_config.EXECUTE_ACTION, execute)
    pub = probe.create_publisher(CandidateSetMsg, ros_config.CANDIDATES_TOPIC, 10)
    cset = CandidateSet(3, (1, 0), GOAL, random_candidates(4), chosen=1)
    pub.publish(ci.candidate_set_to_msg(cset, rc.rclpy_types()))
    ctx.drain()
    assert chosen == [] and any("operator mode" in line for line in ctx.log_lines("info", "console"))
    operator.destroy_node()
    ConsoleNode()  # chooser mode: the policy's choice goes to the executor
    pub.publish(ci.candidate_set_to_msg(cset, rc.rclpy_types()))
    assert ctx.run_until(lambda: chosen, timeout=1.0)
    assert chosen[0].decision_id == 3 and chosen[0].source == "console"
    np.testing.assert_array_equal(chosen[0].primitive.params, cset.candidates.params[1])
    ctx.drain()
    assert any("decision 3: executed" in line for line in ctx.log_lines("info", "console"))
    with pytest.raises(ParameterError, match="mode must be one of chooser, operator"):
        ConsoleNode(parameter_overrides=params(mode="human"))


# -- the operator core -----------------------------------------------------------------------------


def test_malformed_payloads_are_logged_and_skipped():
    from robot_rewards.rewards.synthetic import random_candidates
    from robot_rewards.ros.console_backend import OperatorCore

    class Log:
        def __init__(self):
            self.lines = []

        def __getattr__(self, level):
            return lambda text: self.lines.append((level, text))

    log = Log()
    core = OperatorCore(RosConsoleConfig(), log)
    good = CandidateSet(7, (1, 0), GOAL, random_candidates(3))
    core.on_candidates("{not json")
    core.on_candidates(good.to_json().replace("robot_rewards/candidate_set", "someone/else"))
    core.on_candidates(CandidateSet(8, (1, 0), GOAL, random_candidates(1)).to_json())  # nothing to compare
    core.on_status('{"schema": "robot_rewards/executor_status", "version": 1, "decision_id": 7, "state": "lost"}')
    assert core.next_set(0, timeout=0.01) is None and core.moves == 0
    assert core.report.counts["candidates"] == 2 and core.report.counts["status"] == 1
    assert any("not valid JSON" in text for _, text in log.lines)
    core.on_candidates(good.to_json())
    got = core.next_set(0, timeout=0.01)
    assert got.cset.decision_id == 7 and core.next_set(got.seq, timeout=0.01) is None


# -- whole sessions on the double graph ---------------------------------------------------------------


def test_operator_labels_a_policy_candidate_set_and_executes_the_choice(rclpy, ctx, tmp_path):
    from robot_rewards.commands.console import run_console
    from robot_rewards.preferences.store import PreferenceStore

    sensors = console_graph(ctx)
    cfg = ConsoleConfig(backend="ros", queries=1, execute_after_label=True, window="off", labeller="tester",
                        store=str(tmp_path / "store"), output_dir=str(tmp_path / "out"),
                        ros=RosConsoleConfig(candidates_timeout=30.0, execute_timeout=30.0))
    out = io.StringIO()
    # The backend's own thread spins the whole double graph, as rclpy would spin its node.
    thread, result = run_in_thread(run_console, cfg, io.StringIO("2 3\n\n"), out)
    operator_node(ctx)
    sensors.scene()
    thread.join(timeout=60.0)
    assert not thread.is_alive(), out.getvalue()[-2000:]
    if "error" in result:
        raise result["error"]
    metrics, text = result["value"], out.getvalue()
    assert metrics["answers"] == 1 and metrics["executions"] == 1 and metrics["stopped"] is None, text[-2000:]
    assert "stored: ranking 2 > 3" in text and "query 1/1" in text

    # The label is in the store, with the cloud the policy sampled in and its decision.
    with PreferenceStore(tmp_path / "store", create=False) as store:
        assert store.label_count("place_block") == 6  # 2 > 3 > {1 = 4} as pairs
        (query,) = store.queries()
        assert query.goal == GOAL and query.n_candidates == 4
        assert query.meta["backend"] == "ros" and query.meta["decision_id"] == 0
        assert query.meta["proposed_by"] == "/policy/candidates decision 0"
        _, arrays = store.load_query(query.id)
        assert arrays.points.shape == (256, 3) and arrays.image.shape == (48, 64, 3)

    # The operator's top choice went to the executor, tagged with the policy's decision.
    (command,) = sensors.commands
    assert command.decision_id == 0 and command.source == "console"
    final = [s for s in sensors.statuses if s.terminal]
    assert len(final) == 1 and final[0].decision_id == 0 and final[0].state == "succeeded", final
    assert f"executor: decision 0 {final[0].state}" in text
    policy = next(n for n in ctx.nodes if n.get_name() == "policy")
    assert policy.core.state == "idle"  # the executor's report closed the policy's decision
    executor = next(n for n in ctx.nodes if n.get_name() == "executor")
    assert not executor.core.busy
    np.testing.assert_array_equal(command.primitive.params, arrays.params[1])  # candidate 2
    assert (tmp_path / "out" / "current.png").stat().st_size > 1000
    assert not ctx.log_lines("error"), ctx.log_lines("error")


def test_no_candidate_set_in_time_names_the_topic_and_stores_nothing(rclpy, ctx, tmp_path):
    from robot_rewards.commands.console import run_console
    from robot_rewards.preferences.store import PreferenceStore
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg

    sensors = console_graph(ctx)
    cfg = ConsoleConfig(backend="ros", queries=2, window="off", labeller="tester", store=str(tmp_path / "store"),
                        output_dir=str(tmp_path / "out"), ros=RosConsoleConfig(candidates_timeout=1.0))
    out = io.StringIO()
    thread, result = run_in_thread(run_console, cfg, io.StringIO(""), out)
    operator_node(ctx)
    sensors.pub["candidates"].publish(CandidateSetMsg(primitive="fly"))  # logged and skipped
    thread.join(timeout=60.0)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    metrics = result["value"]
    assert "no new candidate set on /policy/candidates within 1 s" in metrics["stopped"]
    assert "no new candidate set on /policy/candidates" in out.getvalue()
    assert metrics["queries_shown"] == 0
    with PreferenceStore(tmp_path / "store", create=False) as store:
        assert store.queries() == [] and store.label_count() == 0
    assert any("candidate set rejected" in line for line in ctx.log_lines("error", "console_operator"))


def test_backend_direct_use_without_a_spin_thread(rclpy, ctx):
    """The backend as a library on a graph the caller spins: observe, offer, refusals."""
    from robot_rewards.ros.console_backend import RosRobot

    sensors = console_graph(ctx)
    backend = RosRobot(RosConsoleConfig(candidates_timeout=0.2), spin=False)
    try:
        with pytest.raises(RobotError, match="no new candidate set on /policy/candidates"):
            backend.observe()
        sensors.scene(seed=1)
        assert ctx.run_until(lambda: backend.core.next_set(0, 0.0) is not None, timeout=20.0)
        obs = backend.observe()
        offer = backend.offer()
        assert offer.decision_id == 0 and len(offer.candidates) == 4 and obs.goal == GOAL
        assert obs.points.shape == (256, 3) and list(obs.frames) == ["camera"]
        frame = obs.frames["camera"]
        assert frame.camera.base_frame == "panda_link0" and frame.depth.shape == (48, 64)
        point = backend.pixel_to_base("camera", 32, 24)
        assert point[2] == pytest.approx(0.03, abs=1e-3)  # the synthetic platform's top
        assert backend.observed_version() == backend.scene_version == 0
        with pytest.raises(RobotError, match="cannot jog the arm"):
            backend.jog([0.0, 0.0, 0.01])
        with pytest.raises(RobotError, match="cannot home the arm"):
            backend.home()
        with pytest.raises(RobotError, match="cannot reset"):
            backend.reset(0)
    finally:
        backend.close()
        backend.close()  # idempotent


def test_a_console_started_after_the_policy_proposed_gets_the_pending_set(rclpy, ctx):
    """console:=true: the policy proposes once and waits for the operator; a console started
    later (perception's clouds of that moment long gone) still gets that set and its cloud."""
    from robot_rewards.ros.console_backend import RosRobot

    sensors = console_graph(ctx)
    sensors.scene(seed=2)
    policy = next(n for n in ctx.nodes if n.get_name() == "policy")
    assert ctx.run_until(lambda: policy.core.state == "executing", timeout=20.0)
    backend = RosRobot(RosConsoleConfig(candidates_timeout=5.0), spin=False)
    try:
        sensors.scene(seed=3)  # the camera streams on; /perception/points now has another cloud
        assert ctx.run_until(lambda: backend.core.next_set(0, 0.0) is not None, timeout=20.0)
        obs = backend.observe()
        offer = backend.offer()
        assert offer.decision_id == 0 and len(offer.candidates) == 4
        from robot_rewards.rewards.synthetic import planted_observation

        np.testing.assert_allclose(obs.points, planted_observation(seed=2, n_points=256)[0].points, atol=1e-6)
    finally:
        backend.close()

"""The rclpy node shells, run through the rclpy test double (tests/ros_double) without ROS.

Each node is built as `ros2 run` would build it, wired to other nodes or to probe nodes over
topics, services and actions of the double, and driven in simulated time.
"""

from __future__ import annotations

import numpy as np
import pytest
from ros_double.fixtures import ctx, rclpy  # noqa: F401 (fixtures)

from robot_rewards.core.primitives import Primitive
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.ros import convert as rc
from robot_rewards.ros import convert_interfaces as ci
from robot_rewards.ros.config import NODE_CONFIGS, ExecutorConfig
from robot_rewards.ros.params import descriptions
from robot_rewards.ros.payloads import (
    EXECUTOR_CANCELED,
    EXECUTOR_GOAL_REJECTED,
    EXECUTOR_NO_SERVER,
    PrimitiveCommand,
)
from robot_rewards.ros.trajectory_goal import PATH_TOLERANCE_VIOLATED

HOME, JOINT_NAMES = get_arm(DEFAULT_ARM).home_positions, get_arm(DEFAULT_ARM).joint_names

SEC = 1_000_000_000
REACHABLE = [0.5, 0.0, 0.02, 0.55, 0.1, 0.02, 0.0]




def params(rclpy, **values):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in values.items()]


def types():
    return rc.rclpy_types()  # resolves through the double's message packages


class Probe:
    """A test node recording topics and publishing std_msgs/String or any message."""

    def __init__(self, rclpy, name="probe"):
        from rclpy.node import Node

        self.node = Node(name)
        self.got: dict[str, list] = {}
        self.pubs: dict[str, object] = {}

    def listen(self, msg_type, topic, qos=10):
        self.got[topic] = []
        self.node.create_subscription(msg_type, topic, self.got[topic].append, qos)
        return self.got[topic]

    def publish(self, topic, msg, qos=10):
        if topic not in self.pubs:
            self.pubs[topic] = self.node.create_publisher(type(msg), topic, qos)
        self.pubs[topic].publish(msg)

    def say(self, topic, text, qos=10):
        from std_msgs.msg import String

        self.publish(topic, String(data=text), qos)


def joint_state_msg(q, stamp):
    return rc.joint_state_to_msg(list(JOINT_NAMES), q, ("", stamp), types())


class FakeExecutor:
    """An ExecutePrimitive server that records the goals and succeeds (a stand-in executor)."""

    def __init__(self, rclpy, node=None):
        from rclpy.action import ActionServer
        from rclpy.node import Node

        from robot_rewards_interfaces.action import ExecutePrimitive

        self.node = node or Node("fake_executor")
        self.goals = []

        def execute(handle):
            self.goals.append(ci.primitive_goal_from_msg(handle.request))
            handle.succeed()
            return ExecutePrimitive.Result(state="succeeded", segments=1, segment=0)

        self.server = ActionServer(self.node, ExecutePrimitive, "/executor/execute", execute)


def send_primitive(ctx, client, command, feedback=None):
    """Send an ExecutePrimitive goal; (goal handle, result response or None)."""
    sent = client.send_goal_async(ci.primitive_goal_to_msg(command, types()), feedback_callback=feedback)
    assert ctx.run_until(sent.done, timeout=1.0)
    handle = sent.result()
    if not handle.accepted:
        return handle, None
    result = handle.get_result_async()
    ctx.run_until(result.done, timeout=10.0)
    return handle, result.result() if result.done() else None


# --- the double itself ------------------------------------------------------------------------------


def test_double_mirrors_rclpy_message_and_qos_rules(rclpy, ctx):
    import array

    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64, String
    from std_srvs.srv import Trigger

    with pytest.raises(AssertionError, match="Invalid arguments passed to constructor: nam"):
        JointState(nam=["a"])
    with pytest.raises(AssertionError, match="rclpy does not take numpy arrays"):
        JointState(position=np.zeros(3))
    with pytest.raises(AssertionError, match="must be of type 'float'"):
        Float64(data=1)
    assert isinstance(JointState(position=[1.0, 2.0]).position, array.array)
    response = Trigger.Response()
    with pytest.raises(AttributeError, match="sucess"):
        response.sucess = True
    probe = Probe(rclpy)
    best_effort = probe.node.create_publisher(String, "/x", qos_profile_sensor_data)
    reliable_got = probe.listen(String, "/x", 10)
    best_effort.publish(String(data="lost"))
    ctx.drain()
    assert reliable_got == [] and "incompatible QoS" in ctx.incompatible[0]
    from robot_rewards.ros.nodes._common import LATCHED_QOS

    latched = probe.node.create_publisher(String, "/latched", LATCHED_QOS)
    latched.publish(String(data="goal"))
    late = []
    probe.node.create_subscription(String, "/latched", late.append, LATCHED_QOS)
    ctx.drain()
    assert [m.data for m in late] == ["goal"]
    with pytest.raises(TypeError, match="Expected"):
        latched.publish(Float64(data=1.0))


def test_double_parameters_are_statically_typed(rclpy, ctx):
    from rclpy.exceptions import InvalidParameterTypeException
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node("typed", parameter_overrides=params(rclpy, rate=1, names=["a"]))
    with pytest.raises(InvalidParameterTypeException, match="expecting type 'DOUBLE'"):
        node.declare_parameter("rate", 0.5)  # YAML `rate: 1` against a double parameter
    with pytest.raises(InvalidParameterTypeException, match="expecting type 'BYTE_ARRAY'"):
        node.declare_parameter("names", [])  # an empty default is a byte array in rclpy
    assert node.declare_parameter("other", Parameter.Type.STRING_ARRAY).type_ == Parameter.Type.STRING_ARRAY


# --- every node: parameters -------------------------------------------------------------------------


def test_nodes_declare_every_parameter_with_its_description(rclpy, ctx, tmp_path):
    from robot_rewards.ros.nodes.calibration_capture import CalibrationCaptureNode
    from robot_rewards.ros.nodes.console import ConsoleNode
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.perception import PerceptionNode
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode

    # Overrides as YAML and launch files give them: ints for floats, strings for numbers.
    nodes = {
        "sim_bridge": SimBridgeNode(parameter_overrides=params(rclpy, image_scale=0.25, camera_rate=2)),
        "perception": PerceptionNode(parameter_overrides=params(rclpy, max_rate=1, n_points=512)),
        "reward_server": RewardServerNode(),
        "policy": PolicyNode(parameter_overrides=params(rclpy, weights=["pref=2"], lam=3)),
        "executor": ExecutorNode(),
        "console": ConsoleNode(),
        "calibration_capture": CalibrationCaptureNode(parameter_overrides=params(rclpy, output_dir=str(tmp_path))),
    }
    for name, node in nodes.items():
        for param, text in descriptions(NODE_CONFIGS[name]).items():
            assert node.describe_parameter(param).description == text, (name, param)
    assert nodes["sim_bridge"].cfg.camera_rate == 2.0 and isinstance(nodes["sim_bridge"].cfg.camera_rate, float)
    assert nodes["perception"].cfg.n_points == 512 and nodes["policy"].cfg.lam == 3.0
    assert nodes["policy"].cfg.weights == ["pref=2"]
    assert nodes["executor"].cfg.joint_names == ExecutorConfig().joint_names
    assert not ctx.incompatible


def test_main_runs_and_stops_cleanly_or_fails_with_a_message(rclpy, capsys):
    from robot_rewards.ros.nodes import console, reward_server

    rclpy.next_spin_limit = 3
    try:
        assert console.main() == 0
        assert not rclpy.ok()  # main shut the context down
        code = reward_server.main(["--ros-args", "-p", "scorers:=[pref=/no/such/scorer.json]"])
    finally:
        rclpy.next_spin_limit = None
    assert code == 1
    assert "[FATAL] FileNotFoundError" in capsys.readouterr().err


# --- executor against controllers ---------------------------------------------------------------------


class FakeController:
    """A FollowJointTrajectory (+ GripperCommand) server whose answers the test chooses."""

    def __init__(self, rclpy, accept=True, error_code=0, gripper=True):
        from control_msgs.action import FollowJointTrajectory, GripperCommand
        from rclpy.action import ActionServer, GoalResponse
        from rclpy.node import Node

        self.node = Node("controller")
        self.goals, self.executed = [], []
        self.error_code = error_code

        def on_goal(goal):
            self.goals.append(goal)
            return GoalResponse.ACCEPT if accept else GoalResponse.REJECT

        def execute(handle):
            self.executed.append(handle.request)
            result = FollowJointTrajectory.Result(error_code=self.error_code, error_string="fake controller")
            handle.succeed() if self.error_code == 0 else handle.abort()
            return result

        def grip(handle):
            self.executed.append(handle.request)
            handle.succeed()
            return GripperCommand.Result(position=handle.request.command.position, reached_goal=True)

        cfg = ExecutorConfig()
        ActionServer(self.node, FollowJointTrajectory, cfg.trajectory_action, execute, goal_callback=on_goal)
        if gripper:
            ActionServer(self.node, GripperCommand, cfg.gripper_action, grip)


def run_primitive(rclpy, ctx, executor_overrides=None, **controller):
    """An executor node, a fake controller, one ExecutePrimitive goal: (node, controller, the
    statuses on /executor/status, the feedback, the action's result response)."""
    from rclpy.action import ActionClient

    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards_interfaces.action import ExecutePrimitive
    from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg

    node = ExecutorNode(parameter_overrides=params(rclpy, **(executor_overrides or {})))
    fake = FakeController(rclpy, **controller) if controller.get("accept") is not None else None
    probe = Probe(rclpy)
    statuses = probe.listen(ExecutorStatusMsg, "/executor/status")
    probe.publish("/joint_states", joint_state_msg(HOME, divmod(ctx.now_ns, SEC)))
    ctx.drain()
    feedback = []
    client = ActionClient(probe.node, ExecutePrimitive, "/executor/execute")
    handle, result = send_primitive(ctx, client, PrimitiveCommand(11, Primitive("pick_place", REACHABLE)),
                                    feedback.append)
    assert handle.accepted and result is not None
    return node, fake, [ci.executor_status_from_msg(m) for m in statuses], [m.feedback for m in feedback], result


def test_executor_node_runs_every_segment_on_an_accepting_controller(rclpy, ctx):
    node, fake, statuses, feedback, result = run_primitive(rclpy, ctx, accept=True)
    final = statuses[-1]
    assert final.state == "succeeded" and final.decision_id == 11 and not node.core.busy
    assert [s.segment for s in statuses[:-1]] == list(range(final.segments))  # one goal after another
    assert len(fake.executed) == final.segments  # every step went to a server, in order
    # feedback per segment, with the planner's labels; the result is the final status
    assert [f.segment for f in feedback] == list(range(final.segments)) and all(f.label for f in feedback)
    assert {f.segments for f in feedback} == {final.segments}
    assert result.status == 4 and result.result.state == "succeeded" and result.result.error_code == 0
    assert result.result.segments == final.segments
    first = fake.executed[0].trajectory
    assert list(first.joint_names) == list(JOINT_NAMES)
    np.testing.assert_allclose(first.points[0].positions, HOME, atol=1e-9)


def test_executor_node_stops_when_the_controller_rejects(rclpy, ctx):
    node, fake, statuses, _, result = run_primitive(rclpy, ctx, accept=False)
    final = statuses[-1]
    assert final.state == "failed" and final.error_code == EXECUTOR_GOAL_REJECTED
    assert result.status == 6 and result.result.error_code == EXECUTOR_GOAL_REJECTED  # ABORTED
    assert len(fake.goals) == 1 and fake.executed == []  # nothing executed, nothing else sent
    assert any("rejected the goal" in line for line in ctx.log_lines("error", "executor"))


def test_executor_node_reports_the_controller_error_code(rclpy, ctx):
    node, fake, statuses, _, result = run_primitive(rclpy, ctx, accept=True, error_code=PATH_TOLERANCE_VIOLATED)
    final = statuses[-1]
    assert final.state == "failed" and final.error_code == PATH_TOLERANCE_VIOLATED
    assert result.result.error_code == PATH_TOLERANCE_VIOLATED and result.result.state == "failed"
    assert ci.status_of_action_result(11, result.status, result.result).error_code == PATH_TOLERANCE_VIOLATED
    assert "PATH_TOLERANCE_VIOLATED" in final.error_string and "fake controller" in final.error_string
    assert len(fake.executed) == 1


def test_executor_node_without_a_controller_times_out(rclpy, ctx):
    node, fake, statuses, _, result = run_primitive(rclpy, ctx, {"server_timeout": 0.5})
    assert statuses[-1].error_code == EXECUTOR_NO_SERVER and "is not available" in statuses[-1].error_string
    assert result.result.error_code == EXECUTOR_NO_SERVER


def test_executor_node_cancels_the_running_trajectory_and_refuses_a_second_goal(rclpy, ctx):
    """A cancel stops the arm mid-segment (the controller's goal is canceled) and ends the goal
    CANCELED; a goal sent while one runs is rejected; a malformed goal ends BAD_INPUT."""
    from rclpy.action import ActionClient

    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode
    from robot_rewards_interfaces.action import ExecutePrimitive

    bridge = SimBridgeNode(parameter_overrides=params(rclpy, image_scale=0.25, camera_rate=1.0))
    node = ExecutorNode()
    probe = Probe(rclpy)
    client = ActionClient(probe.node, ExecutePrimitive, "/executor/execute")
    ctx.advance(0.2)  # joint states
    sent = client.send_goal_async(ci.primitive_goal_to_msg(PrimitiveCommand(3, Primitive("pick_place", REACHABLE)),
                                                           types()))
    assert ctx.run_until(sent.done, timeout=1.0) and sent.result().accepted
    ctx.advance(0.5)  # the first segment runs
    assert node.core.busy and bridge.core.busy  # the arm is moving
    second, result = send_primitive(ctx, client, PrimitiveCommand(4, Primitive("pick_place", REACHABLE)))
    assert not second.accepted
    canceling = sent.result().cancel_goal_async()
    assert ctx.run_until(canceling.done, timeout=1.0) and canceling.result().return_code == 0
    done = sent.result().get_result_async()
    assert ctx.run_until(done.done, timeout=5.0)
    response = done.result()
    assert response.status == 5 and response.result.error_code == EXECUTOR_CANCELED  # CANCELED
    assert response.result.segment == 0 and not node.core.busy
    status = ci.status_of_action_result(3, response.status, response.result)
    assert status.state == "failed" and status.error_code == EXECUTOR_CANCELED
    # idle again: a malformed goal is accepted and ends with the reason
    bad = ExecutePrimitive.Goal(decision_id=5)
    bad.primitive.name = "fly"
    sent = client.send_goal_async(bad)
    assert ctx.run_until(sent.done, timeout=1.0) and sent.result().accepted
    done = sent.result().get_result_async()
    assert ctx.run_until(done.done, timeout=1.0)
    assert done.result().status == 6 and done.result().result.error_code == -105  # BAD_INPUT
    assert "unknown primitive 'fly'" in done.result().result.error_string


# --- sim bridge as an arm driver ------------------------------------------------------------------------


def test_sim_bridge_serves_trajectories_gripper_and_reset(rclpy, ctx):
    from control_msgs.action import FollowJointTrajectory, GripperCommand
    from rclpy.action import ActionClient
    from std_srvs.srv import Trigger

    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode

    bridge = SimBridgeNode(parameter_overrides=params(rclpy, image_scale=0.25, camera_rate=1.0))
    probe = Probe(rclpy)
    arm = ActionClient(probe.node, FollowJointTrajectory, bridge.cfg.trajectory_action)
    gripper = ActionClient(probe.node, GripperCommand, bridge.cfg.gripper_action)
    assert arm.wait_for_server(timeout_sec=1.0)
    q = bridge.core.joint_positions()

    def send(client, goal):
        handles, results = [], []
        future = client.send_goal_async(goal)
        future.add_done_callback(lambda f: handles.append(f.result()))
        ctx.run_until(lambda: handles, timeout=1.0)
        if handles[0].accepted:
            handles[0].get_result_async().add_done_callback(lambda f: results.append(f.result()))
            ctx.run_until(lambda: results, timeout=10.0)
        return handles[0], results

    bad = FollowJointTrajectory.Goal(trajectory=rc.joint_trajectory_to_msg(
        [f"x{i}" for i in range(7)], [q], [1.0], None, types()))
    handle, _ = send(arm, bad)
    assert not handle.accepted
    assert any("code -2" in line for line in ctx.log_lines("error", "sim_bridge"))
    target = q + np.r_[0.1, 0, 0, 0.1, 0, 0, 0]
    good = FollowJointTrajectory.Goal(trajectory=rc.joint_trajectory_to_msg(JOINT_NAMES, [q, target], [0.0, 1.0],
                                                                             None, types()))
    handle, (result,) = send(arm, good)
    assert handle.accepted and result.status == 4 and result.result.error_code == 0
    np.testing.assert_allclose(bridge.core.joint_positions(), target, atol=0.01)
    from control_msgs.msg import GripperCommand as Command

    handle, (result,) = send(gripper, GripperCommand.Goal(command=Command(position=0.01, max_effort=5.0)))
    assert result.status == 4 and result.result.position == pytest.approx(0.01, abs=0.002)
    client = probe.node.create_client(Trigger, "/sim_bridge/reset")
    responses = []
    client.call_async(Trigger.Request()).add_done_callback(lambda f: responses.append(f.result()))
    ctx.run_until(lambda: responses, timeout=1.0)
    assert responses[0].success and responses[0].message.startswith("seed 1:")


# --- perception, reward server, policy, console ------------------------------------------------------------


def test_perception_node_survives_bad_frames(rclpy, ctx):
    from ros_double.scenes import synthetic_frame
    from sensor_msgs.msg import PointCloud2

    from robot_rewards.ros.nodes._common import SENSOR_QOS, TF_STATIC_QOS
    from robot_rewards.ros.nodes.perception import PerceptionNode

    PerceptionNode(parameter_overrides=params(rclpy, max_rate=0.0, n_points=128))
    probe = Probe(rclpy)
    clouds = probe.listen(PointCloud2, "/perception/points")
    t = types()

    def frame(stamp_ns, encoding=None):
        color, depth, info, base_T_cam = synthetic_frame(stamp_ns)
        out = [rc.image_to_msg(rc.msg_to_rgb(color), "rgb8", color.header, t),
               rc.depth_to_msg(rc.msg_to_depth(depth), depth.header, t),
               rc.camera_info_to_msg(rc.msg_to_camera_info(info)[0], info.header, t), base_T_cam]
        if encoding:
            out[0].encoding = encoding
        return out

    color, depth, info, base_T_cam = frame(ctx.now_ns)
    probe.publish("/tf_static", rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(
        base_T_cam, "panda_link0", "cam")], t), TF_STATIC_QOS)
    for k, encoding in enumerate(["bayer_rggb8", None]):
        color, depth, info, _ = frame(ctx.now_ns + k * SEC, encoding)
        for topic, msg in [("/camera/color/camera_info", info), ("/camera/color/image_raw", color),
                           ("/camera/depth/image_rect_raw", depth)]:
            probe.publish(topic, msg, SENSOR_QOS)
        ctx.drain()
    assert len(clouds) == 1 and rc.msg_to_points(clouds[0]).shape == (128, 3)
    assert any("unknown encoding 'bayer_rggb8'" in line for line in ctx.log_lines("error", "perception"))


def test_perception_node_takes_the_table_up_axis_and_tilt(rclpy, ctx):
    """table_up / table_max_tilt_deg are node parameters and reach the pipeline's config."""
    from robot_rewards.ros.nodes.perception import PerceptionNode

    default = PerceptionNode()
    assert default.core.perception.table_up == [0.0, 0.0, 1.0] and default.core.perception.table_max_tilt_deg == 30.0
    default.destroy_node()
    node = PerceptionNode(parameter_overrides=params(rclpy, table="ransac", table_up=[0.0, 1.0, 0.0],
                                                     table_max_tilt_deg=10))  # an int, as YAML writes it
    assert node.core.perception.table_up == [0.0, 1.0, 0.0]
    assert node.core.perception.table_max_tilt_deg == 10.0 and node.core.perception.table == "ransac"


def test_reward_server_and_policy_nodes_score_and_choose(rclpy, ctx, tmp_path):
    from ros_double.scenes import tiny_scorer
    from std_msgs.msg import Float64

    from robot_rewards.rewards.preference.io import save_scorer
    from robot_rewards.rewards.synthetic import planted_observation
    from robot_rewards.ros.nodes._common import LATCHED_QOS
    from robot_rewards.ros.nodes.console import ConsoleNode
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg

    scorer_path = save_scorer(tmp_path / "scorer", tiny_scorer())
    RewardServerNode(parameter_overrides=params(rclpy, scorers=[f"pref={scorer_path}"],
                                                state_reward="ros_double.plugins:MeanHeight",
                                                state_reward_input="observation", max_wait_ms=0.0))
    PolicyNode(parameter_overrides=params(rclpy, n_candidates=6, execute_chosen=False))
    ConsoleNode(parameter_overrides=params(rclpy, chooser="ros_double.plugins:last_candidate"))
    probe = Probe(rclpy)
    executor = FakeExecutor(rclpy, probe.node)
    sets = probe.listen(CandidateSetMsg, "/policy/candidates")
    chosen = executor.goals
    rewards = probe.listen(Float64, "/reward_server/goal_reward")
    obs, _ = planted_observation(seed=0, n_points=256)
    probe.say("/goal", "put the block on the red mark", LATCHED_QOS)
    probe.publish("/joint_states", joint_state_msg(HOME, divmod(ctx.now_ns, SEC)))
    probe.publish("/perception/points", rc.points_to_msg(obs.points, ("panda_link0", divmod(ctx.now_ns, SEC)),
                                                         types(), rgb=obs.colors))
    assert ctx.run_until(lambda: sets and chosen, timeout=20.0)
    cset = ci.candidate_set_from_msg(sets[0])
    assert cset.scores["pref"].shape == (3, 6) and cset.goal == "put the block on the red mark"
    assert cset.selector == "robot_rewards.selection" and cset.utilities is not None
    assert sets[0].header.frame_id == "panda_link0"  # the frame of the cloud it was sampled in
    command = chosen[0]
    np.testing.assert_array_equal(command.primitive.params, cset.candidates.params[-1])  # the chooser's pick
    assert command.decision_id == cset.decision_id and command.source == "console"
    assert rewards[0].data == pytest.approx(float(np.mean(obs.points[:, 2])), abs=1e-6)
    assert not ctx.log_lines("error")


@pytest.mark.parametrize("cloud_keep", [30.0, 4.0])
def test_reward_server_keeps_the_cloud_a_slow_policy_sampled_in(rclpy, ctx, tmp_path, cloud_keep):
    """What the real align_rope graph showed: while the policy samples (13 s here), perception keeps
    publishing (2 Hz); the request then names a cloud 26 clouds old. The default cloud_keep (30 s)
    still has it and scores; a window shorter than the sampling answers at once, saying so."""
    from ros_double.scenes import tiny_scorer

    from robot_rewards.rewards.preference.io import save_scorer
    from robot_rewards.rewards.synthetic import planted_observation
    from robot_rewards.ros.nodes._common import LATCHED_QOS
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg

    scorer_path = save_scorer(tmp_path / "scorer", tiny_scorer())
    RewardServerNode(parameter_overrides=params(rclpy, scorers=[f"pref={scorer_path}"], max_wait_ms=0.0,
                                                cloud_keep=cloud_keep))
    policy = PolicyNode(parameter_overrides=params(rclpy, n_candidates=4, execute_chosen=False))
    probe = Probe(rclpy)
    sets = probe.listen(CandidateSetMsg, "/policy/candidates")
    obs, _ = planted_observation(seed=0, n_points=256)

    def cloud():
        return rc.points_to_msg(obs.points, ("panda_link0", divmod(ctx.now_ns, SEC)), types(), rgb=obs.colors)

    sample = policy.core.decider.sample

    def slow_sample(*args):
        for _ in range(26):  # the other processes go on while this one samples
            ctx.now_ns += SEC // 2
            probe.publish("/perception/points", cloud())
        return sample(*args)

    policy.core.decider.sample = slow_sample
    probe.say("/goal", "put the block on the red mark", LATCHED_QOS)
    probe.publish("/joint_states", joint_state_msg(HOME, divmod(ctx.now_ns, SEC)))
    probe.publish("/perception/points", cloud())
    started = ctx.now_ns
    assert ctx.run_until(lambda: sets, timeout=20.0)
    cset = ci.candidate_set_from_msg(sets[0])
    waited = (ctx.now_ns - started) / SEC - 13.0
    assert waited < 1.0  # answered at once either way (it used to wait request_timeout, 5 s)
    if cloud_keep > 13.0:
        assert cset.scores["pref"].shape == (3, 4) and not ctx.log_lines("error")
    else:
        assert "pref" not in cset.scores
        assert any("is kept any more: it is 13.0 s older than the newest" in line
                   for line in ctx.log_lines("error", "policy"))


def test_cloud_without_xyz_is_rejected_by_consumers(rclpy, ctx):
    from robot_rewards.ros.nodes.policy import PolicyNode

    PolicyNode(parameter_overrides=params(rclpy, goal="anything"))
    probe = Probe(rclpy)
    t = types()
    cloud = rc.points_to_msg(np.zeros((10, 3), np.float32), ("panda_link0", (1, 0)), t)
    for field, name in zip(cloud.fields, "uvw"):
        field.name = name
    probe.publish("/perception/points", cloud)
    ctx.drain()
    errors = ctx.log_lines("error", "policy")
    assert any("missing x, y, z (fields present: u, v, w)" in line for line in errors)


def test_policy_node_says_why_it_does_not_decide(rclpy, ctx):
    """A wrong cloud topic, a missing executor and a missing reward server: ~/decide's answer and
    ~/status name them; a reward server that appears is used, and ~/stop cancels the execution."""
    from std_srvs.srv import Trigger

    from robot_rewards.rewards.synthetic import planted_observation
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg
    from robot_rewards_interfaces.msg import PolicyStatus as PolicyStatusMsg

    PolicyNode(parameter_overrides=params(rclpy, goal="anything", cloud_topic="/perception/pointz", n_candidates=4))
    probe = Probe(rclpy)
    statuses = probe.listen(PolicyStatusMsg, "/policy/status")
    obs, _ = planted_observation(seed=0, n_points=256)
    cloud = rc.points_to_msg(obs.points, ("panda_link0", divmod(ctx.now_ns, SEC)), types(), rgb=obs.colors)
    probe.publish("/perception/points", cloud)  # not what the policy listens to
    ctx.advance(3.0)
    decide = probe.node.create_client(Trigger, "/policy/decide")

    def call():
        future = decide.call_async(Trigger.Request())
        assert ctx.run_until(future.done, timeout=1.0)
        return future.result()

    reply = call()
    assert not reply.success and "no cloud on /perception/pointz in 3 s since start; 0 publisher(s)" in reply.message
    status = ci.policy_status_from_msg(statuses[-1])
    assert status.code == "no_cloud" and status.inputs["cloud"]["publishers"] == 0
    probe.publish("/perception/pointz", cloud)
    ctx.advance(1.0)
    reply = call()
    assert "nobody serves the ExecutePrimitive action /executor/execute" in reply.message
    assert ci.policy_status_from_msg(statuses[-1]).code == "no_executor"
    # an executor that takes goals and never ends them (the arm moves for a long time)
    from rclpy.action import ActionServer, CancelResponse
    from rclpy.task import Future

    from robot_rewards_interfaces.action import ExecutePrimitive

    goals, canceled = [], []

    async def execute(handle):
        goals.append(handle)
        canceled.append(Future())
        await canceled[-1]
        handle.canceled()
        return ExecutePrimitive.Result(state="failed", error_code=EXECUTOR_CANCELED)

    def cancel(handle):
        canceled[-1].set_result(True)
        return CancelResponse.ACCEPT

    ActionServer(probe.node, ExecutePrimitive, "/executor/execute", execute, cancel_callback=cancel)
    reply = call()
    assert "nobody serves /reward_server/score_candidates" in reply.message
    ctx.advance(1.0)  # the next status (1 Hz)
    status = ci.policy_status_from_msg(statuses[-1])
    assert status.code == "no_reward_server" and status.scorer["subscribers"] == 0
    assert any("reward_server missing" in line for line in ctx.log_lines("info", "policy"))
    RewardServerNode(parameter_overrides=params(rclpy, max_wait_ms=0.0, cloud_topic="/perception/pointz"))
    sets = probe.listen(CandidateSetMsg, "/policy/candidates")
    probe.publish("/perception/pointz", rc.points_to_msg(obs.points, ("panda_link0", divmod(ctx.now_ns, SEC)),
                                                          types(), rgb=obs.colors))
    assert ctx.run_until(lambda: sets and goals, timeout=20.0)
    assert ci.policy_status_from_msg(statuses[-1]).state == "executing"
    assert ci.primitive_goal_from_msg(goals[0].request).decision_id == ci.candidate_set_from_msg(sets[0]).decision_id
    # ~/stop cancels the goal and stops deciding; ~/decide decides again
    stop = probe.node.create_client(Trigger, "/policy/stop")
    future = stop.call_async(Trigger.Request())
    assert ctx.run_until(future.done, timeout=1.0) and future.result().success
    assert "canceled" in future.result().message
    assert ctx.run_until(lambda: not goals[0].is_active, timeout=2.0) and goals[0].status == 5  # CANCELED
    status = ci.policy_status_from_msg(statuses[-1])
    assert status.state == "done" and status.code == "stopped"
    ctx.advance(2.0)  # fresh clouds: no decision while stopped
    assert len(goals) == 1
    reply = call()
    assert reply.success and ctx.run_until(lambda: len(goals) == 2, timeout=20.0)
    assert not ctx.log_lines("error")


def test_policy_node_bounds_the_checkpoint_workspace_by_the_arm(rclpy, ctx, monkeypatch):
    """The configured arm's box is the authority: a checkpoint box reaching beyond it is
    intersected with it (one warning at start-up), a narrower one is kept, a disjoint one refused."""
    from robot_rewards.core.primitives import Workspace
    from robot_rewards.robots.workspace import WorkspaceError
    from robot_rewards.ros.nodes import policy as policy_node

    arm_box = get_arm(DEFAULT_ARM).workspace
    load = policy_node.load_node_policy

    def with_box(box):
        def loader(cfg):
            policy = load(cfg)
            policy.workspace = box
            return policy
        monkeypatch.setattr(policy_node, "load_node_policy", loader)

    with_box(Workspace((0.25, -0.6, 0.0), (0.75, 0.35, 0.3)))  # widened towards y = -0.6
    node = policy_node.PolicyNode(parameter_overrides=params(rclpy, goal="anything"))
    assert node.core.decider.policy.workspace == arm_box == node.core.decider.checker.workspace
    warnings = ctx.log_lines("warning", "policy")
    assert len(warnings) == 1 and "reaches beyond the robot's configured workspace" in warnings[0]
    ctx.drain()
    assert len(ctx.log_lines("warning", "policy")) == 1  # logged once, not per decision
    node.close()
    node.destroy_node()

    narrow = Workspace((0.3, -0.2, 0.0), (0.7, 0.2, 0.25))
    with_box(narrow)
    node = policy_node.PolicyNode(parameter_overrides=params(rclpy, goal="anything"))
    assert node.core.decider.checker.workspace == narrow and len(ctx.log_lines("warning", "policy")) == 1
    node.close()
    node.destroy_node()

    with_box(Workspace((1.0, 0.5, 0.0), (1.2, 0.7, 0.3)))
    with pytest.raises(WorkspaceError, match="does not overlap the robot's configured workspace"):
        policy_node.PolicyNode(parameter_overrides=params(rclpy, goal="anything"))


@pytest.mark.slow
def test_sim_graph_executes_a_decision_and_stops_at_success(rclpy, ctx):
    """sim_bridge + perception + reward_server + policy + executor: one decision end to end; the
    sim bridge's task status says the task succeeded and the policy stops. Every link is typed:
    the ScoreCandidates service, the ExecutePrimitive action, the status messages."""
    from robot_rewards.ros.nodes.executor import ExecutorNode
    from robot_rewards.ros.nodes.perception import PerceptionNode
    from robot_rewards.ros.nodes.policy import PolicyNode
    from robot_rewards.ros.nodes.reward_server import RewardServerNode
    from robot_rewards.ros.nodes.sim_bridge import SimBridgeNode
    from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg
    from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg
    from robot_rewards_interfaces.msg import PolicyStatus as PolicyStatusMsg
    from robot_rewards_interfaces.msg import TaskStatus as TaskStatusMsg

    bridge = SimBridgeNode(parameter_overrides=params(rclpy, image_scale=0.5, camera_rate=2.0))
    PerceptionNode(parameter_overrides=params(rclpy, max_rate=0.0,
                                              perception_from_checkpoint="checkpoints/policy_place_block.json"))
    RewardServerNode()
    policy = PolicyNode()
    ExecutorNode()
    probe = Probe(rclpy)
    statuses = probe.listen(ExecutorStatusMsg, "/executor/status")
    sets = probe.listen(CandidateSetMsg, "/policy/candidates")
    policy_status = probe.listen(PolicyStatusMsg, "/policy/status")
    tasks = probe.listen(TaskStatusMsg, "/task/status")
    assert ctx.run_until(lambda: any(ci.executor_status_from_msg(m).terminal for m in statuses), timeout=40.0)
    final = ci.executor_status_from_msg(statuses[-1])
    assert final.state == "succeeded", final.error_string
    assert ci.candidate_set_from_msg(sets[0]).goal == bridge.core.goal
    assert bridge.core.env.success()  # the shipped place_block policy solves seed 0 in one step
    assert ctx.run_until(lambda: policy.core.state == "done", timeout=5.0)
    ctx.advance(5.0)  # fresh clouds keep coming: no second decision
    status = ci.policy_status_from_msg(policy_status[-1])
    assert status.code == "task_succeeded" and status.decisions == 1 and len(sets) == 1
    assert status.task["success"] and status.max_decisions == 3  # place_block's step budget
    assert ci.task_status_from_msg(tasks[-1]).success and tasks[-1].task == "place_block"
    assert not ctx.log_lines("error") and not ctx.incompatible


def test_reporter_logs_a_warning_then_an_error_on_an_rclpy_logger(rclpy, ctx):
    """rclpy refuses a second severity from one call site; the Reporter must not trip on it."""
    from rclpy.node import Node

    from robot_rewards.ros.report import Reporter

    logger = Node("reporter_probe").get_logger()

    def same_site(level):  # one source line, two severities: what took nodes down
        getattr(logger, level)("x")

    same_site("warning")
    with pytest.raises(ValueError, match="severity cannot be changed"):
        same_site("error")
    report = Reporter(logger)
    report.warning("busy", "decision requested while scoring: ignored")
    report.error("camera", "no camera_info yet")
    report.warning("busy", "decision requested while scoring: ignored again")
    got = [(level, text) for node, level, text in ctx.logs if node == "reporter_probe"][1:]
    assert got == [("warning", "decision requested while scoring: ignored"),
                   ("error", "no camera_info yet"),
                   ("warning", "decision requested while scoring: ignored again")]


def test_a_node_finishes_its_shutdown_through_a_second_sigint(rclpy, monkeypatch):
    """`ros2 launch` without a terminal forwards a second SIGINT while the node cleans up; `run`
    ignores SIGINT until the node is closed and destroyed, then puts the handler back."""
    import signal

    from rclpy.node import Node

    from robot_rewards.ros.nodes import _common

    seen = {}

    class Stopping(Node):
        def __init__(self):
            super().__init__("stopping")

        def close(self):
            seen["during_close"] = signal.getsignal(signal.SIGINT)

    def spin_then_interrupt(node, executor=None):
        raise KeyboardInterrupt  # the first Ctrl-C

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(_common.rclpy, "spin", spin_then_interrupt)
    assert _common.run(Stopping) == 0
    assert seen["during_close"] is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is before


def test_policy_node_samples_on_torch_threads(rclpy, ctx, monkeypatch):
    """torch_threads (1 by default, as eval-policy): on 2 shared cores torch's own default made each
    sampling of the rope policy 5-20x slower; 0 leaves torch alone; a negative count is refused."""
    from robot_rewards.ros import policy_core
    from robot_rewards.ros.nodes import policy as policy_node

    calls = []
    monkeypatch.setattr(policy_core.torch, "set_num_threads", calls.append)
    for threads in (1, 0, 3):
        node = policy_node.PolicyNode(parameter_overrides=params(rclpy, goal="anything", torch_threads=threads))
        node.close()
        node.destroy_node()
    assert calls == [1, 3]
    with pytest.raises(ValueError, match="parameter 'torch_threads' must be >= 0, got -1"):
        policy_node.PolicyNode(parameter_overrides=params(rclpy, goal="anything", torch_threads=-1))

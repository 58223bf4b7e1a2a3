"""SimBridgeCore: the PyBullet scene behind camera and controller interfaces (real PyBullet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.ros import convert as rc
from robot_rewards.ros.config import SimBridgeConfig
from robot_rewards.ros.sim_bridge_core import SimBridgeCore
from robot_rewards.ros.trajectory_goal import (
    GOAL_TOLERANCE_VIOLATED,
    INVALID_GOAL,
    INVALID_JOINTS,
    PATH_TOLERANCE_VIOLATED,
    SUCCESSFUL,
    TrajectoryRejected,
    check_trajectory,
    default_tolerances,
)

HOME, JOINT_NAMES = get_arm(DEFAULT_ARM).home_positions, get_arm(DEFAULT_ARM).joint_names

TYPES = rc.ROSBAGS_TYPES
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bridge():
    core = SimBridgeCore(SimBridgeConfig(image_scale=0.25, seed=3), TYPES)
    yield core
    core.close()


def trajectory(names, positions, times):
    return rc.joint_trajectory_to_msg(names, np.asarray(positions), times, None, TYPES)


def run_until_done(core, outcomes, seconds=6.0):
    for _ in range(int(seconds / 0.01)):
        core.step(0.01)
        if outcomes:
            return outcomes[-1]
    raise AssertionError("motion did not finish")


def test_sensor_messages(bridge):
    msgs = bridge.camera_messages((100, 5))
    rgb = rc.msg_to_rgb(msgs["color"])
    depth = rc.msg_to_depth(msgs["depth"])
    intrinsics, frame = rc.msg_to_camera_info(msgs["color_info"])
    assert rgb.shape == (120, 160, 3) and depth.shape == (120, 160)  # 640x480 at image_scale 0.25
    assert (intrinsics.width, intrinsics.height, frame) == (160, 120, "front_camera_color_optical_frame")
    assert 0.3 < np.median(depth[depth > 0]) < 3.0
    rc.check_image_matches_camera_info(msgs["depth"], msgs["depth_info"])
    assert rc.msg_to_points(msgs["points"]).shape[0] == int((depth > 0).sum())
    state = rc.msg_to_joint_state(bridge.joint_state_message((100, 5)))
    assert state.names == [*JOINT_NAMES, "panda_finger_joint1", "panda_finger_joint2"]
    np.testing.assert_allclose(state.position[:7], bridge.joint_positions())
    (static,) = rc.tf_msg_to_transforms(bridge.static_tf_message((100, 5)))
    np.testing.assert_allclose(static.matrix, bridge.env.world.cameras["front"].base_T_camera, atol=1e-12)
    (hand,) = rc.tf_msg_to_transforms(bridge.tf_message((100, 5)))
    assert (hand.parent_frame, hand.child_frame) == ("panda_link0", "panda_hand")
    assert bridge.goal  # the task's goal sentence


def test_goal_checks_reject_unsafe_trajectories(bridge):
    q = bridge.joint_positions()
    cases = [
        (trajectory([f"j{i}" for i in range(7)], [q], [0.5]), INVALID_JOINTS, "do not match"),
        (trajectory(JOINT_NAMES, [q + 0.3], [0.0]), INVALID_GOAL, "first point (t=0) is 0.300 rad"),
        (trajectory(JOINT_NAMES, [q + np.r_[10.0, np.zeros(6)]], [1.0]), INVALID_GOAL, "outside its limits"),
        (trajectory(JOINT_NAMES, np.zeros((0, 7)), []), INVALID_GOAL, "no points"),
    ]
    for msg, code, text in cases:
        with pytest.raises(TrajectoryRejected) as info:
            bridge.check_goal(msg)
        assert info.value.code == code and text in str(info.value)
    # Joint order in the goal does not matter: it is mapped to the arm's order.
    reordered = trajectory(JOINT_NAMES[::-1], [q[::-1]], [0.5])
    np.testing.assert_allclose(bridge.check_goal(reordered).positions[-1], q)


def test_tracks_a_trajectory_and_reports_tolerance_violations(bridge):
    q0 = bridge.joint_positions()
    target = q0 + np.array([0.2, -0.1, 0.0, 0.15, 0.0, 0.1, 0.0])
    times = np.linspace(0, 1.5, 16)
    path = q0 + (target - q0) * (times / times[-1])[:, None]
    outcomes = []
    bridge.start_trajectory(bridge.check_goal(trajectory(JOINT_NAMES, path, times)), outcomes.append)
    with pytest.raises(TrajectoryRejected, match="already executing"):
        bridge.check_goal(trajectory(JOINT_NAMES, [target], [1.0]))
    with pytest.raises(RuntimeError, match="while a trajectory"):
        bridge.reset(4)
    outcome = run_until_done(bridge, outcomes)
    assert outcome.error_code == SUCCESSFUL and outcome.ok
    np.testing.assert_allclose(bridge.joint_positions(), target, atol=0.01)
    # Far too fast for the motors: the tracking error trips the path tolerance and the arm holds.
    outcomes.clear()
    fast = trajectory(JOINT_NAMES, [HOME + np.r_[1.0, np.zeros(6)]], [0.05])
    bridge.start_trajectory(bridge.check_goal(fast), outcomes.append)
    outcome = run_until_done(bridge, outcomes)
    assert outcome.error_code == PATH_TOLERANCE_VIOLATED and "path tolerance" in outcome.error_string
    # An unreachable final tolerance (the goal's, for one joint) ends with GOAL_TOLERANCE_VIOLATED
    # after goal_time_tolerance, naming the joint.
    outcomes.clear()
    q = bridge.joint_positions()
    strict = bridge.goal_tolerances(goal_entries=[(JOINT_NAMES[1], 1e-9)])
    bridge.start_trajectory(bridge.check_goal(trajectory(JOINT_NAMES, [q, q + 0.01], [0.0, 0.5])),
                            outcomes.append, goal_time_tolerance=0.2, tolerances=strict)
    outcome = run_until_done(bridge, outcomes)
    assert outcome.error_code == GOAL_TOLERANCE_VIOLATED and f"{JOINT_NAMES[1]} " in outcome.error_string
    assert outcome.late == pytest.approx(0.2, abs=0.02) and len(outcome.final_error) == 7
    # The same motion with that joint's goal check off (< 0), and a per-joint parameter list.
    outcomes.clear()
    q = bridge.joint_positions()
    lax = strict.override(JOINT_NAMES, [], [(JOINT_NAMES[1], -1.0)])
    bridge.start_trajectory(bridge.check_goal(trajectory(JOINT_NAMES, [q, q - 0.01], [0.0, 0.5])),
                            outcomes.append, tolerances=lax)
    assert run_until_done(bridge, outcomes).ok


def test_a_finished_trajectory_keeps_its_last_point_commanded_an_aborted_one_holds_the_arm(bridge):
    # joint_trajectory_controller: success leaves the last point commanded, so the arm goes on
    # converging to it (and keeps pressing where it touches an object, as the Python loop does);
    # holding the measured position instead left it 3.7 mrad off here, at every segment end.
    q0 = bridge.joint_positions()
    target = q0 + np.array([0.3, 0.25, 0.0, 0.3, 0.0, 0.2, 0.0])
    times = np.linspace(0, 0.6, 7)
    path = q0 + (target - q0) * (times / times[-1])[:, None]
    outcomes = []
    bridge.start_trajectory(bridge.check_goal(trajectory(JOINT_NAMES, path, times)), outcomes.append)
    outcome = run_until_done(bridge, outcomes)
    assert outcome.ok and max(outcome.final_error) > 0.002  # ended within the goal tolerance, not on the point
    for _ in range(100):
        bridge.step(0.01)
    assert np.max(np.abs(bridge.joint_positions() - target)) < 5e-4
    # Aborted (path tolerance): the arm holds where it was, it does not go on to the goal.
    outcomes.clear()
    far = bridge.joint_positions() + np.r_[1.0, np.zeros(6)]
    bridge.start_trajectory(bridge.check_goal(trajectory(JOINT_NAMES, [far], [0.05])), outcomes.append)
    assert run_until_done(bridge, outcomes).error_code == PATH_TOLERANCE_VIOLATED
    held = bridge.joint_positions()
    for _ in range(50):
        bridge.step(0.01)
    assert np.max(np.abs(bridge.joint_positions() - held)) < 0.05
    assert np.max(np.abs(bridge.joint_positions() - far)) > 0.5


def test_a_trajectory_starts_from_the_commanded_position_where_the_arm_cannot_reach_it():
    # The arm pressed on an object stays off the point its last trajectory commands; the next
    # trajectory, planned from that point, must continue the command (as the Python loop does and
    # joint_trajectory_controller's interpolate_from_desired_state), not be refused for the press.
    names = list(JOINT_NAMES)
    q_arm, q_command = HOME.copy(), HOME + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.095, 0.0]
    lift = rc.msg_to_joint_trajectory(trajectory(names, [q_command, q_command + 0.05], [0.0, 0.5]))
    checked = check_trajectory(lift, names, q_arm, -np.inf, np.inf, 0.05, q_command=q_command)
    np.testing.assert_allclose(checked.positions[0], q_command)
    # planned from the arm's measured position (a new primitive): starts there
    fresh = rc.msg_to_joint_trajectory(trajectory(names, [q_arm, q_arm + 0.05], [0.0, 0.5]))
    np.testing.assert_allclose(check_trajectory(fresh, names, q_arm, -np.inf, np.inf, 0.05,
                                                q_command=q_command).positions[0], q_arm)
    with pytest.raises(TrajectoryRejected, match=r"0.095 rad from the current position \(start tolerance"):
        check_trajectory(lift, names, q_arm, -np.inf, np.inf, 0.05)  # no commanded position given
    far = rc.msg_to_joint_trajectory(trajectory(names, [q_arm + 0.2], [0.0]))
    with pytest.raises(TrajectoryRejected, match="0.200 rad from the current position and 0.200 rad from the "
                                                 "commanded one"):
        check_trajectory(far, names, q_arm, -np.inf, np.inf, 0.05, q_command=q_command)


def test_place_block_regrasp_pressed_on_the_block_goes_on_like_the_python_loop():
    # place_block seed 8 on the sim graph (config/sim.yaml's executor): the second primitive's
    # grasp presses on the block in the bowl (wrist 0.095 rad off its goal), and its 'lift' was
    # refused at the start tolerance; the Python loop lifts from there.
    from ros_double.messages import message_types  # rclpy-style classes, with the action types

    from robot_rewards.core.primitives import Primitive
    from robot_rewards.robots.kinematics import ArmKinematics
    from robot_rewards.ros.config import ExecutorConfig
    from robot_rewards.ros.executor_core import STATUS_SUCCEEDED, ExecutorCore
    from robot_rewards.ros.params import coerce_config
    from robot_rewards.ros.payloads import PrimitiveCommand

    params = yaml.safe_load((ROOT / "config" / "sim.yaml").read_text())["executor"]["ros__parameters"]
    executor = ExecutorCore(coerce_config(ExecutorConfig, params), ArmKinematics(), message_types())
    core = SimBridgeCore(SimBridgeConfig(task="place_block", seed=8, image_scale=0.25, points_topic=""), TYPES)
    primitives = [[0.41935624, -0.12227626, 0.01430666, 0.60108628, 0.00298831, 0.02767942, 1.30254147],
                  [0.59863759, -0.00131650, 0.01705568, 0.64287222, -0.04873120, 0.03657081, -1.18472654]]
    ends = []
    try:
        for k, params in enumerate(primitives):
            executor.on_joint_state(core.joint_state_message((0, 0)))
            statuses, step = executor.on_primitive(PrimitiveCommand(k, Primitive("pick_place", params)))
            while step is not None:
                goal, outcomes = executor.goal_message(step), []
                if step.kind == "arm":
                    try:
                        checked = core.check_goal(goal.trajectory)
                    except TrajectoryRejected as exc:
                        raise AssertionError(f"primitive {k}, '{step.label}': {exc}") from None
                    core.start_trajectory(checked, outcomes.append, 1.0, core.goal_tolerances(
                        [], [(t.name, t.position) for t in goal.goal_tolerance]))
                else:
                    core.start_gripper(goal.command.position, goal.command.max_effort, outcomes.append)
                outcome = run_until_done(core, outcomes, seconds=10.0)
                result = type("Result", (), {"error_code": outcome.error_code, "error_string": outcome.error_string,
                                             **outcome.gripper})
                statuses, step = executor.on_result(STATUS_SUCCEEDED, result)
            ends.append(statuses[-1].state)
            core.step(1.5)
        assert ends == ["succeeded", "succeeded"]
    finally:
        core.close()


def test_tolerances_per_joint_and_from_the_goal():
    names = ["a", "b", "c"]
    tol = default_tolerances(names, 0.25, [], 0.01, [0.02, 0.0, 0.05])
    np.testing.assert_allclose(tol.path, [0.25] * 3)
    np.testing.assert_allclose(tol.goal, [0.02, 0.0, 0.05])
    changed = tol.override(names, [("b", 0.5)], [("a", 0.0), ("c", -1.0), ("b", 0.1)])
    np.testing.assert_allclose(changed.path, [0.25, 0.5, 0.25])
    np.testing.assert_allclose(changed.goal, [0.02, 0.1, 0.0])  # 0 keeps, < 0 turns the check off
    with pytest.raises(TrajectoryRejected, match="names joint 'z'") as info:
        tol.override(names, [], [("z", 0.1)])
    assert info.value.code == INVALID_JOINTS
    with pytest.raises(ValueError, match="goal_tolerances needs one value per joint"):
        default_tolerances(names, 0.25, [], 0.01, [0.1])


def test_gripper_commands(bridge):
    outcomes = []
    bridge.start_gripper(0.0, 10.0, outcomes.append)  # close on nothing: reaches 0
    with pytest.raises(RuntimeError, match="already executing"):
        bridge.start_gripper(0.04, 10.0, outcomes.append)
    closed = run_until_done(bridge, outcomes)
    assert closed.gripper["reached_goal"] and closed.gripper["position"] < 0.002
    bridge.start_gripper(0.04, 0.0, outcomes.append)  # position 0.04 = 8 cm opening (scale 0.5)
    for _ in range(300):
        bridge.step(0.01)
        if len(outcomes) == 2:
            break
    opened = outcomes[-1]
    assert opened.gripper["position"] == pytest.approx(0.04, abs=0.002)
    with pytest.raises(ValueError, match="finite"):
        bridge.start_gripper(float("nan"), 1.0, outcomes.append)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown sim camera 'side'"):
        SimBridgeCore(SimBridgeConfig(camera="side"), TYPES)
    with pytest.raises(ValueError, match="depth_encoding must be 16UC1 or 32FC1"):
        SimBridgeCore(SimBridgeConfig(depth_encoding="mono8"), TYPES)


def test_another_arm_is_driven_through_its_description():
    arm = get_arm("xarm6")
    with pytest.raises(ValueError, match="joint_names needs 6 names .*arm 'xarm6'"):
        SimBridgeCore(SimBridgeConfig(arm=arm.name, image_scale=0.25), TYPES)
    cfg = SimBridgeConfig(arm=arm.name, image_scale=0.25, joint_names=list(arm.joint_names),
                          finger_joint_names=list(arm.gripper.finger_joints), base_frame=arm.base_frame,
                          ee_frame=arm.hand_link)
    core = SimBridgeCore(cfg, TYPES)
    try:
        state = rc.msg_to_joint_state(core.joint_state_message((1, 0)))
        assert state.names == [*arm.joint_names, *arm.gripper.finger_joints]
        np.testing.assert_allclose(state.position[:6], arm.home_positions, atol=1e-3)
        (hand,) = rc.tf_msg_to_transforms(core.tf_message((1, 0)))
        assert (hand.parent_frame, hand.child_frame) == ("link_base", "gripper_palm")
        q0 = core.joint_positions()
        target = q0 + np.array([0.2, -0.1, 0.1, 0.0, 0.1, 0.0])
        outcomes = []
        core.start_trajectory(core.check_goal(trajectory(arm.joint_names, [q0, target], [0.0, 1.0])), outcomes.append)
        assert run_until_done(core, outcomes).ok
        np.testing.assert_allclose(core.joint_positions(), target, atol=0.01)
        grip = []
        core.start_gripper(0.0, 0.0, grip.append)  # close on nothing, at the gripper's own force
        closed = run_until_done(core, grip, seconds=3.0)
        assert closed.gripper["reached_goal"] and closed.gripper["effort"] == arm.gripper.max_force
    finally:
        core.close()

"""robot_rewards_interfaces without ROS: the .msg/.srv/.action files rosidl builds are registered
with rosbags' typesys, and every payload survives payload -> typed message -> CDR -> payload."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from robot_rewards.core.primitives import Primitive
from robot_rewards.ros import convert_interfaces as ci
from robot_rewards.ros import interfaces, payloads
from robot_rewards.ros.convert_common import ROSBAGS_TYPES, rosbags_typestore
from robot_rewards.ros.payloads import (
    CandidateSet,
    ExecutorStatus,
    PayloadError,
    PolicyStatus,
    PrimitiveCommand,
    ScoreRequest,
    ScoreResponse,
    TaskStatus,
)
from tests.test_ros_cores import random_candidates

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "robot_rewards_interfaces"


def _cdr(msg):
    """msg -> CDR bytes -> msg with the rosbags typestore (what a bag stores)."""
    store = rosbags_typestore()
    return store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _cset() -> CandidateSet:
    cands = random_candidates(5, seed=3)
    return CandidateSet(7, (1_700_000_012, 345), "put the block in the bowl", cands,
                        {"pref": np.arange(15, dtype=float).reshape(3, 5) / 7.0, "clip": np.ones((1, 5))},
                        np.linspace(-1, 1, 5), chosen=2, order=[2, 0, 4, 1, 3], rejected={0: "IK: no solution"},
                        selector="robot_rewards.selection")


def test_the_package_builds_every_definition_file_and_the_copy_in_the_wheel_is_the_same():
    cmake = (PKG / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"((?:msg|srv|action)/\w+\.(?:msg|srv|action))"', cmake))
    on_disk = {str(p.relative_to(PKG)) for kind in ("msg", "srv", "action") for p in (PKG / kind).glob(f"*.{kind}")}
    assert listed == on_disk and len(on_disk) == 11
    assert interfaces.DEFINITIONS.resolve() == PKG.resolve()  # the package ships the same files
    names = set(interfaces.definitions())
    assert {"robot_rewards_interfaces/srv/ScoreCandidates_Request", "robot_rewards_interfaces/srv/ScoreCandidates_Response",
            "robot_rewards_interfaces/action/ExecutePrimitive_Goal", "robot_rewards_interfaces/action/ExecutePrimitive_Result",
            "robot_rewards_interfaces/action/ExecutePrimitive_Feedback", interfaces.CANDIDATE_SET} <= names
    xml = (PKG / "package.xml").read_text()
    assert "<member_of_group>rosidl_interface_packages</member_of_group>" in xml
    assert "<exec_depend>robot_rewards_interfaces</exec_depend>" in (ROOT / "package.xml").read_text()


def test_result_codes_are_the_executor_codes():
    store = rosbags_typestore()
    consts = {name: value for name, _, value in store.fielddefs[interfaces.EXECUTE_PRIMITIVE + "_Result"][0]}
    for name in ("PLANNING_FAILED", "BUSY", "NO_SERVER", "GOAL_REJECTED", "STALE_STATE", "BAD_INPUT",
                 "GRIPPER_FAILED", "CANCELED"):
        assert consts[name] == getattr(payloads, f"EXECUTOR_{name}")
    assert consts["GOAL_TOLERANCE_VIOLATED"] == -5 and consts["SUCCESSFUL"] == 0
    assert set(ci.REJECT_CODES) == {consts[n] for n in ("PLANNING_FAILED", "BUSY", "NO_SERVER", "GOAL_REJECTED",
                                                         "STALE_STATE", "BAD_INPUT")}
    (chosen,) = [v for n, _, v in store.fielddefs[interfaces.CANDIDATE_SET][0] if n == "NONE_CHOSEN"]
    assert chosen == -1


def test_candidate_set_round_trip_through_cdr():
    cset = _cset()
    msg = ci.candidate_set_to_msg(cset, ROSBAGS_TYPES, frame_id="panda_link0")
    assert msg.__msgtype__ == "robot_rewards_interfaces/msg/CandidateSet" and msg.header.frame_id == "panda_link0"
    back = ci.candidate_set_from_msg(_cdr(msg))
    np.testing.assert_array_equal(back.candidates.params, cset.candidates.params)  # float64 exact
    np.testing.assert_array_equal(back.candidates.seeds, cset.candidates.seeds)
    np.testing.assert_array_equal(back.scores["pref"], cset.scores["pref"])
    assert back.scores["pref"].shape == (3, 5) and back.scores["clip"].shape == (1, 5)
    np.testing.assert_array_equal(back.utilities, cset.utilities)
    assert (back.decision_id, back.stamp, back.goal, back.chosen, back.order, back.rejected, back.selector) == (
        7, (1_700_000_012, 345), cset.goal, 2, [2, 0, 4, 1, 3], {0: "IK: no solution"}, cset.selector)
    none = CandidateSet(1, (5, 0), "g", random_candidates(2, seed=1))
    back = ci.candidate_set_from_msg(_cdr(ci.candidate_set_to_msg(none, ROSBAGS_TYPES)))
    assert back.chosen is None and back.utilities is None and back.scores == {}


@pytest.mark.parametrize("field,value,match", [
    ("chosen", 5, r"chosen: 5 is not a candidate index in \[0, 5\)"),
    ("chosen", -3, "neither a candidate index nor NONE_CHOSEN"),
    ("primitive", "fly", "unknown primitive 'fly'"),
    ("params", np.zeros(29), "29 values do not split into rows of 7"),
    ("params", np.full(35, np.nan), "finite"),
    ("order", np.array([1, 1], np.uint32), "more than once"),
    ("utilities", np.ones(3), "expected 5 values"),
    ("seeds", np.zeros(4, np.int64), "5 candidates need 5 seeds"),
])
def test_a_bad_candidate_set_message_is_one_payload_error(field, value, match):
    msg = ci.candidate_set_to_msg(_cset(), ROSBAGS_TYPES)
    setattr(msg, field, value)
    with pytest.raises(PayloadError, match=match):
        ci.candidate_set_from_msg(msg)
    msg = ci.candidate_set_to_msg(_cset(), ROSBAGS_TYPES)
    msg.scores[0].members = 4  # 15 scores are not 4 members
    with pytest.raises(PayloadError, match=r"15 scores do not split into 4 members"):
        ci.candidate_set_from_msg(msg)
    with pytest.raises(PayloadError, match="not a robot_rewards_interfaces/msg/CandidateSet"):
        ci.candidate_set_from_msg(ROSBAGS_TYPES.new("std_msgs/msg/String", data="{}"))


def test_score_service_round_trip_and_refusals():
    cands = random_candidates(4, seed=2)
    req = ScoreRequest("decision-3", (17, 9), "goal", cands, ["pref"])
    back = ci.score_request_from_msg(_cdr(ci.score_request_to_msg(req, ROSBAGS_TYPES)))
    np.testing.assert_array_equal(back.candidates.params, cands.params)
    assert (back.request_id, back.stamp, back.goal, back.models) == ("decision-3", (17, 9), "goal", ["pref"])
    resp = ScoreResponse("decision-3", {"pref": np.arange(8.0).reshape(2, 4)}, {"clip": "CUDA out of memory"})
    back = ci.score_response_from_msg(_cdr(ci.score_response_to_msg(resp, ROSBAGS_TYPES)))
    np.testing.assert_array_equal(back.scores["pref"], resp.scores["pref"])
    assert back.errors == {"clip": "CUDA out of memory"}
    bad = ci.score_request_to_msg(req, ROSBAGS_TYPES)
    bad.params = np.zeros(9)
    with pytest.raises(PayloadError, match="9 values do not split into rows of 7"):
        ci.score_request_from_msg(bad)
    bad = ci.score_response_to_msg(resp, ROSBAGS_TYPES)
    bad.scores[0].scores = np.array([np.inf] * 8)
    with pytest.raises(PayloadError, match="finite"):
        ci.score_response_from_msg(bad)


def test_execute_primitive_goal_result_feedback_and_status():
    cmd = PrimitiveCommand(4, Primitive("pick_place", np.array([0.5, 0.0, 0.02, 0.6, 0.1, 0.05, 0.3])), "console")
    back = ci.primitive_goal_from_msg(_cdr(ci.primitive_goal_to_msg(cmd, ROSBAGS_TYPES)))
    np.testing.assert_array_equal(back.primitive.params, cmd.primitive.params)
    assert (back.decision_id, back.primitive.name, back.source) == (4, "pick_place", "console")
    bad = ci.primitive_goal_to_msg(cmd, ROSBAGS_TYPES)
    bad.primitive.params = np.zeros(3)
    with pytest.raises(PayloadError, match="'pick_place' takes 7 parameters, got 3"):
        ci.primitive_goal_from_msg(bad)
    failed = ExecutorStatus(4, "failed", -5, "GOAL_TOLERANCE_VIOLATED", 3, 7, (20, 5))
    result = _cdr(ci.execute_result_to_msg(failed, ROSBAGS_TYPES))
    status = ci.status_of_result(4, result, (20, 5))
    assert (status.state, status.error_code, status.error_string, status.segment, status.segments) == (
        "failed", -5, "GOAL_TOLERANCE_VIOLATED", 3, 7)
    result.state = ""  # a result without its state: from the code (nothing moved for -101)
    result.error_code = -101
    assert ci.status_of_result(4, result).state == "rejected"
    result.state = "executing"
    with pytest.raises(PayloadError, match="not a final state"):
        ci.status_of_result(4, result)
    feedback = _cdr(ci.execute_feedback_to_msg(ExecutorStatus(4, "executing", segment=2, segments=7), "grasp",
                                               ROSBAGS_TYPES))
    assert (feedback.segment, feedback.segments, feedback.label) == (2, 7, "grasp")
    back = ci.executor_status_from_msg(_cdr(ci.executor_status_to_msg(failed, ROSBAGS_TYPES)))
    assert (back.decision_id, back.state, back.error_code, back.stamp) == (4, "failed", -5, (20, 5))


def test_task_and_policy_status_round_trip():
    task = TaskStatus("align_rope", 3, True, 0.0125, 6, (30, 1))
    back = ci.task_status_from_msg(_cdr(ci.task_status_to_msg(task, ROSBAGS_TYPES)))
    assert (back.task, back.episode, back.success, back.quality, back.max_steps, back.stamp) == (
        "align_rope", 3, True, 0.0125, 6, (30, 1))
    status = PolicyStatus("idle", "no_cloud", "no cloud on /perception/points in 27 s since start; 0 publisher(s)",
                          2, 6, {"cloud": {"topic": "/perception/points", "age": None, "publishers": 0},
                                 "joint_states": {"topic": "/joint_states", "age": 0.25, "publishers": None}},
                          {"topic": "/reward_server/score", "subscribers": 1, "available": True, "timeouts": 1,
                           "on_timeout": "idle", "scored": True},
                          {"task": "align_rope", "episode": 3, "success": False, "quality": 0.2,
                           "source": "/task/status"}, (31, 0))
    back = ci.policy_status_from_msg(_cdr(ci.policy_status_to_msg(status, ROSBAGS_TYPES)))
    assert (back.state, back.code, back.reason, back.decisions, back.max_decisions) == (
        "idle", "no_cloud", status.reason, 2, 6)
    assert back.inputs == status.inputs and back.scorer == status.scorer and back.task == status.task
    msg = ci.policy_status_to_msg(status, ROSBAGS_TYPES)
    msg.state = "sleeping"
    with pytest.raises(PayloadError, match="unknown state 'sleeping'"):
        ci.policy_status_from_msg(msg)


def test_rclpy_style_classes_of_the_double_take_the_same_messages():
    from tests.ros_double import messages

    types = messages.message_types()
    msg = ci.candidate_set_to_msg(_cset(), types)  # type-checked setters: array.array, ints, bools
    assert type(msg).__name__ == "CandidateSet" and ci.candidate_set_from_msg(msg).chosen == 2
    goal = ci.primitive_goal_to_msg(PrimitiveCommand(1, Primitive("pick_place", np.zeros(7))), types)
    assert ci.primitive_goal_from_msg(goal).decision_id == 1
    status = PolicyStatus("done", "task_succeeded", "ok", stamp=(1, 2))
    assert ci.policy_status_from_msg(ci.policy_status_to_msg(status, types)).code == "task_succeeded"


@pytest.mark.ros
def test_rosidl_generated_classes_and_rosbags_read_each_others_cdr():
    """Where robot_rewards_interfaces is built and sourced (colcon): rclpy's serialisation of the
    generated classes and rosbags' of the registered definitions are the same bytes."""
    pytest.importorskip("rclpy")  # first: the source folder robot_rewards_interfaces/ imports as a namespace package
    pytest.importorskip("robot_rewards_interfaces.msg")
    from rclpy.serialization import deserialize_message, serialize_message

    from robot_rewards.ros.convert_common import rclpy_types

    types, store = rclpy_types(), rosbags_typestore()
    cases = [
        (ci.candidate_set_to_msg, ci.candidate_set_from_msg, _cset()),
        (ci.score_request_to_msg, ci.score_request_from_msg, ScoreRequest("r", (3, 4), "g", random_candidates(3, 1))),
        (ci.score_response_to_msg, ci.score_response_from_msg, ScoreResponse("r", {"m": np.ones((2, 3))}, {"x": "y"})),
        (ci.primitive_goal_to_msg, ci.primitive_goal_from_msg,
         PrimitiveCommand(2, Primitive("pick_place", np.arange(7) / 10.0), "policy")),
        (ci.executor_status_to_msg, ci.executor_status_from_msg, ExecutorStatus(2, "failed", -107, "canceled", 1, 4)),
        (ci.task_status_to_msg, ci.task_status_from_msg, TaskStatus("place_block", 1, True, 0.01, 4, (5, 6))),
        (ci.policy_status_to_msg, ci.policy_status_from_msg,
         PolicyStatus("idle", "no_goal", "no goal yet", 1, 2, {"cloud": {"topic": "/c", "age": 0.5, "publishers": 1}},
                      {"topic": "/s", "subscribers": 0, "available": False, "timeouts": 0, "on_timeout": "idle",
                       "scored": True}, None, (7, 8))),
    ]
    for to_msg, from_msg, payload in cases:
        generated = to_msg(payload, types)
        name = type(generated).__module__.split(".")[0] + "/" + type(generated).__module__.split(".")[1] + "/" + \
            type(generated).__name__
        data = serialize_message(generated)
        from_rosbags = store.deserialize_cdr(data, name)  # rosidl's bytes read with the registered definition
        assert bytes(store.serialize_cdr(from_rosbags, name)) == bytes(data), name
        back = from_msg(deserialize_message(bytes(store.serialize_cdr(to_msg(payload, ROSBAGS_TYPES), name)),
                                            type(generated)))
        assert back.__class__ is payload.__class__
        assert from_msg(from_rosbags).__dict__.keys() == payload.__dict__.keys()

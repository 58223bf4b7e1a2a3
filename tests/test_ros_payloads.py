"""Plain building blocks of the ROS layer: JSON payloads, TF buffer, image pairing, parameters, plugins."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from robot_rewards.core import transforms
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Primitive
from robot_rewards.ros.config import NODE_CONFIGS, PolicyNodeConfig, SimBridgeConfig
from robot_rewards.ros.convert import ROSBAGS_TYPES as TYPES
from robot_rewards.ros.convert import StampedTransform, transforms_to_tf_msg
from robot_rewards.ros.params import ParameterError, coerce_config, descriptions
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
from robot_rewards.ros.plugins import PluginError, build, build_state_reward, load_factory
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.sync import PairSync
from robot_rewards.ros.tf_tree import StaleTransformError, TfTree, TransformError

SEC = 1_000_000_000


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def candidates(rng, n=5) -> Candidates:
    params = np.column_stack([rng.uniform(0.3, 0.7, (n, 1)), rng.uniform(-0.3, 0.3, (n, 1)),
                              np.full((n, 1), 0.02), rng.uniform(0.3, 0.7, (n, 1)),
                              rng.uniform(-0.3, 0.3, (n, 1)), np.full((n, 1), 0.02), rng.uniform(-3, 3, (n, 1))])
    return Candidates("pick_place", params, np.arange(n) + 100, np.arange(n) % 2 == 0)


# --- payloads -----------------------------------------------------------------------------------


def test_candidate_set_round_trip_is_exact(rng):
    c = candidates(rng)
    members = rng.normal(size=(4, 5))
    cset = CandidateSet(3, (1_700_000_000, 5), "put the red block in the bowl", c, {"pref": members},
                        rng.normal(size=5), 2, [2, 0, 1, 3, 4], {0: "unreachable: no IK"}, "robot_rewards.selection")
    back = CandidateSet.from_json(cset.to_json())
    np.testing.assert_array_equal(back.candidates.params, c.params)  # floats survive JSON exactly
    np.testing.assert_array_equal(back.candidates.seeds, c.seeds)
    np.testing.assert_array_equal(back.candidates.clipped, c.clipped)
    np.testing.assert_array_equal(back.scores["pref"], members)
    np.testing.assert_array_equal(back.utilities, cset.utilities)
    assert (back.decision_id, back.stamp, back.goal, back.chosen) == (3, (1_700_000_000, 5), cset.goal, 2)
    assert back.order == [2, 0, 1, 3, 4] and back.rejected == {0: "unreachable: no IK"}
    np.testing.assert_array_equal(back.chosen_primitive().params, c.params[2])
    doc = json.loads(cset.to_json())
    assert doc["schema"] == "robot_rewards/candidate_set" and doc["version"] == 1
    assert doc["param_names"] == ["pick_x", "pick_y", "pick_z", "place_x", "place_y", "place_z", "yaw"]


def test_other_payloads_round_trip(rng):
    c = candidates(rng, 3)
    req = ScoreRequest.from_json(ScoreRequest("r1", (10, 20), "goal", c, ["a"]).to_json())
    np.testing.assert_array_equal(req.candidates.params, c.params)
    assert (req.request_id, req.stamp, req.models) == ("r1", (10, 20), ["a"])
    resp = ScoreResponse.from_json(ScoreResponse("r1", {"a": np.ones((2, 3))}, {"b": "boom"}).to_json())
    assert resp.scores["a"].shape == (2, 3) and resp.errors == {"b": "boom"}
    cmd = PrimitiveCommand.from_json(PrimitiveCommand(4, Primitive.push((0.5, 0, 0.02), (0.6, 0, 0.02))).to_json())
    assert cmd.decision_id == 4 and cmd.primitive.name == "push"
    status = ExecutorStatus.from_json(ExecutorStatus(4, "failed", -4, "blocked", 2, 9, (5, 6)).to_json())
    assert status.terminal and (status.error_code, status.segment, status.stamp) == (-4, 2, (5, 6))


def test_task_and_policy_status_round_trip_and_refuse_bad_fields():
    task = TaskStatus.from_json(TaskStatus("place_block", 3, True, 0.25, 3, (7, 8)).to_json())
    assert (task.task, task.episode, task.success, task.quality, task.max_steps, task.stamp) == \
        ("place_block", 3, True, 0.25, 3, (7, 8))
    good = json.loads(TaskStatus("place_block", 3, True, 0.25).to_json())
    for change, match in [({"success": 1}, "success: expected bool"), ({"quality": "1"}, "quality: expected a number"),
                          ({"quality": 10 ** 400}, "too large"), ({"episode": True}, "episode: expected an integer"),
                          ({"max_steps": -1}, "max_steps: -1 is outside")]:
        with pytest.raises(PayloadError, match=match):
            TaskStatus.from_json(json.dumps({**good, **change}))
    status = PolicyStatus("idle", "no_cloud", "no cloud on /x", 2, 3, {"cloud": {"topic": "/x", "age": None}},
                          {"topic": "/r", "subscribers": 0}, None, (1, 2))
    back = PolicyStatus.from_json(status.to_json())
    assert (back.state, back.code, back.reason, back.decisions, back.max_decisions, back.inputs, back.task) == \
        ("idle", "no_cloud", "no cloud on /x", 2, 3, {"cloud": {"topic": "/x", "age": None}}, None)
    good = json.loads(status.to_json())
    for change, match in [({"state": "dancing"}, "unknown state"), ({"inputs": {"cloud": 1}}, "an object per input"),
                          ({"task": [1]}, "task: expected an object")]:
        with pytest.raises(PayloadError, match=match):
            PolicyStatus.from_json(json.dumps({**good, **change}))


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ('{"schema": "robot_rewards/primitive", "version": 1}', "expected schema 'robot_rewards/candidate_set'"),
    ('{"schema": "robot_rewards/candidate_set", "version": 9}', "version 9 is not supported"),
    ('{"schema": "robot_rewards/candidate_set", "version": 1, "primitive": "fly"}', "unknown primitive 'fly'"),
])
def test_candidate_set_bad_input(text, match):
    with pytest.raises(PayloadError, match=match):
        CandidateSet.from_json(text)


def test_payload_field_errors(rng):
    good = json.loads(CandidateSet(0, (0, 0), "g", candidates(rng), chosen=1).to_json())
    for change, match in [({"params": [[1.0, 2.0]]}, r"params: expected \(N >= 1, 7\)"),
                          ({"chosen": 9}, r"chosen: 9 is not a candidate index in \[0, 5\)"),
                          ({"stamp": [1]}, r"stamp: expected \[sec, nanosec\]"),
                          ({"scores": {"m": [[1.0, 2.0]]}}, r"scores\['m'\]: expected \(K, 5\)")]:
        with pytest.raises(PayloadError, match=match):
            CandidateSet.from_json(json.dumps({**good, **change}))
    with pytest.raises(PayloadError, match="non-finite"):
        CandidateSet(0, (0, 0), "g", candidates(rng), utilities=np.full(5, np.nan)).to_json()
    with pytest.raises(PayloadError, match="'pick_place' takes 7 parameters, got 3"):
        PrimitiveCommand.from_json('{"schema":"robot_rewards/primitive","version":1,"decision_id":1,'
                                   '"name":"pick_place","params":[1,2,3]}')
    with pytest.raises(PayloadError, match="unknown state 'dancing'"):
        ExecutorStatus.from_json('{"schema":"robot_rewards/executor_status","version":1,"decision_id":1,'
                                 '"state":"dancing"}')


# --- hostile payloads: every malformed message is one PayloadError naming the field -------------

DEEP = '{"a":' * 5000 + "1" + "}" * 5000  # deeper than json's recursion limit
NESTED = "[" * 40 + "]" * 40  # within it, but deeper than any payload is
T0 = 1_700_000_000
BIG = 10 ** 400  # a valid JSON integer that no float64 or int64 holds


def _good_docs(rng) -> dict:
    """One valid document per payload type (parser, JSON object)."""
    c = candidates(rng)
    return {
        "candidate_set": (CandidateSet.from_json, json.loads(CandidateSet(
            3, (T0, 5), "g", c, {"pref": rng.normal(size=(2, 5))}, rng.normal(size=5), 1, [1, 0, 2, 3, 4],
            {0: "unreachable"}).to_json())),
        "score_request": (ScoreRequest.from_json, json.loads(ScoreRequest("r", (T0, 0), "g", c, ["a"]).to_json())),
        "score_response": (ScoreResponse.from_json, json.loads(ScoreResponse(
            "r", {"a": np.ones((2, 5))}, {"b": "boom"}).to_json())),
        "primitive": (PrimitiveCommand.from_json, json.loads(PrimitiveCommand(
            4, Primitive("pick_place", c.params[0])).to_json())),
        "executor_status": (ExecutorStatus.from_json, json.loads(ExecutorStatus(
            4, "failed", -4, "blocked", 2, 9, (5, 6)).to_json())),
    }



@pytest.mark.parametrize("kind, change, match", [
    # numbers that overflow, or are not finite, where floats are expected
    ("primitive", {"params": [BIG] + [0.0] * 6}, r"primitive.params: a number is too large for a float64"),
    ("primitive", {"params": [1e999] + [0.0] * 6}, r"primitive.params: expected a finite \(D,\) array"),
    ("candidate_set", {"params": [[BIG] * 7] * 5}, r"candidate_set.params: a number is too large"),
    ("candidate_set", {"utilities": [BIG] * 5}, r"candidate_set.utilities: a number is too large"),
    ("candidate_set", {"scores": {"pref": [[BIG] * 5]}}, r"candidate_set.scores\['pref'\]: a number is too large"),
    ("score_request", {"params": [[BIG] * 7]}, r"score_request.params: a number is too large"),
    ("score_response", {"scores": {"a": [[BIG, 1.0]]}}, r"score_response.scores\['a'\]: a number is too large"),
    ("score_response", {"scores": {"a": [[1e999]]}}, r"score_response.scores\['a'\]: expected a finite"),
    # integers too large for the int64 (int32 stamp seconds) they end up in
    ("primitive", {"decision_id": BIG}, r"primitive.decision_id: \d+\.\.\. is outside"),
    ("candidate_set", {"decision_id": 1 << 63}, r"candidate_set.decision_id: 9223372036854775808 is outside"),
    ("candidate_set", {"seeds": [BIG] * 5}, r"candidate_set.seeds: expected int64 integers"),
    ("executor_status", {"error_code": BIG}, r"executor_status.error_code: \d+\.\.\. is outside"),
    ("executor_status", {"stamp": [BIG, 0]}, r"executor_status.stamp: expected \[sec, nanosec\]"),
    ("score_request", {"stamp": [1 << 31, 0]}, r"score_request.stamp: expected \[sec, nanosec\]"),
    # wrong types
    ("primitive", {"name": ["pick_place"]}, r"primitive.name: unknown primitive \['pick_place'\]"),
    ("primitive", {"name": {"a": 1}}, r"primitive.name: unknown primitive \{'a': 1\}"),
    ("candidate_set", {"primitive": ["pick_place"]}, r"candidate_set.primitive: unknown primitive"),
    ("score_request", {"primitive": [["x"]]}, r"score_request.primitive: unknown primitive"),
    ("primitive", {"params": ["0.5"] + [0.0] * 6}, r"primitive.params: expected a \(D,\) array of numbers, found '0.5'"),
    ("primitive", {"params": [None] * 7}, r"primitive.params: expected a \(D,\) array of numbers, found None"),
    ("candidate_set", {"params": {"a": 1}}, r"candidate_set.params: expected list, got dict"),
    ("candidate_set", {"order": {"0": 1}}, r"candidate_set.order: expected a list of candidate indices, got dict"),
    ("candidate_set", {"rejected": {"0": ["x"]}}, r"candidate_set.rejected\['0'\]: expected a reason string"),
    ("candidate_set", {"clipped": [1, 0, 0, 0, 0]}, r"candidate_set.clipped: expected true/false flags"),
    ("score_request", {"models": [["a"]]}, r"score_request.models: expected a list of strings"),
    ("score_request", {"models": "a"}, r"score_request.models: expected a list of strings"),
    ("score_response", {"errors": {"b": {"deep": 1}}}, r"score_response.errors\['b'\]: expected a message string"),
    ("executor_status", {"state": ["failed"]}, r"executor_status.state: expected str, got list"),
    # bool where an int is expected
    ("primitive", {"version": True}, r"primitive: version True is not supported"),
    ("candidate_set", {"version": True}, r"candidate_set: version True is not supported"),
    ("candidate_set", {"chosen": False}, r"candidate_set.chosen: False is not a candidate index in \[0, 5\)"),
    ("candidate_set", {"decision_id": True}, r"candidate_set.decision_id: expected an integer, got bool"),
    ("candidate_set", {"order": [True, 0, 2, 3, 4]}, r"candidate_set.order: True is not a candidate index"),
    ("candidate_set", {"seeds": [True] * 5}, r"candidate_set.seeds: expected int64 integers"),
    ("primitive", {"params": [True] * 7}, r"primitive.params: expected a \(D,\) array of numbers, found True"),
    ("executor_status", {"segment": True}, r"executor_status.segment: expected an integer, got bool"),
    ("executor_status", {"stamp": [True, 0]}, r"executor_status.stamp: expected \[sec, nanosec\]"),
    # out-of-range and repeated indices
    ("candidate_set", {"chosen": 5}, r"candidate_set.chosen: 5 is not a candidate index in \[0, 5\)"),
    ("candidate_set", {"chosen": -1}, r"candidate_set.chosen: -1 is not a candidate index in \[0, 5\)"),
    ("candidate_set", {"chosen": BIG}, r"candidate_set.chosen: \d+\.\.\. is not a candidate index"),
    ("candidate_set", {"order": [0, 1, 2, 3, 5]}, r"candidate_set.order: 5 is not a candidate index in \[0, 5\)"),
    ("candidate_set", {"order": [-1]}, r"candidate_set.order: -1 is not a candidate index in \[0, 5\)"),
    ("candidate_set", {"order": [1, 1, 2]}, r"candidate_set.order: lists a candidate more than once"),
    ("candidate_set", {"rejected": {"7": "x"}}, r"candidate_set.rejected: key '7' is not a candidate index"),
    ("candidate_set", {"rejected": {"-1": "x"}}, r"candidate_set.rejected: key '-1' is not a candidate index"),
    ("candidate_set", {"rejected": {"9" * 500: "x"}}, r"candidate_set.rejected: key '9+\.\.\. is not a candidate"),
])
def test_hostile_payload_fields_raise_payload_error(rng, kind, change, match):
    parse, good = _good_docs(rng)[kind]
    parse(json.dumps(good))  # the unchanged document parses
    with pytest.raises(PayloadError, match=match) as info:
        parse(json.dumps({**good, **change}))
    assert "\n" not in str(info.value) and len(str(info.value)) < 300  # one short line


@pytest.mark.parametrize("kind", ["candidate_set", "score_request", "score_response", "primitive",
                                  "executor_status"])
@pytest.mark.parametrize("text, match", [
    (DEEP, "nested deeper than 16 levels"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 16 levels"),
    (NESTED, "nested deeper than 16 levels"),
    ("x" * ((1 << 20) + 1), r"1048577 characters of JSON, more than the limit of 1048576"),
])
def test_deep_or_huge_payloads_raise_payload_error(rng, kind, text, match):
    parse, _ = _good_docs(rng)[kind]
    with pytest.raises(PayloadError, match=match):
        parse(text)


def test_deep_values_inside_fields_and_non_text_messages(rng):
    parse, good = _good_docs(rng)["candidate_set"]
    deep = [[[[[[[[[[[[[[[[[[1.0]]]]]]]]]]]]]]]]]]
    with pytest.raises(PayloadError, match="candidate_set: nested deeper than 16 levels"):
        parse(json.dumps({**good, "goal": deep}))
    with pytest.raises(PayloadError, match=r"not valid JSON \(expected text, got NoneType\)"):
        parse(None)
    with pytest.raises(PayloadError, match=r"not valid JSON \(expected text, got list\)"):
        parse(type("String", (), {"data": ["x"]})())
    parse(json.dumps(good).encode())  # bytes are text too


# --- TF buffer ------------------------------------------------------------------------------------


def _tf(T, parent, child, sec):
    return transforms_to_tf_msg([StampedTransform.from_matrix(T, parent, child, (sec, 0))], TYPES)


def test_tf_chain_static_and_dynamic(rng):
    tree = TfTree()
    base_T_hand = transforms.make_transform(transforms.matrix_to_quat(np.eye(3)), [0.3, 0.0, 0.5])
    hand_T_cam = transforms.make_transform(transforms.matrix_to_quat(transforms.look_at([0, 0, 0], [1, 0, 0])[:3, :3]),
                                           [0.05, 0, 0.02])
    tree.add_message(_tf(hand_T_cam, "panda_hand", "cam", 0), static=True)
    for sec in (10, 11, 12):
        T = base_T_hand.copy()
        T[0, 3] += 0.01 * sec
        tree.add_message(_tf(T, "panda_link0", "panda_hand", sec))
    got = tree.lookup("panda_link0", "cam", 11 * SEC + 10_000_000, tolerance=0.1)  # nearest: sec 11
    expected = base_T_hand.copy()
    expected[0, 3] += 0.11
    np.testing.assert_allclose(got, expected @ hand_T_cam, atol=1e-12)
    # The inverse direction composes inverted edges.
    np.testing.assert_allclose(tree.lookup("cam", "panda_link0", 11 * SEC, 0.1) @ got, np.eye(4), atol=1e-12)
    with pytest.raises(StaleTransformError, match=r"'panda_link0'->'panda_hand' is stale: .* 3.000 s"):
        tree.lookup("panda_link0", "cam", 15 * SEC, tolerance=0.1)
    with pytest.raises(TransformError, match="no transform chain from 'panda_link0' to 'world'"):
        tree.lookup("panda_link0", "world", 11 * SEC)


def test_tf_out_of_order_samples_are_sorted():
    tree = TfTree()
    for sec in (3, 1, 2):
        T = np.eye(4)
        T[2, 3] = sec
        tree.add(StampedTransform.from_matrix(T, "a", "b", (sec, 0)))
    assert tree.lookup("a", "b", 2 * SEC, 0.01)[2, 3] == 2
    assert tree.lookup("a", "b", None)[2, 3] == 3  # None: the latest


# --- pairing ---------------------------------------------------------------------------------------


def test_pair_sync_pairs_nearest_within_slop():
    sync = PairSync(slop=0.01)
    assert sync.push("a", 100 * 10**6, "c0") is None
    assert sync.push("b", 300 * 10**6, "d_far") is None  # 200 ms away: no pair
    assert sync.push("a", 305 * 10**6, "c1") == ("c1", "d_far", 305 * 10**6, 300 * 10**6)
    # Used messages are gone: a depth near c0 does not pair with it any more... c0 was dropped too.
    assert sync.push("b", 101 * 10**6, "d_old") is None


# --- parameters ------------------------------------------------------------------------------------


def test_coerce_config_types_and_errors():
    cfg = coerce_config(PolicyNodeConfig, {"n_candidates": "16", "lam": 2, "auto_decide": "false",
                                           "weights": ["pref=1.0"], "goal": 3})
    assert (cfg.n_candidates, cfg.lam, cfg.auto_decide, cfg.goal) == (16, 2.0, False, "3")
    assert isinstance(cfg.lam, float)
    with pytest.raises(ParameterError, match="parameter 'n_candidates': expected int, got 'many'"):
        coerce_config(PolicyNodeConfig, {"n_candidates": "many"})
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['n_candidate'\]"):
        coerce_config(PolicyNodeConfig, {"n_candidate": 8})
    with pytest.raises(ParameterError, match=r"parameter 'joint_names\[1\]': expected str"):
        coerce_config(SimBridgeConfig, {"joint_names": ["a", None]})


def test_configs_are_light_and_agree_with_the_kinematics():
    import subprocess
    import sys

    from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
    from robot_rewards.ros import config

    assert config.JOINT_NAMES == get_arm(DEFAULT_ARM).joint_names
    code = ("import sys, robot_rewards.ros.config, robot_rewards.ros.bag_config; "
            "assert not {'pybullet', 'torch', 'rclpy', 'rosbags'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_parameter_has_a_description():
    for name, cls in NODE_CONFIGS.items():
        missing = [k for k, text in descriptions(cls).items() if len(text) < 8]
        assert not missing, f"{name}: parameters without a description: {missing}"


# --- plugins and reporting ------------------------------------------------------------------------


def test_plugins_load_and_explain_failures():
    assert load_factory("robot_rewards.ros.payloads:stamp_of_ns")(3 * SEC + 4) == (3, 4)
    assert build("fractions:Fraction", device="cpu") == 0  # keyword arguments it does not take are dropped
    assert build_state_reward("") is None
    with pytest.raises(PluginError, match="not a 'package.module:factory'"):
        load_factory("nocolon")
    with pytest.raises(PluginError, match="cannot import 'no_such_module_xyz'"):
        load_factory("no_such_module_xyz:f")
    with pytest.raises(PluginError, match="has no 'nope'"):
        load_factory("robot_rewards.ros.payloads:nope")
    with pytest.raises(PluginError, match="which has no score_states"):
        build_state_reward("collections:OrderedDict")
    assert build("fractions:Fraction?numerator=3/4", device="cpu") == Fraction(3, 4)  # options come as strings
    with pytest.raises(PluginError, match="option 'oops' of"):
        build("fractions:Fraction?oops")
    # Options of the CLIP reward are checked against its config before anything loads.
    with pytest.raises(PluginError, match=r"unknown parameter\(s\) \['modle'\]"):
        build_state_reward("robot_rewards.ros.plugins:clip_reward?modle=ViT-B-32")


class _Log:
    def __init__(self):
        self.lines = []

    def error(self, text):
        self.lines.append(text)

    warning = info = error


def test_reporter_throttles_per_key_and_counts_all():
    log, now = _Log(), [0.0]
    report = Reporter(log, period=5.0, clock=lambda: now[0])
    for t in (0.0, 1.0, 2.0, 6.0):
        now[0] = t
        report.error("enc", "unknown encoding")
    report.error("tf", "stale")
    assert report.counts == {"enc": 4, "tf": 1}
    assert log.lines == ["unknown encoding", "unknown encoding (seen 4 times)", "stale"]

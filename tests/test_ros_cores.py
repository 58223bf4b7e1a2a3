"""The node logic ("core" classes) without ROS: behaviour on good input and on every kind of bad
input the issue names (unknown encodings, clouds without xyz, image/camera_info size mismatch,
stale TF, controllers that reject or abort) -- a logged error, the core keeps working, nothing
unsafe is sent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ros_double.scenes import INTR, PLATFORM_Z, synthetic_frame, tiny_scorer

from robot_rewards.core import transforms
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Primitive
from robot_rewards.rewards.host import RewardHost
from robot_rewards.rewards.synthetic import GOAL, planted_observation, random_candidates
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.ros import convert as rc
from robot_rewards.ros.config import (
    CalibrationCaptureConfig,
    ExecutorConfig,
    PerceptionNodeConfig,
    PolicyNodeConfig,
    RewardServerConfig,
)
from robot_rewards.ros.console_core import ConsoleCore
from robot_rewards.ros.executor_core import STATUS_ABORTED, STATUS_SUCCEEDED, ExecutorCore
from robot_rewards.ros.payloads import (
    EXECUTOR_BAD_INPUT,
    EXECUTOR_BUSY,
    EXECUTOR_GOAL_REJECTED,
    EXECUTOR_PLANNING_FAILED,
    EXECUTOR_STALE_STATE,
    CandidateSet,
    ExecutorStatus,
    PolicyStatus,
    PrimitiveCommand,
    ScoreRequest,
    ScoreResponse,
    TaskStatus,
)
from robot_rewards.ros.perception_core import PerceptionCore
from robot_rewards.ros.policy_core import DONE, EXECUTING, IDLE, SCORING, PolicyCore, parse_weights, policy_decider
from robot_rewards.ros.reward_server_core import RewardServerCore
from robot_rewards.ros.trajectory_goal import PATH_TOLERANCE_VIOLATED
from robot_rewards.selection.decider import decision_seed
from robot_rewards.selection.feasibility import FeasibilityChecker

HOME, JOINT_NAMES = get_arm(DEFAULT_ARM).home_positions, get_arm(DEFAULT_ARM).joint_names

TYPES = rc.ROSBAGS_TYPES
SEC = 1_000_000_000
T0 = 1_700_000_000


class Log:
    """Collects what a core logs (rclpy-logger-like)."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def _add(self, level, text):
        self.lines.append((level, text))

    def error(self, text):
        self._add("error", text)

    def warning(self, text):
        self._add("warning", text)

    def info(self, text):
        self._add("info", text)

    def errors(self) -> str:
        return "\n".join(t for lv, t in self.lines if lv == "error")


@pytest.fixture(scope="module")
def kin():
    k = ArmKinematics()
    yield k
    k.close()


# --- perception ---------------------------------------------------------------------------------

def _with(msg, **changes):
    names = [n for n, _ in rc.rosbags_typestore().fielddefs[msg.__msgtype__][1]]
    return TYPES.new(msg.__msgtype__, **{**{n: getattr(msg, n) for n in names}, **changes})


def perception_core(log, **cfg):
    return PerceptionCore(PerceptionNodeConfig(max_rate=0.0, n_points=256, device="numpy", **cfg), TYPES, log)


def feed(core, color, depth, info):
    core.on_camera_info(info)
    assert core.on_color(color) is None  # waits for its depth partner
    return core.on_depth(depth)


def test_perception_core_good_frame_in_base_frame():
    log = Log()
    core = perception_core(log)
    color, depth, info, base_T_cam = synthetic_frame(T0 * SEC)
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(base_T_cam, "panda_link0", "cam")], TYPES),
               static=True)
    out = feed(core, color, depth, info)
    assert out is not None, log.lines
    xyz, rgb = rc.msg_to_points(out.msg, with_rgb=True)
    assert xyz.shape == (256, 3) and out.msg.header.frame_id == "panda_link0"
    assert rc.stamp_to_ns(out.msg.header.stamp) == T0 * SEC
    np.testing.assert_allclose(xyz[:, 2], PLATFORM_Z, atol=2e-3)  # 16UC1 keeps millimetres
    assert np.all(rgb == [200, 0, 0])
    assert not log.errors()


def test_perception_core_bad_inputs_are_logged_and_later_frames_still_work():
    log = Log()
    core = perception_core(log)
    stamp = T0 * SEC
    color, depth, info, base_T_cam = synthetic_frame(stamp)
    # 1. no TF at all
    assert feed(core, color, depth, info) is None
    assert "no transform chain from 'panda_link0' to 'cam'" in log.errors()
    # 2. stale TF: a dynamic transform 2 s older than the images
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(base_T_cam, "panda_link0", "cam",
                                                                        divmod(stamp - 2 * SEC, SEC))], TYPES))
    assert feed(core, color, depth, info) is None
    assert "is stale" in log.errors()
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(base_T_cam, "panda_link0", "cam")], TYPES),
               static=True)
    # 3. unknown encoding
    assert feed(core, _with(color, encoding="yuv422"), depth, info) is None
    assert "unknown encoding 'yuv422'" in log.errors()
    # 4. camera_info of another size than the images
    small = rc.camera_info_to_msg(INTR.scaled(0.5), info.header, TYPES)
    assert feed(core, color, depth, small) is None
    assert "image size 64x48 (width x height) does not match camera_info 32x24" in log.errors()
    # 5. an uncalibrated camera_info is refused on arrival (the previous one stays)
    core.on_camera_info(_with(info, k=np.zeros(9)))
    assert "not calibrated" in log.errors()
    # 6. depth with no valid pixel
    empty = rc.depth_to_msg(np.zeros((48, 64), np.float32), depth.header, TYPES)
    assert feed(core, color, empty, info) is None
    assert "no valid depth" in log.errors()
    # ... and the next good frame goes through
    out = feed(core, color, depth, info)
    assert out is not None and rc.msg_to_points(out.msg).shape == (256, 3)


def test_perception_core_pairs_by_stamp_and_rate_limits():
    log, now = Log(), [0.0]
    core = PerceptionCore(PerceptionNodeConfig(max_rate=1.0, n_points=64, device="numpy", sync_slop=0.01),
                          TYPES, log, clock=lambda: now[0])
    color, depth, info, base_T_cam = synthetic_frame(T0 * SEC)
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(base_T_cam, "panda_link0", "cam")], TYPES),
               static=True)
    core.on_camera_info(info)
    late_depth = synthetic_frame(T0 * SEC + SEC // 2)[1]
    assert core.on_color(color) is None and core.on_depth(late_depth) is None  # 0.5 s apart: no pair
    assert core.on_depth(depth) is not None
    now[0] = 0.2  # 0.2 s later: over max_rate, skipped
    c2, d2 = synthetic_frame(T0 * SEC + SEC)[:2]
    assert core.on_color(c2) is None and core.on_depth(d2) is None
    now[0] = 1.5
    c3, d3 = synthetic_frame(T0 * SEC + 2 * SEC)[:2]
    core.on_color(c3)
    assert core.on_depth(d3) is not None


# --- reward server ----------------------------------------------------------------------------------


def cloud_msg(obs, stamp_ns):
    return rc.points_to_msg(obs.points, ("panda_link0", divmod(stamp_ns, SEC)), TYPES, rgb=obs.colors)


class StateRewardStub:
    """A StateReward: mean height of the cloud (or mean red of an image)."""

    def score_states(self, items, goal):
        return np.array([float(np.mean(i.points[:, 2])) if hasattr(i, "points") else float(i[..., 0].mean())
                         for i in items])


def test_reward_server_core_scores_like_the_model_and_isolates_errors():
    scorer = tiny_scorer()
    obs, _ = planted_observation(seed=1, n_points=64)
    cands = random_candidates(6, seed=2)
    replies: list[str] = []
    log, now = Log(), [0.0]
    with RewardHost({"pref": scorer}, max_wait_ms=0.0) as host:
        core = RewardServerCore(RewardServerConfig(request_timeout=1.0, state_reward_input="observation"), host,
                                StateRewardStub(), log, clock=lambda: now[0])
        core.on_goal(GOAL)
        reward = core.on_cloud(cloud_msg(obs, T0 * SEC))
        assert reward == pytest.approx(float(np.mean(obs.points[:, 2])), abs=1e-6)
        core.on_request(ScoreRequest("a", (T0, 0), GOAL, cands).to_json(), replies.append)
        core.on_request(ScoreRequest("b", (T0, 0), GOAL, cands, ["pref", "nope"]).to_json(), replies.append)
        host.close()  # finishes the queued requests
    a, b = (ScoreResponse.parse(r) for r in sorted(replies, key=lambda r: r.request_id))
    direct = scorer.score(obs, cands)
    np.testing.assert_allclose(a.scores["pref"], direct.members, rtol=1e-5, atol=1e-6)
    assert "unknown reward model 'nope'" in b.errors["nope"] and "pref" in b.scores


def test_reward_server_core_parks_requests_until_their_cloud_and_expires_them():
    obs, _ = planted_observation(seed=3, n_points=64)
    cands = random_candidates(3, seed=4)
    replies: list[str] = []
    log, now = Log(), [0.0]
    with RewardHost({"pref": tiny_scorer()}, max_wait_ms=0.0) as host:
        core = RewardServerCore(RewardServerConfig(request_timeout=1.0), host, None, log, clock=lambda: now[0])
        core.on_request(ScoreRequest("early", (T0, 5), GOAL, cands).to_json(), replies.append)
        core.on_request(ScoreRequest("never", (T0, 6), GOAL, cands).to_json(), replies.append)
        assert replies == [] and core.expire() == 0
        core.on_cloud(cloud_msg(obs, T0 * SEC + 5))  # serves "early"
        now[0] = 2.0
        assert core.expire() == 1  # "never" timed out
        host.close()
    by_id = {r.request_id: ScoreResponse.parse(r) for r in replies}
    assert by_id["early"].scores["pref"].shape == (3, 3)
    assert "no cloud stamped 1700000000.000000006 arrived within 1.0 s" in by_id["never"].errors["server"]
    # Malformed requests and clouds without xyz are logged; nothing is answered or cached.
    core.on_request("{broken", replies.append)
    bad = _with(cloud_msg(obs, T0 * SEC + 9), fields=[
        TYPES.new("sensor_msgs/msg/PointField", name=n, offset=4 * i, datatype=7, count=1)
        for i, n in enumerate(("a", "b", "c", "rgb"))])
    assert core.on_cloud(bad) is None
    assert "score request rejected" in log.errors() and "missing x, y, z" in log.errors()


def test_reward_server_core_keeps_clouds_for_cloud_keep_seconds_not_a_count():
    """The cause of 'no cloud stamped ... within 5 s' on the real graph: the policy sampled for 7-13 s
    while clouds kept coming at ~1.4 Hz, and a cache of 8 clouds had dropped the one the request named.
    Clouds are now kept by stamp age; a request for one no longer kept is answered at once."""
    obs, _ = planted_observation(seed=3, n_points=64)
    cands = random_candidates(3, seed=4)
    replies: list = []
    log, now = Log(), [0.0]
    core = RewardServerCore(RewardServerConfig(), None, None, log, clock=lambda: now[0])
    for k in range(27):  # 13 s of clouds at 2 Hz while the policy samples in the first one
        core.on_cloud(cloud_msg(obs, T0 * SEC + k * SEC // 2))
    core.on_request(ScoreRequest("slow", (T0, 0), GOAL, cands), replies.append)
    assert [r.request_id for r in replies] == ["slow"] and not replies[0].errors  # served at once
    # a shorter window drops it: the answer is immediate and says what to raise
    core = RewardServerCore(RewardServerConfig(cloud_keep=4.0), None, None, log, clock=lambda: now[0])
    for k in range(27):
        core.on_cloud(cloud_msg(obs, T0 * SEC + k * SEC // 2))
    assert len(core.cached()) == 9 and core.cached()[0] == (T0 + 9) * SEC  # 4 s behind 13 s
    replies.clear()
    core.on_request(ScoreRequest("late", (T0, 0), GOAL, cands), replies.append)
    assert replies[0].request_id == "late" and core.expire() == 0
    assert ("no cloud stamped 1700000000.000000000 is kept any more: it is 13.0 s older than the newest on "
            "/perception/points, and 9 clouds of the last cloud_keep 4 s (cloud_cache 200) are kept: raise "
            "cloud_keep") in replies[0].errors["server"]
    # a stamp between kept clouds that never came still waits (it may arrive) and then expires
    core.on_request(ScoreRequest("gap", (T0 + 12, 1), GOAL, cands), replies.append)
    assert len(replies) == 1
    # cloud_cache bounds the count whatever the window; a cloud arriving already too old is not kept
    core = RewardServerCore(RewardServerConfig(cloud_cache=3), None, None, log, clock=lambda: now[0])
    for k in range(5):
        core.on_cloud(cloud_msg(obs, (T0 + 40 + k) * SEC))
    core.on_cloud(cloud_msg(obs, T0 * SEC))
    assert core.cached() == [(T0 + k) * SEC for k in (42, 43, 44)]
    for bad in ({"cloud_keep": 0.0}, {"cloud_cache": -1}):
        with pytest.raises(ValueError, match="cloud_keep must be positive and cloud_cache >= 0"):
            RewardServerCore(RewardServerConfig(**bad))


# --- policy ----------------------------------------------------------------------------------------


class FixedPolicy:
    def __init__(self, params):
        self.params = params

    def sample(self, obs, n, seed=0, **kwargs):
        p = np.asarray(self.params, dtype=np.float64)[:n]
        return Candidates("pick_place", p, np.arange(len(p)) + seed, np.zeros(len(p), bool))


REACHABLE = [0.5, 0.0, 0.02, 0.55, 0.1, 0.02, 0.0]
OUT_OF_REACH = [0.5, 0.0, -0.2, 0.55, 0.1, 0.02, 0.0]  # below the workspace


def policy_core(kin, params, log, now, graph=None, **cfg):
    config = PolicyNodeConfig(**{"goal": GOAL, "n_candidates": len(params), "score_timeout": 2.0, **cfg})
    from robot_rewards.core.primitives import Workspace

    decider = policy_decider(config, FixedPolicy(params), FeasibilityChecker(Workspace(), kin))
    return PolicyCore(config, decider, log, lambda: now[0], home=HOME, graph=graph)


class Graph:
    """Who is on which topic or service (rclpy Node.count_publishers / count_subscribers /
    count_services); `subscribers` holds both subscribers and servers."""

    def __init__(self, publishers=None, subscribers=None):
        self.publishers, self.subscribers = dict(publishers or {}), dict(subscribers or {})

    def count_publishers(self, topic):
        return self.publishers.get(topic, 0)

    def count_subscribers(self, topic):
        return self.subscribers.get(topic, 0)

    def count_services(self, service):
        return self.subscribers.get(service, 0)


LIVE = {"/reward_server/score_candidates": 1}


def joint_state(q, stamp_ns=T0 * SEC):
    return rc.joint_state_to_msg(list(JOINT_NAMES), q, ("", divmod(stamp_ns, SEC)), TYPES)


def test_policy_core_decision_cycle(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [OUT_OF_REACH, REACHABLE, REACHABLE], log, now)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    (channel, text), = core.on_cloud(cloud_msg(obs, T0 * SEC))
    assert channel == "score_request" and core.state == SCORING
    request = ScoreRequest.parse(text)
    assert request.stamp == (T0, 0) and len(request.candidates) == 3
    assert core.on_cloud(cloud_msg(obs, T0 * SEC + 1)) == []  # busy: no second decision
    # Scores favour candidate 0, which is infeasible: the next best feasible one is chosen.
    members = np.array([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0]])
    out = dict(core.on_score_response(ScoreResponse(request.request_id, {"pref": members}).to_json()))
    cset = CandidateSet.parse(out["candidates"])
    assert cset.order == [0, 2, 1] and cset.chosen == 2 and "outside workspace" in cset.rejected[0]
    np.testing.assert_array_equal(cset.scores["pref"], members)
    assert PrimitiveCommand.parse(out["primitive"]).decision_id == cset.decision_id
    assert core.state == EXECUTING
    # Only this decision's terminal status frees the policy; the next cloud must be newer.
    core.on_executor_status(ExecutorStatus(cset.decision_id, "executing").to_json())
    assert core.state == EXECUTING
    core.on_executor_status(ExecutorStatus(cset.decision_id, "failed", -4, "blocked",
                                           stamp=(T0 + 5, 0)).to_json())
    assert core.state == IDLE and "code -4: blocked" in log.errors()
    assert core.on_cloud(cloud_msg(obs, (T0 + 5) * SEC)) == []  # not settled yet
    assert core.on_cloud(cloud_msg(obs, (T0 + 6) * SEC))[0][0] == "score_request"


def test_policy_core_bad_and_missing_inputs(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [OUT_OF_REACH], log, now)
    obs, _ = planted_observation(seed=0, n_points=64)
    core.on_joint_state(rc.joint_state_to_msg(["a"], [0.0], None, TYPES))
    assert "lacks joints" in log.errors()
    out = core.on_cloud(cloud_msg(obs, T0 * SEC))
    request = ScoreRequest.parse(out[0][1])
    core.on_score_response("garbage")
    core.on_score_response(ScoreResponse("someone-else").to_json())  # ignored
    assert core.state == SCORING
    out = dict(core.on_score_response(ScoreResponse(request.request_id, errors={"pref": "boom"}).to_json()))
    assert "primitive" not in out and CandidateSet.parse(out["candidates"]).chosen is None
    assert "none of the 1 candidates is feasible" in log.errors() and "model 'pref' failed: boom" in log.errors()
    assert core.state == IDLE
    # Scores that never come: the decision is dropped after score_timeout.
    core.on_cloud(cloud_msg(obs, T0 * SEC + 10))
    now[0] += 3 * SEC
    core.tick()
    assert core.state == IDLE and "no scores" in log.errors()


def test_policy_core_samples_with_the_decision_seed_rule(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [REACHABLE, REACHABLE], log, now, seed=3, score_candidates=False)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    cset = CandidateSet.parse(dict(core.on_cloud(cloud_msg(obs, T0 * SEC)))["candidates"])
    # the double's candidate seeds are the sampling seed + index; unscored: the policy's order
    np.testing.assert_array_equal(cset.candidates.seeds, decision_seed(3, 0) + np.arange(2))
    assert cset.order == [0, 1] and cset.chosen == 0 and core.state == EXECUTING


def test_policy_core_samples_an_episode_with_its_scene_seed_like_the_python_loop(kin):
    """With a task status (the sim bridge's scene seed), decision k of an episode samples with
    decision_seed(episode, k), as eval-policy does on that scene; the first status is waited for
    while someone publishes it."""
    log, now = Log(), [T0 * SEC]
    graph = Graph(publishers={"/task/status": 1, "/perception/points": 1}, subscribers=LIVE)
    core = policy_core(kin, [REACHABLE, REACHABLE], log, now, graph=graph, seed=3, score_candidates=False)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    assert core.on_cloud(cloud_msg(obs, now[0])) == [] and core.why()[0] == "task_status_wait"
    assert "waiting for the first task status on /task/status" in core.why()[1]
    core.on_task_status(TaskStatus("place_block", 12, False, 0.2, 3, divmod(now[0], SEC)))
    seeds = []
    for _ in range(2):
        cset = CandidateSet.parse(dict(core.on_cloud(cloud_msg(obs, now[0] + SEC)))["candidates"])
        seeds.append(int(cset.candidates.seeds[0]))
        now[0] += 2 * SEC
        core.on_executor_status(ExecutorStatus(cset.decision_id, "succeeded", stamp=divmod(now[0], SEC)))
        core.on_task_status(TaskStatus("place_block", 12, False, 0.2, 3, divmod(now[0] + 1, SEC)))
    core.on_task_status(TaskStatus("place_block", 13, False, 0.2, 3, divmod(now[0] + 2, SEC)))  # ~/reset
    cset = CandidateSet.parse(dict(core.on_cloud(cloud_msg(obs, now[0] + SEC)))["candidates"])
    assert seeds + [int(cset.candidates.seeds[0])] == [decision_seed(12, 0), decision_seed(12, 1), decision_seed(13, 0)]
    assert cset.decision_id == 2 and "(seed 13, decision 0)" in [t for lv, t in log.lines if lv == "info"][-1]
    # episode_seeds false: the node's seed and the running decision count
    core = policy_core(kin, [REACHABLE], log, now, graph=graph, seed=3, score_candidates=False, episode_seeds=False)
    core.on_joint_state(joint_state(HOME))
    cset = CandidateSet.parse(dict(core.on_cloud(cloud_msg(obs, now[0] + SEC)))["candidates"])
    assert int(cset.candidates.seeds[0]) == decision_seed(3, 0)


def test_parse_weights():
    assert parse_weights(["pref=2", "clip = 0.5"]) == {"pref": 2.0, "clip": 0.5}
    with pytest.raises(ValueError, match="'pref' is not family=number"):
        parse_weights(["pref"])


# --- executor --------------------------------------------------------------------------------------


def test_policy_core_waits_for_an_executor_stops_and_resumes(kin):
    """No ExecutePrimitive server: no decision, and why() says so; ~/stop while executing ends
    the decision (the node cancels it) until the next decide(); feedback shows in why()."""
    log, now = Log(), [T0 * SEC]
    ready = [False]
    config = PolicyNodeConfig(goal=GOAL, n_candidates=2, score_candidates=False)
    from robot_rewards.core.primitives import Workspace

    decider = policy_decider(config, FixedPolicy([REACHABLE, REACHABLE]), FeasibilityChecker(Workspace(), kin))
    core = PolicyCore(config, decider, log, lambda: now[0], home=HOME, executor_ready=lambda: ready[0])
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    assert core.on_cloud(cloud_msg(obs, now[0])) == [] and core.decisions == 0
    code, reason = core.why()
    assert code == "no_executor" and "nobody serves the ExecutePrimitive action /executor/execute" in reason
    ready[0] = True
    out = dict(core.on_cloud(cloud_msg(obs, now[0] + 1)))
    command = out["primitive"]
    assert isinstance(command, PrimitiveCommand) and command.source == "policy" and core.state == EXECUTING
    core.on_feedback(command.decision_id, 1, 4, "grasp")
    assert core.why() == ("executing", f"decision {command.decision_id} is executing: segment 2/4 'grasp' "
                          "(waiting for /executor/execute)")
    ready[0] = False  # the executor died mid-motion
    assert core.why()[0] == "no_executor"
    ready[0] = True
    assert core.stop() == command.decision_id and core.state == "done" and core.why()[0] == "stopped"
    assert core.on_cloud(cloud_msg(obs, now[0] + 2 * SEC)) == []  # stopped: clouds do not decide
    core.on_executor_status(ExecutorStatus(command.decision_id, "failed", -107, "canceled"))  # the canceled goal
    assert core.state == "done" and core.stop() is None
    now[0] += 2 * SEC
    assert dict(core.decide())["primitive"].decision_id == command.decision_id + 1  # decides again


def test_payloads_of_typed_messages_json_and_action_results():
    from ros_double.messages import message_types

    from robot_rewards.ros import convert_interfaces as ci
    from robot_rewards.ros.payloads import PayloadError

    types = message_types()
    status = ExecutorStatus(4, "succeeded", 0, "", 3, 4, (T0, 5))
    assert ci.to_payload(ExecutorStatus, status) is status
    for form in (ci.executor_status_to_msg(status, types), status.to_json(),
                 types.new("std_msgs/msg/String", data=status.to_json())):
        got = ci.to_payload(ExecutorStatus, form)
        assert (got.decision_id, got.state, got.segment, got.segments, got.stamp) == (4, "succeeded", 3, 4, (T0, 5))
    with pytest.raises(PayloadError):
        ci.to_payload(ExecutorStatus, types.new(ci.ifc.EXECUTOR_STATUS, state="lost"))
    result = ci.execute_result_to_msg(ExecutorStatus(4, "failed", -4, "path", 1, 4), types)
    got = ci.status_of_action_result(4, 6, result)  # ABORTED with the controller's code
    assert (got.state, got.error_code, got.error_string, got.segment) == ("failed", -4, "path", 1)
    empty = types.new(ci.ifc.EXECUTE_PRIMITIVE + "_Result")  # the execute callback raised
    aborted = ci.status_of_action_result(4, 6, empty)
    assert aborted.state == "failed" and aborted.error_code == -103 and "no result" in aborted.error_string
    assert ci.status_of_action_result(4, 5, empty).error_code == -107  # CANCELED
    assert ci.status_of_action_result(4, 4, empty).state == "succeeded"


def test_executor_core_cancel_stops_before_the_next_step(kin):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now)
    assert core.cancel() == ([], None)  # idle: nothing to cancel
    core.on_joint_state(joint_state(HOME))
    statuses, step = core.on_primitive(PrimitiveCommand(7, Primitive("pick_place", REACHABLE)))
    assert step is not None and core.label == step.label
    statuses, step = core.cancel()
    assert step is None and not core.busy and core.label == ""
    assert statuses[0].state == "failed" and statuses[0].error_code == -107 and "canceled" in statuses[0].error_string


def executor(kin, log, now, **cfg):
    from ros_double.messages import message_types  # rclpy-style classes, with the action types

    return ExecutorCore(ExecutorConfig(**cfg), kin, message_types(), log, lambda: now[0])


def command(params, decision=7):
    return PrimitiveCommand(decision, Primitive("pick_place", params)).to_json()


def test_executor_core_plans_and_runs_steps_in_order(kin):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now)
    core.on_joint_state(joint_state(HOME))
    statuses, step = core.on_primitive(command(REACHABLE))
    assert ExecutorStatus.parse(statuses[0]).state == "executing" and step.kind == "arm"
    from robot_rewards.primitives.config import MotionConfig
    from robot_rewards.primitives.planner import GripperSegment, plan_primitive

    plan = plan_primitive(kin, Primitive("pick_place", REACHABLE), HOME, MotionConfig())
    assert [s.kind for s in core.steps] == ["gripper" if isinstance(s, GripperSegment) else "arm" for s in plan]
    goal = core.goal_message(step)
    traj = rc.msg_to_joint_trajectory(goal.trajectory)
    assert traj.names == list(JOINT_NAMES) and traj.time_from_start[0] == 0.0
    np.testing.assert_allclose(traj.positions[0], HOME, atol=1e-9)  # starts where the arm is
    assert np.all(traj.velocities[0] == 0) and np.all(traj.velocities[-1] == 0)
    assert goal.goal_time_tolerance.sec == 1
    # A second primitive while busy is refused.
    statuses, none = core.on_primitive(command(REACHABLE, decision=8))
    assert none is None and ExecutorStatus.parse(statuses[0]).error_code == EXECUTOR_BUSY
    result = TYPES.new("std_msgs/msg/String", data="")  # arm results carry error_code; absent = 0
    n_steps = len(core.steps)
    assert [s.label for s in core.steps if s.contact] == ["above pick", "grasp", "release"]
    for k in range(n_steps):
        step_k = core.steps[k]
        if step_k.kind == "gripper":
            assert core.goal_message(step_k).command.position == pytest.approx(step_k.width * 0.5)
        else:  # the fingers act after a contact segment: it may end pressed on the object
            tolerances = core.goal_message(step_k).goal_tolerance
            assert step_k.contact == (k + 1 < n_steps and core.steps[k + 1].kind == "gripper")
            assert ([(t.name, t.position) for t in tolerances]
                    == ([(n, 0.25) for n in JOINT_NAMES] if step_k.contact else []))
        statuses, nxt = core.on_result(STATUS_SUCCEEDED, result)
    final = ExecutorStatus.parse(statuses[-1])
    assert final.state == "succeeded" and final.decision_id == 7 and not core.busy


def test_executor_core_reports_controller_failures_and_stops(kin):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now)
    core.on_joint_state(joint_state(HOME))
    core.on_primitive(command(REACHABLE))
    statuses, nxt = core.on_goal_response(False)  # the controller rejects the first goal
    status = ExecutorStatus.parse(statuses[0])
    assert nxt is None and status.state == "failed" and status.error_code == EXECUTOR_GOAL_REJECTED
    assert "rejected the goal" in status.error_string and not core.busy
    core.on_primitive(command(REACHABLE))
    core.on_goal_response(True)
    aborted = type("Result", (), {"error_code": PATH_TOLERANCE_VIOLATED, "error_string": "blocked"})()
    statuses, nxt = core.on_result(STATUS_ABORTED, aborted)
    status = ExecutorStatus.parse(statuses[0])
    assert nxt is None and status.error_code == PATH_TOLERANCE_VIOLATED
    assert "PATH_TOLERANCE_VIOLATED" in status.error_string and "step 1/" in status.error_string


@pytest.mark.parametrize("params, setup, code, text", [
    (OUT_OF_REACH, "fresh", EXECUTOR_BAD_INPUT, "outside the workspace"),
    (REACHABLE, "none", EXECUTOR_STALE_STATE, "none received"),
    (REACHABLE, "old", EXECUTOR_STALE_STATE, "2.00 s old"),
    ([0.74, 0.34, 0.29, 0.74, -0.34, 0.29, 3.0], "fresh", EXECUTOR_PLANNING_FAILED, "unreachable"),
])
def test_executor_core_refuses_unsafe_requests(kin, params, setup, code, text):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now, workspace_high=[0.75, 0.35, 0.30])
    if setup != "none":
        core.on_joint_state(joint_state(HOME))
    if setup == "old":
        now[0] += 2 * SEC
    statuses, step = core.on_primitive(command(params))
    status = ExecutorStatus.parse(statuses[0])
    assert step is None and status.state == "rejected" and status.error_code == code and text in status.error_string
    assert not core.busy


def test_executor_core_rejects_malformed_primitives(kin):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now)
    statuses, step = core.on_primitive('{"schema": "robot_rewards/primitive", "version": 1, "name": "fly"}')
    assert step is None and "unknown primitive 'fly'" in ExecutorStatus.parse(statuses[0]).error_string


# --- console ---------------------------------------------------------------------------------------


def test_console_core_forwards_choices(kin):
    cset = CandidateSet(5, (T0, 0), GOAL, random_candidates(4, seed=1), chosen=2)
    log = Log()
    default = PrimitiveCommand.parse(ConsoleCore(None, log).on_candidates(cset.to_json()))
    assert default.decision_id == 5 and default.source == "console"
    np.testing.assert_array_equal(default.primitive.params, cset.candidates.params[2])
    picked = ConsoleCore(lambda c: 3, log).on_candidates(cset.to_json())
    np.testing.assert_array_equal(PrimitiveCommand.parse(picked).primitive.params, cset.candidates.params[3])
    assert ConsoleCore(lambda c: None, log).on_candidates(cset.to_json()) is None
    assert ConsoleCore(lambda c: 9, log).on_candidates(cset.to_json()) is None
    assert ConsoleCore(lambda c: 1 / 0, log).on_candidates(cset.to_json()) is None
    assert ConsoleCore(None, log).on_candidates("{") is None
    errors = log.errors()
    assert "returned 9, not an index in [0, 4)" in errors and "ZeroDivisionError" in errors
    assert "candidate set rejected" in errors


# --- calibration capture ---------------------------------------------------------------------------


def test_calibration_capture_core_writes_handeye_inputs(tmp_path):
    from robot_rewards.calibration.camera_info import load_camera_info
    from robot_rewards.calibration.handeye import load_robot_poses
    from robot_rewards.ros.calibration_capture_core import CalibrationCaptureCore

    core = CalibrationCaptureCore(CalibrationCaptureConfig(output_dir=str(tmp_path), tf_tolerance=0.05))
    assert core.capture() == (False, "no image/camera_info yet on /camera/color/image_raw / /camera/color/camera_info")
    color, _, info, _ = synthetic_frame(T0 * SEC)
    core.on_color(color)
    core.on_camera_info(info)
    hand = transforms.make_transform(transforms.matrix_to_quat(np.eye(3)), [0.4, 0.1, 0.5])
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(hand, "panda_link0", "panda_hand",
                                                                        (T0 - 1, 0))], TYPES))
    ok, text = core.capture()
    assert not ok and "stale" in text and not (tmp_path / "robot_poses.yaml").exists()
    core.on_tf(rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(hand, "panda_link0", "panda_hand",
                                                                        (T0, 0))], TYPES))
    assert core.capture() == (True, f"saved view_000.png (1 views in {tmp_path})")
    assert core.capture()[0]
    poses = load_robot_poses(tmp_path / "robot_poses.yaml")
    assert sorted(poses.poses) == ["view_000.png", "view_001.png"]
    np.testing.assert_allclose(poses.poses["view_000.png"], hand, atol=1e-12)
    assert load_camera_info(tmp_path / "camera_info.yaml")[1] == INTR
    assert (tmp_path / "images" / "view_001.png").is_file()


# --- hostile messages: every core logs them and keeps working -------------------------------------

BIG = 10 ** 400


def _hostile(good: str) -> list[str]:
    """Malformed variants of a good payload: each took a node down before (OverflowError,
    RecursionError, TypeError) or was accepted although wrong (bool as int, bad indices)."""
    doc = json.loads(good)
    variants = [{"version": True}, {"decision_id": BIG}, {"decision_id": True}, {"name": ["x"]},
                {"primitive": ["x"]}, {"params": [[BIG] * 7]}, {"params": [BIG] * 7}, {"chosen": False},
                {"order": [0, 0]}, {"order": [99]}, {"scores": {"a": [[BIG]]}}, {"stamp": [BIG, 0]},
                {"models": [["a"]]}, {"errors": {"b": ["x"]}}, {"request_id": ["r"]}]
    return (['{"a":' * 5000 + "1" + "}" * 5000, "[" * 50 + "]" * 50, " " * (1 << 20 | 1)]
            + [json.dumps({**doc, **v}) for v in variants if set(v) <= set(doc)])


def test_policy_core_survives_hostile_responses_and_statuses(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [REACHABLE, REACHABLE], log, now)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    request = ScoreRequest.parse(core.on_cloud(cloud_msg(obs, T0 * SEC))[0][1])
    good = ScoreResponse(request.request_id, {"pref": np.array([[1.0, 2.0]])}).to_json()
    for text in _hostile(good):
        assert core.on_score_response(text) == [] and core.state == SCORING
    out = dict(core.on_score_response(good))
    assert core.state == EXECUTING and CandidateSet.parse(out["candidates"]).chosen == 1
    status = ExecutorStatus(CandidateSet.parse(out["candidates"]).decision_id, "succeeded").to_json()
    for text in _hostile(status):
        assert core.on_executor_status(text) == [] and core.state == EXECUTING
    core.on_executor_status(status)
    assert core.state == IDLE
    assert core.report.counts["response"] == len(_hostile(good)) and core.report.counts["status"] == len(_hostile(status))


def test_executor_core_survives_hostile_primitives(kin):
    log, now = Log(), [T0 * SEC]
    core = executor(kin, log, now)
    core.on_joint_state(joint_state(HOME))
    good = command(REACHABLE)
    for text in _hostile(good):
        statuses, step = core.on_primitive(text)
        status = ExecutorStatus.parse(statuses[0])
        assert step is None and status.state == "rejected" and status.error_code == EXECUTOR_BAD_INPUT
        assert not core.busy
    statuses, step = core.on_primitive(good)
    assert ExecutorStatus.parse(statuses[0]).state == "executing" and step is not None


def test_reward_server_core_survives_hostile_requests():
    obs, _ = planted_observation(seed=3, n_points=64)
    replies: list[str] = []
    log = Log()
    core = RewardServerCore(RewardServerConfig(request_timeout=1.0), None, None, log, clock=lambda: 0.0)
    core.on_cloud(cloud_msg(obs, T0 * SEC))
    good = ScoreRequest("r", (T0, 0), GOAL, random_candidates(3, seed=4)).to_json()
    for text in _hostile(good):
        core.on_request(text, replies.append)
    assert replies == [] and core.report.counts["request"] == len(_hostile(good))
    core.on_request(good, replies.append)
    assert [ScoreResponse.parse(r).request_id for r in replies] == ["r"]


def test_console_cores_keep_the_last_good_set_after_hostile_ones():
    from robot_rewards.console.config import RosConsoleConfig
    from robot_rewards.ros.console_backend import OperatorCore

    good = CandidateSet(5, (T0, 0), GOAL, random_candidates(4, seed=1), chosen=2, order=[2, 0, 1, 3]).to_json()
    log = Log()
    console = ConsoleCore(None, log)
    operator = OperatorCore(RosConsoleConfig(), log)
    assert console.on_candidates(good) is not None
    operator.on_candidates(good)
    first = operator.next_set(0, timeout=0.01)
    for text in _hostile(good):
        assert console.on_candidates(text) is None
        operator.on_candidates(text)
        operator.on_status(text)
    assert console.last.decision_id == 5 and operator.next_set(first.seq, timeout=0.01) is None
    assert operator.next_set(0, timeout=0.01).cset.decision_id == 5 and operator.moves == 0
    assert console.on_candidates(good) is not None
    assert console.report.counts["candidates"] == operator.report.counts["candidates"] == len(_hostile(good))


# --- the policy's status: why nothing happens ----------------------------------------------------


def test_policy_status_names_the_silent_topic_and_the_missing_reward_server(kin):
    log, now = Log(), [T0 * SEC]
    graph = Graph(publishers={"/perception/points": 1}, subscribers={})
    core = policy_core(kin, [REACHABLE], log, now, graph, cloud_topic="/perception/pointz", goal="")
    now[0] += 12 * SEC
    assert core.decide() == []
    code, reason = core.why()
    assert code == "no_cloud" and "no cloud on /perception/pointz in 12 s since start" in reason
    assert "0 publisher(s): check the topic name / remapping" in reason
    obs, _ = planted_observation(seed=0, n_points=64)
    core.on_cloud(cloud_msg(obs, now[0]))
    assert core.why()[0] == "no_goal" and "topic /goal" in core.why()[1]
    core.on_goal(GOAL)
    assert core.on_cloud(cloud_msg(obs, now[0] + 1)) == []  # nobody serves the score service
    code, reason = core.why()
    assert code == "no_reward_server" and "nobody serves /reward_server/score_candidates" in reason
    status = PolicyStatus.from_json(core.status().to_json())
    assert status.state == "idle" and status.code == "no_reward_server" and status.scorer["available"] is False
    assert status.inputs["cloud"]["topic"] == "/perception/pointz" and status.inputs["cloud"]["age"] == 0.0
    assert status.inputs["goal"]["age"] == 0.0 and status.inputs["joint_states"]["age"] is None
    # a reward server appears: the next cloud is decided on; a silent cloud topic stops that again
    graph.subscribers.update(LIVE)
    assert core.on_cloud(cloud_msg(obs, now[0] + 2))[0][0] == "score_request"
    assert core.why()[0] == "scoring"
    core.state, core._pending = IDLE, None
    now[0] += 11 * SEC
    assert core.decide() == [] and core.why()[0] == "cloud_silent"
    assert "no cloud on /perception/pointz for 11 s" in core.why()[1]
    assert not log.errors()


def test_policy_score_timeout_idles_then_recovers(kin):
    log, now = Log(), [T0 * SEC]
    graph = Graph(subscribers=LIVE)
    core = policy_core(kin, [REACHABLE], log, now, graph, score_retry=30.0)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    first = ScoreRequest.parse(core.on_cloud(cloud_msg(obs, now[0]))[0][1])
    now[0] += 3 * SEC
    core.tick()
    assert core.state == IDLE and core.timeouts == 1 and "no scores from" in log.errors()
    # idle: fresh clouds do not start decisions that would time out again; the status says why
    assert core.on_cloud(cloud_msg(obs, now[0])) == []
    code, reason = core.why()
    assert code == "scorer_timeout" and "did not answer decision 0 within 2 s" in reason and "asking again" in reason
    assert core.decide() == []
    # a new reward server on the request topic: asked again at once
    graph.subscribers["/reward_server/score_candidates"] = 2
    second = ScoreRequest.parse(core.on_cloud(cloud_msg(obs, now[0] + 1))[0][1])
    assert second.request_id != first.request_id
    out = dict(core.on_score_response(ScoreResponse(second.request_id, {"pref": np.array([[1.0]])}).to_json()))
    assert core.scorer_down is None and "answers again" in " ".join(t for _, t in log.lines)
    assert CandidateSet.parse(out["candidates"]).chosen == 0
    # after score_retry seconds the same (hung) server is asked again, too
    core.state = IDLE
    core.on_cloud(cloud_msg(obs, now[0] + 2))
    now[0] += 3 * SEC
    core.tick()
    assert core.on_cloud(cloud_msg(obs, now[0])) == []
    now[0] += 31 * SEC
    assert core.on_cloud(cloud_msg(obs, now[0]))[0][0] == "score_request"


def test_policy_score_timeout_first_candidate(kin):
    log, now = Log(), [T0 * SEC]
    graph = Graph(subscribers=LIVE)
    core = policy_core(kin, [OUT_OF_REACH, REACHABLE], log, now, graph, on_score_timeout="first_candidate")
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    core.on_cloud(cloud_msg(obs, now[0]))
    now[0] += 3 * SEC
    out = dict(core.tick())
    cset = CandidateSet.parse(out["candidates"])
    assert cset.chosen == 1 and cset.scores == {} and core.state == EXECUTING  # the first feasible, unscored
    assert "taking the policy's first feasible candidate" in log.errors()
    # no reward server at all: decided unscored at once, with a warning
    graph.subscribers.clear()
    core.on_executor_status(ExecutorStatus(cset.decision_id, "succeeded", stamp=divmod(now[0], SEC)).to_json())
    out = dict(core.on_cloud(cloud_msg(obs, now[0] + 2 * SEC)))
    assert CandidateSet.parse(out["candidates"]).chosen == 1 and "unscored" in log.lines[-1][1]
    with pytest.raises(ValueError, match="on_score_timeout must be one of"):
        policy_core(kin, [REACHABLE], log, now, on_score_timeout="drop")


def _execute(core, obs, now, t_ns):
    """One decision on a cloud stamped t_ns, executed successfully at once; returns its id."""
    out = dict(core.on_cloud(cloud_msg(obs, t_ns)))
    cset = CandidateSet.parse(out["candidates"])
    now[0] = t_ns + SEC
    core.on_executor_status(ExecutorStatus(cset.decision_id, "succeeded", stamp=divmod(now[0], SEC)).to_json())
    return cset.decision_id


def test_policy_stops_at_task_success_and_starts_again_on_a_new_episode(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [REACHABLE], log, now, score_candidates=False)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    task = TaskStatus("place_block", 0, False, 0.2, 3, divmod(now[0], SEC))
    core.on_task_status(task.to_json())
    _execute(core, obs, now, now[0])
    # success seen while executing (stamped before the end) does not count; a status after the end does
    assert core.on_cloud(cloud_msg(obs, now[0] + 2 * SEC)) == []  # waits for a task status after the end
    assert core.why()[0] == "task_status_wait"
    core.on_task_status(TaskStatus("place_block", 0, True, 0.9, 3, divmod(now[0] - SEC // 2, SEC)).to_json())
    assert core.state == IDLE
    core.on_task_status(TaskStatus("place_block", 0, True, 0.9, 3, divmod(now[0] + SEC // 10, SEC)).to_json())
    assert core.state == DONE and core.decide() == []
    code, reason = core.why()
    assert code == "task_succeeded" and "task place_block succeeded (quality 0.900 on /task/status) after 1 decision" in reason
    assert core.on_cloud(cloud_msg(obs, now[0] + 3 * SEC)) == []
    # the sim bridge was reset: a new episode
    core.on_task_status(TaskStatus("place_block", 1, False, 0.1, 3, divmod(now[0] + 3 * SEC, SEC)).to_json())
    assert core.state == IDLE and core.decisions == 0
    assert core.on_cloud(cloud_msg(obs, now[0] + 2 * SEC + SEC // 2)) == []  # rendered before the reset
    assert core.on_cloud(cloud_msg(obs, now[0] + 4 * SEC))[0][0] == "decision_cloud"
    # hostile task statuses are logged and change nothing
    for text in ["{}", TaskStatus("t", 1, True, 1.0).to_json().replace("true", "1"), "[" * 40]:
        assert core.on_task_status(text) == [] and core.state == EXECUTING
    assert core.report.counts["task_status"] == 3


def test_policy_stops_after_max_decisions_or_the_task_budget(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [REACHABLE], log, now, score_candidates=False)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    core.on_task_status(TaskStatus("align_rope", 4, False, 0.2, 2, divmod(now[0], SEC)).to_json())
    for _ in range(2):
        _execute(core, obs, now, now[0] + 2 * SEC)
        core.on_task_status(TaskStatus("align_rope", 4, False, 0.3, 2, divmod(now[0] + 1, SEC)).to_json())
    assert core.state == DONE and core.why()[0] == "max_decisions"
    assert "made 2 decisions (the task's max_steps on /task/status 2)" in core.why()[1]
    core = policy_core(kin, [REACHABLE], log, now, score_candidates=False, max_decisions=1, task_status_topic="")
    core.on_joint_state(joint_state(HOME))
    _execute(core, obs, now, now[0] + 2 * SEC)
    assert core.state == DONE and "made 1 decisions (max_decisions 1)" in core.why()[1]
    assert PolicyStatus.from_json(core.status().to_json()).max_decisions == 1


def test_policy_success_reward_stands_in_for_the_task_status(kin):
    log, now = Log(), [T0 * SEC]
    core = policy_core(kin, [REACHABLE], log, now, score_candidates=False, task_status_topic="",
                       success_reward_topic="/reward_server/goal_reward", success_threshold=0.8)
    core.on_joint_state(joint_state(HOME))
    obs, _ = planted_observation(seed=0, n_points=64)
    core.on_success_reward(0.95)  # before any execution: counts (nothing was done yet)
    assert core.state == DONE and core.why()[0] == "reward_reached"
    core = policy_core(kin, [REACHABLE], log, now, score_candidates=False, task_status_topic="",
                       success_reward_topic="/reward_server/goal_reward", success_threshold=0.8)
    core.on_joint_state(joint_state(HOME))
    _execute(core, obs, now, now[0] + SEC)
    core.on_success_reward(0.9)  # right after the end: the scene has not settled
    assert core.state == IDLE
    now[0] += SEC
    core.on_success_reward(0.5)
    assert core.state == IDLE
    core.on_success_reward(0.85)
    assert core.state == DONE and "success reward 0.850 on /reward_server/goal_reward >= 0.8" in core.why()[1]
    status = PolicyStatus.from_json(core.status().to_json())
    assert status.task == {"success_reward": 0.85, "threshold": 0.8} and status.state == "done"

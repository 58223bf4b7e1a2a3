"""Payloads <-> robot_rewards_interfaces messages (rclpy's generated classes or rosbags').

The node cores work on the payload dataclasses of payloads.py; the node shells and the bag
tools carry them as typed messages. `*_to_msg(payload, types)` builds a message with a
`MessageTypes` (rclpy_types(), ROSBAGS_TYPES or the test double's); `*_from_msg(msg)` reads one
back through the payload's `from_doc`, so a typed message from anyone on the graph is
validated exactly as a JSON document is (names, shapes, finite numbers, index ranges) and
anything wrong is one PayloadError naming the field.

Matrices travel row-major in flat float64[] fields (N x D parameters, K x N member scores) with
their width given by the message (param_names, `members`), because ROS messages have no 2-D
arrays.
"""

from __future__ import annotations

import math

import numpy as np

from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.ros import interfaces as ifc
from robot_rewards.ros.convert_common import MessageTypes, as_message_types
from robot_rewards.ros.payloads import (
    EXECUTOR_CANCELED,
    EXECUTOR_GOAL_REJECTED,
    TERMINAL_STATES,
    CandidateSet,
    ExecutorStatus,
    PayloadError,
    PolicyStatus,
    PrimitiveCommand,
    ScoreRequest,
    ScoreResponse,
    TaskStatus,
)

MAX_ELEMENTS = 1 << 22  # numbers in one array field (32 MiB of float64): more is refused unread
REJECT_CODES = (-100, -101, -102, -103, -104, -105)  # nothing moved: the goal was refused


# -- helpers ------------------------------------------------------------------------------------


def _time(types: MessageTypes, stamp: tuple[int, int]):
    return types.new("builtin_interfaces/msg/Time", sec=int(stamp[0]), nanosec=int(stamp[1]))


def _stamp(msg, what: str) -> list[int]:
    try:
        return [int(msg.sec), int(msg.nanosec)]
    except (AttributeError, TypeError, ValueError):
        raise PayloadError(f"{what}: expected a builtin_interfaces/Time, got {type(msg).__name__}") from None


def _numbers(values, what: str, dtype=np.float64) -> np.ndarray:
    """A flat numeric field as a numpy array (length checked before it is copied)."""
    try:
        n = len(values)
    except TypeError:
        raise PayloadError(f"{what}: expected a sequence of numbers, got {type(values).__name__}") from None
    if n > MAX_ELEMENTS:
        raise PayloadError(f"{what}: {n} values, more than the limit of {MAX_ELEMENTS}")
    try:
        return np.asarray(values, dtype=dtype).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise PayloadError(f"{what}: expected numbers") from None


def _rows(values, width: int, what: str) -> list:
    """Row-major flat values -> nested lists of `width` columns (validated later by from_doc)."""
    flat = _numbers(values, what)
    if width <= 0 or flat.size % width:
        raise PayloadError(f"{what}: {flat.size} values do not split into rows of {width}")
    return flat.reshape(-1, width).tolist()


def _flags(types: MessageTypes, values):
    """A bool[] field: numpy for rosbags, a list of bools for rclpy (array.array has no bool)."""
    flags = np.asarray(values, dtype=bool).reshape(-1)
    return [bool(v) for v in flags] if types.sequences_as_array_array else flags


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _member_scores(types: MessageTypes, scores) -> list:
    out = []
    for name, members in scores.items():
        m = np.asarray(members, dtype=np.float64)
        out.append(types.new(ifc.MEMBER_SCORES, name=str(name), members=int(m.shape[0]),
                             scores=types.sequence(m.reshape(-1), np.float64)))
    return out


def _scores_doc(entries, what: str) -> dict:
    """{name: (K, N) nested lists} of MemberScores messages."""
    doc = {}
    for i, entry in enumerate(entries):
        name = _text(entry.name, f"{what}[{i}].name")
        k = int(entry.members)
        flat = _numbers(entry.scores, f"{what}[{name!r}].scores")
        if k < 1 or flat.size % k:
            raise PayloadError(f"{what}[{name!r}]: {flat.size} scores do not split into {k} members")
        if name in doc:
            raise PayloadError(f"{what}: model {name!r} appears twice")
        doc[name] = flat.reshape(k, -1).tolist()
    return doc


# -- candidate set ------------------------------------------------------------------------------


def candidate_set_to_msg(cset: CandidateSet, types, frame_id: str = ""):
    """robot_rewards_interfaces/msg/CandidateSet of a CandidateSet (header stamp = the cloud's)."""
    types = as_message_types(types)
    c = cset.candidates
    header = types.new("std_msgs/msg/Header", stamp=_time(types, cset.stamp), frame_id=str(frame_id))
    rejected = [types.new(ifc.REJECTED_CANDIDATE, index=int(k), reason=str(v)) for k, v in sorted(cset.rejected.items())]
    utilities = np.zeros(0) if cset.utilities is None else np.asarray(cset.utilities, np.float64)
    return types.new(
        ifc.CANDIDATE_SET, header=header, decision_id=int(cset.decision_id), goal=str(cset.goal),
        primitive=c.name, param_names=list(PRIMITIVE_SPECS[c.name].param_names),
        params=types.sequence(np.asarray(c.params, np.float64).reshape(-1), np.float64),
        seeds=types.sequence(np.asarray(c.seeds, np.int64), np.int64),
        clipped=_flags(types, c.clipped),
        scores=_member_scores(types, cset.scores), utilities=types.sequence(utilities, np.float64),
        chosen=-1 if cset.chosen is None else int(cset.chosen),
        order=types.sequence(np.asarray(cset.order, np.uint32), np.uint32), rejected=rejected,
        selector=str(cset.selector))


def candidate_set_from_msg(msg) -> CandidateSet:
    """A validated CandidateSet of a CandidateSet message (PayloadError naming the field)."""
    s = "CandidateSet"
    try:
        names = [str(n) for n in msg.param_names]
        width = max(len(names), 1)
        chosen = int(msg.chosen)
        doc = {
            "decision_id": int(msg.decision_id), "stamp": _stamp(msg.header.stamp, f"{s}.header.stamp"),
            "goal": _text(msg.goal, f"{s}.goal"), "primitive": _text(msg.primitive, f"{s}.primitive"),
            "param_names": names, "params": _rows(msg.params, width, f"{s}.params"),
            "seeds": [int(v) for v in _numbers(msg.seeds, f"{s}.seeds", np.int64)],
            "clipped": [bool(v) for v in msg.clipped],
            "scores": _scores_doc(msg.scores, f"{s}.scores"),
            "utilities": _numbers(msg.utilities, f"{s}.utilities").tolist() or None,
            "chosen": None if chosen == -1 else chosen,
            "order": [int(v) for v in _numbers(msg.order, f"{s}.order", np.int64)],
            "rejected": {str(int(r.index)): _text(r.reason, f"{s}.rejected.reason") for r in msg.rejected},
            "selector": _text(msg.selector, f"{s}.selector"),
        }
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/msg/CandidateSet ({exc})") from None
    if len(doc["rejected"]) != len(msg.rejected):
        raise PayloadError(f"{s}.rejected: lists a candidate more than once")
    if chosen < -1:
        raise PayloadError(f"{s}.chosen: {chosen} is neither a candidate index nor NONE_CHOSEN (-1)")
    return CandidateSet.from_doc(doc)


# -- scoring service ----------------------------------------------------------------------------


def score_request_to_msg(request: ScoreRequest, types):
    """ScoreCandidates.Request of a ScoreRequest."""
    types = as_message_types(types)
    c = request.candidates
    return types.new(ifc.SCORE_CANDIDATES + "_Request", request_id=str(request.request_id),
                     stamp=_time(types, request.stamp), goal=str(request.goal), primitive=c.name,
                     params=types.sequence(np.asarray(c.params, np.float64).reshape(-1), np.float64),
                     models=[str(m) for m in request.models])


def score_request_from_msg(msg) -> ScoreRequest:
    """A validated ScoreRequest of a ScoreCandidates.Request."""
    s = "ScoreCandidates.Request"
    try:
        name = _text(msg.primitive, f"{s}.primitive")
        spec = PRIMITIVE_SPECS.get(name)
        doc = {"request_id": _text(msg.request_id, f"{s}.request_id"), "stamp": _stamp(msg.stamp, f"{s}.stamp"),
               "goal": _text(msg.goal, f"{s}.goal"), "primitive": name,
               "params": _rows(msg.params, spec.dim if spec else 1, f"{s}.params"),
               "models": [str(m) for m in msg.models]}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/srv/ScoreCandidates request ({exc})") from None
    return ScoreRequest.from_doc(doc)


def score_response_to_msg(response: ScoreResponse, types, into=None):
    """ScoreCandidates.Response of a ScoreResponse (filled into `into`, a service's response
    object, when given)."""
    types = as_message_types(types)
    fields = {"request_id": str(response.request_id), "scores": _member_scores(types, response.scores),
              "errors": [types.new(ifc.MODEL_ERROR, model=str(k), message=str(v)) for k, v in response.errors.items()]}
    if into is None:
        return types.new(ifc.SCORE_CANDIDATES + "_Response", **fields)
    for key, value in fields.items():
        setattr(into, key, value)
    return into


def score_response_from_msg(msg) -> ScoreResponse:
    """A validated ScoreResponse of a ScoreCandidates.Response."""
    s = "ScoreCandidates.Response"
    try:
        doc = {"request_id": _text(msg.request_id, f"{s}.request_id"), "scores": _scores_doc(msg.scores, f"{s}.scores"),
               "errors": {_text(e.model, f"{s}.errors.model"): e.message for e in msg.errors}}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/srv/ScoreCandidates response ({exc})") from None
    return ScoreResponse.from_doc(doc)


# -- primitive execution ------------------------------------------------------------------------


def primitive_goal_to_msg(command: PrimitiveCommand, types):
    """ExecutePrimitive.Goal of a PrimitiveCommand."""
    types = as_message_types(types)
    p = command.primitive
    primitive = types.new(ifc.PRIMITIVE, name=p.name,
                          params=types.sequence(np.asarray(p.params, np.float64).reshape(-1), np.float64))
    return types.new(ifc.EXECUTE_PRIMITIVE + "_Goal", decision_id=int(command.decision_id), primitive=primitive,
                     source=str(command.source))


def primitive_goal_from_msg(msg) -> PrimitiveCommand:
    """A validated PrimitiveCommand of an ExecutePrimitive.Goal."""
    s = "ExecutePrimitive.Goal"
    try:
        doc = {"decision_id": int(msg.decision_id), "name": _text(msg.primitive.name, f"{s}.primitive.name"),
               "params": _numbers(msg.primitive.params, f"{s}.primitive.params").tolist(),
               "source": _text(msg.source, f"{s}.source")}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/action/ExecutePrimitive goal ({exc})") from None
    return PrimitiveCommand.from_doc(doc)


def executor_status_to_msg(status: ExecutorStatus, types):
    """robot_rewards_interfaces/msg/ExecutorStatus of an ExecutorStatus."""
    types = as_message_types(types)
    return types.new(ifc.EXECUTOR_STATUS, stamp=_time(types, status.stamp), decision_id=int(status.decision_id),
                     state=status.state, error_code=int(status.error_code), error_string=str(status.error_string),
                     segment=int(status.segment), segments=int(status.segments))


def executor_status_from_msg(msg) -> ExecutorStatus:
    """A validated ExecutorStatus of an ExecutorStatus message."""
    s = "ExecutorStatus"
    try:
        doc = {"decision_id": int(msg.decision_id), "state": _text(msg.state, f"{s}.state"),
               "error_code": int(msg.error_code), "error_string": _text(msg.error_string, f"{s}.error_string"),
               "segment": int(msg.segment), "segments": int(msg.segments), "stamp": _stamp(msg.stamp, f"{s}.stamp")}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/msg/ExecutorStatus ({exc})") from None
    return ExecutorStatus.from_doc(doc)


def execute_result_to_msg(status: ExecutorStatus, types, into=None):
    """ExecutePrimitive.Result of a terminal ExecutorStatus (filled into `into` when given)."""
    types = as_message_types(types)
    fields = {"error_code": int(status.error_code), "error_string": str(status.error_string), "state": status.state,
              "segment": int(status.segment), "segments": int(status.segments)}
    if into is None:
        return types.new(ifc.EXECUTE_PRIMITIVE + "_Result", **fields)
    for key, value in fields.items():
        setattr(into, key, value)
    return into


def status_of_result(decision_id: int, result, stamp: tuple[int, int] = (0, 0)) -> ExecutorStatus:
    """The terminal ExecutorStatus an ExecutePrimitive.Result reports (validated)."""
    s = "ExecutePrimitive.Result"
    try:
        state = _text(result.state, f"{s}.state")
        code = int(result.error_code)
        doc = {"decision_id": int(decision_id), "error_code": code,
               "state": state or ("succeeded" if code == 0 else "rejected" if code in REJECT_CODES else "failed"),
               "error_string": _text(result.error_string, f"{s}.error_string"), "segment": int(result.segment),
               "segments": int(result.segments), "stamp": list(stamp)}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/action/ExecutePrimitive result ({exc})") from None
    status = ExecutorStatus.from_doc(doc)
    if status.state not in TERMINAL_STATES:
        raise PayloadError(f"{s}.state: {status.state!r} is not a final state {TERMINAL_STATES}")
    return status


def execute_feedback_to_msg(status: ExecutorStatus, label: str, types, into=None):
    """ExecutePrimitive.Feedback of an 'executing' status (the segment now sent)."""
    types = as_message_types(types)
    fields = {"segment": int(status.segment), "segments": int(status.segments), "label": str(label)}
    if into is None:
        return types.new(ifc.EXECUTE_PRIMITIVE + "_Feedback", **fields)
    for key, value in fields.items():
        setattr(into, key, value)
    return into


# -- task and policy status ---------------------------------------------------------------------


def task_status_to_msg(task: TaskStatus, types):
    """robot_rewards_interfaces/msg/TaskStatus of a TaskStatus."""
    types = as_message_types(types)
    return types.new(ifc.TASK_STATUS, stamp=_time(types, task.stamp), task=str(task.task), episode=int(task.episode),
                     success=bool(task.success), quality=float(task.quality), max_steps=int(task.max_steps))


def task_status_from_msg(msg) -> TaskStatus:
    """A validated TaskStatus of a TaskStatus message."""
    s = "TaskStatus"
    try:
        doc = {"task": _text(msg.task, f"{s}.task"), "episode": int(msg.episode), "success": bool(msg.success),
               "quality": float(msg.quality), "max_steps": int(msg.max_steps), "stamp": _stamp(msg.stamp, f"{s}.stamp")}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/msg/TaskStatus ({exc})") from None
    return TaskStatus.from_doc(doc)


def _opt(value, default):
    return default if value is None else value


def policy_status_to_msg(status: PolicyStatus, types):
    """robot_rewards_interfaces/msg/PolicyStatus of a PolicyStatus."""
    types = as_message_types(types)
    inputs = [types.new(ifc.INPUT_STATUS, name=str(name), topic=str(v.get("topic", "")),
                        age=float(_opt(v.get("age"), -1.0)), publishers=int(_opt(v.get("publishers"), -1)))
              for name, v in status.inputs.items()]
    sc, task = status.scorer, status.task or {}
    return types.new(
        ifc.POLICY_STATUS, stamp=_time(types, status.stamp), state=status.state, code=status.code, reason=status.reason,
        decisions=int(status.decisions), max_decisions=int(status.max_decisions), inputs=inputs,
        scorer_service=str(sc.get("topic", "")), scorer_servers=int(_opt(sc.get("subscribers"), -1)),
        scorer_available=bool(sc.get("available", False)), scorer_timeouts=int(sc.get("timeouts", 0)),
        on_score_timeout=str(sc.get("on_timeout", "")), scored=bool(sc.get("scored", True)),
        has_task="success" in task, task=str(task.get("task", "")), episode=int(task.get("episode", 0)),
        task_success=bool(task.get("success", False)), task_quality=float(task.get("quality", 0.0)),
        task_source=str(task.get("source", "")), has_success_reward="success_reward" in task,
        success_reward=float(task.get("success_reward", 0.0)), success_threshold=float(task.get("threshold", 0.0)))


def policy_status_from_msg(msg) -> PolicyStatus:
    """A validated PolicyStatus of a PolicyStatus message."""
    s = "PolicyStatus"
    try:
        inputs = {}
        for i in msg.inputs:
            age = float(i.age)
            inputs[_text(i.name, f"{s}.inputs.name")] = {
                "topic": _text(i.topic, f"{s}.inputs.topic"), "age": None if age < 0 or math.isnan(age) else age,
                "publishers": None if int(i.publishers) < 0 else int(i.publishers)}
        task = None
        if msg.has_task:
            task = {"task": msg.task, "episode": int(msg.episode), "success": bool(msg.task_success),
                    "quality": float(msg.task_quality), "source": msg.task_source}
        if msg.has_success_reward:
            task = {**(task or {}), "success_reward": float(msg.success_reward),
                    "threshold": float(msg.success_threshold)}
        doc = {"state": _text(msg.state, f"{s}.state"), "code": _text(msg.code, f"{s}.code"),
               "reason": _text(msg.reason, f"{s}.reason"), "decisions": int(msg.decisions),
               "max_decisions": int(msg.max_decisions), "inputs": inputs,
               "scorer": {"topic": msg.scorer_service,
                          "subscribers": None if int(msg.scorer_servers) < 0 else int(msg.scorer_servers),
                          "available": bool(msg.scorer_available), "timeouts": int(msg.scorer_timeouts),
                          "on_timeout": msg.on_score_timeout, "scored": bool(msg.scored)},
               "task": task, "stamp": _stamp(msg.stamp, f"{s}.stamp")}
    except AttributeError as exc:
        raise PayloadError(f"{s}: not a robot_rewards_interfaces/msg/PolicyStatus ({exc})") from None
    return PolicyStatus.from_doc(doc)


# -- any form to a payload ----------------------------------------------------------------------

_FROM_MSG = {
    CandidateSet: candidate_set_from_msg,
    ScoreRequest: score_request_from_msg,
    ScoreResponse: score_response_from_msg,
    PrimitiveCommand: primitive_goal_from_msg,
    ExecutorStatus: executor_status_from_msg,
    TaskStatus: task_status_from_msg,
    PolicyStatus: policy_status_from_msg,
}


def to_payload(cls, value):
    """A validated `cls` payload of `value`: the payload itself, a typed robot_rewards_interfaces
    message (what the nodes exchange), or JSON text / a std_msgs/String (bags recorded before the
    typed interfaces). Anything wrong is one PayloadError."""
    if isinstance(value, cls):
        return value
    if isinstance(value, (str, bytes)) or isinstance(getattr(value, "data", None), str):
        return cls.from_json(value)
    return _FROM_MSG[cls](value)


# GoalStatus values of action_msgs (rclpy's ClientGoalHandle.get_result_async() reports these).
GOAL_SUCCEEDED, GOAL_CANCELED, GOAL_ABORTED = 4, 5, 6


def status_of_action_result(decision_id: int, goal_status: int, result, stamp: tuple[int, int] = (0, 0)
                            ) -> ExecutorStatus:
    """The terminal ExecutorStatus of an ExecutePrimitive goal that ended with `goal_status` and
    `result`. A result that names its state is taken as is; an empty one (the execute callback
    raised, or the server went away) is a failure unless the goal SUCCEEDED: an aborted goal with
    error_code 0 must not read as success."""
    state = getattr(result, "state", "")
    if state in TERMINAL_STATES or goal_status == GOAL_SUCCEEDED:
        return status_of_result(decision_id, result, stamp)
    code = int(getattr(result, "error_code", 0) or 0)
    if goal_status == GOAL_CANCELED:
        code = code or EXECUTOR_CANCELED
        text = "the ExecutePrimitive goal was canceled"
    else:
        code = code or EXECUTOR_GOAL_REJECTED
        text = f"the ExecutePrimitive goal ended with status {goal_status} and no result (see the executor's log)"
    return ExecutorStatus(int(decision_id), "failed", code, str(getattr(result, "error_string", "") or text),
                          0, 0, stamp)

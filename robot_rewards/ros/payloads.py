"""JSON payloads carried in std_msgs/String between the nodes (and recorded in bags).

This package is ament_python, so it cannot generate message types; standard messages carry
the data instead. A candidate set is one JSON document in one std_msgs/String rather than a
Float64MultiArray plus a separate header message, because one message is atomic (nothing to
pair up across topics), self-describing (`schema`, `version`) and readable with
`ros2 topic echo`. Floats survive exactly (JSON writes Python's round-trip repr); NaN and inf
are refused. Every payload is a small dataclass with `to_json` / `from_json`; malformed JSON
raises PayloadError (a MessageConversionError) naming the field, and nothing else: a node
handler catches that one type. Parsing is strict because a message comes from anyone on the
graph: text over MAX_PAYLOAD_CHARS or nested deeper than MAX_PAYLOAD_DEPTH is refused before
it is walked, integers must be JSON integers (not `true`) within int64 (stamp seconds within
int32, as builtin_interfaces/Time holds them), numbers must fit a float64, and indices
(`chosen`, `order`, `rejected`) must name one of the N candidates.

Schemas (version 1):

- `robot_rewards/candidate_set`: decision_id, stamp [sec, nanosec] of the cloud, goal,
  primitive, param_names, params (N x D), seeds (N), clipped (N), scores
  {family: members (K x N)}, utilities (N or null), chosen (index or null), order (indices,
  best first), rejected {index: reason}, selector (which selection code ran).
- `robot_rewards/score_request`: request_id, stamp of the cloud to score in, goal,
  primitive, params (N x D), models (names; [] = all).
- `robot_rewards/score_response`: request_id, scores {model: members (K x N)},
  errors {model: message}.
- `robot_rewards/primitive`: decision_id, name, params (D), source (policy | console | ...).
- `robot_rewards/executor_status`: decision_id, state (executing | succeeded | failed |
  rejected), error_code (FollowJointTrajectory code, or one of the EXECUTOR_* codes),
  error_string, segment, segments, stamp.
- `robot_rewards/task_status`: task, episode (the scene's seed), success, quality, max_steps
  (the task's step budget, 0 = none), stamp (what the sim bridge knows and a robot does not).
- `robot_rewards/policy_status`: state (idle | scoring | executing | done), code (a stable
  word for why: deciding, no_cloud, no_goal, no_reward_server, scorer_timeout, settling, ...),
  reason (one line naming the topic or node), decisions, max_decisions, inputs {name: {topic,
  age (s since the last message, null: none yet), publishers}}, scorer {topic, subscribers,
  available, timeouts, on_timeout}, task {success, quality, source} or null, stamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import PRIMITIVE_SPECS, Primitive
from robot_rewards.ros.convert_common import MessageConversionError

VERSION = 1

# Limits on what a parser walks; the largest real payload (a candidate set of a few hundred
# candidates with several scorer ensembles) is tens of KiB deep 4 levels.
MAX_PAYLOAD_CHARS = 1 << 20  # 1 MiB of JSON text
MAX_PAYLOAD_DEPTH = 16  # nesting levels of objects/arrays (a candidate set uses 4)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)


class PayloadError(MessageConversionError):
    """A JSON payload that is malformed, of another schema or of an unsupported version."""


def _dumps(schema: str, body: dict) -> str:
    try:
        return json.dumps({"schema": schema, "version": VERSION, **body}, allow_nan=False,
                          separators=(",", ":"))
    except ValueError as exc:
        raise PayloadError(f"{schema}: cannot encode non-finite numbers ({exc})") from None


def _loads(text, schema: str) -> dict:
    if not isinstance(text, (str, bytes, bytearray)):
        text = getattr(text, "data", text)  # a std_msgs/String
    if not isinstance(text, (str, bytes, bytearray)):
        raise PayloadError(f"{schema}: not valid JSON (expected text, got {type(text).__name__})")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError(f"{schema}: {len(text)} characters of JSON, more than the limit of {MAX_PAYLOAD_CHARS}")
    try:
        doc = json.loads(text)
    except RecursionError:  # the C scanner recurses per nesting level
        raise PayloadError(f"{schema}: nested deeper than {MAX_PAYLOAD_DEPTH} levels") from None
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{schema}: not valid JSON ({exc}): {str(text)[:80]!r}") from None
    _check_depth(doc, schema)
    if not isinstance(doc, dict):
        raise PayloadError(f"{schema}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != schema:
        raise PayloadError(f"expected schema '{schema}', got {_short(doc.get('schema'))}")
    version = doc.get("version")
    if not _is_int(version) or version != VERSION:
        raise PayloadError(f"{schema}: version {_short(version)} is not supported (this code reads {VERSION})")
    return doc


def _check_depth(doc, schema: str) -> None:
    """PayloadError when objects/arrays nest deeper than MAX_PAYLOAD_DEPTH (walked without
    recursion, so a deep document cannot exhaust the stack here or in a later repr)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_PAYLOAD_DEPTH:
            raise PayloadError(f"{schema}: nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _short(value) -> str:
    """repr of a field value for an error message, cut to one short line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value) -> bool:
    """A JSON integer (bool is an int subclass in Python but `true` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _get(doc: dict, key: str, schema: str, kind=None, default: Any = ...):
    if key not in doc:
        if default is not ...:
            return default
        raise PayloadError(f"{schema}: missing field '{key}'")
    value = doc[key]
    if kind is not None and not isinstance(value, kind):
        raise PayloadError(f"{schema}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _int(doc: dict, key: str, schema: str, default: Any = ..., bounds: tuple[int, int] = _INT64) -> int:
    """An integer field within `bounds` (int64 by default); `true`/`false` are refused."""
    if key not in doc and default is not ...:
        return default
    value = _get(doc, key, schema)
    if not _is_int(value):
        raise PayloadError(f"{schema}.{key}: expected an integer, got {type(value).__name__}")
    if not bounds[0] <= value <= bounds[1]:
        raise PayloadError(f"{schema}.{key}: {_short(value)} is outside [{bounds[0]}, {bounds[1]}]")
    return value


def _strings(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PayloadError(f"{what}: expected a list of strings, got {_short(value)}")
    return list(value)


def _indices(value, n: int, what: str) -> list[int]:
    """Candidate indices in [0, n), each at most once."""
    if not isinstance(value, list):
        raise PayloadError(f"{what}: expected a list of candidate indices, got {type(value).__name__}")
    for i in value:
        if not _is_int(i) or not 0 <= i < n:
            raise PayloadError(f"{what}: {_short(i)} is not a candidate index in [0, {n})")
    if len(set(value)) != len(value):
        raise PayloadError(f"{what}: lists a candidate more than once")
    return list(value)


def _matrix(value, what: str, shape_hint: str, ndim: int = 2) -> np.ndarray:
    # Walk the leaves first: numpy would read "1.5" or true as numbers and raise
    # OverflowError (not ValueError) on an integer too large for a float64.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, (int, float)) or isinstance(item, bool):
            raise PayloadError(f"{what}: expected a {shape_hint} array of numbers, found {_short(item)}")
    try:
        arr = np.array(value, dtype=np.float64)
    except OverflowError:
        raise PayloadError(f"{what}: a number is too large for a float64") from None
    except (TypeError, ValueError):
        raise PayloadError(f"{what}: expected a {shape_hint} array of numbers") from None
    if arr.ndim != ndim or (arr.size and not np.all(np.isfinite(arr))):
        raise PayloadError(f"{what}: expected a finite {shape_hint} array, got shape {arr.shape}")
    return arr


def _stamp(value, what: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2 or not all(_is_int(v) for v in value)
            or not _INT32[0] <= value[0] <= _INT32[1] or not 0 <= value[1] < 1_000_000_000):
        raise PayloadError(f"{what}: expected [sec, nanosec] integers (sec in int32, nanosec in "
                           f"[0, 1e9)), got {_short(value)}")
    return int(value[0]), int(value[1])


def _primitive_name(value, what: str) -> str:
    if not isinstance(value, str) or value not in PRIMITIVE_SPECS:
        raise PayloadError(f"{what}: unknown primitive {_short(value)}; known: {sorted(PRIMITIVE_SPECS)}")
    return value


def _members(scores: dict, n: int, what: str) -> dict[str, np.ndarray]:
    if not isinstance(scores, dict):
        raise PayloadError(f"{what}: expected an object of family -> member scores")
    out = {}
    for name, members in scores.items():
        m = _matrix(members, f"{what}[{_short(name)}]", "(K, N)")
        if m.shape[1] != n or m.shape[0] < 1:
            raise PayloadError(f"{what}[{_short(name)}]: expected (K, {n}) member scores, got {m.shape}")
        out[str(name)] = m
    return out


class _Payload:
    """`from_json` (a schema'd JSON document) and `from_doc` (its parsed fields, also built from a
    typed robot_rewards_interfaces message) validate alike; `parse` passes instances through."""

    SCHEMA = ""

    @classmethod
    def from_json(cls, text):
        """Parse and validate JSON text (or a std_msgs/String); PayloadError otherwise."""
        return cls.from_doc(_loads(text, cls.SCHEMA))

    @classmethod
    def from_doc(cls, doc: dict):  # pragma: no cover - every payload defines it
        raise NotImplementedError

    @classmethod
    def parse(cls, value):
        """`value` itself when it is already this payload, else `from_json(value)`."""
        return value if isinstance(value, cls) else cls.from_json(value)


# -- candidate set ------------------------------------------------------------------------------

CANDIDATE_SET = "robot_rewards/candidate_set"


@dataclass(eq=False)
class CandidateSet(_Payload):
    """One decision: the N candidates, their scores per reward family and the selection."""

    SCHEMA = CANDIDATE_SET

    decision_id: int
    stamp: tuple[int, int]
    goal: str
    candidates: Candidates
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # family -> (K, N) member scores
    utilities: np.ndarray | None = None
    chosen: int | None = None
    order: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    selector: str = ""

    def chosen_primitive(self) -> Primitive | None:
        """The chosen candidate as a Primitive (None when nothing was feasible)."""
        return None if self.chosen is None else self.candidates.primitive(self.chosen)

    def to_json(self) -> str:
        c = self.candidates
        return _dumps(CANDIDATE_SET, {
            "decision_id": int(self.decision_id),
            "stamp": [int(self.stamp[0]), int(self.stamp[1])],
            "goal": self.goal,
            "primitive": c.name,
            "param_names": list(PRIMITIVE_SPECS[c.name].param_names),
            "params": c.params.tolist(),
            "seeds": c.seeds.tolist(),
            "clipped": c.clipped.tolist(),
            "scores": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in self.scores.items()},
            "utilities": None if self.utilities is None else np.asarray(self.utilities, np.float64).tolist(),
            "chosen": None if self.chosen is None else int(self.chosen),
            "order": [int(i) for i in self.order],
            "rejected": {str(int(k)): str(v) for k, v in self.rejected.items()},
            "selector": self.selector,
        })

    @classmethod
    def from_doc(cls, doc: dict) -> CandidateSet:
        s = CANDIDATE_SET
        name = _primitive_name(_get(doc, "primitive", s), f"{s}.primitive")
        names = _get(doc, "param_names", s, list)
        if names != list(PRIMITIVE_SPECS[name].param_names):
            raise PayloadError(f"{s}.param_names: {names} is not the layout of '{name}' "
                               f"{list(PRIMITIVE_SPECS[name].param_names)}")
        params = _matrix(_get(doc, "params", s, list), f"{s}.params", "(N, D)")
        if params.size == 0 or params.shape[1] != len(names):
            raise PayloadError(f"{s}.params: expected (N >= 1, {len(names)}), got {params.shape}")
        n = len(params)
        seeds = _get(doc, "seeds", s, list)
        clipped = _get(doc, "clipped", s, list)
        if len(seeds) != n or len(clipped) != n:
            raise PayloadError(f"{s}: {n} candidates need {n} seeds and clipped flags")
        if not all(_is_int(v) and _INT64[0] <= v <= _INT64[1] for v in seeds):
            raise PayloadError(f"{s}.seeds: expected int64 integers, got {_short(seeds)}")
        if not all(isinstance(v, bool) for v in clipped):
            raise PayloadError(f"{s}.clipped: expected true/false flags, got {_short(clipped)}")
        utilities = _get(doc, "utilities", s, default=None)
        if utilities is not None:
            utilities = _matrix(utilities, f"{s}.utilities", "(N,)", ndim=1)
            if utilities.shape != (n,):
                raise PayloadError(f"{s}.utilities: expected {n} values, got {utilities.shape[0]}")
        chosen = _get(doc, "chosen", s, default=None)
        if chosen is not None and (not _is_int(chosen) or not 0 <= chosen < n):
            raise PayloadError(f"{s}.chosen: {_short(chosen)} is not a candidate index in [0, {n})")
        order = _indices(_get(doc, "order", s, default=[]), n, f"{s}.order")
        rejected_raw = _get(doc, "rejected", s, dict, default={})
        rejected = {}
        for k, v in rejected_raw.items():
            # int() alone would take ' 1', '1_0' or 4000 digits; a key is a plain decimal index.
            if not (k.isascii() and k.isdigit() and len(k) < 10 and int(k) < n):
                raise PayloadError(f"{s}.rejected: key {_short(k)} is not a candidate index in [0, {n})")
            if not isinstance(v, str):
                raise PayloadError(f"{s}.rejected[{_short(k)}]: expected a reason string, got {type(v).__name__}")
            rejected[int(k)] = v
        return cls(
            decision_id=_int(doc, "decision_id", s),
            stamp=_stamp(_get(doc, "stamp", s), f"{s}.stamp"),
            goal=str(_get(doc, "goal", s, str)),
            candidates=Candidates(name, params, seeds, clipped),
            scores=_members(_get(doc, "scores", s, dict, default={}), n, f"{s}.scores"),
            utilities=utilities,
            chosen=chosen,
            order=order,
            rejected=rejected,
            selector=str(_get(doc, "selector", s, str, default="")),
        )


# -- score request / response -------------------------------------------------------------------

SCORE_REQUEST = "robot_rewards/score_request"
SCORE_RESPONSE = "robot_rewards/score_response"


@dataclass(eq=False)
class ScoreRequest(_Payload):
    """Score `candidates` in the cloud stamped `stamp` for `goal` with `models` ([] = all)."""

    SCHEMA = SCORE_REQUEST

    request_id: str
    stamp: tuple[int, int]
    goal: str
    candidates: Candidates
    models: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        c = self.candidates
        return _dumps(SCORE_REQUEST, {
            "request_id": self.request_id, "stamp": [int(self.stamp[0]), int(self.stamp[1])],
            "goal": self.goal, "primitive": c.name, "params": c.params.tolist(),
            "models": list(self.models),
        })

    @classmethod
    def from_doc(cls, doc: dict) -> ScoreRequest:
        s = SCORE_REQUEST
        name = _primitive_name(_get(doc, "primitive", s), f"{s}.primitive")
        dim = PRIMITIVE_SPECS[name].dim
        params = _matrix(_get(doc, "params", s, list), f"{s}.params", "(N, D)")
        if params.size == 0 or params.shape[1] != dim:
            raise PayloadError(f"{s}.params: expected (N >= 1, {dim}) for '{name}', got {params.shape}")
        n = len(params)
        models = _strings(_get(doc, "models", s, default=[]), f"{s}.models")
        return cls(str(_get(doc, "request_id", s, str)), _stamp(_get(doc, "stamp", s), f"{s}.stamp"),
                   str(_get(doc, "goal", s, str)),
                   Candidates(name, params, np.zeros(n, np.int64), np.zeros(n, bool)),
                   models)


@dataclass(eq=False)
class ScoreResponse(_Payload):
    """Member scores per model for one request, and an error message per failed model."""

    SCHEMA = SCORE_RESPONSE

    request_id: str
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return _dumps(SCORE_RESPONSE, {
            "request_id": self.request_id,
            "scores": {k: np.asarray(v, np.float64).tolist() for k, v in self.scores.items()},
            "errors": dict(self.errors),
        })

    @classmethod
    def from_doc(cls, doc: dict) -> ScoreResponse:
        s = SCORE_RESPONSE
        raw = _get(doc, "scores", s, dict, default={})
        scores = {}
        for name, members in raw.items():
            m = _matrix(members, f"{s}.scores[{_short(name)}]", "(K, N)")
            if m.shape[0] < 1 or m.shape[1] < 1:
                raise PayloadError(f"{s}.scores[{_short(name)}]: expected (K, N) with K, N >= 1, got {m.shape}")
            scores[str(name)] = m
        errors = _get(doc, "errors", s, dict, default={})
        bad = next((k for k, v in errors.items() if not isinstance(v, str)), None)
        if bad is not None:
            raise PayloadError(f"{s}.errors[{_short(bad)}]: expected a message string, got {type(errors[bad]).__name__}")
        return cls(str(_get(doc, "request_id", s, str)), scores, dict(errors))


# -- primitive command and executor status ----------------------------------------------------

PRIMITIVE = "robot_rewards/primitive"
EXECUTOR_STATUS = "robot_rewards/executor_status"

# Executor failure codes, negative and below control_msgs' FollowJointTrajectory codes (0..-5).
EXECUTOR_PLANNING_FAILED = -100
EXECUTOR_BUSY = -101
EXECUTOR_NO_SERVER = -102
EXECUTOR_GOAL_REJECTED = -103
EXECUTOR_STALE_STATE = -104
EXECUTOR_BAD_INPUT = -105
EXECUTOR_GRIPPER_FAILED = -106
EXECUTOR_CANCELED = -107


@dataclass(eq=False)
class PrimitiveCommand(_Payload):
    """A primitive to execute, tagged with the decision it came from."""

    SCHEMA = PRIMITIVE

    decision_id: int
    primitive: Primitive
    source: str = "policy"

    def to_json(self) -> str:
        return _dumps(PRIMITIVE, {"decision_id": int(self.decision_id), "name": self.primitive.name,
                                  "params": self.primitive.params.tolist(), "source": self.source})

    @classmethod
    def from_doc(cls, doc: dict) -> PrimitiveCommand:
        s = PRIMITIVE
        name = _primitive_name(_get(doc, "name", s), f"{s}.name")
        params = _matrix(_get(doc, "params", s, list), f"{s}.params", "(D,)", ndim=1)
        if params.shape != (PRIMITIVE_SPECS[name].dim,):
            raise PayloadError(f"{s}.params: '{name}' takes {PRIMITIVE_SPECS[name].dim} parameters, "
                               f"got {params.shape[0]}")
        return cls(_int(doc, "decision_id", s), Primitive(name, params),
                   str(_get(doc, "source", s, str, default="")))


TERMINAL_STATES = ("succeeded", "failed", "rejected")


@dataclass(eq=False)
class ExecutorStatus(_Payload):
    """Progress of one primitive: executing, or its terminal state with the error code."""

    SCHEMA = EXECUTOR_STATUS

    decision_id: int
    state: str
    error_code: int = 0
    error_string: str = ""
    segment: int = 0
    segments: int = 0
    stamp: tuple[int, int] = (0, 0)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_json(self) -> str:
        return _dumps(EXECUTOR_STATUS, {
            "decision_id": int(self.decision_id), "state": self.state, "error_code": int(self.error_code),
            "error_string": self.error_string, "segment": int(self.segment), "segments": int(self.segments),
            "stamp": [int(self.stamp[0]), int(self.stamp[1])],
        })

    @classmethod
    def from_doc(cls, doc: dict) -> ExecutorStatus:
        s = EXECUTOR_STATUS
        state = _get(doc, "state", s, str)
        if state not in ("executing", *TERMINAL_STATES):
            raise PayloadError(f"{s}.state: unknown state {state!r}")
        return cls(_int(doc, "decision_id", s), state, _int(doc, "error_code", s, 0),
                   str(_get(doc, "error_string", s, str, "")), _int(doc, "segment", s, 0),
                   _int(doc, "segments", s, 0), _stamp(_get(doc, "stamp", s, default=[0, 0]), f"{s}.stamp"))


# -- task and policy status -----------------------------------------------------------------------

TASK_STATUS = "robot_rewards/task_status"
POLICY_STATUS = "robot_rewards/policy_status"
POLICY_STATES = ("idle", "scoring", "executing", "done")


def _number(doc: dict, key: str, schema: str) -> float:
    value = _get(doc, key, schema)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise PayloadError(f"{schema}.{key}: expected a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:
        raise PayloadError(f"{schema}.{key}: too large for a float64") from None
    if not np.isfinite(value):
        raise PayloadError(f"{schema}.{key}: expected a finite number")
    return value


@dataclass(eq=False)
class TaskStatus(_Payload):
    """Whether the task of the current scene is solved (the sim bridge knows; a robot does not)."""

    SCHEMA = TASK_STATUS

    task: str
    episode: int
    success: bool
    quality: float
    max_steps: int = 0
    stamp: tuple[int, int] = (0, 0)

    def to_json(self) -> str:
        return _dumps(TASK_STATUS, {"task": self.task, "episode": int(self.episode), "success": bool(self.success),
                                    "quality": float(self.quality), "max_steps": int(self.max_steps),
                                    "stamp": [int(self.stamp[0]), int(self.stamp[1])]})

    @classmethod
    def from_doc(cls, doc: dict) -> TaskStatus:
        s = TASK_STATUS
        return cls(_get(doc, "task", s, str), _int(doc, "episode", s), _get(doc, "success", s, bool),
                   _number(doc, "quality", s), _int(doc, "max_steps", s, 0, bounds=(0, _INT32[1])),
                   _stamp(_get(doc, "stamp", s, default=[0, 0]), f"{s}.stamp"))


@dataclass(eq=False)
class PolicyStatus(_Payload):
    """What the policy node is doing and, when it is not deciding, why (`code`, `reason`)."""

    SCHEMA = POLICY_STATUS

    state: str
    code: str
    reason: str
    decisions: int = 0
    max_decisions: int = 0
    inputs: dict = field(default_factory=dict)
    scorer: dict = field(default_factory=dict)
    task: dict | None = None
    stamp: tuple[int, int] = (0, 0)

    def to_json(self) -> str:
        return _dumps(POLICY_STATUS, {
            "state": self.state, "code": self.code, "reason": self.reason, "decisions": int(self.decisions),
            "max_decisions": int(self.max_decisions), "inputs": self.inputs, "scorer": self.scorer,
            "task": self.task, "stamp": [int(self.stamp[0]), int(self.stamp[1])]})

    @classmethod
    def from_doc(cls, doc: dict) -> PolicyStatus:
        s = POLICY_STATUS
        state = _get(doc, "state", s, str)
        if state not in POLICY_STATES:
            raise PayloadError(f"{s}.state: unknown state {_short(state)}")
        inputs = _get(doc, "inputs", s, dict, {})
        if not all(isinstance(v, dict) for v in inputs.values()):
            raise PayloadError(f"{s}.inputs: expected an object per input")
        task = _get(doc, "task", s, default=None)
        if task is not None and not isinstance(task, dict):
            raise PayloadError(f"{s}.task: expected an object or null")
        return cls(state, _get(doc, "code", s, str), _get(doc, "reason", s, str), _int(doc, "decisions", s, 0),
                   _int(doc, "max_decisions", s, 0), inputs, _get(doc, "scorer", s, dict, {}), task,
                   _stamp(_get(doc, "stamp", s, default=[0, 0]), f"{s}.stamp"))


def stamp_of_ns(ns: int) -> tuple[int, int]:
    """(sec, nanosec) of integer nanoseconds."""
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return sec, nsec


def ns_of_stamp(stamp: tuple[int, int]) -> int:
    """Integer nanoseconds of (sec, nanosec)."""
    return int(stamp[0]) * 1_000_000_000 + int(stamp[1])

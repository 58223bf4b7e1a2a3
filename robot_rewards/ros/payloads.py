"""JSON payloads carried in std_msgs/String between the nodes (and recorded in bags).

This package is ament_python, so it cannot generate message types; standard messages carry
the data instead. A candidate set is one JSON document in one std_msgs/String rather than a
Float64MultiArray plus a separate header message, because one message is atomic (nothing to
pair up across topics), self-describing (`schema`, `version`) and readable with
`ros2 topic echo`. Floats survive exactly (JSON writes Python's round-trip repr); NaN and inf
are refused. Every payload is a small dataclass with `to_json` / `from_json`; malformed JSON
raises PayloadError (a MessageConversionError) naming the field.

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


class PayloadError(MessageConversionError):
    """A JSON payload that is malformed, of another schema or of an unsupported version."""


def _dumps(schema: str, body: dict) -> str:
    try:
        return json.dumps({"schema": schema, "version": VERSION, **body}, allow_nan=False,
                          separators=(",", ":"))
    except ValueError as exc:
        raise PayloadError(f"{schema}: cannot encode non-finite numbers ({exc})") from None


def _loads(text, schema: str) -> dict:
    if not isinstance(text, str):
        text = getattr(text, "data", text)  # a std_msgs/String
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{schema}: not valid JSON ({exc}): {str(text)[:80]!r}") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"{schema}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != schema:
        raise PayloadError(f"expected schema '{schema}', got {doc.get('schema')!r}")
    if doc.get("version") != VERSION:
        raise PayloadError(f"{schema}: version {doc.get('version')!r} is not supported (this code reads {VERSION})")
    return doc


def _get(doc: dict, key: str, schema: str, kind=None, default: Any = ...):
    if key not in doc:
        if default is not ...:
            return default
        raise PayloadError(f"{schema}: missing field '{key}'")
    value = doc[key]
    if kind is not None and not isinstance(value, kind):
        raise PayloadError(f"{schema}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _matrix(value, what: str, shape_hint: str, ndim: int = 2) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PayloadError(f"{what}: expected a {shape_hint} array of numbers") from None
    if arr.ndim != ndim or (arr.size and not np.all(np.isfinite(arr))):
        raise PayloadError(f"{what}: expected a finite {shape_hint} array, got shape {arr.shape}")
    return arr


def _stamp(value, what: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) for v in value)
            or not 0 <= value[1] < 1_000_000_000):
        raise PayloadError(f"{what}: expected [sec, nanosec] integers, got {value!r}")
    return int(value[0]), int(value[1])


def _primitive_name(value, what: str) -> str:
    if value not in PRIMITIVE_SPECS:
        raise PayloadError(f"{what}: unknown primitive {value!r}; known: {sorted(PRIMITIVE_SPECS)}")
    return value


def _members(scores: dict, n: int, what: str) -> dict[str, np.ndarray]:
    if not isinstance(scores, dict):
        raise PayloadError(f"{what}: expected an object of family -> member scores")
    out = {}
    for name, members in scores.items():
        m = _matrix(members, f"{what}['{name}']", "(K, N)")
        if m.shape[1] != n or m.shape[0] < 1:
            raise PayloadError(f"{what}['{name}']: expected (K, {n}) member scores, got {m.shape}")
        out[str(name)] = m
    return out


# -- candidate set ------------------------------------------------------------------------------

CANDIDATE_SET = "robot_rewards/candidate_set"


@dataclass(eq=False)
class CandidateSet:
    """One decision: the N candidates, their scores per reward family and the selection."""

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
    def from_json(cls, text) -> CandidateSet:
        s = CANDIDATE_SET
        doc = _loads(text, s)
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
        utilities = _get(doc, "utilities", s, default=None)
        if utilities is not None:
            utilities = _matrix(utilities, f"{s}.utilities", "(N,)", ndim=1)
            if utilities.shape != (n,):
                raise PayloadError(f"{s}.utilities: expected {n} values, got {utilities.shape[0]}")
        chosen = _get(doc, "chosen", s, default=None)
        if chosen is not None and (not isinstance(chosen, int) or not 0 <= chosen < n):
            raise PayloadError(f"{s}.chosen: {chosen!r} is not a candidate index in [0, {n})")
        order = _get(doc, "order", s, list, default=[])
        rejected_raw = _get(doc, "rejected", s, dict, default={})
        try:
            rejected = {int(k): str(v) for k, v in rejected_raw.items()}
        except ValueError:
            raise PayloadError(f"{s}.rejected: keys must be candidate indices") from None
        return cls(
            decision_id=int(_get(doc, "decision_id", s, int)),
            stamp=_stamp(_get(doc, "stamp", s), f"{s}.stamp"),
            goal=str(_get(doc, "goal", s, str)),
            candidates=Candidates(name, params, seeds, clipped),
            scores=_members(_get(doc, "scores", s, dict, default={}), n, f"{s}.scores"),
            utilities=utilities,
            chosen=chosen,
            order=[int(i) for i in order],
            rejected=rejected,
            selector=str(_get(doc, "selector", s, str, default="")),
        )


# -- score request / response -------------------------------------------------------------------

SCORE_REQUEST = "robot_rewards/score_request"
SCORE_RESPONSE = "robot_rewards/score_response"


@dataclass(eq=False)
class ScoreRequest:
    """Score `candidates` in the cloud stamped `stamp` for `goal` with `models` ([] = all)."""

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
    def from_json(cls, text) -> ScoreRequest:
        s = SCORE_REQUEST
        doc = _loads(text, s)
        name = _primitive_name(_get(doc, "primitive", s), f"{s}.primitive")
        dim = PRIMITIVE_SPECS[name].dim
        params = _matrix(_get(doc, "params", s, list), f"{s}.params", "(N, D)")
        if params.size == 0 or params.shape[1] != dim:
            raise PayloadError(f"{s}.params: expected (N >= 1, {dim}) for '{name}', got {params.shape}")
        n = len(params)
        models = _get(doc, "models", s, list, default=[])
        return cls(str(_get(doc, "request_id", s, str)), _stamp(_get(doc, "stamp", s), f"{s}.stamp"),
                   str(_get(doc, "goal", s, str)),
                   Candidates(name, params, np.zeros(n, np.int64), np.zeros(n, bool)),
                   [str(m) for m in models])


@dataclass(eq=False)
class ScoreResponse:
    """Member scores per model for one request, and an error message per failed model."""

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
    def from_json(cls, text) -> ScoreResponse:
        s = SCORE_RESPONSE
        doc = _loads(text, s)
        raw = _get(doc, "scores", s, dict, default={})
        scores = {}
        for name, members in raw.items():
            m = _matrix(members, f"{s}.scores['{name}']", "(K, N)")
            if m.shape[0] < 1 or m.shape[1] < 1:
                raise PayloadError(f"{s}.scores['{name}']: expected (K, N) with K, N >= 1, got {m.shape}")
            scores[str(name)] = m
        errors = _get(doc, "errors", s, dict, default={})
        return cls(str(_get(doc, "request_id", s, str)), scores, {str(k): str(v) for k, v in errors.items()})


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
class PrimitiveCommand:
    """A primitive to execute, tagged with the decision it came from."""

    decision_id: int
    primitive: Primitive
    source: str = "policy"

    def to_json(self) -> str:
        return _dumps(PRIMITIVE, {"decision_id": int(self.decision_id), "name": self.primitive.name,
                                  "params": self.primitive.params.tolist(), "source": self.source})

    @classmethod
    def from_json(cls, text) -> PrimitiveCommand:
        s = PRIMITIVE
        doc = _loads(text, s)
        name = _primitive_name(_get(doc, "name", s), f"{s}.name")
        params = _matrix(_get(doc, "params", s, list), f"{s}.params", "(D,)", ndim=1)
        if params.shape != (PRIMITIVE_SPECS[name].dim,):
            raise PayloadError(f"{s}.params: '{name}' takes {PRIMITIVE_SPECS[name].dim} parameters, "
                               f"got {params.shape[0]}")
        return cls(int(_get(doc, "decision_id", s, int)), Primitive(name, params),
                   str(_get(doc, "source", s, str, default="")))


TERMINAL_STATES = ("succeeded", "failed", "rejected")


@dataclass(eq=False)
class ExecutorStatus:
    """Progress of one primitive: executing, or its terminal state with the error code."""

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
    def from_json(cls, text) -> ExecutorStatus:
        s = EXECUTOR_STATUS
        doc = _loads(text, s)
        state = _get(doc, "state", s, str)
        if state not in ("executing", *TERMINAL_STATES):
            raise PayloadError(f"{s}.state: unknown state {state!r}")
        return cls(int(_get(doc, "decision_id", s, int)), state, int(_get(doc, "error_code", s, int, 0)),
                   str(_get(doc, "error_string", s, str, "")), int(_get(doc, "segment", s, int, 0)),
                   int(_get(doc, "segments", s, int, 0)), _stamp(_get(doc, "stamp", s, default=[0, 0]), f"{s}.stamp"))


def stamp_of_ns(ns: int) -> tuple[int, int]:
    """(sec, nanosec) of integer nanoseconds."""
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return sec, nsec


def ns_of_stamp(stamp: tuple[int, int]) -> int:
    """Integer nanoseconds of (sec, nanosec)."""
    return int(stamp[0]) * 1_000_000_000 + int(stamp[1])

"""Property-based tests of the ROS JSON payload parsers (robot_rewards.ros.payloads).

A payload comes from anyone on the graph, so whatever arrives (any text, any JSON value, a valid
document with one field replaced or removed, something that is not text at all) must end in a
parsed payload or one PayloadError on one short line, never another exception and never a hang
(each example has a deadline). A payload that parses must also write itself back out and parse again.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Primitive
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

PROPERTY = settings(max_examples=100, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

T0 = 1_700_000_000


def _good_docs() -> dict[str, tuple[type, dict]]:
    """One valid JSON object per payload type, with the class that parses it."""
    rng = np.random.default_rng(5)
    params = np.column_stack([rng.uniform(0.3, 0.7, (4, 2)), np.full((4, 1), 0.02),
                              rng.uniform(0.3, 0.7, (4, 2)), np.full((4, 1), 0.02), rng.uniform(-3, 3, (4, 1))])
    c = Candidates("pick_place", params, np.arange(4) + 10, np.arange(4) % 2 == 0)
    payloads = {
        "candidate_set": CandidateSet(3, (T0, 5), "g", c, {"pref": rng.normal(size=(2, 4))}, rng.normal(size=4),
                                      1, [1, 0, 2, 3], {0: "unreachable"}, "robot_rewards.selection"),
        "score_request": ScoreRequest("r", (T0, 0), "g", c, ["a"]),
        "score_response": ScoreResponse("r", {"a": np.ones((2, 4))}, {"b": "boom"}),
        "primitive": PrimitiveCommand(4, Primitive("pick_place", params[0])),
        "executor_status": ExecutorStatus(4, "failed", -4, "blocked", 2, 9, (5, 6)),
        "task_status": TaskStatus("place_block", 3, True, 0.25, 3, (7, 8)),
        "policy_status": PolicyStatus("idle", "no_cloud", "no cloud on /x", 2, 3,
                                      {"cloud": {"topic": "/x", "age": None}}, {"topic": "/r", "subscribers": 0},
                                      {"success": False}, (1, 2)),
    }
    return {kind: (type(p), json.loads(p.to_json())) for kind, p in payloads.items()}


GOOD = _good_docs()
KINDS = sorted(GOOD)

# JSON-like values: what json.loads can produce (NaN and inf included: Python's json reads them),
# with integers beyond int64 and float64 and short strings that look like field names or numbers.
SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.integers(-3, 12)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["", "pick_place", "push", "failed", "idle", "0", "1e999", "NaN"])
           | st.text(max_size=12))
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _parse_or_payload_error(cls, message) -> None:
    """Parse `message`; a parsed payload must round-trip. Only PayloadError may come out."""
    try:
        payload = cls.from_json(message)
    except PayloadError as exc:
        # one short line, as a node logs it (field names and values from the input are cut)
        assert "\n" not in str(exc) and len(str(exc)) < 500, str(exc)[:200]
        return
    try:
        cls.from_json(payload.to_json())
    except PayloadError:  # e.g. NaN inside a free-form status object: refused on the way out
        pass


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path into a JSON tree (object keys and list indices)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    out = []
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


@pytest.mark.parametrize("kind", KINDS)
@given(text=st.text(max_size=200))
@PROPERTY
def test_arbitrary_text_gives_a_payload_error(kind, text):
    cls, _ = GOOD[kind]
    _parse_or_payload_error(cls, text)


@pytest.mark.parametrize("kind", KINDS)
@given(value=JSON_VALUES, as_bytes=st.booleans())
@PROPERTY
def test_arbitrary_json_values_give_a_payload_error(kind, value, as_bytes):
    cls, _ = GOOD[kind]
    text = json.dumps(value)
    _parse_or_payload_error(cls, text.encode() if as_bytes else text)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@PROPERTY
def test_a_valid_document_with_one_field_changed_or_removed(kind, data):
    """The header is kept most of the time, so the field checks behind it are reached."""
    cls, good = GOOD[kind]
    doc = copy.deepcopy(good)
    path = data.draw(st.sampled_from(_paths(doc)), label="path")
    node = doc
    for key in path[:-1]:
        node = node[key]
    if data.draw(st.booleans(), label="remove"):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(JSON_VALUES, label="value")
    if data.draw(st.booleans(), label="extra key"):
        doc[data.draw(st.text(max_size=8), label="key")] = data.draw(JSON_VALUES, label="extra")
    _parse_or_payload_error(cls, json.dumps(doc))


@pytest.mark.parametrize("kind", KINDS)
@given(message=st.binary(max_size=64) | st.integers() | st.floats() | st.none()
       | st.lists(st.text(max_size=4), max_size=3) | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
@PROPERTY
def test_messages_that_are_not_text_give_a_payload_error(kind, message):
    """Raw bytes (any encoding, invalid UTF-8 included) and non-text objects, bare or as a
    std_msgs/String's `data`."""
    cls, _ = GOOD[kind]
    _parse_or_payload_error(cls, message)
    _parse_or_payload_error(cls, type("String", (), {"data": message})())


def test_every_good_document_parses():
    """The documents the properties start from are valid (else every example is an early error)."""
    for cls, good in GOOD.values():
        cls.from_json(json.dumps(good))


def test_field_names_from_the_message_are_quoted_and_cut():
    """A key with a newline or of any length (found by the properties above) stays one short line."""
    _, good = GOOD["score_response"]
    with pytest.raises(PayloadError, match=r"scores\['x+\.\.\.\]: expected a \(K, N\) array") as info:
        ScoreResponse.from_json(json.dumps({**good, "scores": {"x" * 5000 + "\nFAKE LOG LINE": None}}))
    assert "\n" not in str(info.value) and len(str(info.value)) < 200

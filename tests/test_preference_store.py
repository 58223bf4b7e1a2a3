"""The preference store: round trips, ranking expansion, bad input, migrations, crash safety,
concurrent readers and export/import. Real SQLite files and real subprocesses throughout."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.preferences import (
    ANSWERS,
    SCHEMA_VERSION,
    CorruptStoreError,
    DuplicateLabelError,
    LabelError,
    MissingArraysError,
    PreferenceStore,
    QueryInputError,
    SchemaVersionError,
    UnknownQueryError,
    UnknownSessionError,
    ranking_to_pairs,
    schema,
)
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.rewards.preference.scorer import PreferencePairs

TASK = "place_block"
GOAL = "put the red block on the green pad"


def make_candidates(rng, n=4, name="pick_place") -> Candidates:
    dim = PRIMITIVE_SPECS[name].dim
    return Candidates(name, rng.uniform(-0.3, 0.6, (n, dim)), rng.integers(0, 10_000, n), rng.random(n) < 0.3)


def make_cloud(rng, p=64):
    return rng.normal(0.5, 0.1, (p, 3)).astype(np.float32), rng.integers(0, 256, (p, 3), dtype=np.uint8)


def add_query(store, sid, rng, n=4, p=64, name="pick_place", task=TASK, **kw) -> int:
    pts, cols = make_cloud(rng, p)
    return store.add_query(sid, task, GOAL, make_candidates(rng, n, name), pts, cols, **kw)


def dump(root) -> dict:
    """Every row of every table, read through a separate plain sqlite3 connection."""
    conn = sqlite3.connect(str(root / "prefs.sqlite"))
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path):
    with PreferenceStore(tmp_path / "store") as s:
        yield s


# -- ranking -> pairs ------------------------------------------------------------------------

def test_full_ranking_gives_every_ordered_pair():
    assert ranking_to_pairs([2, 0, 1], 3) == [(2, 0, 1.0), (2, 1, 1.0), (0, 1, 1.0)]


def test_partial_ranking_beats_unranked_and_unranked_tie():
    assert ranking_to_pairs([1], 4) == [(1, 0, 1.0), (1, 2, 1.0), (1, 3, 1.0),
                                        (0, 2, 0.5), (0, 3, 0.5), (2, 3, 0.5)]
    assert ranking_to_pairs([1], 4, rest_equal=False) == [(1, 0, 1.0), (1, 2, 1.0), (1, 3, 1.0)]
    assert ranking_to_pairs([3, 0], 4) == [(3, 0, 1.0), (3, 1, 1.0), (3, 2, 1.0), (0, 1, 1.0), (0, 2, 1.0),
                                           (1, 2, 0.5)]
    assert ranking_to_pairs([], 3) == [(0, 1, 0.5), (0, 2, 0.5), (1, 2, 0.5)]
    assert ranking_to_pairs([], 3, rest_equal=False) == []
    assert ranking_to_pairs(np.array([1, 0]), 2) == [(1, 0, 1.0)]  # numpy ints are indices too


@pytest.mark.parametrize("n, k", [(5, 0), (5, 2), (5, 4), (5, 5), (8, 3)])
def test_ranking_with_rest_equal_compares_every_pair_once(n, k):
    order = list(np.random.default_rng(n * 10 + k).permutation(n)[:k])
    pairs = ranking_to_pairs(order, n)
    assert len(pairs) == n * (n - 1) // 2
    assert len({frozenset((a, b)) for a, b, _ in pairs}) == len(pairs)
    assert sum(y == 1.0 for _, _, y in pairs) == k * (k - 1) // 2 + k * (n - k)
    assert len(ranking_to_pairs(order, n, rest_equal=False)) == k * (k - 1) // 2 + k * (n - k)


@pytest.mark.parametrize("order, n, match", [
    ([0, 3], 3, "out of range"), ([-1], 3, "out of range"), ([1, 2, 1], 3, r"repeats candidate\(s\) \[1\]"),
    ([1.5], 3, "not an integer"), ([True], 3, "bool"), ("01", 3, "sequence"), ([0], 0, ">= 1"),
])
def test_bad_rankings_are_refused(order, n, match):
    with pytest.raises(LabelError, match=match):
        ranking_to_pairs(order, n)


# -- round trips -----------------------------------------------------------------------------

def test_query_round_trip(store):
    rng = np.random.default_rng(0)
    sid = store.start_session("alice", TASK, meta={"station": 2})
    cands = make_candidates(rng, n=5)
    pts, cols = make_cloud(rng, 100)
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    scores = ScoreSet.from_members(rng.normal(size=(3, 5)))
    qid = store.add_query(sid, TASK, GOAL, cands, pts, cols, image=image, scores=scores, meta={"step": 7})
    rec, arr = store.load_query(qid)
    assert (rec.id, rec.session_id, rec.task, rec.primitive, rec.goal, rec.n_candidates) == \
        (qid, sid, TASK, "pick_place", GOAL, 5)
    assert rec.meta == {"step": 7} and rec.shown_at is None and len(rec.uid) == 32
    assert (store.root / "arrays" / f"{rec.uid}.npz").is_file()
    np.testing.assert_array_equal(arr.points, pts)
    assert arr.points.dtype == np.float32 and arr.colors.dtype == np.uint8
    np.testing.assert_array_equal(arr.colors, cols)
    np.testing.assert_array_equal(arr.params, cands.params)
    np.testing.assert_array_equal(arr.seeds, cands.seeds)
    np.testing.assert_array_equal(arr.clipped, cands.clipped)
    np.testing.assert_array_equal(arr.image, image)
    np.testing.assert_array_equal(arr.scores, scores.members)
    back = arr.candidates(rec.primitive)
    np.testing.assert_array_equal(back.params, cands.params)
    # Optional arrays stay None; a plain (N,) score vector is one member.
    q2 = store.add_query(sid, TASK, GOAL, make_candidates(rng, 3, "push"), pts, scores=np.arange(3.0))
    _, arr2 = store.load_query(q2)
    assert arr2.colors is None and arr2.image is None and arr2.scores.shape == (1, 3)
    store.mark_shown(qid, 123.5)
    assert store.load_query(qid)[0].shown_at == 123.5
    assert [q.id for q in store.queries()] == [qid, q2]
    assert [q.id for q in store.queries(task="other")] == []
    assert [q.id for q in store.queries(session_id=sid)] == [qid, q2]
    assert store.sessions()[0]["meta"] == {"station": 2}
    store.end_session(sid)
    assert store.sessions()[0]["ended_at"] is not None


def test_bad_queries_are_refused_and_write_nothing(store):
    rng = np.random.default_rng(1)
    sid = store.start_session("alice", TASK)
    pts, cols = make_cloud(rng, 10)
    cands = make_candidates(rng)
    before = dump(store.root)
    for kwargs, exc, match in [
        (dict(points=pts[:, :2]), QueryInputError, r"\(P, 3\)"),
        (dict(points=np.full((4, 3), np.nan)), QueryInputError, "NaN"),
        (dict(colors=cols[:5]), QueryInputError, "must match points"),
        (dict(colors=cols / 255.0), QueryInputError, "uint8"),
        (dict(scores=np.zeros((2, 3))), QueryInputError, r"\(K, 4\)"),
        (dict(goal=" "), QueryInputError, "goal"),
        (dict(meta={"x": np.zeros(2)}), QueryInputError, "JSON"),
        (dict(session_id=99), UnknownSessionError, "no labelling session 99"),
    ]:
        args = dict(session_id=sid, task=TASK, goal=GOAL, candidates=cands, points=pts, colors=cols)
        args.update(kwargs)
        with pytest.raises(exc, match=match):
            store.add_query(**args)
    assert dump(store.root) == before
    assert list((store.root / "arrays").glob("*")) == []


def test_labels_rankings_and_pairs_round_trip(store):
    rng = np.random.default_rng(2)
    sid = store.start_session("alice", TASK)
    q1, q2 = add_query(store, sid, rng, n=3), add_query(store, sid, rng, n=4)
    store.mark_shown(q1, 10.0)
    lid = store.add_pair(q1, 0, 1, "a", "alice")
    store.add_pair(q1, 2, 1, "b", "alice", shown_at=11.0)
    store.add_pair(q1, 0, 2, "cant_tell", "alice")
    store.add_pair(q1, 0, 1, "tie", "bob")  # another labeller may answer the same pair
    rid = store.add_ranking(q2, [3, 1], "alice")  # 3 > 1 > {0, 2}, 0 ~ 2
    assert store.label_count() == 4 + 6 and store.label_count(TASK) == 10 and store.label_count("x") == 0
    assert store.rankings() == [{"id": rid, "query_id": q2, "labeller": "alice", "order": [3, 1],
                                 "rest_equal": True, "shown_at": None,
                                 "answered_at": store.rankings()[0]["answered_at"]}]
    labels = dump(store.root)["labels"]
    assert labels[0][0] == lid
    pairs = store.pairs()
    expected = [(q1, 0, 1, 1.0), (q1, 2, 1, 0.0), (q1, 0, 1, 0.5),
                (q2, 3, 1, 1.0), (q2, 3, 0, 1.0), (q2, 3, 2, 1.0), (q2, 1, 0, 1.0), (q2, 1, 2, 1.0),
                (q2, 0, 2, 0.5)]
    assert isinstance(pairs, PreferencePairs) and len(pairs) == len(expected) and pairs.primitive == "pick_place"
    arrays = {q: store.load_query(q)[1] for q in (q1, q2)}
    for i, (q, a, b, y) in enumerate(expected):
        np.testing.assert_array_equal(pairs.params_a[i], arrays[q].params[a])
        np.testing.assert_array_equal(pairs.params_b[i], arrays[q].params[b])
        np.testing.assert_array_equal(pairs.points[i], arrays[q].points)
        np.testing.assert_array_equal(pairs.colors[i], arrays[q].colors)
        assert pairs.labels[i] == y and pairs.goals[i] == GOAL
    with_ct = store.pairs(include_cant_tell=True)
    assert len(with_ct) == 10 and int(np.isnan(with_ct.labels).sum()) == 1 and with_ct.labelled.sum() == 9
    # shown_at: the query's by default, else the given time.
    shown = {r[0]: r[-1] for r in dump(store.root)["labels"]}
    assert shown[lid] == 10.0 and shown[lid + 1] == 11.0
    assert set(ANSWERS) == {"a", "b", "tie", "cant_tell"} and math.isnan(ANSWERS["cant_tell"])


def test_pairs_filters_resamples_and_refuses_empty(store):
    rng = np.random.default_rng(3)
    sid = store.start_session("alice", TASK)
    with pytest.raises(LabelError, match="no decisive or tie pair labels"):
        store.pairs()
    big = add_query(store, sid, rng, n=2, p=80)
    pts, _ = make_cloud(rng, 50)
    small = store.add_query(sid, TASK, GOAL, make_candidates(rng, 2), pts)  # no colours
    push = add_query(store, sid, rng, n=2, name="push", task="push_rope")
    for q in (big, small, push):
        store.add_pair(q, 0, 1, "a", "alice")
    with pytest.raises(LabelError, match=r"span primitives \['pick_place', 'push'\]; pass primitive="):
        store.pairs()
    assert len(store.pairs(task="push_rope")) == 1 and store.pairs(primitive="push").primitive == "push"
    # labels for other tasks only: the error names what the store does hold
    with pytest.raises(LabelError, match=rf"for task 'align_rope'; it holds labels for {TASK} \(2\), push_rope \(1\)"):
        store.pairs(task="align_rope")
    p = store.pairs(primitive="pick_place")
    assert p.points.shape == (2, 50, 3) and p.colors is None  # one query has no colours
    big_pts = store.load_query(big)[1].points
    # A fixed subset of the big cloud, in its original order, the same on every call.
    rows = [int(np.flatnonzero((big_pts == pt).all(axis=1))[0]) for pt in p.points[0]]
    assert rows == sorted(rows) and len(set(rows)) == 50
    np.testing.assert_array_equal(store.pairs(primitive="pick_place").points, p.points)
    np.testing.assert_array_equal(p.points[1], pts)
    store.add_pair(push, 0, 1, "cant_tell", "bob")
    with pytest.raises(LabelError, match="task 'nope'"):
        store.pairs(task="nope")


def test_demonstrations_round_trip(store):
    rng = np.random.default_rng(4)
    sid = store.start_session("alice", TASK, mode="demo")
    q = add_query(store, sid, rng, n=2, name="push")
    params = rng.uniform(0, 0.5, 6)
    did = store.add_demonstration(q, params, "alice")
    (d,) = store.demonstrations()
    assert d["id"] == did and d["query_id"] == q and d["primitive"] == "push" and d["task"] == TASK
    np.testing.assert_array_equal(d["params"], params)  # JSON floats round-trip exactly
    assert store.demonstrations(task="other") == []
    before = dump(store.root)
    with pytest.raises(LabelError, match=r"6 parameters, got shape \(7,\)"):
        store.add_demonstration(q, np.zeros(7), "alice")
    with pytest.raises(LabelError, match="NaN"):
        store.add_demonstration(q, np.full(6, np.nan), "alice")
    with pytest.raises(UnknownQueryError):
        store.add_demonstration(q + 1, params, "alice")
    assert dump(store.root) == before


# -- bad answers leave the database unchanged -------------------------------------------------

def test_bad_answers_are_refused_and_change_nothing(store):
    rng = np.random.default_rng(5)
    sid = store.start_session("alice", TASK)
    q = add_query(store, sid, rng, n=4)
    store.add_pair(q, 0, 1, "a", "alice")
    store.add_ranking(q, [3], "bob", rest_equal=False)  # 3 > 0, 3 > 1, 3 > 2
    before = dump(store.root)
    cases = [
        (lambda: store.add_pair(q, 0, 1, "b", "alice"), DuplicateLabelError, "already answered candidates 0 vs 1"),
        (lambda: store.add_pair(q, 1, 0, "a", "alice"), DuplicateLabelError, "already answered"),
        (lambda: store.add_pair(q, 2, 3, "a", "bob"), DuplicateLabelError, "from ranking"),
        (lambda: store.add_ranking(q, [2, 0], "alice"), DuplicateLabelError, "0 vs 1"),
        (lambda: store.add_pair(q + 7, 0, 1, "a", "alice"), UnknownQueryError, f"no query {q + 7}"),
        (lambda: store.add_ranking(q + 7, [0], "alice"), UnknownQueryError, "no query"),
        (lambda: store.load_query(q + 7), UnknownQueryError, "no query"),
        (lambda: store.mark_shown("1"), UnknownQueryError, "integer"),
        (lambda: store.add_pair(q, 0, 1, "A", "carol"), LabelError, "unknown answer 'A'"),
        (lambda: store.add_pair(q, 0, 4, "a", "carol"), LabelError, "out of range for 4 candidates"),
        (lambda: store.add_pair(q, 2, 2, "a", "carol"), LabelError, "both 2"),
        (lambda: store.add_pair(q, 0, 1, "a", ""), LabelError, "labeller"),
        (lambda: store.add_pair(q, 0, 1, "a", "carol", shown_at=math.inf), LabelError, "finite"),
        (lambda: store.add_ranking(q, [1, 1], "carol"), LabelError, "repeats"),
        (lambda: store.add_ranking(q, [], "carol", rest_equal=False), LabelError, "compares no pairs"),
        (lambda: store.undo_last(sid + 1), UnknownSessionError, "no labelling session"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
    assert dump(store.root) == before
    assert store.label_count() == 4


def test_undo_last_ranking_then_pair(store):
    rng = np.random.default_rng(7)
    s1, s2 = store.start_session("alice", TASK), store.start_session("bob", TASK)
    q1, q2 = add_query(store, s1, rng, n=3), add_query(store, s2, rng, n=3)
    store.add_pair(q1, 0, 1, "a", "alice")
    store.add_pair(q2, 0, 1, "b", "bob")
    rid = store.add_ranking(q1, [2, 0], "carol")  # 3 pairs
    assert store.label_count() == 5
    assert store.undo_last(s1) == f"ranking {rid}: [2, 0] of query {q1} by carol (3 pairs)"
    assert store.label_count() == 2 and store.rankings() == []
    assert store.undo_last(s1) == f"pair label 1: candidates 0 vs 1 = 'a' of query {q1} by alice"
    assert store.undo_last(s1) is None
    assert store.label_count() == 1  # bob's answer in the other session stays
    store.add_pair(q1, 1, 0, "a", "alice")  # undone answers can be given again
    assert store.label_count() == 2


# -- array files -----------------------------------------------------------------------------

def test_missing_or_corrupted_arrays_are_reported(store):
    rng = np.random.default_rng(8)
    sid = store.start_session("alice", TASK)
    q = add_query(store, sid, rng)
    store.add_pair(q, 0, 1, "a", "alice")
    path = store.root / "arrays" / f"{store.load_query(q)[0].uid}.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MissingArraysError, match="corrupted or were replaced"):
        store.load_query(q)
    path.unlink()
    with pytest.raises(MissingArraysError, match=f"arrays of query {q} are missing: .*{path.name}"):
        store.load_query(q)
    with pytest.raises(MissingArraysError):
        store.pairs()
    with pytest.raises(MissingArraysError):
        store.export(store.root.parent / "export")
    assert not (store.root.parent / "export").exists()
    path.write_bytes(data)
    assert store.load_query(q)[1].params.shape == (4, 7)


# -- opening: missing, newer, corrupted ------------------------------------------------------

def test_open_missing_store_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope" / "prefs.sqlite")):
        PreferenceStore(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_newer_schema_is_refused_and_not_modified(tmp_path):
    root = tmp_path / "store"
    PreferenceStore(root).close()
    conn = sqlite3.connect(str(root / "prefs.sqlite"))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    digest = hashlib.sha256((root / "prefs.sqlite").read_bytes()).hexdigest()
    with pytest.raises(SchemaVersionError, match=rf"created by a newer robot_rewards \(schema "
                                                 rf"{SCHEMA_VERSION + 3}, this reads up to {SCHEMA_VERSION}\); "
                                                 "upgrade robot_rewards"):
        PreferenceStore(root)
    assert hashlib.sha256((root / "prefs.sqlite").read_bytes()).hexdigest() == digest


def test_corrupted_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "prefs.sqlite").write_bytes(np.random.default_rng(9).bytes(8192))
    with pytest.raises(CorruptStoreError, match=f"{garbage / 'prefs.sqlite'} is not a readable"):
        PreferenceStore(garbage)
    # Someone else's SQLite database is not taken over.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(str(foreign / "prefs.sqlite"))
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStoreError, match="not a robot_rewards preference store"):
        PreferenceStore(foreign)
    # A real store whose table pages were overwritten.
    root = tmp_path / "damaged"
    rng = np.random.default_rng(9)
    with PreferenceStore(root) as s:
        sid = s.start_session("alice", TASK)
        q = add_query(s, sid, rng, n=40)
        for a in range(1, 40):
            s.add_pair(q, 0, a, "a", "alice", shown_at=1.0)
    db = root / "prefs.sqlite"
    data = bytearray(db.read_bytes())
    assert len(data) >= 4 * 4096
    data[2 * 4096: 4 * 4096] = rng.bytes(2 * 4096)
    db.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=str(db)):
        PreferenceStore(root)


# -- migrations ------------------------------------------------------------------------------

def build_v1_store(root, rng) -> dict:
    """A real schema-1 store, built with the kept v1 DDL (as an old robot_rewards wrote it)."""
    (root / "arrays").mkdir(parents=True)
    cands = make_candidates(rng, n=3)
    pts, cols = make_cloud(rng, 32)
    buf = io.BytesIO()
    np.savez(buf, points=pts, colors=cols, params=cands.params, seeds=cands.seeds, clipped=cands.clipped)
    data = buf.getvalue()
    (root / "arrays" / "q-uid-1.npz").write_bytes(data)
    conn = sqlite3.connect(str(root / "prefs.sqlite"), isolation_level=None)
    conn.execute("BEGIN")
    for sql in schema.V1_DDL:
        conn.execute(sql)
    conn.execute("INSERT INTO sessions VALUES (1, 's-uid-1', 'alice', ?, 'rank', 100.0, NULL, '{}')", (TASK,))
    conn.execute("INSERT INTO queries VALUES (1, 'q-uid-1', 1, ?, 'pick_place', ?, 3, ?, 101.0, '{}')",
                 (TASK, GOAL, hashlib.sha256(data).hexdigest()))
    conn.execute("INSERT INTO rankings VALUES (1, 1, 'alice', '[2]', 1, 102.0)")
    conn.executemany("INSERT INTO labels (query_id, a, b, answer, labeller, ranking_id, answered_at) "
                     "VALUES (1, ?, ?, ?, 'alice', 1, 102.0)", [(2, 0, "a"), (2, 1, "a"), (0, 1, "tie")])
    conn.execute("INSERT INTO labels (query_id, a, b, answer, labeller, answered_at) "
                 "VALUES (1, 0, 1, 'cant_tell', 'bob', 103.0)")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()
    return {"params": cands.params}


def test_v1_database_migrates_to_v2_keeping_its_rows(tmp_path, caplog):
    root = tmp_path / "old"
    built = build_v1_store(root, np.random.default_rng(10))
    v1_rows = dump(root)
    with caplog.at_level("INFO", logger="robot_rewards.preferences"):
        s = PreferenceStore(root, create=False)
    assert "from schema 1 to 2" in caplog.text
    with s:
        assert s.schema_version == SCHEMA_VERSION == 2
        after = dump(root)
        for table, rows in v1_rows.items():
            # Old rows intact; the new shown_at column is NULL for them.
            assert [r[:len(rows[0])] for r in after[table]] == rows
            assert all(r[len(rows[0]):] in ((), (None,)) for r in after[table])
        assert after["demonstrations"] == []
        rec, arr = s.load_query(1)
        assert rec.shown_at is None and rec.uid == "q-uid-1"
        np.testing.assert_array_equal(arr.params, built["params"])
        pairs = s.pairs()
        np.testing.assert_array_equal(pairs.labels, [1.0, 1.0, 0.5])
        np.testing.assert_array_equal(pairs.params_a[0], built["params"][2])
        assert s.label_count() == 4
        s.mark_shown(1, 200.0)
        s.add_demonstration(1, np.zeros(7), "alice")
        s.add_pair(1, 0, 2, "a", "bob")
        assert s.undo_last(1).startswith("pair label 5")
        assert s.undo_last(1) == "pair label 4: candidates 0 vs 1 = 'cant_tell' of query 1 by bob"
        assert s.undo_last(1) == "ranking 1: [2] of query 1 by alice (3 pairs)"
    with PreferenceStore(root, create=False) as s:  # reopening does not migrate again
        assert s.schema_version == 2 and s.label_count() == 0 and len(s.demonstrations()) == 1


def test_failed_migration_rolls_back_to_the_last_complete_version(tmp_path, monkeypatch):
    root = tmp_path / "old"
    build_v1_store(root, np.random.default_rng(11))
    before = dump(root)

    def broken(conn):
        schema.v1_to_v2(conn)
        raise RuntimeError("power cut")

    monkeypatch.setattr(schema, "MIGRATIONS", [schema.create_v1, broken])
    with pytest.raises(RuntimeError, match="power cut"):
        PreferenceStore(root)
    conn = sqlite3.connect(str(root / "prefs.sqlite"))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "shown_at" not in [r[1] for r in conn.execute("PRAGMA table_info(queries)")]
    conn.close()
    assert dump(root) == before
    monkeypatch.undo()
    with PreferenceStore(root) as s:
        assert s.schema_version == 2


def test_new_store_has_current_schema(store):
    assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(str(store.path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"sessions", "queries", "rankings", "labels", "demonstrations"} <= {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()


# -- crash safety and concurrency (real processes) -------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys, time
    from robot_rewards.preferences import PreferenceStore
    root, qid, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with PreferenceStore(root, create=False) as s:
        if mode == "stall":  # killed inside an open write transaction, deterministically
            with s.transaction() as conn:
                conn.execute("INSERT INTO labels (query_id, a, b, answer, labeller, answered_at) "
                             "VALUES (?, 0, 1, 'a', 'stalled', 0.0)", (qid,))
                print(-1, flush=True)
                time.sleep(600)
        for i in range(100000):
            if mode == "pairs":
                s.add_pair(qid, i % 2, 1 - i % 2, "a", f"labeller{os.getpid()}-{i}")
            else:
                s.add_ranking(qid, [i % 4], f"labeller{os.getpid()}-{i}")
            print(s.label_count(), flush=True)
""")


def start_writer(root, qid, mode) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(qid), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(proc, n) -> list[int]:
    out = []
    for _ in range(n):
        line = proc.stdout.readline()
        assert line, f"writer exited early: {proc.stderr.read()}"
        out.append(int(line))
    return out


def test_killed_writer_leaves_a_consistent_database(tmp_path):
    root = tmp_path / "store"
    with PreferenceStore(root) as s:
        sid = s.start_session("console", TASK)
        qid = add_query(s, sid, np.random.default_rng(12), n=4)
    last = 0
    for n_lines in (3, 25, 60):
        proc = start_writer(root, qid, "pairs")
        try:
            seen = read_lines(proc, n_lines)
            assert seen[0] == last + 1
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        complete = [int(x) for x in rest.split("\n")[:-1]]  # text after the last newline may be cut off
        printed = complete[-1] if complete else seen[-1]
        conn = sqlite3.connect(str(root / "prefs.sqlite"))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        with PreferenceStore(root, create=False) as s:
            count = s.label_count()
            assert count in (printed, printed + 1)  # at most the answer in flight is lost
            assert len(s.pairs()) == count
        last = count
    # Killed with an uncommitted answer in the WAL: that answer (only) is gone.
    proc = start_writer(root, qid, "stall")
    try:
        assert read_lines(proc, 1) == [-1]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    with PreferenceStore(root, create=False) as s:
        assert s.label_count() == last
        s.add_pair(qid, 0, 1, "a", "stalled")  # the lost answer can be given again


def test_concurrent_reader_sees_whole_answers(tmp_path):
    root = tmp_path / "store"
    with PreferenceStore(root) as s:
        sid = s.start_session("console", TASK)
        qid = add_query(s, sid, np.random.default_rng(13), n=4)
    proc = start_writer(root, qid, "rankings")  # each ranking is 6 pair labels
    try:
        with PreferenceStore(root, create=False) as reader:
            for printed in read_lines(proc, 30):
                count = reader.label_count()
                assert count >= printed and count % 6 == 0
            assert len(reader.pairs()) % 6 == 0
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()


# -- export / import -------------------------------------------------------------------------

def populated(root, seed=14) -> PreferenceStore:
    rng = np.random.default_rng(seed)
    s = PreferenceStore(root)
    sid = s.start_session("alice", TASK, meta={"k": 1})
    q1, q2 = add_query(s, sid, rng, n=3, meta={"i": 1}), add_query(s, sid, rng, n=4)
    s.mark_shown(q1, 5.0)
    s.add_pair(q1, 0, 1, "a", "alice")
    s.add_pair(q1, 1, 2, "cant_tell", "alice")
    s.add_ranking(q2, [2, 0], "alice")
    s.add_demonstration(q2, rng.uniform(0, 1, 7), "alice")
    s.end_session(sid)
    return s


def test_export_import_round_trip_and_idempotent_reimport(tmp_path):
    with populated(tmp_path / "a") as src:
        exp = src.export(tmp_path / "export")
        src_pairs = src.pairs(include_cant_tell=True)
        src_demos = src.demonstrations()
        src_queries = src.queries()
    manifest = json.loads((exp / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["counts"] == {"sessions": 1, "queries": 2, "rankings": 1, "labels": 2 + 6, "demonstrations": 1}
    assert len(list((exp / "arrays").glob("*.npz"))) == 2
    assert sorted(p.name for p in exp.iterdir()) == ["arrays", "demonstrations.jsonl", "labels.jsonl", "manifest.json",
                                                     "queries.jsonl", "rankings.jsonl", "sessions.jsonl"]
    with PreferenceStore(tmp_path / "b") as dst:
        # Existing data of the destination keeps its ids; imported rows get fresh ones.
        rng = np.random.default_rng(15)
        own = add_query(dst, dst.start_session("zoe", TASK), rng, n=2)
        dst.add_pair(own, 0, 1, "b", "zoe")
        added = dst.import_(exp)
        assert added == {"sessions": 1, "queries": 2, "rankings": 1, "labels": 8, "demonstrations": 1, "skipped": 0}
        assert dst.import_(exp) == {"sessions": 0, "queries": 0, "rankings": 0, "labels": 0,
                                    "demonstrations": 0, "skipped": 1 + 2 + (1 + 6) + 2 + 1}
        assert dst.label_count() == 9
        got = dst.pairs(include_cant_tell=True).subset(np.arange(1, 9))
        np.testing.assert_array_equal(got.labels, src_pairs.labels)
        np.testing.assert_array_equal(got.params_a, src_pairs.params_a)
        np.testing.assert_array_equal(got.params_b, src_pairs.params_b)
        np.testing.assert_array_equal(got.points, src_pairs.points)
        np.testing.assert_array_equal(got.colors, src_pairs.colors)
        imported = dst.queries()[1:]
        assert [(q.uid, q.goal, q.shown_at, q.meta, q.created_at) for q in imported] == \
            [(q.uid, q.goal, q.shown_at, q.meta, q.created_at) for q in src_queries]
        assert [q.id for q in imported] == [2, 3] and imported[0].session_id == 2
        (demo,) = dst.demonstrations()
        np.testing.assert_array_equal(demo["params"], src_demos[0]["params"])
        assert demo["query_id"] == 3
        assert dst.rankings()[0]["order"] == [2, 0]
        # The imported ranking is still one answer: undo removes it with its pairs.
        assert dst.undo_last(2).startswith("ranking")
        assert dst.label_count() == 3
        # Re-importing restores exactly the undone ranking.
        assert dst.import_(exp)["rankings"] == 1 and dst.label_count() == 9


def test_export_refuses_a_non_empty_destination(tmp_path):
    with populated(tmp_path / "a") as s:
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "x").write_text("keep me")
        with pytest.raises(FileExistsError, match="taken"):
            s.export(tmp_path / "taken")
        assert (tmp_path / "taken" / "x").read_text() == "keep me"
        (tmp_path / "empty").mkdir()
        assert (s.export(tmp_path / "empty") / "manifest.json").is_file()


def edit_jsonl(path, fn):
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in fn(recs)))


def edit_manifest(export, **changes):
    m = json.loads((export / "manifest.json").read_text())
    (export / "manifest.json").write_text(json.dumps({**m, **changes}))


def label_for_unknown_query(export):
    edit_jsonl(export / "labels.jsonl", lambda r: r + [dict(r[0], query="nope", ranking=None)])
    m = json.loads((export / "manifest.json").read_text())
    edit_manifest(export, counts={**m["counts"], "labels": m["counts"]["labels"] + 1})


@pytest.mark.parametrize("damage, exc, match", [
    (lambda e: (e / "arrays" / sorted(os.listdir(e / "arrays"))[0]).unlink(), MissingArraysError, "missing"),
    (label_for_unknown_query, UnknownQueryError, "labels.jsonl:9: label for unknown query 'nope'"),
    (lambda e: edit_jsonl(e / "labels.jsonl", lambda r: [dict(r[0], answer="maybe")] + r[1:]),
     CorruptStoreError, r"labels.jsonl:1: bad record \(unknown answer 'maybe'\)"),
    (lambda e: edit_jsonl(e / "labels.jsonl", lambda r: [dict(r[0], b=9)] + r[1:]),
     CorruptStoreError, "out of range"),
    (lambda e: (e / "queries.jsonl").write_text((e / "queries.jsonl").read_text()[:-40]),
     CorruptStoreError, "queries.jsonl:2 is not valid JSON"),
    (lambda e: edit_jsonl(e / "sessions.jsonl", lambda r: []), CorruptStoreError, "truncated export"),
    (lambda e: (e / "rankings.jsonl").unlink(), CorruptStoreError, "incomplete export"),
    (lambda e: edit_manifest(e, schema_version=SCHEMA_VERSION + 1), SchemaVersionError,
     rf"exported by a newer robot_rewards \(schema {SCHEMA_VERSION + 1}, this reads up to {SCHEMA_VERSION}\)"),
    (lambda e: edit_manifest(e, format="something else"), CorruptStoreError, "not a robot_rewards preference export"),
])
def test_bad_exports_are_refused_and_import_nothing(tmp_path, damage, exc, match):
    with populated(tmp_path / "a") as s:
        exp = s.export(tmp_path / "export")
    damage(exp)
    with PreferenceStore(tmp_path / "b") as dst:
        before = dump(dst.root)
        with pytest.raises(exc, match=match):
            dst.import_(exp)
        assert dump(dst.root) == before
        with pytest.raises(FileNotFoundError, match="no preference export"):
            dst.import_(tmp_path / "nowhere")

"""The preference store of the teleop/preference loop: SQLite (WAL) + one array file per query.

Layout of a store folder `root`:

    root/prefs.sqlite         sessions, queries, rankings, pair labels, demonstrations
    root/arrays/<uid>.npz     a query's observation and candidate set (points, colors, params,
                              seeds, clipped, optional image and ensemble scores); no pickles

A query's array file is written atomically (`arrays.py`) *before* its row is inserted, and the
row records the file's SHA-256, so a row never points at a half-written file and a damaged or
replaced file is refused (`MissingArraysError`). Each public write is one
IMMEDIATE transaction with synchronous=FULL: a killed process loses at most the answer it was
writing, and readers in other processes (the trainer) see only whole answers.

Labels are pairs (a, b) of candidate indices with an answer: "a" (a better), "b", "tie" or
"cant_tell"; a ranking is stored as its own row plus its expanded pairs (`ranking.py`), linked
by `ranking_id`, so training reads one kind of row. One labeller answers each unordered pair of
a query at most once (`DuplicateLabelError`; undo first to change an answer).

Export (`export`) writes a portable folder: manifest.json, one JSONL file per table (rows refer
to each other by uid, not by database id) and arrays/*.npz. `import_` merges such a folder with
fresh ids, deduplicating by uid / natural keys, so importing the same export twice adds nothing.
Both live in `portable.py`.
"""

from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import time
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.preferences.arrays import (
    QueryArrays,
    checked_query_arrays,
    npz_bytes,
    read_arrays,
    remove_orphaned_temp_files,
    sha256,
)
from robot_rewards.preferences.errors import (
    CorruptStoreError,
    DuplicateLabelError,
    LabelError,
    PreferenceStoreError,
    QueryInputError,
    SchemaVersionError,
    UnknownQueryError,
    UnknownSessionError,
)
from robot_rewards.preferences.portable import export_store, import_store
from robot_rewards.preferences.ranking import ranking_to_pairs
from robot_rewards.preferences.records import ANSWERS, ARRAYS_DIR, checked_index, checked_text
from robot_rewards.preferences.schema import SCHEMA_VERSION, migrate, user_version

if TYPE_CHECKING:  # torch-heavy; imported lazily in pairs() so the console starts fast
    from robot_rewards.rewards.preference.scorer import PreferencePairs

DB_NAME = "prefs.sqlite"
BUSY_TIMEOUT_S = 30.0

_EXPANDED_ANSWER = {1.0: "a", 0.5: "tie"}  # ranking_to_pairs labels -> stored answers


# -- data ------------------------------------------------------------------------------------

@dataclass
class QueryRecord:
    """One query's row: a candidate set of `primitive` shown for `goal` in `task`.

    created_at / shown_at: time.time() seconds (shown_at None until `mark_shown`)."""

    id: int
    uid: str
    session_id: int
    task: str
    primitive: str
    goal: str
    n_candidates: int
    created_at: float
    shown_at: float | None
    meta: dict = field(default_factory=dict)


# -- input checks ----------------------------------------------------------------------------

def _meta_json(meta: Any, error: type[Exception]) -> str:
    if meta is None:
        return "{}"
    if not isinstance(meta, dict):
        raise error(f"meta must be a dict, got {type(meta).__name__}")
    try:
        return json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise error(f"meta must be JSON-serialisable (no NaN, arrays or objects): {exc}") from None


def _time(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise LabelError(f"{what} must be a time in seconds, got {value!r}") from None
    if not math.isfinite(t):
        raise LabelError(f"{what} must be finite, got {value!r}")
    return t




def _id(value: Any, what: str, error: type[Exception]) -> int:
    if isinstance(value, bool):
        raise error(f"{what} must be an integer id, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise error(f"{what} must be an integer id, got {value!r}") from None


# -- opening ---------------------------------------------------------------------------------

def _connect(path: Path) -> sqlite3.Connection:
    """An open, checked, migrated connection (autocommit mode: transactions are explicit)."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Read-only checks first: a refused database must be left exactly as it was.
        version = user_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} was created by a newer robot_rewards (schema {version}, this reads up to "
                f"{SCHEMA_VERSION}); upgrade robot_rewards")
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise CorruptStoreError(f"{path} is an SQLite database but not a robot_rewards preference store")
        problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise CorruptStoreError(f"{path} is corrupted (quick_check: {'; '.join(problems[:3])})")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise PreferenceStoreError(f"cannot switch {path} to WAL journaling (got '{mode}')")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, str(path))  # logs each step of an upgrade
        conn.row_factory = sqlite3.Row
        return conn
    except sqlite3.DatabaseError as exc:
        conn.close()
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            raise CorruptStoreError(f"{path} is not a readable preference store: {exc}") from exc
        raise
    except BaseException:
        conn.close()
        raise


# -- the store -------------------------------------------------------------------------------

class PreferenceStore:
    """Sessions, queries, labels and demonstrations of the preference loop (module docstring).

    One instance per process and thread; several processes may open the same root at once
    (one console writing, trainers reading)."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self.arrays_dir = self.root / ARRAYS_DIR
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(f"no preference store at {self.path}")
            self.root.mkdir(parents=True, exist_ok=True)
        elif self.path.is_file() and self.path.stat().st_size == 0:
            # SQLite takes an empty file for an empty database and would turn it into a store.
            # An empty prefs.sqlite is a failed copy or a placeholder, not labels: adopting it
            # would hide that the real store is elsewhere (and a reader would write to it).
            raise CorruptStoreError(f"{self.path} is empty (0 bytes), not a preference store: point at "
                                    "the folder of the real store, or delete the empty file to start a new one")
        self._conn = _connect(self.path)
        # After the checks: a refused store is left exactly as it was.
        remove_orphaned_temp_files(self.arrays_dir)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.root)!r})"

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return user_version(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: take the write lock up front, so checks and inserts see the same state and a
        # concurrent writer waits (busy_timeout) instead of failing mid-transaction.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        # One read transaction: every SELECT inside sees the same committed state.
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def _query_row(self, conn: sqlite3.Connection, query_id: Any) -> sqlite3.Row:
        qid = _id(query_id, "query id", UnknownQueryError)
        row = conn.execute("SELECT * FROM queries WHERE id = ?", (qid,)).fetchone()
        if row is None:
            raise UnknownQueryError(f"no query {qid} in {self.path}")
        return row

    def _session_id(self, conn: sqlite3.Connection, session_id: Any) -> int:
        sid = _id(session_id, "session id", UnknownSessionError)
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is None:
            raise UnknownSessionError(f"no labelling session {sid} in {self.path}")
        return sid

    def arrays_path(self, uid: str) -> Path:
        return self.arrays_dir / f"{uid}.npz"

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, labeller: str, task: str, mode: str = "rank", meta: dict | None = None) -> int:
        """Open a labelling session of `labeller` on `task` (`mode`: how answers are given, e.g.
        "rank", "pairwise", "demo"); returns its id."""
        row = (uuid.uuid4().hex, checked_text(labeller, "labeller", LabelError), checked_text(task, "task", LabelError),
               checked_text(mode, "mode", LabelError), time.time(), _meta_json(meta, LabelError))
        with self.transaction() as conn:
            return conn.execute("INSERT INTO sessions (uid, labeller, task, mode, started_at, meta) "
                                "VALUES (?, ?, ?, ?, ?, ?)", row).lastrowid

    def end_session(self, session_id: int) -> None:
        """Record the end time of a session."""
        with self.transaction() as conn:
            sid = self._session_id(conn, session_id)
            conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), sid))

    def sessions(self) -> list[dict]:
        """All sessions (id, uid, labeller, task, mode, started_at, ended_at, meta), oldest first."""
        rows = self._conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        return [{**dict(r), "meta": json.loads(r["meta"])} for r in rows]

    # -- queries -----------------------------------------------------------------------------
    def add_query(self, session_id: int, task: str, goal: str, candidates: Candidates, points,
                  colors=None, image=None, scores=None, meta: dict | None = None) -> int:
        """Store a query (observation + candidate set) of a session; returns its id.

        The arrays go to `arrays/<uid>.npz` (written atomically) before the row is inserted;
        `scores` (K, N) or a ScoreSet: the ensemble scores shown to the labeller."""
        task = checked_text(task, "task", QueryInputError)
        goal = checked_text(goal, "goal", QueryInputError)
        meta_json = _meta_json(meta, QueryInputError)
        arrays = checked_query_arrays(candidates, points, colors, image, scores)
        sid = self._session_id(self._conn, session_id)  # fail before writing any file
        uid = uuid.uuid4().hex
        data = npz_bytes(arrays)
        path = self.arrays_path(uid)
        write_atomic(path, data)
        try:
            with self.transaction() as conn:
                self._session_id(conn, sid)
                return conn.execute(
                    "INSERT INTO queries (uid, session_id, task, primitive, goal, n_candidates, arrays_sha256,"
                    " created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (uid, sid, task, candidates.name, goal, len(candidates),
                     sha256(data), time.time(), meta_json)).lastrowid
        except BaseException:
            path.unlink(missing_ok=True)  # no row refers to it
            raise

    @staticmethod
    def _record(row: sqlite3.Row) -> QueryRecord:
        return QueryRecord(row["id"], row["uid"], row["session_id"], row["task"], row["primitive"],
                           row["goal"], row["n_candidates"], row["created_at"], row["shown_at"],
                           json.loads(row["meta"]))

    def load_query(self, query_id: int) -> tuple[QueryRecord, QueryArrays]:
        """The query's record and arrays (MissingArraysError if its array file is gone or damaged)."""
        row = self._query_row(self._conn, query_id)
        arrays, _ = read_arrays(self.arrays_path(row["uid"]), row["arrays_sha256"], row["n_candidates"],
                                PRIMITIVE_SPECS[row["primitive"]].dim, f"query {row['id']}")
        return self._record(row), arrays

    def queries(self, task: str | None = None, session_id: int | None = None) -> list[QueryRecord]:
        """Query records (optionally of one task and/or session), oldest first."""
        sql, args = "SELECT * FROM queries WHERE 1", []
        if task is not None:
            sql, args = sql + " AND task = ?", args + [task]
        if session_id is not None:
            sql, args = sql + " AND session_id = ?", args + [session_id]
        return [self._record(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def mark_shown(self, query_id: int, t: float | None = None) -> None:
        """Record when the query was (last) shown to the labeller (default: now)."""
        t = time.time() if t is None else _time(t, "shown time")
        with self.transaction() as conn:
            row = self._query_row(conn, query_id)
            conn.execute("UPDATE queries SET shown_at = ? WHERE id = ?", (t, row["id"]))

    # -- labels ------------------------------------------------------------------------------
    def _check_not_answered(self, conn: sqlite3.Connection, qid: int, labeller: str,
                            pairs: Sequence[tuple[int, int]]) -> None:
        existing = {(min(r["a"], r["b"]), max(r["a"], r["b"])): r for r in conn.execute(
            "SELECT id, a, b, answer, ranking_id FROM labels WHERE query_id = ? AND labeller = ?", (qid, labeller))}
        for a, b in pairs:
            r = existing.get((min(a, b), max(a, b)))
            if r is not None:
                source = f" from ranking {r['ranking_id']}" if r["ranking_id"] is not None else ""
                raise DuplicateLabelError(
                    f"{labeller!r} already answered candidates {r['a']} vs {r['b']} of query {qid} "
                    f"('{r['answer']}', label {r['id']}{source}); undo it to answer again")

    def add_pair(self, query_id: int, a: int, b: int, answer: str, labeller: str,
                 shown_at: float | None = None) -> int:
        """Store a pairwise answer about candidates a and b of a query; returns the label id.

        answer: "a" (a better), "b", "tie" or "cant_tell"; shown_at defaults to the query's."""
        if answer not in ANSWERS:
            raise LabelError(f"unknown answer {answer!r}; expected one of {list(ANSWERS)}")
        labeller = checked_text(labeller, "labeller", LabelError)
        shown = _time(shown_at, "shown_at")
        with self.transaction() as conn:
            row = self._query_row(conn, query_id)
            n = row["n_candidates"]
            a, b = checked_index(a, n, "candidate a"), checked_index(b, n, "candidate b")
            if a == b:
                raise LabelError(f"candidate a and b are both {a}: a pair compares two different candidates")
            self._check_not_answered(conn, row["id"], labeller, [(a, b)])
            return conn.execute(
                "INSERT INTO labels (query_id, a, b, answer, labeller, shown_at, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row["id"], a, b, answer, labeller, row["shown_at"] if shown is None else shown,
                 time.time())).lastrowid

    def add_ranking(self, query_id: int, order: Sequence[int], labeller: str, rest_equal: bool = True,
                    shown_at: float | None = None) -> int:
        """Store a best-first ranking of (some of) a query's candidates and its expanded pair
        labels (`ranking_to_pairs`) in one transaction; returns the ranking id."""
        labeller = checked_text(labeller, "labeller", LabelError)
        shown = _time(shown_at, "shown_at")
        with self.transaction() as conn:
            row = self._query_row(conn, query_id)
            expanded = ranking_to_pairs(order, row["n_candidates"], bool(rest_equal))
            if not expanded:
                raise LabelError(f"ranking {list(order)} of query {row['id']} ({row['n_candidates']} candidates, "
                                 f"rest_equal={bool(rest_equal)}) compares no pairs")
            self._check_not_answered(conn, row["id"], labeller, [(a, b) for a, b, _ in expanded])
            shown = row["shown_at"] if shown is None else shown
            now = time.time()
            ranked = [int(i) for i in order]
            rid = conn.execute(
                "INSERT INTO rankings (query_id, labeller, ranking, rest_equal, shown_at, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row["id"], labeller, json.dumps(ranked), int(bool(rest_equal)), shown, now)).lastrowid
            conn.executemany(
                "INSERT INTO labels (query_id, a, b, answer, labeller, ranking_id, shown_at, answered_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(row["id"], a, b, _EXPANDED_ANSWER[y], labeller, rid, shown, now) for a, b, y in expanded])
            return rid

    def undo_last(self, session_id: int) -> str | None:
        """Remove the newest answer of a session's queries (a ranking with all its pairs, or one
        pair label); returns what was removed, or None when there is nothing to undo."""
        with self.transaction() as conn:
            sid = self._session_id(conn, session_id)
            last = conn.execute(
                "SELECT l.* FROM labels l JOIN queries q ON q.id = l.query_id WHERE q.session_id = ? "
                "ORDER BY l.id DESC LIMIT 1", (sid,)).fetchone()
            if last is None:
                return None
            if last["ranking_id"] is None:
                conn.execute("DELETE FROM labels WHERE id = ?", (last["id"],))
                return (f"pair label {last['id']}: candidates {last['a']} vs {last['b']} = '{last['answer']}' "
                        f"of query {last['query_id']} by {last['labeller']}")
            rk = conn.execute("SELECT * FROM rankings WHERE id = ?", (last["ranking_id"],)).fetchone()
            n = conn.execute("DELETE FROM labels WHERE ranking_id = ?", (rk["id"],)).rowcount
            conn.execute("DELETE FROM rankings WHERE id = ?", (rk["id"],))
            return (f"ranking {rk['id']}: {json.loads(rk['ranking'])} of query {rk['query_id']} "
                    f"by {rk['labeller']} ({n} pairs)")

    def label_count(self, task: str | None = None) -> int:
        """Number of stored pair labels (pairwise answers and expanded rankings, "can't tell"
        included), optionally of one task."""
        if task is None:
            return self._conn.execute("SELECT count(*) FROM labels").fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM labels l JOIN queries q ON q.id = l.query_id "
                                  "WHERE q.task = ?", (task,)).fetchone()[0]

    def rankings(self, query_id: int | None = None) -> list[dict]:
        """Stored rankings (id, query_id, labeller, order, rest_equal, shown_at, answered_at)."""
        sql, args = "SELECT * FROM rankings", ()
        if query_id is not None:
            sql, args = sql + " WHERE query_id = ?", (query_id,)
        return [{"id": r["id"], "query_id": r["query_id"], "labeller": r["labeller"],
                 "order": json.loads(r["ranking"]), "rest_equal": bool(r["rest_equal"]),
                 "shown_at": r["shown_at"], "answered_at": r["answered_at"]}
                for r in self._conn.execute(sql + " ORDER BY id", args)]

    # -- demonstrations ----------------------------------------------------------------------
    def add_demonstration(self, query_id: int, params, labeller: str) -> int:
        """Store a human-demonstrated action (D,) of the query's primitive; returns its id."""
        labeller = checked_text(labeller, "labeller", LabelError)
        with self.transaction() as conn:
            row = self._query_row(conn, query_id)
            dim = PRIMITIVE_SPECS[row["primitive"]].dim
            p = np.asarray(params, dtype=np.float64)
            if p.shape != (dim,):
                raise LabelError(f"a {row['primitive']} demonstration has {dim} parameters, got shape {p.shape}")
            if not np.all(np.isfinite(p)):
                raise LabelError("demonstrated parameters contain NaN/inf")
            return conn.execute(
                "INSERT INTO demonstrations (query_id, labeller, params, created_at) VALUES (?, ?, ?, ?)",
                (row["id"], labeller, json.dumps(p.tolist()), time.time())).lastrowid

    def demonstrations(self, task: str | None = None) -> list[dict]:
        """Demonstrations (id, query_id, query_uid, task, primitive, goal, labeller, params (D,)
        float64, created_at), oldest first, optionally of one task."""
        sql = ("SELECT d.*, q.uid AS query_uid, q.task, q.primitive, q.goal FROM demonstrations d "
               "JOIN queries q ON q.id = d.query_id")
        args: tuple = ()
        if task is not None:
            sql, args = sql + " WHERE q.task = ?", (task,)
        return [{"id": r["id"], "query_id": r["query_id"], "query_uid": r["query_uid"], "task": r["task"],
                 "primitive": r["primitive"], "goal": r["goal"], "labeller": r["labeller"],
                 "params": np.asarray(json.loads(r["params"]), dtype=np.float64), "created_at": r["created_at"]}
                for r in self._conn.execute(sql + " ORDER BY d.id", args)]

    # -- training data -----------------------------------------------------------------------
    def label_policies(self, task: str) -> dict[str, str]:
        """{weights sha256: checkpoint path} of the policies whose candidates `task`'s labels
        judge, as their sessions recorded them (session meta "policy"); "" for labels whose
        session did not record one (stores from before 2026-12-07, or candidates from no policy)."""
        rows = self._conn.execute(
            "SELECT DISTINCT s.meta FROM labels l JOIN queries q ON q.id = l.query_id "
            "JOIN sessions s ON s.id = q.session_id WHERE q.task = ?", (task,)).fetchall()
        out: dict[str, str] = {}
        for r in rows:
            pol = json.loads(r["meta"]).get("policy") or {}
            out.setdefault(str(pol.get("sha256", "")), str(pol.get("path", "")))
        return out

    def pairs(self, task: str | None = None, primitive: str | None = None,
              include_cant_tell: bool = False, policy_sha256: str | None = None) -> PreferencePairs:
        """Every pair label (pairwise answers and expanded rankings) as `PreferencePairs`, with
        each pair's observation from its query's array file. Clouds of different sizes are
        subsampled to the smallest size (a fixed choice per query, seeded by its uid); colours
        are kept only when every query has them. policy_sha256: only labels of sessions that
        recorded that policy (`label_policies`). LabelError when nothing matches."""
        sql = ("SELECT l.query_id, l.a, l.b, l.answer, q.uid, q.primitive, q.goal, q.n_candidates, "
               "q.arrays_sha256 FROM labels l JOIN queries q ON q.id = l.query_id "
               "JOIN sessions s ON s.id = q.session_id WHERE 1")
        args: list = []
        for col, val in (("q.task", task), ("q.primitive", primitive),
                         ("json_extract(s.meta, '$.policy.sha256')", policy_sha256)):
            if val is not None:
                sql, args = sql + f" AND {col} = ?", args + [val]
        if not include_cant_tell:
            sql += " AND l.answer <> 'cant_tell'"
        rows = self._conn.execute(sql + " ORDER BY l.id", args).fetchall()
        where = ", ".join(f"{k} '{v}'" for k, v in (("task", task), ("primitive", primitive),
                                                     ("policy", policy_sha256)) if v is not None)
        if not rows:
            what = "pair labels" if include_cant_tell else "decisive or tie pair labels"
            have = self._conn.execute("SELECT q.task, count(*) FROM labels l JOIN queries q ON q.id = l.query_id "
                                      "GROUP BY q.task ORDER BY q.task").fetchall()
            held = ("; it holds labels for " + ", ".join(f"{t} ({n})" for t, n in have)) if have else ""
            raise LabelError(f"no {what} in {self.path}{' for ' + where if where else ''}{held}: "
                             "label some queries first")
        prims = sorted({r["primitive"] for r in rows})
        if len(prims) > 1:
            raise LabelError(f"the labels span primitives {prims}; pass primitive= to pick one")
        dim = PRIMITIVE_SPECS[prims[0]].dim
        arrays = {}
        for r in rows:
            if r["query_id"] not in arrays:
                arrays[r["query_id"]], _ = read_arrays(self.arrays_path(r["uid"]), r["arrays_sha256"],
                                                       r["n_candidates"], dim, f"query {r['query_id']}")
        p_min = min(len(a.points) for a in arrays.values())
        with_colors = all(a.colors is not None for a in arrays.values())
        clouds = {}
        for r in rows:
            qid = r["query_id"]
            if qid in clouds:
                continue
            a = arrays[qid]
            keep = slice(None)
            if len(a.points) > p_min:
                rng = np.random.default_rng(zlib.crc32(r["uid"].encode()))
                keep = np.sort(rng.choice(len(a.points), p_min, replace=False))
            clouds[qid] = (a.points[keep], a.colors[keep] if with_colors else None)
        # torch-heavy: importing it with the store would make every command's --help load torch
        from robot_rewards.rewards.preference.scorer import PreferencePairs

        return PreferencePairs(
            primitive=prims[0],
            points=np.stack([clouds[r["query_id"]][0] for r in rows]),
            colors=np.stack([clouds[r["query_id"]][1] for r in rows]) if with_colors else None,
            goals=[r["goal"] for r in rows],
            params_a=np.stack([arrays[r["query_id"]].params[r["a"]] for r in rows]),
            params_b=np.stack([arrays[r["query_id"]].params[r["b"]] for r in rows]),
            labels=np.array([ANSWERS[r["answer"]] for r in rows], dtype=np.float64))

    # -- export / import (portable.py) -------------------------------------------------------
    def export(self, dest: str | os.PathLike) -> Path:
        """Write every session, query, ranking, label and demonstration (one consistent snapshot)
        to a new portable folder `dest`: manifest.json, <table>.jsonl, arrays/<uid>.npz.

        The folder appears complete or not at all (written beside it, then renamed); `dest`
        must not exist or be empty."""
        return export_store(self, dest)

    def import_(self, src: str | os.PathLike) -> dict:
        """Merge an export folder into this store with fresh ids; returns the rows added per
        table plus `skipped` (rows already present). Queries are matched by uid, sessions by
        uid, labels by (query, labeller, unordered pair), rankings by (query, labeller, order,
        answered_at), demonstrations by (query, labeller, params, created_at), so importing the
        same export twice adds nothing. Everything is checked before the one write transaction."""
        return import_store(self, src)

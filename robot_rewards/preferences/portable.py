"""Portable export/import of a preference store (`PreferenceStore.export` / `import_`).

An export is a folder that can be copied to another machine and merged into any store:

    manifest.json       format, schema version, robot_rewards version, record count per table
    <table>.jsonl       one JSON object per row of sessions, queries, rankings, labels and
                        demonstrations; rows refer to each other by uid, not by database id
    arrays/<uid>.npz    each query's array file, byte for byte (its SHA-256 is in queries.jsonl)

`export_store` writes the folder beside its destination and renames it into place, so it
appears complete or not at all. `import_store` reads and checks every record first, then
merges them in one write transaction with fresh ids, deduplicating by uid and natural keys, so
importing the same export twice adds nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robot_rewards import __version__
from robot_rewards.core.atomic import fsync_dir, temp_path, write_atomic
from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.preferences.arrays import read_arrays, sha256
from robot_rewards.preferences.errors import CorruptStoreError, SchemaVersionError, UnknownQueryError
from robot_rewards.preferences.ranking import check_ranking
from robot_rewards.preferences.records import ANSWERS, ARRAYS_DIR, checked_index, checked_text
from robot_rewards.preferences.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from robot_rewards.preferences.store import PreferenceStore

log = logging.getLogger(__name__)

EXPORT_FORMAT = "robot_rewards.preferences.export"
TABLES = ("sessions", "queries", "rankings", "labels", "demonstrations")  # in dependency order


# -- export ----------------------------------------------------------------------------------

def export_store(store: PreferenceStore, dest: str | os.PathLike) -> Path:
    """Write every session, query, ranking, label and demonstration of `store` (one consistent
    snapshot) to a new export folder `dest`; returns its path.

    `dest` must not exist or be an empty folder (`FileExistsError`). A missing or damaged
    array file (`MissingArraysError`) leaves nothing behind."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"export destination {dest} exists and is not an empty folder")
    with store.snapshot() as conn:
        tables = {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
    records = _export_records(tables)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dest)  # the whole export appears at once: written aside, then renamed
    try:
        for r in tables["queries"]:
            _, data = read_arrays(store.arrays_path(r["uid"]), r["arrays_sha256"], r["n_candidates"],
                                  PRIMITIVE_SPECS[r["primitive"]].dim, f"query {r['id']}")
            write_atomic(tmp / ARRAYS_DIR / f"{r['uid']}.npz", data)
        for name, recs in records.items():
            text = "".join(json.dumps(rec, sort_keys=True, allow_nan=False) + "\n" for rec in recs)
            write_atomic(tmp / f"{name}.jsonl", text.encode())
        manifest = {"format": EXPORT_FORMAT, "schema_version": SCHEMA_VERSION, "robot_rewards": __version__,
                    "exported_at": time.time(), "source": str(store.root),
                    "counts": {name: len(recs) for name, recs in records.items()}}
        write_atomic(tmp / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
        if dest.exists():
            dest.rmdir()  # empty (checked above); rename cannot replace it portably
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _export_records(tables: dict[str, list[sqlite3.Row]]) -> dict[str, list[dict]]:
    """The JSONL records of each table, with database ids replaced by uids.

    Rankings keep their id: it is local to the export and only links labels to them."""
    session_uid = {r["id"]: r["uid"] for r in tables["sessions"]}
    query_uid = {r["id"]: r["uid"] for r in tables["queries"]}
    return {
        "sessions": [{k: r[k] for k in ("uid", "labeller", "task", "mode", "started_at", "ended_at")}
                     | {"meta": json.loads(r["meta"])} for r in tables["sessions"]],
        "queries": [{"uid": r["uid"], "session": session_uid[r["session_id"]], "task": r["task"],
                     "primitive": r["primitive"], "goal": r["goal"], "n_candidates": r["n_candidates"],
                     "arrays_sha256": r["arrays_sha256"], "created_at": r["created_at"],
                     "shown_at": r["shown_at"], "meta": json.loads(r["meta"])} for r in tables["queries"]],
        "rankings": [{"id": r["id"], "query": query_uid[r["query_id"]], "labeller": r["labeller"],
                      "order": json.loads(r["ranking"]), "rest_equal": bool(r["rest_equal"]),
                      "shown_at": r["shown_at"], "answered_at": r["answered_at"]} for r in tables["rankings"]],
        "labels": [{"query": query_uid[r["query_id"]], "a": r["a"], "b": r["b"], "answer": r["answer"],
                    "labeller": r["labeller"], "ranking": r["ranking_id"], "shown_at": r["shown_at"],
                    "answered_at": r["answered_at"]} for r in tables["labels"]],
        "demonstrations": [{"query": query_uid[r["query_id"]], "labeller": r["labeller"],
                            "params": json.loads(r["params"]), "created_at": r["created_at"]}
                           for r in tables["demonstrations"]],
    }


# -- import ----------------------------------------------------------------------------------

def import_store(store: PreferenceStore, src: str | os.PathLike) -> dict:
    """Merge the export folder `src` into `store` with fresh ids; returns the rows added per
    table plus `skipped` (rows already present).

    Queries are matched by uid, sessions by uid, labels by (query, labeller, unordered pair),
    rankings by (query, labeller, order, answered_at), demonstrations by (query, labeller,
    params, created_at). Everything is checked before the one write transaction, so a bad
    export (`CorruptStoreError`, `UnknownQueryError`, ...) adds nothing."""
    export = read_export(Path(src))
    counts = dict.fromkeys((*TABLES, "skipped"), 0)
    copied: list[Path] = []
    try:
        _copy_new_arrays(store, export, copied)
        with store.transaction() as conn:
            session_ids = _merge_sessions(conn, export, counts)
            query_ids = _merge_queries(conn, export, session_ids, counts)
            _merge_labels_and_rankings(conn, export, query_ids, counts)
            _merge_demonstrations(conn, export, query_ids, counts)
    except BaseException:
        _remove_unreferenced(store, copied)  # a failed import leaves the store as it was
        raise
    log.info("imported %s into %s: %s", src, store.path, counts)
    return counts


def _copy_new_arrays(store: PreferenceStore, export: Export, copied: list[Path]) -> None:
    """Copy (checked) the array files of queries the store lacks, appending each one written
    to `copied`.

    Done before the write transaction: the files are atomic and no row refers to them yet."""
    have = {r[0] for r in store._conn.execute("SELECT uid FROM queries")}
    for q in export.queries.values():
        if q["uid"] in have:
            continue
        _, data = read_arrays(export.root / ARRAYS_DIR / f"{q['uid']}.npz", q["arrays_sha256"], q["n_candidates"],
                              PRIMITIVE_SPECS[q["primitive"]].dim, f"exported query {q['uid']}")
        dst = store.arrays_path(q["uid"])
        if not (dst.exists() and sha256(dst.read_bytes()) == q["arrays_sha256"]):
            write_atomic(dst, data)
            copied.append(dst)


def _remove_unreferenced(store: PreferenceStore, paths: list[Path]) -> None:
    """Delete the array files an import copied when no row refers to them (its transaction
    failed); one another process's import committed meanwhile is kept."""
    for path in paths:
        if store._conn.execute("SELECT 1 FROM queries WHERE uid = ?", (path.stem,)).fetchone() is None:
            path.unlink(missing_ok=True)


def _merge_by_uid(conn: sqlite3.Connection, table: str, records, row_of, counts: dict) -> dict[str, int]:
    """Insert the `records` whose uid is not in `table` yet (`row_of(record)` -> {column: value});
    returns the store's id of every record's uid. `counts[table]` counts the inserted ones."""
    ids = {}
    for r in records:
        row = conn.execute(f"SELECT id FROM {table} WHERE uid = ?", (r["uid"],)).fetchone()
        if row is not None:
            ids[r["uid"]] = row[0]
            counts["skipped"] += 1
            continue
        values = {"uid": r["uid"], **row_of(r)}
        ids[r["uid"]] = conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                                     f"({', '.join('?' * len(values))})", tuple(values.values())).lastrowid
        counts[table] += 1
    return ids


def _merge_sessions(conn: sqlite3.Connection, export: Export, counts: dict) -> dict[str, int]:
    """Insert the sessions not here yet; returns the store's id of every exported session uid."""
    return _merge_by_uid(conn, "sessions", export.sessions.values(), lambda s: {
        "labeller": s["labeller"], "task": s["task"], "mode": s["mode"], "started_at": s["started_at"],
        "ended_at": s.get("ended_at"), "meta": json.dumps(s.get("meta") or {}, sort_keys=True)}, counts)


def _merge_queries(conn: sqlite3.Connection, export: Export, session_ids: dict[str, int],
                   counts: dict) -> dict[str, int]:
    """Insert the queries not here yet; returns the store's id of every exported query uid."""
    return _merge_by_uid(conn, "queries", export.queries.values(), lambda q: {
        "session_id": session_ids[q["session"]], "task": q["task"], "primitive": q["primitive"],
        "goal": q["goal"], "n_candidates": q["n_candidates"], "arrays_sha256": q["arrays_sha256"],
        "created_at": q["created_at"], "shown_at": q.get("shown_at"),
        "meta": json.dumps(q.get("meta") or {}, sort_keys=True)}, counts)


def _answered(conn: sqlite3.Connection, qid: int, labeller: str, a: int, b: int) -> bool:
    """Whether `labeller` already answered the unordered pair (a, b) of query `qid`."""
    return conn.execute("SELECT 1 FROM labels WHERE query_id = ? AND labeller = ? AND "
                        "min(a, b) = ? AND max(a, b) = ?",
                        (qid, labeller, min(a, b), max(a, b))).fetchone() is not None


def _insert_label(conn: sqlite3.Connection, lab: dict, qid: int, ranking_id: int | None) -> None:
    conn.execute("INSERT INTO labels (query_id, a, b, answer, labeller, ranking_id, shown_at, "
                 "answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (qid, lab["a"], lab["b"], lab["answer"], lab["labeller"], ranking_id, lab.get("shown_at"),
                  lab["answered_at"]))


def _merge_ranking(conn: sqlite3.Connection, rk: dict, qid: int, own: list[dict], counts: dict) -> int | None:
    """Insert a ranking (not its labels `own`); returns its new id, or None when it is skipped."""
    order = json.dumps([int(i) for i in rk["order"]])
    same = conn.execute("SELECT 1 FROM rankings WHERE query_id = ? AND labeller = ? AND ranking = ? "
                        "AND answered_at = ?", (qid, rk["labeller"], order, rk["answered_at"])).fetchone()
    # A ranking comes in whole or not at all; one clashing with answers here is left out.
    if same is not None or any(_answered(conn, qid, lab["labeller"], lab["a"], lab["b"]) for lab in own):
        counts["skipped"] += 1 + len(own)
        return None
    counts["rankings"] += 1
    return conn.execute("INSERT INTO rankings (query_id, labeller, ranking, rest_equal, shown_at, "
                        "answered_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (qid, rk["labeller"], order, int(bool(rk["rest_equal"])), rk.get("shown_at"),
                         rk["answered_at"])).lastrowid


def _merge_labels_and_rankings(conn: sqlite3.Connection, export: Export, query_ids: dict[str, int],
                               counts: dict) -> None:
    """Insert the labels (and the rankings they expand) not here yet."""
    new_ranking: dict[int, int | None] = {}  # export ranking id -> new id, None if skipped

    def merge_ranking(rid: int) -> None:
        rk = export.rankings[rid]
        new_ranking[rid] = _merge_ranking(conn, rk, query_ids[rk["query"]], export.ranking_labels.get(rid, []),
                                          counts)

    # Labels in their exported order, so "newest" (undo_last) means the same after import.
    for lab in export.labels:
        qid, rid = query_ids[lab["query"]], lab.get("ranking")
        if rid is not None:
            if rid not in new_ranking:
                merge_ranking(rid)
            if new_ranking[rid] is not None:
                _insert_label(conn, lab, qid, new_ranking[rid])
                counts["labels"] += 1
        elif _answered(conn, qid, lab["labeller"], lab["a"], lab["b"]):
            counts["skipped"] += 1
        else:
            _insert_label(conn, lab, qid, None)
            counts["labels"] += 1
    for rid in export.rankings:  # rankings without labels (not written by export)
        if rid not in new_ranking:
            merge_ranking(rid)


def _merge_demonstrations(conn: sqlite3.Connection, export: Export, query_ids: dict[str, int],
                          counts: dict) -> None:
    """Insert the demonstrations not here yet."""
    for d in export.demonstrations:
        qid, params = query_ids[d["query"]], json.dumps([float(x) for x in d["params"]])
        if conn.execute("SELECT 1 FROM demonstrations WHERE query_id = ? AND labeller = ? AND params = ? "
                        "AND created_at = ?", (qid, d["labeller"], params, d["created_at"])).fetchone():
            counts["skipped"] += 1
            continue
        conn.execute("INSERT INTO demonstrations (query_id, labeller, params, created_at) VALUES (?, ?, ?, ?)",
                     (qid, d["labeller"], params, d["created_at"]))
        counts["demonstrations"] += 1


# -- reading an export -----------------------------------------------------------------------

@dataclass
class Export:
    """A parsed, checked export folder (records keyed the way `import_store` uses them)."""

    root: Path
    sessions: dict[str, dict]  # by uid
    queries: dict[str, dict]  # by uid
    rankings: dict[int, dict]  # by export ranking id
    ranking_labels: dict[int, list[dict]]  # the labels of each ranking, by export ranking id
    labels: list[dict]
    demonstrations: list[dict]


def read_export(root: Path) -> Export:
    """Parse and check every record of an export folder (nothing is written).

    FileNotFoundError: no export at `root`; SchemaVersionError: exported by a newer
    robot_rewards; UnknownQueryError: a record of a query the export lacks; CorruptStoreError:
    anything else wrong (bad JSON, missing fields, counts that disagree with the manifest)."""
    version, counts = _read_manifest(root)
    tables = {}
    for name in TABLES:
        # Schema 1 had no demonstrations; its exports may lack the file.
        if name == "demonstrations" and version < 2 and not (root / f"{name}.jsonl").exists():
            tables[name] = []
            continue
        tables[name] = _read_jsonl(root / f"{name}.jsonl")
        expected = counts.get(name)
        if expected is not None and expected != len(tables[name]):
            raise CorruptStoreError(f"{root / (name + '.jsonl')} has {len(tables[name])} records, the manifest "
                                    f"lists {expected} (truncated export?)")
    return _checked_records(root, tables)


def _read_manifest(root: Path) -> tuple[int, dict]:
    """(schema version, record counts per table) of an export's manifest, checked."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no preference export at {root} ({manifest_path.name} missing)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; nesting too deep to parse
        raise CorruptStoreError(f"{manifest_path} is corrupted ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise CorruptStoreError(f"{manifest_path} is not a robot_rewards preference export")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise CorruptStoreError(f"{manifest_path} has no valid schema_version ({version!r})")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(f"{root} was exported by a newer robot_rewards (schema {version}, this reads "
                                 f"up to {SCHEMA_VERSION}); upgrade robot_rewards")
    counts = manifest.get("counts") or {}
    if not isinstance(counts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise CorruptStoreError(f"{manifest_path} has malformed record counts ({counts!r})")
    return version, counts


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of each line of a JSONL file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CorruptStoreError(f"incomplete export: {path} is missing") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise CorruptStoreError(f"{path} is not a JSONL text file ({exc})") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nesting too deep
            raise CorruptStoreError(f"{path}:{i} is not valid JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(rec, dict):
            raise CorruptStoreError(f"{path}:{i} is not a JSON object")
        out.append((i, rec))
    return out


# Uids name array files (`arrays/<uid>.npz`): nothing that could leave the folder ("../x").
_UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# More candidates than any query shows; a bigger count is a damaged record.
MAX_CANDIDATES = 1_000_000


def _uid(value) -> str:
    if not isinstance(value, str) or not _UID.match(value):
        raise ValueError(f"bad uid {value!r} (letters, digits, '-' and '_' only)")
    return value


def _time(rec: dict, key: str, optional: bool = False) -> None:
    """Check a record's time in seconds: a finite number (or null where `optional`)."""
    value = rec[key] if not optional else rec.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite time in seconds, got {value!r}")


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def _checked_records(root: Path, tables: dict[str, list[tuple[int, dict]]]) -> Export:
    """The records of each table checked (fields, types, references between them) and keyed."""
    out = Export(root, {}, {}, {}, {}, [], [])
    where = ""
    try:
        for i, s in tables["sessions"]:
            where = f"sessions.jsonl:{i}"
            _uid(s["uid"])
            for key in ("labeller", "task", "mode"):
                checked_text(s[key], key, ValueError)
            _time(s, "started_at")
            _time(s, "ended_at", optional=True)
            out.sessions[s["uid"]] = s
        for i, q in tables["queries"]:
            where = f"queries.jsonl:{i}"
            _uid(q["uid"])
            if not isinstance(q["session"], str) or q["session"] not in out.sessions:
                raise ValueError(f"session {q['session']!r} is not in sessions.jsonl")
            if not isinstance(q["primitive"], str) or q["primitive"] not in PRIMITIVE_SPECS:
                raise ValueError(f"unknown primitive {q['primitive']!r}")
            n = q["n_candidates"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CANDIDATES:
                raise ValueError(f"bad n_candidates {n!r}")
            for key in ("task", "goal", "arrays_sha256"):
                checked_text(q[key], key, ValueError)
            _time(q, "created_at")
            _time(q, "shown_at", optional=True)
            out.queries[q["uid"]] = q
        for i, rk in tables["rankings"]:
            where = f"rankings.jsonl:{i}"
            if not isinstance(rk["query"], str) or rk["query"] not in out.queries:
                raise UnknownQueryError(f"{root / where}: ranking of unknown query {rk['query']!r}")
            _int(rk["id"], "id")
            check_ranking(rk["order"], out.queries[rk["query"]]["n_candidates"])
            if not isinstance(rk["rest_equal"], bool):
                raise ValueError(f"rest_equal must be true or false, got {rk['rest_equal']!r}")
            checked_text(rk["labeller"], "labeller", ValueError)
            _time(rk, "answered_at")
            _time(rk, "shown_at", optional=True)
            out.rankings[rk["id"]] = rk
        for i, lab in tables["labels"]:
            where = f"labels.jsonl:{i}"
            if not isinstance(lab["query"], str) or lab["query"] not in out.queries:
                raise UnknownQueryError(f"{root / where}: label for unknown query {lab['query']!r}")
            n = out.queries[lab["query"]]["n_candidates"]
            if not isinstance(lab["answer"], str) or lab["answer"] not in ANSWERS:
                raise ValueError(f"unknown answer {lab['answer']!r}")
            if checked_index(lab["a"], n, "a") == checked_index(lab["b"], n, "b"):
                raise ValueError("a == b")
            checked_text(lab["labeller"], "labeller", ValueError)
            _time(lab, "answered_at")
            _time(lab, "shown_at", optional=True)
            rid = lab.get("ranking")
            if rid is not None:
                if _int(rid, "ranking") not in out.rankings or out.rankings[rid]["query"] != lab["query"]:
                    raise ValueError(f"ranking {rid!r} is not a ranking of this query in rankings.jsonl")
                out.ranking_labels.setdefault(rid, []).append(lab)
            out.labels.append(lab)
        for i, d in tables["demonstrations"]:
            where = f"demonstrations.jsonl:{i}"
            if not isinstance(d["query"], str) or d["query"] not in out.queries:
                raise UnknownQueryError(f"{root / where}: demonstration for unknown query {d['query']!r}")
            dim = PRIMITIVE_SPECS[out.queries[d["query"]]["primitive"]].dim
            params = np.asarray(d["params"], dtype=np.float64)
            if params.shape != (dim,) or not np.all(np.isfinite(params)):
                raise ValueError(f"params must be {dim} finite numbers")
            checked_text(d["labeller"], "labeller", ValueError)
            _time(d, "created_at")
            out.demonstrations.append(d)
    except UnknownQueryError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # LabelError is a ValueError too
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CorruptStoreError(f"{root / where}: bad record ({detail})") from None
    return out

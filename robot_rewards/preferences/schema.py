"""SQLite schema of the preference store and its migrations.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[v]` takes a version-v database
to v + 1; `migrate` runs each step in its own IMMEDIATE transaction (SQLite DDL and
user_version are transactional), so an interrupted upgrade leaves the database at the last
complete version, never in between. A new database is built by running every step from 0, so
the upgrade path of old databases is the path every database takes.

Versions:
  1: sessions, queries (arrays by reference: `arrays/<uid>.npz` + its SHA-256), rankings, and
     pair labels (pairwise answers, or expanded from a ranking via `ranking_id`).
  2: shown-at timestamps on queries, labels and rankings; the demonstrations table.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Callable

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# Kept verbatim (never edited) so tests can build a real version-1 database and migrate it.
V1_DDL: tuple[str, ...] = (
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        labeller TEXT NOT NULL,
        task TEXT NOT NULL,
        mode TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        meta TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE queries (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        task TEXT NOT NULL,
        primitive TEXT NOT NULL,
        goal TEXT NOT NULL,
        n_candidates INTEGER NOT NULL CHECK (n_candidates >= 1),
        arrays_sha256 TEXT NOT NULL,
        created_at REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX queries_task ON queries(task)",
    "CREATE INDEX queries_session ON queries(session_id)",
    """CREATE TABLE rankings (
        id INTEGER PRIMARY KEY,
        query_id INTEGER NOT NULL REFERENCES queries(id),
        labeller TEXT NOT NULL,
        ranking TEXT NOT NULL,
        rest_equal INTEGER NOT NULL,
        answered_at REAL NOT NULL
    )""",
    "CREATE INDEX rankings_query ON rankings(query_id)",
    """CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        query_id INTEGER NOT NULL REFERENCES queries(id),
        a INTEGER NOT NULL,
        b INTEGER NOT NULL,
        answer TEXT NOT NULL CHECK (answer IN ('a', 'b', 'tie', 'cant_tell')),
        labeller TEXT NOT NULL,
        ranking_id INTEGER REFERENCES rankings(id) ON DELETE CASCADE,
        answered_at REAL NOT NULL,
        CHECK (a <> b AND a >= 0 AND b >= 0)
    )""",
    # Backstop of DuplicateLabelError: one answer per unordered pair, labeller and query.
    "CREATE UNIQUE INDEX labels_unique_pair ON labels(query_id, labeller, min(a, b), max(a, b))",
    "CREATE INDEX labels_ranking ON labels(ranking_id)",
)

V2_DDL: tuple[str, ...] = (
    "ALTER TABLE queries ADD COLUMN shown_at REAL",
    "ALTER TABLE rankings ADD COLUMN shown_at REAL",
    "ALTER TABLE labels ADD COLUMN shown_at REAL",
    """CREATE TABLE demonstrations (
        id INTEGER PRIMARY KEY,
        query_id INTEGER NOT NULL REFERENCES queries(id),
        labeller TEXT NOT NULL,
        params TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX demonstrations_query ON demonstrations(query_id)",
)


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    # One execute per statement: executescript() would COMMIT the open migration transaction.
    for sql in statements:
        conn.execute(sql)


def create_v1(conn: sqlite3.Connection) -> None:
    """0 -> 1: the version-1 tables."""
    _run(conn, V1_DDL)


def v1_to_v2(conn: sqlite3.Connection) -> None:
    """1 -> 2: shown-at columns (NULL for old rows) and the demonstrations table."""
    _run(conn, V2_DDL)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [create_v1, v1_to_v2]
assert len(MIGRATIONS) == SCHEMA_VERSION


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new, empty one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, name: str = "database") -> int:
    """Bring `conn` (opened with isolation_level=None) up to SCHEMA_VERSION, one transaction per
    step; returns the version found before migrating. `name` labels the log lines."""
    start = user_version(conn)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = user_version(conn)
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return start
            if start > 0:  # an existing store being upgraded; a new one just gets built
                log.info("migrating preference store %s from schema %d to %d", name, version, version + 1)
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

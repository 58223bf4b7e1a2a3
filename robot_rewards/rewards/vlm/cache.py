"""On-disk cache of VLM answers: SQLite, one row per request key (model, prompt, image hashes,
sampling settings). A repeated question (a re-run, a resumed labelling session) costs nothing."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

_SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL
)"""


class AnswerCache:
    """Answers by request key in a SQLite file (created with its folder on first use)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"VLM cache {self.path} is a folder; vlm.cache names a SQLite file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path))
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()
        except sqlite3.DatabaseError as exc:
            raise OSError(f"VLM cache {self.path} is not a readable SQLite file: {exc}") from exc

    def get(self, key: str) -> str | None:
        """The stored answer text for `key`, or None."""
        row = self._conn.execute("SELECT text FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, model: str, text: str) -> None:
        """Store (or replace) the answer for `key`; committed at once."""
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO answers (key, model, text, created) VALUES (?, ?, ?, ?)",
                               (key, model, text, time.time()))

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

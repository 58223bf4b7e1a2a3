"""Human preferences of the teleop/preference loop.

- `store`: `PreferenceStore`, the SQLite (WAL) store of labelling sessions, queries (by
  reference to array files), pair labels, rankings and demonstrations, with export/import.
- `arrays`: `QueryArrays`, a query's array file: checked, written atomically, read back.
- `portable`: export to / import from a portable folder (`PreferenceStore.export`/`import_`).
- `ranking`: `ranking_to_pairs`, a best-first ranking expanded into pairwise labels.
- `schema`: the database schema, its version and migrations.
- `errors`: the store's exceptions (all derive from `PreferenceStoreError`).
"""

from robot_rewards.preferences.arrays import QueryArrays
from robot_rewards.preferences.errors import (
    CorruptStoreError,
    DuplicateLabelError,
    LabelError,
    MissingArraysError,
    PreferenceStoreError,
    QueryInputError,
    SchemaVersionError,
    UnknownQueryError,
    UnknownSessionError,
)
from robot_rewards.preferences.ranking import ranking_to_pairs
from robot_rewards.preferences.schema import SCHEMA_VERSION
from robot_rewards.preferences.store import ANSWERS, PreferenceStore, QueryRecord

__all__ = [
    "ANSWERS",
    "CorruptStoreError",
    "DuplicateLabelError",
    "LabelError",
    "MissingArraysError",
    "PreferenceStore",
    "PreferenceStoreError",
    "QueryArrays",
    "QueryInputError",
    "QueryRecord",
    "SCHEMA_VERSION",
    "SchemaVersionError",
    "UnknownQueryError",
    "UnknownSessionError",
    "ranking_to_pairs",
]

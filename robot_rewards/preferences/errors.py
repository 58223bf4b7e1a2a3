"""Errors of the preference store: one specific class per kind of bad input or bad file.

Every error derives from `PreferenceStoreError`, so a console can catch them all and show the
message; the input errors also derive from the matching builtin (ValueError, LookupError).
"""

from __future__ import annotations


class PreferenceStoreError(Exception):
    """Base class of every preference-store error."""


class UnknownQueryError(PreferenceStoreError, LookupError):
    """A query id (or uid) that is not in the store."""


class UnknownSessionError(PreferenceStoreError, LookupError):
    """A labelling-session id that is not in the store."""


class LabelError(PreferenceStoreError, ValueError):
    """A bad answer: unknown answer name, candidate index out of range, bad ranking or
    demonstration, or (for `pairs()`) no labels to return."""


class DuplicateLabelError(PreferenceStoreError, ValueError):
    """The same unordered candidate pair of a query answered twice by the same labeller."""


class QueryInputError(PreferenceStoreError, ValueError):
    """A query that cannot be stored (empty candidates, wrong array shapes, NaN points, ...)."""


class MissingArraysError(PreferenceStoreError, FileNotFoundError):
    """A query's array file is missing, truncated or does not match its recorded checksum."""


class SchemaVersionError(PreferenceStoreError):
    """A database or export written by a newer robot_rewards than this one."""


class CorruptStoreError(PreferenceStoreError):
    """A file that is not a (healthy) preference store or export."""

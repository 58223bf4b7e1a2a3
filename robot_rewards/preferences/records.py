"""What a stored record may hold: the answer codes, the arrays folder and the field checks shared by
the store (records as they are written) and `portable` (records as they are imported)."""

from __future__ import annotations

import math
import operator
from typing import Any

from robot_rewards.preferences.errors import LabelError

ARRAYS_DIR = "arrays"
ANSWERS: dict[str, float] = {"a": 1.0, "b": 0.0, "tie": 0.5, "cant_tell": math.nan}


def checked_text(value: Any, what: str, error: type[Exception]) -> str:
    """`value` if it is a non-empty string, else `error` naming `what`."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {value!r}")
    return value


def checked_index(value: Any, n: int, what: str) -> int:
    """`value` as a candidate index in [0, n) (bools refused), else a LabelError naming `what`."""
    if isinstance(value, bool):
        raise LabelError(f"{what} must be a candidate index, not a bool ({value!r})")
    try:
        i = operator.index(value)
    except TypeError:
        raise LabelError(f"{what} is {value!r}, not an integer candidate index") from None
    if not 0 <= i < n:
        raise LabelError(f"{what} = {i} is out of range for {n} candidates")
    return i

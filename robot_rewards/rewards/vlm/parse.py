"""Strict parsing of VLM answers: the prompts ask for one word or one number, and only that is
accepted (case-insensitive; surrounding whitespace, quotes, backticks, asterisks and one final
full stop are ignored). Anything else, prose included, is "malformed": the caller turns it into
"can't tell" (NaN) and counts it; it never raises."""

from __future__ import annotations

import re
from typing import Mapping, TypeVar

T = TypeVar("T")

_WRAPPERS = "\"'`*"


def normalise(text: str | None) -> str:
    """The bare answer: stripped of whitespace, wrapping quotes/backticks/asterisks and one
    trailing full stop, upper-cased ("" for None)."""
    if text is None:
        return ""
    s = text.strip()
    for _ in range(3):  # e.g. **"A"** -> A
        s = s.strip().strip(_WRAPPERS).strip()
    if s.endswith("."):
        s = s[:-1].rstrip()
    return s.upper()


def parse_word(text: str | None, choices: Mapping[str, T]) -> T | None:
    """choices[word] if the answer is exactly one of the words (see `normalise`), else None."""
    return choices.get(normalise(text))


def parse_index(text: str | None, count: int, none_word: str = "NONE") -> int | None:
    """A 1-based mark number in 1..count as a 0-based index; -1 for `none_word`; None if the
    answer is anything else (another number, several numbers, prose)."""
    s = normalise(text)
    if s == none_word:
        return -1
    m = re.fullmatch(r"#?(\d{1,4})", s)
    if m is None:
        return None
    k = int(m.group(1))
    return k - 1 if 1 <= k <= count else None

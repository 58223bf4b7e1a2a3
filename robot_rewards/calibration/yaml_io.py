"""Reading the calibration YAML files strictly: one-line errors naming the file and the field.

Camera_info, transform, robot-pose and board files are small hand-edited or tool-written
mappings. A file that is not YAML, or a value that is not a finite number where one is needed
(NaN and inf included: they would only surface much later as "no valid depth" or an empty
crop), is refused here with the error class the caller names.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import yaml

MAX_BYTES = 1 << 20  # calibration files are a few kB; anything this large is not one


def read_yaml_mapping(path: str | os.PathLike, error: type[Exception], what: str) -> dict:
    """The top-level mapping of the YAML file `path` ({} for an empty file).

    FileNotFoundError when it is missing; `error` (one line, naming the file) when it is not
    UTF-8 text, not YAML, larger than MAX_BYTES, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise error(f"{path}: {len(raw)} bytes is too large for a {what} file (not a YAML file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a YAML file (not UTF-8 text)") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise error(f"{path}: not a valid YAML file ({problem}{where})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an impossible date, absurd nesting
        raise error(f"{path}: not a valid YAML file ({type(exc).__name__})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise error(f"{path}: expected a mapping of {what} fields, got a YAML {type(doc).__name__}")
    return doc


def finite_number(value, path, field: str, error: type[Exception]) -> float:
    """`value` as a finite float, else `error` naming the file and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{path}: {field} must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise error(f"{path}: {field} is {number}; it must be a finite number")
    return number


def whole_number(value, path, field: str, error: type[Exception], minimum: int | None = None) -> int:
    """`value` as an int (a float only when integral), at least `minimum`, else `error`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{path}: {field} must be an integer, got {_show(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise error(f"{path}: {field} must be an integer, got {value}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise error(f"{path}: {field} must be at least {minimum}, got {number}")
    return number


def finite_list(values, path, field: str, error: type[Exception]) -> list[float]:
    """A list of finite floats, else `error` naming the field and the first bad entry."""
    if not isinstance(values, (list, tuple)):
        raise error(f"{path}: {field} must be a list of numbers, got {_show(values)}")
    return [finite_number(v, path, f"{field}[{k}]", error) for k, v in enumerate(values)]


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

"""Typed configs from raw values: strings and numbers checked and converted into a dataclass.

Launch arguments, ROS parameters and the `?key=value` options of a reward spec arrive as
strings (or as YAML's loosely typed numbers); `coerce_config` turns them into a config
dataclass, naming the offending parameter on error. No ROS, no torch.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping


class ParameterError(ValueError):
    """A parameter value of the wrong type or an unknown parameter name."""


def field_types(cls) -> dict[str, Any]:
    """Field name -> resolved type annotation of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(name: str, kind, value):
    origin = typing.get_origin(kind)
    if origin in (list, typing.List):
        (item,) = typing.get_args(kind)
        if value is None:
            return []
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ParameterError(f"parameter '{name}': expected a list of {item.__name__}, got {value!r}")
        return [_coerce(f"{name}[{i}]", item, v) for i, v in enumerate(value)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind in (int, float):
        # int accepts ints only; float accepts ints too; both parse strings; bools are neither
        numeric = (int,) if kind is int else (int, float)
        if isinstance(value, numeric) and not isinstance(value, bool):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a launch argument such as seed:=3 given to a string parameter
    raise ParameterError(
        f"parameter '{name}': expected {getattr(kind, '__name__', kind)}, got {value!r} "
        f"({type(value).__name__})"
    )


def coerce_config(cls, values: Mapping[str, Any]):
    """An instance of dataclass `cls` from raw values (defaults for missing keys).

    Strings are accepted for numbers and booleans (launch arguments are strings); unknown
    keys and values of the wrong type raise ParameterError naming the parameter.
    """
    types = field_types(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown} for {cls.__name__}; known: {sorted(types)}")
    return cls(**{k: _coerce(k, types[k], v) for k, v in values.items()})

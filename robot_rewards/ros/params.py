"""Declare a config dataclass as ROS parameters and read it back, type-checked.

Typing choices, each avoiding a known rclpy pitfall:

- float fields are declared with `dynamic_typing`, because YAML and launch arguments turn
  `1` into an integer, which a statically typed double parameter refuses; ints are then
  converted here;
- list fields with an empty default are declared by type only (an empty list would otherwise
  be inferred as a byte array), and read as the default when nothing overrides them;
- everything else is statically typed from its default.

`coerce_config` is the ROS-free part (also used by the launch helpers): it checks and converts
raw values into the dataclass, naming the parameter on error.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping


class ParameterError(ValueError):
    """A parameter value of the wrong type or an unknown parameter name."""


def _field_types(cls) -> dict[str, Any]:
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
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
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
    types = _field_types(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown} for {cls.__name__}; known: {sorted(types)}")
    return cls(**{k: _coerce(k, types[k], v) for k, v in values.items()})


def descriptions(cls) -> dict[str, str]:
    """Parameter name -> description of a config dataclass."""
    return {f.name: f.metadata.get("description", "") for f in dataclasses.fields(cls)}


def _type_enum(kind):
    from rclpy.parameter import Parameter

    item = typing.get_args(kind)[0] if typing.get_origin(kind) in (list, typing.List) else None
    table = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
             float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}
    return table[item]


def declare_config(node, cls):
    """Declare every field of `cls` as a parameter of `node` and return the checked config.

    Raises ParameterError when an override (YAML, launch, command line) has the wrong type.
    """
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import ParameterUninitializedException

    defaults = cls()
    types = _field_types(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind, default = types[f.name], getattr(defaults, f.name)
        text = f.metadata.get("description", "")
        if kind is float:
            descriptor = ParameterDescriptor(description=text, dynamic_typing=True)
            node.declare_parameter(f.name, float(default), descriptor)
        elif isinstance(default, list) and not default:
            node.declare_parameter(f.name, _type_enum(kind), ParameterDescriptor(description=text))
        else:
            node.declare_parameter(f.name, default, ParameterDescriptor(description=text))
        try:
            values[f.name] = node.get_parameter(f.name).value
        except ParameterUninitializedException:
            values[f.name] = default
    return coerce_config(cls, values)

"""Declare a config dataclass as ROS parameters and read it back, type-checked.

Typing choices, each avoiding a known rclpy pitfall:

- float fields are declared with `dynamic_typing`, because YAML and launch arguments turn
  `1` into an integer, which a statically typed double parameter refuses; ints are then
  converted here;
- list fields with an empty default are declared by type only (an empty list would otherwise
  be inferred as a byte array), and read as the default when nothing overrides them;
- everything else is statically typed from its default.

`coerce_config` (robot_rewards.core.coerce, re-exported here) is the ROS-free part, also used
by the launch helpers and the reward specs: it checks and converts raw values into the
dataclass, naming the parameter on error.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from robot_rewards.core.coerce import ParameterError, coerce_config, field_types

__all__ = ["ParameterError", "coerce_config", "declare_config", "descriptions"]


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
    types = field_types(cls)
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

"""A double of the `launch` / `launch_ros` API used by the launch files (descriptions only).

Enough to call `generate_launch_description()`, evaluate its OpaqueFunctions with given
launch arguments and inspect the resulting Node actions; nothing is started.
"""

from __future__ import annotations

import types as pytypes


class LaunchDescription:
    def __init__(self, initial_entities=None):
        self.entities = list(initial_entities or [])

    def add_action(self, action) -> None:
        self.entities.append(action)


class DeclareLaunchArgument:
    def __init__(self, name, *, default_value=None, description="", choices=None, **kwargs):
        self.name, self.default_value, self.description, self.choices = name, default_value, description, choices


class LaunchConfiguration:
    def __init__(self, variable_name, *, default=None):
        self.variable_name, self.default = variable_name, default

    def perform(self, context) -> str:
        if self.variable_name in context.launch_configurations:
            return context.launch_configurations[self.variable_name]
        if self.default is not None:
            return self.default
        raise KeyError(f"launch configuration '{self.variable_name}' does not exist")


class OpaqueFunction:
    def __init__(self, *, function, args=None, kwargs=None):
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})

    def execute(self, context):
        return self.function(context, *self.args, **self.kwargs)


class LogInfo:
    def __init__(self, *, msg):
        self.msg = msg


class Shutdown:
    """launch.actions.Shutdown: ends the launch (here: keeps the reason)."""

    def __init__(self, *, reason="reason not given", **kwargs):
        self.reason = reason


class ProcessExited:
    """launch.events.process.ProcessExited: what a node's `on_exit` callable receives."""

    def __init__(self, *, process_name: str, returncode: int):
        self.process_name, self.returncode = process_name, returncode


class LaunchContext:
    def __init__(self, arguments: dict[str, str]):
        self.launch_configurations = dict(arguments)


class Node:
    """launch_ros.actions.Node: keeps what the launch file asked for."""

    def __init__(self, *, executable, package=None, name=None, namespace=None, parameters=None,
                 remappings=None, arguments=None, output="log", emulate_tty=False, on_exit=None, **kwargs):
        self.package, self.executable, self.name = package, executable, name
        self.on_exit = on_exit
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.arguments = list(arguments or [])
        self.output = output


def evaluate(description: LaunchDescription, arguments: dict[str, str]) -> list:
    """The actions of a description after applying argument defaults, then `arguments`."""
    values = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    unknown = set(arguments) - set(values)
    if unknown:
        raise KeyError(f"unknown launch arguments {sorted(unknown)}")
    values.update(arguments)
    context = LaunchContext(values)
    out = []
    for entity in description.entities:
        if isinstance(entity, OpaqueFunction):
            out.extend(entity.execute(context) or [])
        elif not isinstance(entity, DeclareLaunchArgument):
            out.append(entity)
    return out


def launch_modules() -> dict[str, pytypes.ModuleType]:
    """sys.modules entries for launch, launch.actions, launch.substitutions, launch_ros(.actions)."""
    def module(name, **attrs):
        m = pytypes.ModuleType(name)
        m.__dict__.update(attrs)
        return m

    launch = module("launch", LaunchDescription=LaunchDescription, LaunchContext=LaunchContext)
    launch.__path__ = []
    actions = module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, OpaqueFunction=OpaqueFunction,
                     LogInfo=LogInfo, Shutdown=Shutdown)
    substitutions = module("launch.substitutions", LaunchConfiguration=LaunchConfiguration)
    launch.actions, launch.substitutions = actions, substitutions
    launch_ros = module("launch_ros")
    launch_ros.__path__ = []
    launch_ros.actions = module("launch_ros.actions", Node=Node)
    return {"launch": launch, "launch.actions": actions, "launch.substitutions": substitutions,
            "launch_ros": launch_ros, "launch_ros.actions": launch_ros.actions}

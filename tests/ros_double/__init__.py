"""Test double of the ROS 2 Python API (rclpy, message packages, launch) for CI without ROS.

`installed()` is a context manager putting fake `rclpy`, `rclpy.*`, message packages
(`sensor_msgs.msg`, `control_msgs.action`, `std_srvs.srv`, ...) and `launch` modules into
sys.modules; message classes are generated from the rosbags type definitions with rclpy's
constructor and setter checks (see messages.py), the API mirrors rclpy's signatures
(see fake_rclpy.py). Modules of robot_rewards.ros.nodes imported inside are dropped on exit,
so they never keep references to the double.
"""

from __future__ import annotations

import contextlib
import sys
import types as pytypes

from . import fake_launch, fake_rclpy, messages

_NODE_MODULES = "robot_rewards.ros.nodes"


def _module(name: str, **attrs) -> pytypes.ModuleType:
    m = pytypes.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def rclpy_modules() -> dict[str, pytypes.ModuleType]:
    f = fake_rclpy
    subs = {
        "node": _module("rclpy.node", Node=f.Node, Parameter=f.Parameter),
        "qos": _module("rclpy.qos", QoSProfile=f.QoSProfile, ReliabilityPolicy=f.ReliabilityPolicy,
                       DurabilityPolicy=f.DurabilityPolicy, HistoryPolicy=f.HistoryPolicy,
                       QoSReliabilityPolicy=f.ReliabilityPolicy, QoSDurabilityPolicy=f.DurabilityPolicy,
                       qos_profile_sensor_data=f.qos_profile_sensor_data,
                       qos_profile_system_default=f.qos_profile_system_default,
                       qos_profile_services_default=f.qos_profile_services_default),
        "action": _module("rclpy.action", ActionServer=f.ActionServer, ActionClient=f.ActionClient,
                          GoalResponse=f.GoalResponse, CancelResponse=f.CancelResponse),
        "task": _module("rclpy.task", Future=f.Future, Task=f.Task),
        "executors": _module("rclpy.executors", SingleThreadedExecutor=f.SingleThreadedExecutor,
                             MultiThreadedExecutor=f.MultiThreadedExecutor,
                             ExternalShutdownException=f.ExternalShutdownException),
        "exceptions": _module("rclpy.exceptions", ParameterException=f.ParameterException,
                              ParameterNotDeclaredException=f.ParameterNotDeclaredException,
                              ParameterAlreadyDeclaredException=f.ParameterAlreadyDeclaredException,
                              InvalidParameterTypeException=f.InvalidParameterTypeException,
                              ParameterUninitializedException=f.ParameterUninitializedException),
        "parameter": _module("rclpy.parameter", Parameter=f.Parameter),
        "callback_groups": _module("rclpy.callback_groups", ReentrantCallbackGroup=f.ReentrantCallbackGroup,
                                   MutuallyExclusiveCallbackGroup=f.MutuallyExclusiveCallbackGroup),
        "time": _module("rclpy.time", Time=f.Time),
        "duration": _module("rclpy.duration", Duration=f.Duration),
        "clock": _module("rclpy.clock", Clock=f.Clock),
    }
    rclpy = _module("rclpy", init=f.init, shutdown=f.shutdown, ok=f.ok, spin=f.spin, spin_once=f.spin_once,
                    spin_until_future_complete=f.spin_until_future_complete, create_node=f.create_node,
                    get_default_context=f.get_default_context, __path__=[], _fake=True)
    out = {"rclpy": rclpy}
    for name, module in subs.items():
        setattr(rclpy, name, module)
        out[f"rclpy.{name}"] = module
    return out


def _drop_node_modules() -> None:
    for name in [n for n in sys.modules if n == _NODE_MODULES or n.startswith(_NODE_MODULES + ".")]:
        del sys.modules[name]


@contextlib.contextmanager
def installed():
    """Fake rclpy, message packages and launch in sys.modules for the duration of the block."""
    import pytest

    _drop_node_modules()
    with pytest.MonkeyPatch.context() as mp:
        for name, module in {**messages.message_modules(), **rclpy_modules(), **fake_launch.launch_modules()}.items():
            mp.setitem(sys.modules, name, module)
        try:
            yield fake_rclpy
        finally:
            if fake_rclpy._default is not None and fake_rclpy._default.ok:
                fake_rclpy._default.ok = False
            fake_rclpy._default = None
            _drop_node_modules()

"""rclpy-style generated message classes, built from the rosbags type definitions.

They mirror what rosidl_generator_py generates, in the parts that catch real bugs:
keyword constructor with defaults that rejects unknown fields; attributes restricted to the
fields (a typo like `response.sucess = True` raises, as with __slots__); type-checked
setters (a float64 field refuses an int or a numpy float32, a float64[] field refuses a numpy
array and wants a sequence of floats or an array.array('d')); constants as class attributes;
services with Request/Response and actions with Goal/Result/Feedback classes.

Types missing from the rosbags store (control_msgs, std_srvs) are defined below from their
interface definitions (the fields the project uses and their neighbours); robot_rewards_interfaces
is registered from its own .msg/.srv/.action files (robot_rewards.ros.interfaces).
"""

from __future__ import annotations

import array
import types as pytypes
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from robot_rewards.ros import interfaces

_TYPECODES = {"uint8": "B", "int8": "b", "uint16": "H", "int16": "h", "uint32": "I", "int32": "i",
              "uint64": "Q", "int64": "q", "float32": "f", "float64": "d", "byte": "B", "char": "B"}
_INT_RANGES = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-2**15, 2**15 - 1),
               "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
               "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1), "byte": (0, 255), "char": (0, 255)}

# Interface definitions not in the rosbags typestore (control_msgs, std_srvs), as .msg text.
EXTRA_DEFINITIONS = {
    "control_msgs/msg/JointTolerance": "string name\nfloat64 position\nfloat64 velocity\nfloat64 acceleration\n",
    "control_msgs/msg/GripperCommand": "float64 position\nfloat64 max_effort\n",
    "control_msgs/action/FollowJointTrajectory_Goal": (
        "trajectory_msgs/JointTrajectory trajectory\n"
        "control_msgs/JointTolerance[] path_tolerance\n"
        "control_msgs/JointTolerance[] goal_tolerance\n"
        "builtin_interfaces/Duration goal_time_tolerance\n"),
    "control_msgs/action/FollowJointTrajectory_Result": (
        "int32 error_code\n"
        "int32 SUCCESSFUL=0\nint32 INVALID_GOAL=-1\nint32 INVALID_JOINTS=-2\nint32 OLD_HEADER_TIMESTAMP=-3\n"
        "int32 PATH_TOLERANCE_VIOLATED=-4\nint32 GOAL_TOLERANCE_VIOLATED=-5\n"
        "string error_string\n"),
    "control_msgs/action/FollowJointTrajectory_Feedback": (
        "std_msgs/Header header\nstring[] joint_names\n"
        "trajectory_msgs/JointTrajectoryPoint desired\ntrajectory_msgs/JointTrajectoryPoint actual\n"
        "trajectory_msgs/JointTrajectoryPoint error\n"),
    "control_msgs/action/GripperCommand_Goal": "control_msgs/GripperCommand command\n",
    "control_msgs/action/GripperCommand_Result": (
        "float64 position\nfloat64 effort\nbool stalled\nbool reached_goal\n"),
    "control_msgs/action/GripperCommand_Feedback": (
        "float64 position\nfloat64 effort\nbool stalled\nbool reached_goal\n"),
    "std_srvs/srv/Trigger_Request": "",
    "std_srvs/srv/Trigger_Response": "bool success\nstring message\n",
    "std_srvs/srv/Empty_Request": "",
    "std_srvs/srv/Empty_Response": "",
}
SERVICES = ("std_srvs/srv/Trigger", "std_srvs/srv/Empty", "robot_rewards_interfaces/srv/ScoreCandidates")
ACTIONS = ("control_msgs/action/FollowJointTrajectory", "control_msgs/action/GripperCommand",
           "robot_rewards_interfaces/action/ExecutePrimitive")


@lru_cache(maxsize=1)
def typestore():
    """A rosbags typestore (Jazzy, else Humble) with the extra definitions registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(getattr(Stores, "ROS2_JAZZY", None) or Stores.ROS2_HUMBLE)
    extra = {}
    for name, text in EXTRA_DEFINITIONS.items():
        (definition,) = get_types_from_msg(text, name).values()  # keyed by the name we use
        extra[name] = definition
    store.register(extra)
    interfaces.register(store)  # robot_rewards_interfaces: the same files rosidl generates from
    return store


def _check_base(kind: str, value, where: str):
    if kind == "bool":
        if not isinstance(value, bool):
            raise AssertionError(f"The '{where}' field must be of type 'bool', got {type(value).__name__}")
    elif kind == "string":
        if not isinstance(value, str):
            raise AssertionError(f"The '{where}' field must be of type 'str', got {type(value).__name__}")
    elif kind.startswith("float"):
        if not isinstance(value, float):
            raise AssertionError(f"The '{where}' field must be of type 'float', got {type(value).__name__}")
    else:
        if not isinstance(value, int):
            raise AssertionError(f"The '{where}' field must be of type 'int', got {type(value).__name__}")
        lo, hi = _INT_RANGES.get(kind, (-2**63, 2**64))
        if not lo <= value <= hi:
            raise AssertionError(f"The '{where}' field must be an integer in [{lo}, {hi}], got {value}")


class _Message:
    """Base of the generated classes (fields come from `_fields`: name -> (kind, detail))."""

    _fields: dict = {}
    _msgtype = ""

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise AssertionError(f"Invalid arguments passed to constructor: {', '.join(sorted(unknown))}")
        for name, (kind, detail) in self._fields.items():
            setattr(self, name, kwargs[name] if name in kwargs else _default(kind, detail))

    def __setattr__(self, name, value):
        if name not in self._fields:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        kind, detail = self._fields[name]
        object.__setattr__(self, name, _checked(self._msgtype, name, kind, detail, value))

    def __eq__(self, other):
        if type(other) is not type(self):
            return False
        for name in self._fields:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(np.asarray(a), np.asarray(b)):
                    return False
            elif a != b:
                return False
        return True

    def __repr__(self):
        body = ", ".join(f"{k}={getattr(self, k)!r:.40}" for k in self._fields)
        return f"{self._msgtype.replace('/', '.')}({body})"

    @classmethod
    def get_fields_and_field_types(cls) -> dict:
        return {name: str(detail) for name, (kind, detail) in cls._fields.items()}


def _default(kind, detail):
    if kind == 1:
        base = detail[0]
        return False if base == "bool" else "" if base == "string" else 0.0 if base.startswith("float") else 0
    if kind == 2:
        return message_class(detail)()
    (sub_kind, sub_detail), size = detail
    if kind == 3 and sub_kind == 1 and sub_detail[0] in _TYPECODES:
        return np.zeros(size, dtype=sub_detail[0].replace("byte", "uint8").replace("char", "uint8"))
    if kind == 3:
        return [_default(sub_kind, sub_detail) for _ in range(size)]
    if sub_kind == 1 and sub_detail[0] in _TYPECODES:
        return array.array(_TYPECODES[sub_detail[0]])
    return []


def _checked(msgtype, name, kind, detail, value):
    where = f"{msgtype}.{name}"
    if kind == 1:
        _check_base(detail[0], value, name)
        return value
    if kind == 2:
        cls = message_class(detail)
        if not isinstance(value, cls):
            raise AssertionError(f"The '{name}' field must be a sub message of type '{cls.__name__}'")
        return value
    (sub_kind, sub_detail), size = detail
    if sub_kind == 1 and sub_detail[0] in _TYPECODES:
        code = _TYPECODES[sub_detail[0]]
        if kind == 3:  # fixed-size: numpy of that dtype and size (or a sequence of the right length)
            arr = np.asarray(value)
            if arr.size != size:
                raise AssertionError(f"The '{name}' numpy array must have a size of {size}")
            return arr.astype(sub_detail[0], copy=False)
        if isinstance(value, array.array):
            if value.typecode != code:
                raise AssertionError(f"The '{name}' array.array() must have the type code of '{code}'")
            return value
        if isinstance(value, (bytes, bytearray)) and code == "B":
            return array.array("B", value)
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise AssertionError(
                f"The '{where}' field must be a set or sequence (or an array.array('{code}')); got "
                f"{type(value).__name__} (rclpy does not take numpy arrays for unbounded sequences)")
        for v in value:
            _check_base(sub_detail[0], v, name)
        return array.array(code, value)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise AssertionError(f"The '{where}' field must be a sequence, got {type(value).__name__}")
    out = list(value)
    for v in out:
        if sub_kind == 1:
            _check_base(sub_detail[0], v, name)
        elif not isinstance(v, message_class(sub_detail)):
            raise AssertionError(f"The '{where}' elements must be {sub_detail}")
    if kind == 3 and len(out) != size:
        raise AssertionError(f"The '{where}' field needs {size} elements")
    return out


_CLASSES: dict[str, type] = {}


def message_class(msgtype: str) -> type:
    """The generated class of 'pkg/msg/Name' (also 'pkg/srv/Name_Request', 'pkg/action/Name_Goal')."""
    cls = _CLASSES.get(msgtype)
    if cls is not None:
        return cls
    consts, fields = typestore().fielddefs[msgtype]
    package, _, name = msgtype.split("/")
    attrs = {"_msgtype": msgtype, "_fields": {n: (int(k), d) for n, (k, d) in fields}, "__slots__": ()}
    for const_name, _, value in consts:
        attrs[const_name] = value
    cls = type(name, (_Message,), attrs)
    cls.__module__ = f"{package}.{msgtype.split('/')[1]}"
    _CLASSES[msgtype] = cls
    return cls


def _service_class(srvtype: str) -> type:
    package, _, name = srvtype.split("/")
    return type(name, (), {"Request": message_class(srvtype + "_Request"),
                           "Response": message_class(srvtype + "_Response"),
                           "__module__": f"{package}.srv", "_srvtype": srvtype})


class FeedbackMessage:
    """What an ActionClient's feedback_callback receives (goal_id + feedback)."""

    def __init__(self, goal_id, feedback):
        self.goal_id, self.feedback = goal_id, feedback


def _action_class(actiontype: str) -> type:
    package, _, name = actiontype.split("/")
    impl = pytypes.SimpleNamespace(FeedbackMessage=FeedbackMessage)
    return type(name, (), {"Goal": message_class(actiontype + "_Goal"),
                           "Result": message_class(actiontype + "_Result"),
                           "Feedback": message_class(actiontype + "_Feedback"),
                           "Impl": impl, "__module__": f"{package}.action", "_actiontype": actiontype})


class _LazyMessages(pytypes.ModuleType):
    """A `pkg.msg` module whose classes are generated on first access."""

    def __init__(self, package: str):
        super().__init__(f"{package}.msg")
        self._package = package

    def __getattr__(self, name):
        msgtype = f"{self._package}/msg/{name}"
        if name.startswith("_") or msgtype not in typestore().fielddefs:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'")
        cls = message_class(msgtype)
        setattr(self, name, cls)
        return cls


def message_modules() -> dict[str, pytypes.ModuleType]:
    """sys.modules entries for every message, service and action package of the double."""
    modules: dict[str, pytypes.ModuleType] = {}
    packages = {t.split("/")[0] for t in typestore().fielddefs}
    for package in packages:
        modules[package] = pytypes.ModuleType(package)
        modules[package].__path__ = []  # a package, so `import pkg.msg` works
        modules[f"{package}.msg"] = _LazyMessages(package)
        modules[package].msg = modules[f"{package}.msg"]
    for srvtype in SERVICES:
        package, _, name = srvtype.split("/")
        module = modules.setdefault(f"{package}.srv", pytypes.ModuleType(f"{package}.srv"))
        setattr(module, name, _service_class(srvtype))
        modules[package].srv = module
    for actiontype in ACTIONS:
        package, _, name = actiontype.split("/")
        module = modules.setdefault(f"{package}.action", pytypes.ModuleType(f"{package}.action"))
        setattr(module, name, _action_class(actiontype))
        modules[package].action = module
    return modules


def message_types():
    """MessageTypes over these rclpy-style classes (actions and services included), for cores
    that build messages outside a node."""
    from robot_rewards.ros.convert_common import MessageTypes

    def resolve(msgtype: str) -> type:
        if msgtype in ACTIONS:
            return _action_class(msgtype)
        if msgtype in SERVICES:
            return _service_class(msgtype)
        if msgtype not in typestore().fielddefs:
            raise KeyError(msgtype)
        return message_class(msgtype)

    return MessageTypes(resolve, name="ros_double", sequences_as_array_array=True)

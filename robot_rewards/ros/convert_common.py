"""Shared pieces of the ROS message conversion layer: errors, message-type factories, time.

Every conversion is written against message *field names*, so one function serves two
backends whose classes differ:

- `rosbags` classes (pure Python dataclasses): every field is a required constructor
  argument and every primitive array is a numpy array;
- rclpy's generated classes: keyword arguments with defaults, type-checked setters,
  `array.array` for unbounded sequences (`float64[]`, `uint8[]`) and numpy for fixed-size
  arrays (`float64[9]`).

A `MessageTypes` object hides the difference: it resolves 'sensor_msgs/msg/Image' to a class,
builds messages by keyword with every field given (works for both), and packs arrays the
way the backend wants them. This module never imports rclpy; `rclpy_types()` imports the
generated message packages only when a type is first asked for.
"""

from __future__ import annotations

import array
import importlib
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np


class MessageConversionError(ValueError):
    """A message or array that cannot be converted; the text names the field and the values."""


# numpy dtype -> array.array typecode for rclpy sequences (both use native byte order).
_ARRAY_TYPECODES = {
    np.dtype(np.uint8): "B",
    np.dtype(np.int8): "b",
    np.dtype(np.uint16): "H",
    np.dtype(np.int16): "h",
    np.dtype(np.uint32): "I",
    np.dtype(np.int32): "i",
    np.dtype(np.uint64): "Q",
    np.dtype(np.int64): "q",
    np.dtype(np.float32): "f",
    np.dtype(np.float64): "d",
}


class MessageTypes:
    """Message classes of one backend, looked up by their ROS 2 name ('sensor_msgs/msg/Image').

    `resolve(name) -> class` does the lookup. `sequences_as_array_array` says how unbounded
    primitive sequences are stored: False for rosbags (numpy arrays), True for rclpy
    (`array.array`; its setters check every element of anything else, which is slow).
    """

    def __init__(
        self,
        resolve: Callable[[str], type],
        *,
        name: str = "custom",
        sequences_as_array_array: bool = False,
    ):
        self._resolve = resolve
        self._cache: dict[str, type] = {}
        self.name = name
        self.sequences_as_array_array = sequences_as_array_array

    def __call__(self, msgtype: str) -> type:
        """The class of `msgtype`, e.g. 'sensor_msgs/msg/PointCloud2'."""
        cls = self._cache.get(msgtype)
        if cls is None:
            try:
                cls = self._resolve(msgtype)
            except (KeyError, AttributeError, ImportError, ValueError) as exc:
                raise MessageConversionError(
                    f"message type '{msgtype}' is not available from the {self.name} message types"
                ) from exc
            self._cache[msgtype] = cls
        return cls

    def new(self, msgtype: str, **fields: Any) -> Any:
        """A `msgtype` message built by keyword with every field given (rosbags and rclpy)."""
        return self(msgtype)(**fields)

    def sequence(self, values, dtype) -> Any:
        """An unbounded primitive sequence field (`float64[]`, `uint8[]`) for this backend."""
        values = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("="))
        if not self.sequences_as_array_array:
            return values.reshape(-1)
        out = array.array(_ARRAY_TYPECODES[values.dtype])
        out.frombytes(values.tobytes())
        return out

    def fixed_array(self, values, dtype) -> np.ndarray:
        """A fixed-size primitive array field (`float64[9]`): numpy in both backends."""
        return np.array(values, dtype=np.dtype(dtype).newbyteorder("=")).reshape(-1)

    def __repr__(self) -> str:
        return f"MessageTypes({self.name!r})"


def as_message_types(msg_types) -> MessageTypes:
    """Accept a `MessageTypes`, a rosbags `Typestore`, a name -> class mapping or a callable."""
    if isinstance(msg_types, MessageTypes):
        return msg_types
    types = getattr(msg_types, "types", None)
    if isinstance(types, Mapping):  # rosbags Typestore
        return MessageTypes(types.__getitem__, name="rosbags typestore")
    if isinstance(msg_types, Mapping):
        return MessageTypes(msg_types.__getitem__, name="mapping")
    if callable(msg_types):
        return MessageTypes(msg_types, name=getattr(msg_types, "__name__", "callable"))
    raise TypeError(
        "msg_types must be a MessageTypes, a rosbags Typestore, a mapping or a callable "
        f"resolving 'pkg/msg/Name' to a class; got {type(msg_types).__name__}"
    )


def rosbags_store():
    """The rosbags `Stores` member used here: ROS 2 Jazzy, or Humble on older rosbags."""
    from rosbags.typesys import Stores  # lazy: only rosbags users pay for the import

    return getattr(Stores, "ROS2_JAZZY", None) or Stores.ROS2_HUMBLE


@lru_cache(maxsize=1)
def rosbags_typestore():
    """The rosbags typestore behind `ROSBAGS_TYPES` (built once): the distribution's standard
    types and robot_rewards_interfaces."""
    from rosbags.typesys import get_typestore  # lazy: only rosbags users pay for the import

    from robot_rewards.ros import interfaces

    store = get_typestore(rosbags_store())
    interfaces.register(store)  # robot_rewards_interfaces: bags carry the typed messages
    return store


def _resolve_rosbags(msgtype: str) -> type:
    return rosbags_typestore().types[msgtype]


# Message classes from rosbags (built on first use); the same functions work with rclpy_types().
ROSBAGS_TYPES = MessageTypes(_resolve_rosbags, name="rosbags")


def _resolve_rclpy(msgtype: str) -> type:
    package, kind, name = msgtype.split("/")
    module = importlib.import_module(f"{package}.{kind}")
    base, _, part = name.rpartition("_")
    if kind in ("srv", "action") and not hasattr(module, name) and part in _PART_CLASSES:
        return getattr(getattr(module, base), _PART_CLASSES[part])  # 'Name_Request' -> Name.Request
    return getattr(module, name)


_PART_CLASSES = {"Request": "Request", "Response": "Response", "Goal": "Goal", "Result": "Result",
                 "Feedback": "Feedback"}


def rclpy_types() -> MessageTypes:
    """Message types from the ROS 2 generated Python packages (sensor_msgs.msg.Image, ...).

    Imports `builtin_interfaces.msg` now to fail early and clearly when ROS 2 is not sourced;
    the other packages are imported when first used.
    """
    try:
        importlib.import_module("builtin_interfaces.msg")
    except ImportError as exc:
        raise ImportError(
            "ROS 2 message packages are not importable (builtin_interfaces.msg): source your "
            "ROS 2 setup (e.g. /opt/ros/jazzy/setup.bash) or use ROSBAGS_TYPES"
        ) from exc
    return MessageTypes(_resolve_rclpy, name="rclpy", sequences_as_array_array=True)


# --- time -------------------------------------------------------------------------------------

_NS = 1_000_000_000
_INT32 = (-(2**31), 2**31 - 1)


def _split_seconds(t: float, what: str) -> tuple[int, int]:
    """(sec, nanosec) with 0 <= nanosec < 1e9 for float seconds `t` (ROS 2 normal form)."""
    try:
        t = float(t)
    except (TypeError, ValueError) as exc:
        raise MessageConversionError(f"{what}: expected seconds as a number, got {t!r}") from exc
    if not math.isfinite(t):
        raise MessageConversionError(f"{what}: time must be finite, got {t}")
    sec = math.floor(t)
    nanosec = round((t - sec) * _NS)  # t - floor(t) is exact in floating point
    if nanosec == _NS:
        sec, nanosec = sec + 1, 0
    if not _INT32[0] <= sec <= _INT32[1]:
        raise MessageConversionError(f"{what}: {t} s is outside the int32 seconds of ROS 2 time")
    return sec, nanosec


def stamp_parts(stamp, what: str = "stamp") -> tuple[int, int]:
    """(sec, nanosec) of float seconds, a (sec, nanosec) pair, or a Time/Duration message."""
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return int(stamp.sec), int(stamp.nanosec)
    if isinstance(stamp, tuple):
        if len(stamp) != 2:
            raise MessageConversionError(f"{what}: a tuple stamp is (sec, nanosec), got {stamp!r}")
        sec, nanosec = (int(v) for v in stamp)
        if not 0 <= nanosec < _NS:
            raise MessageConversionError(f"{what}: nanosec must be in [0, 1e9), got {nanosec}")
        return sec, nanosec
    return _split_seconds(stamp, what)


def stamp_to_sec(stamp) -> float:
    """Float seconds of a builtin_interfaces Time or Duration (or a (sec, nanosec) pair)."""
    sec, nanosec = stamp_parts(stamp)
    return sec + nanosec / _NS


def stamp_to_ns(stamp) -> int:
    """Integer nanoseconds of a Time/Duration: exact, unlike float seconds for epoch times."""
    sec, nanosec = stamp_parts(stamp)
    return sec * _NS + nanosec


def sec_to_stamp(t, msg_types, msgtype: str = "builtin_interfaces/msg/Time"):
    """A Time (or, with msgtype, Duration) message of float seconds or a (sec, nanosec) pair."""
    sec, nanosec = stamp_parts(t)
    return as_message_types(msg_types).new(msgtype, sec=sec, nanosec=nanosec)


def ns_to_stamp(ns: int, msg_types, msgtype: str = "builtin_interfaces/msg/Time"):
    """A Time (or Duration) message of integer nanoseconds."""
    sec, nanosec = divmod(int(ns), _NS)
    return sec_to_stamp((sec, nanosec), msg_types, msgtype)


def make_header(frame_id: str, stamp, msg_types):
    """A std_msgs Header; `stamp` is float seconds, (sec, nanosec) or a Time message."""
    types = as_message_types(msg_types)
    return types.new(
        "std_msgs/msg/Header", stamp=sec_to_stamp(stamp, types), frame_id=str(frame_id)
    )


def header_of(header, msg_types):
    """Normalise the `header` argument of the *_to_msg functions into a Header of msg_types.

    Accepted: a Header message (of any backend: it is rebuilt, so a rosbags header can go into
    an rclpy message), a (frame_id, stamp) pair, a frame_id string (stamp 0) or None.
    """
    if header is None:
        return make_header("", (0, 0), msg_types)
    if isinstance(header, str):
        return make_header(header, (0, 0), msg_types)
    if isinstance(header, tuple) and len(header) == 2 and isinstance(header[0], str):
        return make_header(header[0], header[1], msg_types)
    if hasattr(header, "stamp") and hasattr(header, "frame_id"):
        return make_header(header.frame_id, header.stamp, msg_types)
    raise MessageConversionError(
        "header: expected a std_msgs/Header, (frame_id, stamp), a frame_id string or None; "
        f"got {type(header).__name__}"
    )


def uint8_buffer(data, what: str) -> np.ndarray:
    """A uint8 view of a message's `data` field (numpy, array.array, bytes or a list)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise MessageConversionError(
                f"{what}.data: expected uint8 bytes, got dtype {data.dtype}"
            )
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)  # bytes, array.array('B'), memoryview: no copy
    except TypeError:
        pass
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:  # a list holding 1000 or "abc"
        raise MessageConversionError(f"{what}.data: expected bytes 0..255 ({exc})") from None


def float_array(values, what: str, dtype=np.float64) -> np.ndarray:
    """A 1-D float copy of a sequence field, with a clear error for non-numeric content."""
    try:
        return np.array(values, dtype=dtype).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise MessageConversionError(f"{what}: expected numbers, got {values!r:.80}") from exc

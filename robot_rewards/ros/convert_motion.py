"""numpy <-> JointState, JointTrajectory (trajectory_msgs) and TF (TransformStamped, TFMessage)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from robot_rewards.core import transforms
from robot_rewards.ros.convert_common import (
    MessageConversionError,
    as_message_types,
    float_array,
    header_of,
    make_header,
    sec_to_stamp,
    stamp_parts,
    stamp_to_sec,
)

# --- JointState -------------------------------------------------------------------------------


class JointStateData(NamedTuple):
    """Joint names and per-joint arrays (float64); velocity/effort are empty when not sent."""

    names: list[str]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


def _joint_vector(values, n: int, what: str, optional: bool) -> np.ndarray:
    """A float64 vector of n values; optional vectors may also be empty (ROS: not provided)."""
    if values is None:
        values = []
    vector = float_array(values, what)
    if vector.size != n and not (optional and vector.size == 0):
        raise MessageConversionError(
            f"{what}: {vector.size} values for {n} joint names" + (" (or 0)" if optional else "")
        )
    return vector


def _names(names, what: str) -> list[str]:
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise MessageConversionError(f"{what}: joint names repeat: {names}")
    return names


def joint_state_to_msg(
    names: Sequence[str], position, header, msg_types, velocity=None, effort=None
):
    """A sensor_msgs/JointState; velocity and effort may be omitted (sent empty)."""
    names = _names(names, "joint_state.name")
    n = len(names)
    types = as_message_types(msg_types)
    return types.new(
        "sensor_msgs/msg/JointState",
        header=header_of(header, types),
        name=names,
        position=types.sequence(
            _joint_vector(position, n, "joint_state.position", False), np.float64
        ),
        velocity=types.sequence(
            _joint_vector(velocity, n, "joint_state.velocity", True), np.float64
        ),
        effort=types.sequence(_joint_vector(effort, n, "joint_state.effort", True), np.float64),
    )


def msg_to_joint_state(msg) -> JointStateData:
    """Names and float64 position/velocity/effort arrays of a sensor_msgs/JointState."""
    names = [str(n) for n in msg.name]
    n = len(names)
    # ROS allows an empty position too (e.g. effort-only states).
    return JointStateData(
        names,
        _joint_vector(msg.position, n, "joint_state.position", True),
        _joint_vector(msg.velocity, n, "joint_state.velocity", True),
        _joint_vector(msg.effort, n, "joint_state.effort", True),
    )


# --- JointTrajectory --------------------------------------------------------------------------


class JointTrajectoryData(NamedTuple):
    """A joint trajectory: (T,) seconds from start and (T, J) arrays (None when not sent)."""

    names: list[str]
    time_from_start: np.ndarray
    positions: np.ndarray | None
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None
    effort: np.ndarray | None = None


_POINT_ARRAYS = ("positions", "velocities", "accelerations", "effort")


def _trajectory_table(values, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if values is None:
        return None
    table = np.asarray(values, dtype=np.float64)
    if table.shape != shape:
        raise MessageConversionError(
            f"{what}: expected shape (points, joints) = {shape}, got {table.shape}"
        )
    return table


def joint_trajectory_to_msg(
    names: Sequence[str],
    positions,
    time_from_start,
    header,
    msg_types,
    *,
    velocities=None,
    accelerations=None,
    effort=None,
):
    """A trajectory_msgs/JointTrajectory of (T, J) arrays and (T,) seconds from start.

    time_from_start must increase strictly; any of the (T, J) arrays may be None (sent empty).
    """
    names = _names(names, "joint_trajectory.joint_names")
    times = float_array(time_from_start, "joint_trajectory.time_from_start")
    shape = (times.size, len(names))
    tables = {
        key: _trajectory_table(values, shape, f"joint_trajectory.{key}")
        for key, values in zip(_POINT_ARRAYS, (positions, velocities, accelerations, effort))
    }
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise MessageConversionError(
            f"joint_trajectory.time_from_start: must increase strictly, got {times.tolist()}"
        )
    types = as_message_types(msg_types)
    # One message object per waypoint is inherent to the message layout; T is small.
    points = [
        types.new(
            "trajectory_msgs/msg/JointTrajectoryPoint",
            **{
                key: types.sequence(np.zeros(0) if table is None else table[i], np.float64)
                for key, table in tables.items()
            },
            time_from_start=sec_to_stamp(t, types, "builtin_interfaces/msg/Duration"),
        )
        for i, t in enumerate(times)
    ]
    return types.new(
        "trajectory_msgs/msg/JointTrajectory",
        header=header_of(header, types),
        joint_names=names,
        points=points,
    )


def msg_to_joint_trajectory(msg) -> JointTrajectoryData:
    """Names, (T,) float64 seconds and (T, J) float64 arrays of a JointTrajectory."""
    names = [str(n) for n in msg.joint_names]
    n_joints = len(names)
    times = np.array([stamp_to_sec(p.time_from_start) for p in msg.points], dtype=np.float64)
    tables: dict[str, np.ndarray | None] = {}
    for key in _POINT_ARRAYS:
        rows = [
            float_array(getattr(p, key), f"joint_trajectory.points[{i}].{key}")
            for i, p in enumerate(msg.points)
        ]
        sizes = {row.size for row in rows}
        if not rows or sizes == {0}:
            tables[key] = None
            continue
        if sizes != {n_joints}:
            bad = next(i for i, row in enumerate(rows) if row.size != n_joints)
            raise MessageConversionError(
                f"joint_trajectory.points[{bad}].{key}: {rows[bad].size} values for "
                f"{n_joints} joint names (every point must send {key} or none may)"
            )
        tables[key] = np.stack(rows)
    return JointTrajectoryData(names, times, **tables)


# --- TF ---------------------------------------------------------------------------------------


class StampedTransform(NamedTuple):
    """parent_T_child as sent in a TransformStamped: translation (3,), quaternion (x, y, z, w).

    Keeping the quaternion (not only the matrix) makes message round trips exact: a
    quaternion -> matrix -> quaternion trip changes the last bits.
    """

    parent_frame: str
    child_frame: str
    translation: np.ndarray
    rotation: np.ndarray
    stamp: tuple[int, int] = (0, 0)  # (sec, nanosec)

    @property
    def matrix(self) -> np.ndarray:
        """The 4x4 parent_T_child."""
        return transforms.make_transform(self.rotation, self.translation)

    @property
    def stamp_sec(self) -> float:
        """The stamp in float seconds."""
        return stamp_to_sec(self.stamp)

    @classmethod
    def from_matrix(
        cls, T, parent_frame: str, child_frame: str, stamp=(0, 0)
    ) -> StampedTransform:
        """From a 4x4 rigid transform (rotation must be orthonormal, right-handed)."""
        T = np.asarray(T, dtype=np.float64)
        if T.shape != (4, 4):
            raise MessageConversionError(
                f"transform '{parent_frame}'->'{child_frame}': needs 4x4, got {T.shape}"
            )
        R = T[:3, :3]
        if (
            not np.isfinite(T).all()
            or not np.allclose(R @ R.T, np.eye(3), atol=1e-6)
            or np.linalg.det(R) < 0
        ):
            raise MessageConversionError(
                f"transform '{parent_frame}'->'{child_frame}': rotation is not a proper rotation "
                f"matrix (det {np.linalg.det(R):.6g})"
            )
        return cls(
            str(parent_frame),
            str(child_frame),
            T[:3, 3].copy(),
            transforms.matrix_to_quat(R),
            stamp_parts(stamp, "transform.stamp"),
        )


def stamped_transform_to_msg(transform: StampedTransform, msg_types):
    """A geometry_msgs/TransformStamped of a StampedTransform."""
    types = as_message_types(msg_types)
    t = [float(v) for v in transform.translation]
    q = [float(v) for v in transform.rotation]
    if len(t) != 3 or len(q) != 4:
        raise MessageConversionError(
            "transform: translation needs 3 values and rotation 4 (x, y, z, w), "
            f"got {len(t)} and {len(q)}"
        )
    return types.new(
        "geometry_msgs/msg/TransformStamped",
        header=make_header(transform.parent_frame, transform.stamp, types),
        child_frame_id=transform.child_frame,
        transform=types.new(
            "geometry_msgs/msg/Transform",
            translation=types.new("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
            rotation=types.new("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )


def transform_to_msg(T, parent_frame: str, child_frame: str, stamp, msg_types):
    """A TransformStamped of the 4x4 parent_T_child; stamp is float s, (sec, ns) or a Time."""
    return stamped_transform_to_msg(
        StampedTransform.from_matrix(T, parent_frame, child_frame, stamp), msg_types
    )


def msg_to_transform(msg) -> StampedTransform:
    """Frames, translation, quaternion and stamp of a TransformStamped (quaternion checked)."""
    tr, rot = msg.transform.translation, msg.transform.rotation
    q = np.array([rot.x, rot.y, rot.z, rot.w], dtype=np.float64)
    parent, child = str(msg.header.frame_id), str(msg.child_frame_id)
    norm = float(np.linalg.norm(q))
    if not np.isfinite(q).all() or abs(norm - 1.0) > 1e-3:
        raise MessageConversionError(
            f"transform '{parent}'->'{child}'.rotation: quaternion {q.tolist()} is not unit "
            f"length (norm {norm:.6g})"
        )
    return StampedTransform(
        parent,
        child,
        np.array([tr.x, tr.y, tr.z], dtype=np.float64),
        q,
        stamp_parts(msg.header.stamp),
    )


def transforms_to_tf_msg(items: Iterable, msg_types):
    """A tf2_msgs/TFMessage of StampedTransforms (or TransformStamped messages of this backend)."""
    types = as_message_types(msg_types)
    msgs = [
        stamped_transform_to_msg(item, types) if isinstance(item, StampedTransform) else item
        for item in items
    ]
    return types.new("tf2_msgs/msg/TFMessage", transforms=msgs)


def tf_msg_to_transforms(msg) -> list[StampedTransform]:
    """The StampedTransforms of a tf2_msgs/TFMessage, in message order."""
    return [msg_to_transform(t) for t in msg.transforms]

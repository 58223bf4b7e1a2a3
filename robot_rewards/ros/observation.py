"""Observations of the nodes: a base-frame PointCloud2 (+ goal, + joint state) -> Observation."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from robot_rewards.core.observation import Observation, Proprio
from robot_rewards.ros.convert_cloud import msg_to_points
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_motion import msg_to_joint_state


def cloud_observation(msg, goal: str = "", proprio: Proprio | None = None) -> Observation:
    """An Observation holding a base-frame PointCloud2's finite points (and colours if it has them)."""
    has_rgb = any(str(f.name) in ("rgb", "rgba") for f in msg.fields)
    if has_rgb:
        points, colors = msg_to_points(msg, with_rgb=True, drop_nan=True)
    else:
        points, colors = msg_to_points(msg, drop_nan=True), None
    if len(points) == 0:
        raise MessageConversionError("point cloud has no finite points")
    return Observation(frames={}, proprio=proprio, goal=goal, timestamp=stamp_to_ns(msg.header.stamp) / 1e9,
                       points=points, colors=colors)


def arm_positions(msg, joint_names: Sequence[str]) -> np.ndarray:
    """Positions of `joint_names` (in that order) from a JointState; MessageConversionError if
    one is missing (a JointState may carry other joints, in any order)."""
    state = msg_to_joint_state(msg)
    if state.position.size == 0:
        raise MessageConversionError("joint_state has no positions")
    index = {n: i for i, n in enumerate(state.names)}
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise MessageConversionError(f"joint_state lacks joints {missing} (has {state.names})")
    q = state.position[[index[n] for n in joint_names]]
    if not np.all(np.isfinite(q)):
        raise MessageConversionError(f"joint_state has non-finite positions {q.tolist()}")
    return q

"""A small TF buffer: transforms from /tf and /tf_static, chained lookups, stale-TF detection.

The nodes keep their own buffer (instead of tf2_ros) so the lookup rule is explicit and
tested without ROS: static transforms are valid at any time; for a dynamic edge the sample
nearest in time to the query stamp is used, and if it is further than `tolerance` from the
stamp the lookup fails with StaleTransformError (a frame must never be placed with a pose
from another moment). Chains of edges in either direction are composed.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from robot_rewards.core import transforms
from robot_rewards.ros.convert_common import MessageConversionError
from robot_rewards.ros.convert_motion import StampedTransform, tf_msg_to_transforms

_NS = 1_000_000_000


class TransformError(LookupError):
    """No chain of transforms between two frames."""


class StaleTransformError(TransformError):
    """A transform exists, but not within the tolerance of the requested time."""


class TfTree:
    """parent -> child transforms; `lookup(target, source, stamp_ns)` gives target_T_source."""

    def __init__(self, history: int = 200):
        self._static: dict[tuple[str, str], np.ndarray] = {}
        self._dynamic: dict[tuple[str, str], deque] = {}
        self._history = history

    def add(self, transform: StampedTransform, static: bool = False) -> None:
        """Store parent_T_child (a dynamic edge keeps its last `history` samples, time-ordered)."""
        key = (transform.parent_frame, transform.child_frame)
        if not key[0] or not key[1] or key[0] == key[1]:
            raise MessageConversionError(f"transform '{key[0]}'->'{key[1]}': frames must be named and differ")
        if static:
            self._static[key] = transform.matrix
            return
        samples = self._dynamic.setdefault(key, deque(maxlen=self._history))
        ns = transform.stamp[0] * _NS + transform.stamp[1]
        if samples and ns < samples[-1][0]:  # out of order: keep the deque sorted
            items = sorted([*samples, (ns, transform.matrix)], key=lambda s: s[0])
            samples.clear()
            samples.extend(items[-self._history:])
        else:
            samples.append((ns, transform.matrix))

    def add_message(self, tf_msg, static: bool = False) -> int:
        """Add every transform of a TFMessage; returns how many. Bad quaternions raise."""
        items = tf_msg_to_transforms(tf_msg)
        for item in items:
            self.add(item, static)
        return len(items)

    def frames(self) -> set[str]:
        return {f for key in [*self._static, *self._dynamic] for f in key}

    def _edge(self, parent: str, child: str, stamp_ns: int | None, tolerance_ns: int) -> np.ndarray:
        key = (parent, child)
        if key in self._static:
            return self._static[key]
        samples = self._dynamic[key]
        if stamp_ns is None:  # latest
            return samples[-1][1]
        stamps = [s[0] for s in samples]
        i = bisect.bisect_left(stamps, stamp_ns)
        best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(stamps[j] - stamp_ns))
        gap = abs(stamps[best] - stamp_ns)
        if gap > tolerance_ns:
            newest = stamps[-1]
            raise StaleTransformError(
                f"transform '{parent}'->'{child}' is stale: nearest sample is {gap / _NS:.3f} s from the "
                f"requested time (tolerance {tolerance_ns / _NS:.3f} s; newest sample "
                f"{(stamp_ns - newest) / _NS:+.3f} s before it)"
            )
        return samples[best][1]

    def _path(self, target: str, source: str) -> list[tuple[str, str, bool]]:
        """Edges from target to source as (parent, child, forward) steps (breadth-first)."""
        edges: dict[str, list[tuple[str, str, bool]]] = {}
        for parent, child in [*self._static, *self._dynamic]:
            edges.setdefault(parent, []).append((parent, child, True))
            edges.setdefault(child, []).append((parent, child, False))
        previous: dict[str, tuple[str, tuple[str, str, bool]] | None] = {target: None}
        queue = deque([target])
        while queue:
            frame = queue.popleft()
            if frame == source:
                break
            for edge in edges.get(frame, []):
                nxt = edge[1] if edge[2] else edge[0]
                if nxt not in previous:
                    previous[nxt] = (frame, edge)
                    queue.append(nxt)
        if source not in previous:
            known = ", ".join(sorted(self.frames())) or "none"
            raise TransformError(f"no transform chain from '{target}' to '{source}' (known frames: {known})")
        path = []
        frame = source
        while previous[frame] is not None:
            frame, edge = previous[frame]
            path.append(edge)
        return path[::-1]

    def lookup(self, target: str, source: str, stamp_ns: int | None = None, tolerance: float = 0.1) -> np.ndarray:
        """4x4 target_T_source at `stamp_ns` (None: the latest of every edge).

        Raises TransformError when the frames are not connected and StaleTransformError when a
        dynamic edge on the way has no sample within `tolerance` seconds of the stamp.
        """
        if target == source:
            return np.eye(4)
        T = np.eye(4)
        tol = int(round(tolerance * _NS))
        for parent, child, forward in self._path(target, source):
            edge = self._edge(parent, child, stamp_ns, tol)
            T = T @ (edge if forward else transforms.invert(edge))
        return T

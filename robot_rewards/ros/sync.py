"""Pair colour and depth images by stamp (an approximate-time policy for two streams).

Each stream keeps its last `queue_size` messages. When a message arrives, the other stream's
message nearest in time is looked up; within `slop` seconds the two form a pair, and every
message up to them is dropped (a pair is emitted once, in time order).
"""

from __future__ import annotations

from collections import deque
from typing import Any


class PairSync:
    """Approximate-time pairing of two message streams 'a' and 'b' by integer-nanosecond stamps."""

    def __init__(self, slop: float = 0.05, queue_size: int = 5):
        self.slop_ns = int(round(slop * 1e9))
        self._queues = {"a": deque(maxlen=queue_size), "b": deque(maxlen=queue_size)}

    def push(self, stream: str, stamp_ns: int, msg: Any) -> tuple[Any, Any, int, int] | None:
        """Add a message; returns (msg_a, msg_b, stamp_a, stamp_b) when it completes a pair."""
        mine = self._queues[stream]
        other_name = "b" if stream == "a" else "a"
        other = self._queues[other_name]
        mine.append((stamp_ns, msg))
        if not other:
            return None
        j = min(range(len(other)), key=lambda k: abs(other[k][0] - stamp_ns))
        if abs(other[j][0] - stamp_ns) > self.slop_ns:
            return None
        other_stamp, other_msg = other[j]
        for _ in range(j + 1):  # this and older ones of the other stream are used up
            other.popleft()
        while mine and mine[0][0] <= stamp_ns:
            mine.popleft()
        if stream == "a":
            return msg, other_msg, stamp_ns, other_stamp
        return other_msg, msg, other_stamp, stamp_ns

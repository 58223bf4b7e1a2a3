"""Error reporting for the node cores: log through the node's logger, throttled per cause.

A camera at 30 Hz with a bad encoding would otherwise write 30 identical errors a second.
The same message (numbers aside) under the same `key` is logged at most once per `period`
seconds; every occurrence is counted per key (what the tests and the replay summary use).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from typing import Callable


class Reporter:
    """`error(key, text)` / `warning(key, text)` / `info(text)` on an rclpy or logging logger."""

    def __init__(self, log=None, period: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.log = log if log is not None else logging.getLogger("robot_rewards.ros")
        self.period = float(period)
        self.clock = clock
        self.counts: Counter = Counter()  # per key
        self.kinds: Counter = Counter()  # per kind of message (key + text with numbers masked)
        self.examples: dict[str, str] = {}  # kind -> its latest text (for summaries)
        self._logged_at: dict[str, float] = {}

    def _due(self, key: str, text: str) -> str | None:
        """Count one occurrence; the text to log now, or None while its kind is throttled."""
        self.counts[key] += 1
        bucket = key + "|" + re.sub(r"[-+]?\d[\d.e+-]*", "#", text)[:100]
        self.kinds[bucket] += 1
        self.examples[bucket] = text
        now = self.clock()
        when = self._logged_at.get(bucket)
        if when is not None and now - when < self.period:
            return None
        self._logged_at[bucket] = now
        repeats = self.kinds[bucket]
        return text + (f" (seen {repeats} times)" if repeats > 1 else "")

    # Each severity is logged from its own source line: rclpy's logger remembers the severity of
    # every call site and raises "Logger severity cannot be changed between calls" otherwise,
    # which took nodes down after a warning followed by an error.
    def error(self, key: str, text: str) -> None:
        """Log an error (the node keeps running)."""
        line = self._due(key, text)
        if line is not None:
            self.log.error(line)

    def warning(self, key: str, text: str) -> None:
        """Log a warning (throttled like errors)."""
        line = self._due(key, text)
        if line is not None:
            self.log.warning(line)

    def info(self, text: str) -> None:
        self.log.info(text)

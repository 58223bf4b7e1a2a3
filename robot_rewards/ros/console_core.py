"""The console node's logic: candidate sets in, the chosen primitive out.

The console UI (robot_rewards.console) plugs in as a chooser: a callable that receives each
CandidateSet and returns the index to execute, or None to execute nothing. Without one, the
policy's own choice is forwarded, so the graph runs the same with or without a human. The
chosen primitive keeps the decision id, so the policy recognises the executor's report.
"""

from __future__ import annotations

from typing import Callable, Optional

from robot_rewards.ros.convert_common import MessageConversionError
from robot_rewards.ros.convert_interfaces import to_payload
from robot_rewards.ros.payloads import CandidateSet, PrimitiveCommand
from robot_rewards.ros.report import Reporter

Chooser = Callable[[CandidateSet], Optional[int]]


def policy_choice(candidate_set: CandidateSet) -> int | None:
    """The chooser that accepts the policy's selection."""
    return candidate_set.chosen


class ConsoleCore:
    """Forwards each candidate set to `chooser` and returns the chosen PrimitiveCommand (the node
    sends it to the executor as an ExecutePrimitive goal)."""

    def __init__(self, chooser: Chooser | None = None, log=None):
        self.chooser = chooser or policy_choice
        self.report = Reporter(log)
        self.last: CandidateSet | None = None

    def on_candidates(self, value) -> PrimitiveCommand | None:
        """The chosen primitive of a candidate set (a CandidateSet message, payload or JSON), or
        None (nothing chosen, or a bad message/choice)."""
        try:
            cset = to_payload(CandidateSet, value)
        except MessageConversionError as exc:
            self.report.error("candidates", f"candidate set rejected: {exc}")
            return None
        self.last = cset
        try:
            index = self.chooser(cset)
        except Exception as exc:  # a failing UI callback must not stop the node
            self.report.error("chooser", f"decision {cset.decision_id}: chooser failed: {type(exc).__name__}: {exc}")
            return None
        if index is None:
            self.report.info(f"decision {cset.decision_id}: nothing chosen")
            return None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cset.candidates):
            self.report.error("choice", f"decision {cset.decision_id}: chooser returned {index!r}, not an index "
                              f"in [0, {len(cset.candidates)})")
            return None
        return PrimitiveCommand(cset.decision_id, cset.candidates.primitive(index), "console")

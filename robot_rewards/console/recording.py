"""The console's queries and answers logged to Rerun (`console rerun=<file.rrd>` or `rerun=live`).

Each query, when first shown, is one decision on the recording's `decision` timeline: its
observation (cloud, camera images), the candidates coloured by the scorer's mean score (grey
without a scorer), and as `chosen` the proposer's own pick (a robot policy's offer) or else the
scorer's top candidate. The operator's answer is logged on the same step: the ranking or the
preferred candidate of a pair as `world/preferred`, the answer's text in `log/answers`.
Candidate indices in the recording count from 0 (as `Decision` does); the console's own
text, quoted in the answer lines, numbers them from 1.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.console.queries import FAMILY, PreparedQuery
from robot_rewards.selection.decider import Decision, decision_seed
from robot_rewards.viz.rerun_log import DecisionLog


def query_decision(q: PreparedQuery) -> Decision:
    """A shown query as a Decision: its candidates, the scorer's scores as the utilities, and
    as `chosen` the proposer's pick where a robot policy offered the candidates, else the
    top-scored candidate (None without scores: nothing was chosen)."""
    n = len(q.candidates)
    utilities = None if q.scores is None else np.asarray(q.scores.mean, dtype=np.float64)
    ranking = tuple(range(n)) if utilities is None else tuple(int(i) for i in np.argsort(-utilities, kind="stable"))
    chosen = None
    if q.offer is not None and q.offer.chosen is not None:
        chosen = int(q.offer.chosen)
    elif utilities is not None:
        chosen = ranking[0]
    episode = q.episode_seed if q.episode_seed is not None else 0
    return Decision(q.candidates, None if q.scores is None else {FAMILY: q.scores}, utilities, ranking, (),
                    chosen, decision_seed(episode, q.decision), episode_seed=episode, decision=q.decision,
                    method="offer" if q.offer is not None else "console")


def query_summary(q: PreparedQuery, d: Decision) -> str:
    """The log line of a shown query: which query, scene and what the scores say."""
    where = "" if q.episode_seed is None else f" episode {q.episode_seed} decision {q.decision + 1}"
    if q.offer is not None:
        pick = "no pick" if d.chosen is None else f"candidate {d.chosen}"
        what = f"{len(q.candidates)} candidates from {q.offer.origin} (its {pick})"
    elif d.utilities is not None:
        what = f"{len(q.candidates)} candidates, scorer's top {d.chosen} ({d.utilities[d.chosen]:.4g})"
    else:
        what = f"{len(q.candidates)} candidates, unscored"
    pair = "" if q.pair is None else f"; asking A = {q.pair[0]} or B = {q.pair[1]}"
    return f"query {q.index + 1}{where}: {what}{pair}"


class QueryRecorder:
    """Logs the console's queries and answers to a DecisionLog (which it does not close)."""

    def __init__(self, log: DecisionLog):
        self.log = log

    def shown(self, q: PreparedQuery) -> None:
        """Log q the first time it is shown (again after an undo: nothing new)."""
        if q.logged_as is not None:
            return
        d = query_decision(q)
        q.logged_as = self.log.log_decision(q.obs, d, summary=query_summary(q, d))

    def answered(self, q: PreparedQuery, preferred, text: str) -> None:
        """The stored answer about q: `preferred` candidate indices best first."""
        if q.logged_as is not None:
            preferred = [int(i) for i in preferred]
            tail = f" -> preferred {preferred}" if preferred else ""
            self.log.log_answer(q.logged_as, q.candidates, preferred, f"query {q.index + 1}: {text}{tail}")

    def skipped(self, q: PreparedQuery) -> None:
        self.answered(q, [], "skipped")

    def undone(self, q: PreparedQuery) -> None:
        """q's answer was undone (it is shown again; its next answer replaces this)."""
        self.answered(q, [], "answer undone")


def pair_preferred(a: int, b: int, answer: str) -> list[int]:
    """The candidates a pair answer prefers: the winner, both for a tie, none for can't tell."""
    return {"a": [a], "b": [b], "tie": [a, b]}.get(answer, [])

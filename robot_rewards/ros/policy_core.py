"""The policy node's logic: one decision at a time, as a small state machine.

    idle --fresh cloud (auto) or decide()--> scoring --score response--> executing
         <--------------- executor status (succeeded / failed / rejected) --------

A decision samples N candidates in the latest cloud, asks the reward server for their
scores (a request naming the cloud's stamp), selects (utilities, then feasibility from the
latest joint state), and emits the candidate set and the chosen primitive. After the
executor reports the end of that primitive, only a cloud stamped `settle_time` after the
report counts as fresh, so the next decision never sees the scene mid-motion.

Methods return the messages to publish as (channel, json) pairs, channel one of
"score_request", "candidates", "primitive"; the node shell maps them to publishers.
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.ros.config import PolicyNodeConfig
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.observation import arm_positions, cloud_observation
from robot_rewards.ros.payloads import (
    CandidateSet,
    ExecutorStatus,
    PrimitiveCommand,
    ScoreRequest,
    ScoreResponse,
    ns_of_stamp,
    stamp_of_ns,
)
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.selection_adapter import Selector

Out = list[tuple[str, object]]  # (channel, JSON text or a ROS message to republish)
IDLE, SCORING, EXECUTING, DONE = "idle", "scoring", "executing", "done"


def parse_weights(entries) -> dict[str, float]:
    """{'family': weight} from 'family=weight' strings."""
    weights = {}
    for entry in entries:
        name, sep, value = str(entry).partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"weight entry '{entry}' is not family=number")
    return weights


class PolicyCore:
    """`sampler(obs, n, seed) -> Candidates`; `selector` ranks and checks feasibility."""

    def __init__(self, cfg: PolicyNodeConfig, sampler: Callable[[Observation, int, int], Candidates],
                 selector: Selector, log=None, clock_ns: Callable[[], int] | None = None, home=None):
        self.cfg = cfg
        self.sampler = sampler
        self.selector = selector
        self.report = Reporter(log)
        self.clock_ns = clock_ns or (lambda: 0)
        self.goal = cfg.goal
        self.state = IDLE
        self.cloud_msg = None
        self.q = None
        self.home = home
        self.decisions = 0
        self._ids = itertools.count()
        self._fresh_after_ns = -1
        self._executing: int | None = None  # decision whose primitive is being executed
        self._pending: dict | None = None  # decision waiting for scores

    # -- inputs ------------------------------------------------------------------------------
    def on_goal(self, text: str) -> None:
        self.goal = str(text)

    def on_joint_state(self, msg) -> None:
        try:
            self.q = arm_positions(msg, self.cfg.joint_names)
        except MessageConversionError as exc:
            self.report.error("joint_state", f"joint state rejected: {exc}")

    def on_cloud(self, msg) -> Out:
        self.cloud_msg = msg
        if self.cfg.auto_decide and self.state == IDLE and self._fresh(msg):
            return self.decide()
        return []

    def _fresh(self, msg) -> bool:
        return stamp_to_ns(msg.header.stamp) > self._fresh_after_ns

    # -- a decision --------------------------------------------------------------------------
    def decide(self) -> Out:
        """Start a decision in the latest cloud (returns [] and logs why when it cannot)."""
        if self.state != IDLE:
            self.report.warning("busy", f"decision requested while {self.state}: ignored")
            return []
        if self.cfg.max_decisions and self.decisions >= self.cfg.max_decisions:
            self.state = DONE
            self.report.info(f"made {self.decisions} decisions (max_decisions): no more")
            return []
        if self.cloud_msg is None:
            self.report.warning("no_cloud", f"no cloud yet on {self.cfg.cloud_topic}: cannot decide")
            return []
        if not self.goal.strip():
            self.report.warning("no_goal", f"no goal yet (parameter goal or topic {self.cfg.goal_topic}): cannot decide")
            return []
        try:
            obs = cloud_observation(self.cloud_msg, self.goal)
        except MessageConversionError as exc:
            self.report.error("cloud", f"point cloud rejected: {exc}")
            return []
        decision_id = next(self._ids)
        try:
            candidates = self.sampler(obs, self.cfg.n_candidates, self.cfg.seed + decision_id)
        except ValueError as exc:  # the policy refused the observation (e.g. no colours)
            self.report.error("sample", f"decision {decision_id}: the policy cannot sample: {exc}")
            return []
        self.decisions += 1
        stamp = stamp_of_ns(stamp_to_ns(self.cloud_msg.header.stamp))
        self._pending = {"id": decision_id, "stamp": stamp, "goal": self.goal, "candidates": candidates,
                         "request_id": f"decision-{decision_id}", "since": self.clock_ns(),
                         "cloud_msg": self.cloud_msg}
        if not self.cfg.score_candidates:
            return self._select({})
        self.state = SCORING
        request = ScoreRequest(self._pending["request_id"], stamp, self.goal, candidates)
        return [("score_request", request.to_json())]

    def on_score_response(self, text) -> Out:
        try:
            response = ScoreResponse.from_json(text)
        except MessageConversionError as exc:
            self.report.error("response", f"score response rejected: {exc}")
            return []
        pending = self._pending
        if self.state != SCORING or pending is None or response.request_id != pending["request_id"]:
            return []  # another client's response, or one that timed out
        for model, error in response.errors.items():
            self.report.error(f"score:{model}", f"decision {pending['id']}: model '{model}' failed: {error}")
        families: dict[str, ScoreSet] = {}
        n = len(pending["candidates"])
        for name, members in response.scores.items():
            if members.shape[1] != n:
                self.report.error("response", f"model '{name}' returned {members.shape[1]} scores for {n} candidates")
                continue
            families[name] = ScoreSet.from_members(members)
        return self._select(families)

    def _select(self, families: Mapping[str, ScoreSet]) -> Out:
        pending = self._pending
        self._pending = None
        candidates = pending["candidates"]
        q_start = self.q
        if q_start is None:
            self.report.warning("no_joint_state", f"no joint state on {self.cfg.joint_states_topic}: "
                                "feasibility is checked from the home configuration")
            q_start = self.home
        try:
            sel = self.selector.select(candidates, families, q_start)
        except (ValueError, RuntimeError) as exc:
            self.report.error("select", f"decision {pending['id']}: selection failed: {exc}")
            self.state = IDLE
            return []
        cset = CandidateSet(pending["id"], pending["stamp"], pending["goal"], candidates,
                            {k: v.members for k, v in families.items()}, sel.utilities, sel.index,
                            sel.order, sel.rejected, sel.selector)
        # The cloud first: a console that sees the set can then always find what it was sampled in.
        out: Out = [("decision_cloud", pending["cloud_msg"]), ("candidates", cset.to_json())]
        if sel.index is None:
            self.report.error("infeasible", f"decision {pending['id']}: none of the {len(candidates)} candidates "
                              f"is feasible ({len(sel.rejected)} rejected); waiting for a new cloud")
            self.state = IDLE
            self._fresh_after_ns = ns_of_stamp(pending["stamp"])
            return out
        self.state = EXECUTING
        self._executing = pending["id"]
        if self.cfg.publish_primitive:
            out.append(("primitive", PrimitiveCommand(pending["id"], cset.chosen_primitive()).to_json()))
        return out

    def on_executor_status(self, text) -> Out:
        try:
            status = ExecutorStatus.from_json(text)
        except MessageConversionError as exc:
            self.report.error("status", f"executor status rejected: {exc}")
            return []
        if self.state != EXECUTING or status.decision_id != self._executing or not status.terminal:
            return []
        if status.state != "succeeded":
            self.report.error("execution", f"decision {status.decision_id} {status.state}: "
                              f"code {status.error_code}: {status.error_string}")
        end_ns = ns_of_stamp(status.stamp) or self.clock_ns()
        self._fresh_after_ns = end_ns + int(self.cfg.settle_time * 1e9)
        self.state = IDLE
        return []

    def tick(self) -> Out:
        """Drop a decision whose scores did not come within score_timeout."""
        if self.state == SCORING and self._pending is not None:
            waited = (self.clock_ns() - self._pending["since"]) / 1e9
            if waited > self.cfg.score_timeout:
                self.report.error("score_timeout", f"decision {self._pending['id']}: no scores from "
                                  f"{self.cfg.response_topic} within {self.cfg.score_timeout} s; dropped")
                self._pending = None
                self.state = IDLE
        return []

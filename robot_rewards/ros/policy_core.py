"""The policy node's logic: one decision at a time, as a small state machine.

    idle --fresh cloud (auto) or decide()--> scoring --score response--> executing
         <--------------- executor status (succeeded / failed / rejected) --------

A decision goes through the node's `selection.Decider`: it samples N candidates in the latest
cloud (decision k with `decision_seed(seed, k)`), asks the reward server for their scores (a
request naming the cloud's stamp), chooses (utilities, then feasibility from the latest joint
state), and emits the candidate set and the chosen primitive. After the
executor reports the end of that primitive, only a cloud stamped `settle_time` after the
report counts as fresh, so the next decision never sees the scene mid-motion.

Methods return the messages to publish as (channel, json) pairs, channel one of
"score_request", "candidates", "primitive"; the node shell maps them to publishers.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping

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
from robot_rewards.selection.decider import Decider
from robot_rewards.selection.feasibility import FeasibilityChecker

Out = list[tuple[str, object]]  # (channel, JSON text or a ROS message to republish)
IDLE, SCORING, EXECUTING, DONE = "idle", "scoring", "executing", "done"
SELECTOR = "robot_rewards.selection"  # names the chooser in every candidate set


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


def policy_decider(cfg: PolicyNodeConfig, policy: Any, checker: FeasibilityChecker) -> Decider:
    """The node's Decider: best-of-N over the families the reward server returns (a family without
    a configured weight weighs 1.0; weights of families that were not scored are left out, so one
    failing model does not block the decision; none scored: the policy's order), then the first
    candidate of the ranking that `checker` passes."""
    return Decider(policy, weights=parse_weights(cfg.weights), aggregator=cfg.aggregator, lam=cfg.lam,
                   checker=checker, n_candidates=cfg.n_candidates, steps=cfg.inference_steps or None,
                   missing_weight=1.0)


class PolicyCore:
    """One decision at a time through `decider` (its policy samples, its checker checks)."""

    def __init__(self, cfg: PolicyNodeConfig, decider: Decider, log=None, clock_ns: Callable[[], int] | None = None,
                 home=None):
        self.cfg = cfg
        self.decider = decider
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
            candidates = self.decider.sample(obs, self.cfg.seed, decision_id)
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
            d = self.decider.choose(candidates, families, q_start=q_start, episode_seed=self.cfg.seed,
                                    decision=pending["id"])
        except (ValueError, RuntimeError) as exc:
            self.report.error("select", f"decision {pending['id']}: selection failed: {exc}")
            self.state = IDLE
            return []
        cset = CandidateSet(pending["id"], pending["stamp"], pending["goal"], candidates,
                            {k: v.members for k, v in families.items()}, d.utilities, d.chosen,
                            list(d.ranking), dict(d.rejected), SELECTOR)
        # The cloud first: a console that sees the set can then always find what it was sampled in.
        out: Out = [("decision_cloud", pending["cloud_msg"]), ("candidates", cset.to_json())]
        if d.chosen is None:
            self.report.error("infeasible", f"decision {pending['id']}: none of the {len(candidates)} candidates "
                              f"is feasible ({len(d.rejected)} rejected); waiting for a new cloud")
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

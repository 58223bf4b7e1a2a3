"""The policy node's logic: one decision at a time, as a small state machine.

    idle --fresh cloud (auto) or decide()--> scoring --score response--> executing
         <--------------- executor status (succeeded / failed / rejected) --------

A decision goes through the node's `selection.Decider`: it samples N candidates in the latest
cloud (decision k with `decision_seed(seed, k)`; with a task status and `episode_seeds`, decision
k of the episode with `decision_seed(episode, k)`, the Python loop's seeds on that scene), asks
the reward server for their scores (a ScoreCandidates request naming the cloud's stamp),
chooses (utilities, then feasibility from the latest joint state), and emits the candidate set
and the chosen primitive (an ExecutePrimitive goal for the executor). After the executor reports
the end of that primitive, only a cloud stamped `settle_time` after the report counts as fresh,
so the next decision never sees the scene mid-motion.

It stops (state done) at task success (a task status from the sim bridge, or on a robot a
state reward over `success_threshold`) and after `max_decisions` (or the task's step budget);
a new episode on the task status starts it again. When it does not decide, `why()` says why in
one line that names the topic or node (no cloud on the configured topic, nobody serving the
score service or the execute action, a score timeout, ...), which the node publishes on
`~/status` and answers on `~/decide`. A reward server that does not answer within
`score_timeout` is, by default (`on_score_timeout: idle`), not asked again until `score_retry`
s passed or another reward server appears on the service; `first_candidate` takes the
policy's first feasible candidate unscored instead. `stop()` ends the decision in progress
(the node cancels its ExecutePrimitive goal) until the next `decide()` or a new episode.

Inputs are payloads, typed robot_rewards_interfaces messages or JSON (convert_interfaces.
to_payload). Methods return what to send as (channel, payload) pairs: "score_request"
(ScoreRequest: the node calls the service), "candidates" (CandidateSet), "decision_cloud" (the
PointCloud2 it was sampled in), "primitive" (PrimitiveCommand: the node sends the goal).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Mapping, Protocol

import torch

from robot_rewards.rewards.base import ScoreSet
from robot_rewards.ros.config import PolicyNodeConfig
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_interfaces import to_payload
from robot_rewards.ros.observation import arm_positions, cloud_observation
from robot_rewards.ros.payloads import (
    CandidateSet,
    ExecutorStatus,
    PolicyStatus,
    PrimitiveCommand,
    ScoreRequest,
    ScoreResponse,
    TaskStatus,
    ns_of_stamp,
    stamp_of_ns,
)
from robot_rewards.ros.report import Reporter
from robot_rewards.selection.decider import Decider
from robot_rewards.selection.feasibility import FeasibilityChecker

Out = list[tuple[str, object]]  # (channel, a payload or a ROS message to republish)
IDLE, SCORING, EXECUTING, DONE = "idle", "scoring", "executing", "done"
SELECTOR = "robot_rewards.selection"  # names the chooser in every candidate set
SCORE_TIMEOUT_ACTIONS = ("idle", "first_candidate")
# why() codes that are the normal course of a decision (not logged when they come up)
BUSY_CODES = ("deciding", "scoring", "executing", "waiting_for_cloud", "waiting_for_decide", "settling",
              "task_status_wait")


class Graph(Protocol):
    """What the core asks the ROS graph (rclpy's Node has these): who is on a topic or service."""

    def count_publishers(self, topic: str) -> int: ...

    def count_subscribers(self, topic: str) -> int: ...

    def count_services(self, service: str) -> int: ...


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


def use_torch_threads(threads: int) -> None:
    """Sample on `threads` torch CPU threads (0: leave torch's default)."""
    if threads < 0:
        raise ValueError(f"parameter 'torch_threads' must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(int(threads))


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
                 home=None, graph: Graph | None = None, executor_ready: Callable[[], bool] | None = None):
        if cfg.on_score_timeout not in SCORE_TIMEOUT_ACTIONS:
            raise ValueError(f"on_score_timeout must be one of {SCORE_TIMEOUT_ACTIONS}, got '{cfg.on_score_timeout}'")
        self.cfg = cfg
        self.decider = decider
        self.report = Reporter(log)
        self.clock_ns = clock_ns or (lambda: 0)
        self.graph = graph  # None: who is on a topic is unknown (counted as present)
        # whether an executor serves cfg.execute_action (None: unknown, counted as present)
        self.executor_ready = executor_ready
        self.feedback: tuple[int, int, int, str] | None = None  # decision, segment, segments, label
        self.goal = cfg.goal
        self.state = IDLE
        self.cloud_msg = None
        self.q = None
        self.home = home
        self.decisions = 0  # of this episode
        self._ids = itertools.count()
        self._fresh_after_ns = -1
        self._ended_ns = -1  # when the last execution ended (task success must be reported after it)
        self._executing: int | None = None  # decision whose primitive is being executed
        self._pending: dict | None = None  # decision waiting for scores
        self.started_ns = self.clock_ns()
        self._seen: dict[str, int] = {}  # input -> when its last message came (clock ns)
        self.task: TaskStatus | None = None
        self.success_reward: float | None = None
        self._done: tuple[str, str] = ("", "")  # (code, reason) of the stop
        self.scorer_down: dict | None = None  # since, subscribers then, decision: after a score timeout
        self.timeouts = 0
        self.sample_s: float | None = None  # s the last decision's sampling took
        self.last_problem = ""  # what went wrong with the last decision (shown in the status)
        self._logged_code = ""

    # -- inputs ------------------------------------------------------------------------------
    def on_goal(self, text: str) -> None:
        self._seen["goal"] = self.clock_ns()
        self.goal = str(text)

    def on_joint_state(self, msg) -> None:
        self._seen["joint_states"] = self.clock_ns()
        try:
            self.q = arm_positions(msg, self.cfg.joint_names)
        except MessageConversionError as exc:
            self.report.error("joint_state", f"joint state rejected: {exc}")

    def on_cloud(self, msg) -> Out:
        self._seen["cloud"] = self.clock_ns()
        self.cloud_msg = msg
        if self.cfg.auto_decide and self.state == IDLE and self._fresh(msg) and self._auto_blocker() is None:
            return self.decide()
        return []

    def _fresh(self, msg) -> bool:
        return stamp_to_ns(msg.header.stamp) > self._fresh_after_ns

    def on_task_status(self, value) -> Out:
        """The sim's task status: success stops the policy; a new episode (scene) starts it again."""
        try:
            task = to_payload(TaskStatus, value)
        except MessageConversionError as exc:
            self.report.error("task_status", f"task status rejected: {exc}")
            return []
        self._seen["task_status"] = self.clock_ns()
        if self.task is not None and task.episode != self.task.episode:
            self.report.info(f"new episode {task.episode} of {task.task} on {self.cfg.task_status_topic}: "
                             f"deciding again (the last one ended after {self.decisions} decisions)")
            self.decisions = 0
            # a cloud rendered before the reset shows the last scene: only later ones are fresh
            self._fresh_after_ns = max(self._fresh_after_ns, ns_of_stamp(task.stamp))
            if self.state == DONE:
                self.state = IDLE
        self.task = task
        self._check_stop()
        return []

    def on_success_reward(self, value: float) -> Out:
        """A state reward standing in for task success (on a robot): over success_threshold stops."""
        self._seen["success_reward"] = self.clock_ns()
        self.success_reward = float(value)
        self._check_stop()
        return []

    # -- stopping ----------------------------------------------------------------------------
    def budget(self) -> int:
        """Decisions allowed in this episode (0 = no limit)."""
        if self.cfg.max_decisions:
            return self.cfg.max_decisions
        if self.cfg.use_task_budget and self.task is not None:
            return self.task.max_steps
        return 0

    def _check_stop(self) -> None:
        """Go to done, with the reason, when idle and the task succeeded or the budget is spent."""
        if self.state != IDLE:
            return
        task = self.task
        after = f"after {self.decisions} decision{'s' * (self.decisions != 1)}"
        if self.cfg.stop_at_success and task is not None and task.success and ns_of_stamp(task.stamp) >= self._ended_ns:
            self._stop("task_succeeded", f"task {task.task} succeeded (quality {task.quality:.3f} on "
                       f"{self.cfg.task_status_topic}) {after}: not deciding")
        elif (self.cfg.stop_at_success and self.cfg.success_reward_topic and self.success_reward is not None
              and self.success_reward >= self.cfg.success_threshold
              and self._seen.get("success_reward", -1) > self._ended_ns + int(self.cfg.settle_time * 1e9)):
            self._stop("reward_reached", f"success reward {self.success_reward:.3f} on {self.cfg.success_reward_topic} "
                       f">= {self.cfg.success_threshold} {after}: not deciding")
        elif self.budget() and self.decisions >= self.budget():
            which = "max_decisions" if self.cfg.max_decisions else f"the task's max_steps on {self.cfg.task_status_topic}"
            self._stop("max_decisions", f"made {self.decisions} decisions ({which} {self.budget()}): not deciding")

    def _stop(self, code: str, reason: str) -> None:
        self.state = DONE
        self._done = (code, reason)
        self.report.info(reason)

    def _to_idle(self) -> None:
        self.state = IDLE
        self._check_stop()

    # -- a decision --------------------------------------------------------------------------
    def decide(self) -> Out:
        """Start a decision in the latest cloud (returns [] and logs why when it cannot; `why()`
        says it in one line)."""
        if self.state == IDLE:
            self._check_stop()
        if self.state == DONE and self._done[0] == "stopped":
            self.report.info("decision requested after ~/stop: deciding again")
            self._to_idle()  # unless the task succeeded or the budget is spent meanwhile
        if self.state == DONE:
            self.report.warning("done", f"decision requested after the stop: {self._done[1]}")
            return []
        if self.state != IDLE:
            self.report.warning("busy", f"decision requested while {self.state}: ignored")
            return []
        blocker = self._blocker(links=False)
        if blocker is not None:
            self.report.warning(*blocker)
            return []
        try:
            obs = cloud_observation(self.cloud_msg, self.goal)
        except MessageConversionError as exc:
            self.last_problem = f"point cloud rejected: {exc}"
            self.report.error("cloud", self.last_problem)
            return []
        blocker = self._links_blocker()
        if blocker is not None:
            self.report.warning(*blocker)
            return []
        decision_id = next(self._ids)
        seed, k = self.sample_seed(decision_id)
        started = time.monotonic()
        try:
            candidates = self.decider.sample(obs, seed, k)
        except ValueError as exc:  # the policy refused the observation (e.g. no colours)
            self.last_problem = f"decision {decision_id}: the policy cannot sample: {exc}"
            self.report.error("sample", self.last_problem)
            return []
        self.sample_s = time.monotonic() - started
        self.decisions += 1
        self.last_problem = ""
        stamp = stamp_of_ns(stamp_to_ns(self.cloud_msg.header.stamp))
        # the reward server must still keep this cloud when the request comes (its cloud_keep)
        self.report.info(f"decision {decision_id}: {len(candidates)} candidates sampled in {self.sample_s:.1f} s "
                         f"(seed {seed}, decision {k})")
        self._pending = {"id": decision_id, "stamp": stamp, "goal": self.goal, "candidates": candidates,
                         "request_id": f"decision-{decision_id}", "since": self.clock_ns(),
                         "cloud_msg": self.cloud_msg}
        if not self.cfg.score_candidates:
            return self._select({})
        unscored = self._scorer_unusable()
        if unscored is not None:  # on_score_timeout: first_candidate (idle stops in _blocker)
            self.report.warning("unscored", f"decision {decision_id} unscored (the policy's first feasible "
                                f"candidate): {unscored}")
            return self._select({})
        self.state = SCORING
        request = ScoreRequest(self._pending["request_id"], stamp, self.goal, candidates)
        return [("score_request", request)]

    def sample_seed(self, decision_id: int) -> tuple[int, int]:
        """(episode seed, decision index) the policy samples decision `decision_id` with."""
        if self.cfg.episode_seeds and self.task is not None:
            return int(self.task.episode), self.decisions
        return self.cfg.seed, decision_id

    def stop(self, reason: str = "stopped on ~/stop") -> int | None:
        """Stop deciding (state done, code stopped) until the next decide() or a new episode; a
        decision waiting for scores is dropped. Returns the decision being executed, whose
        ExecutePrimitive goal the node cancels (None: nothing executes)."""
        executing = self._executing if self.state == EXECUTING else None
        self._pending = None
        self._executing = None
        if executing is not None:  # the arm stops wherever it is: the next cloud must show it at rest
            self._ended_ns = self.clock_ns()
            self._fresh_after_ns = self._ended_ns + int(self.cfg.settle_time * 1e9)
        self._stop("stopped", reason + (f" (decision {executing} canceled)" if executing is not None else ""))
        return executing

    def on_feedback(self, decision_id: int, segment: int, segments: int, label: str) -> None:
        """ExecutePrimitive feedback of the executing decision (shown by why())."""
        if self.state == EXECUTING and decision_id == self._executing:
            self.feedback = (int(decision_id), int(segment), int(segments), str(label))

    # -- why nothing happens -----------------------------------------------------------------
    def _count(self, kind: str, topic: str) -> int | None:
        """Publishers, subscribers or services (`kind`) of the name `topic` on the graph (None: unknown)."""
        if self.graph is None or not topic:
            return None
        count = {"publishers": self.graph.count_publishers, "subscribers": self.graph.count_subscribers,
                 "services": self.graph.count_services}[kind]
        try:
            return int(count(topic))
        except Exception:  # a graph query (rclpy raises on a bad name) must never stop a decision
            return None

    def _age(self, name: str) -> float | None:
        seen = self._seen.get(name)
        return None if seen is None else (self.clock_ns() - seen) / 1e9

    def _scorer_unusable(self) -> str | None:
        """Why the reward server cannot be asked now (None: ask it): none subscribes to the request
        topic, or it timed out and neither score_retry passed nor a new server appeared."""
        if not self.cfg.score_candidates:
            return None
        subscribers = self._count("services", self.cfg.score_service)
        if subscribers == 0:
            return f"reward_server missing: nobody serves {self.cfg.score_service}"
        down = self.scorer_down
        if down is None:
            return None
        waited = (self.clock_ns() - down["since"]) / 1e9
        if waited >= self.cfg.score_retry or (subscribers or 0) > down["subscribers"]:
            return None
        return (f"the reward server did not answer decision {down['decision']} within {self.cfg.score_timeout:g} s "
                f"({down['subscribers']} server(s) of {self.cfg.score_service}); asking again in "
                f"{self.cfg.score_retry - waited:.0f} s or when a reward server appears")

    def _scorer_blocker(self) -> tuple[str, str] | None:
        """With on_score_timeout idle: (code, reason) when the reward server cannot be asked."""
        why = self._scorer_unusable() if self.cfg.on_score_timeout == "idle" else None
        if why is None:
            return None
        return ("no_reward_server" if why.startswith("reward_server missing") else "scorer_timeout"), why

    def _blocker(self, links: bool = True) -> tuple[str, str] | None:
        """(code, reason) when a decision cannot start now, whoever asks."""
        cfg = self.cfg
        if self.cloud_msg is None:
            n = self._count("publishers", cfg.cloud_topic)
            since = (self.clock_ns() - self.started_ns) / 1e9
            hint = "" if n is None else f"; {n} publisher(s)" + (": check the topic name / remapping" if n == 0 else "")
            return "no_cloud", f"no cloud on {cfg.cloud_topic} in {since:.0f} s since start{hint}"
        age = self._age("cloud")
        if age is not None and age > cfg.stale_after:
            n = self._count("publishers", cfg.cloud_topic)
            hint = "" if n is None else f" ({n} publisher(s))"
            return "cloud_silent", f"no cloud on {cfg.cloud_topic} for {age:.0f} s{hint}: not deciding on an old scene"
        if not self.goal.strip():
            return "no_goal", f"no goal yet (parameter goal or topic {cfg.goal_topic})"
        return self._links_blocker() if links else None

    def _links_blocker(self) -> tuple[str, str] | None:
        """(code, reason) when the executor or (on_score_timeout idle) the reward server is missing."""
        cfg = self.cfg
        if cfg.execute_chosen and self._executor_missing():
            return "no_executor", (f"executor missing: nobody serves the ExecutePrimitive action {cfg.execute_action}"
                                   " (executor not running?)")
        return self._scorer_blocker()

    def _executor_missing(self) -> bool:
        if self.executor_ready is None:
            return False
        try:
            return not self.executor_ready()
        except Exception:  # a graph query must never stop a decision
            return False

    def _auto_blocker(self) -> tuple[str, str] | None:
        """What else holds an automatic decision back: a task status older than the last execution
        (success may just have been reached), while task statuses come."""
        task_age = self._age("task_status")
        if (self.task is not None and ns_of_stamp(self.task.stamp) < self._ended_ns and task_age is not None
                and task_age < self.cfg.stale_after):
            return "task_status_wait", f"waiting for a task status on {self.cfg.task_status_topic} after the last execution"
        if self.cfg.episode_seeds and self.task is None and self._count("publishers", self.cfg.task_status_topic):
            # a sim bridge is there: its first status names the scene, whose seed the policy samples with
            return "task_status_wait", f"waiting for the first task status on {self.cfg.task_status_topic}"
        return None

    def why(self) -> tuple[str, str]:
        """(code, one line) of what the policy does, or why it does not decide."""
        cfg = self.cfg
        if self.state == DONE:
            return self._done
        if self.state == SCORING and self._pending is not None:
            waited = (self.clock_ns() - self._pending["since"]) / 1e9
            return "scoring", (f"waiting {waited:.1f} s for scores of decision {self._pending['id']} from "
                               f"{cfg.score_service} (timeout {cfg.score_timeout:g} s)")
        if self.state == EXECUTING:
            if cfg.execute_chosen and self._executor_missing():
                return "no_executor", (f"decision {self._executing} was sent, but nobody serves {cfg.execute_action} "
                                       "any more (executor not running?)")
            fb = self.feedback if self.feedback is not None and self.feedback[0] == self._executing else None
            where = f": segment {fb[1] + 1}/{fb[2]} '{fb[3]}'" if fb else ""
            source = cfg.execute_action if cfg.execute_chosen else cfg.executor_status_topic
            return "executing", f"decision {self._executing} is executing{where} (waiting for {source})"
        blocker = self._blocker()
        if blocker is None and cfg.auto_decide:
            blocker = self._auto_blocker()
        if blocker is None:
            if not cfg.auto_decide:
                blocker = "waiting_for_decide", "idle: call ~/decide for a decision"
            elif not self._fresh(self.cloud_msg):
                blocker = "settling", (f"waiting for a cloud on {cfg.cloud_topic} stamped {cfg.settle_time:g} s after "
                                       f"the last execution (last one {self._age('cloud') or 0.0:.1f} s ago)")
            else:
                blocker = "waiting_for_cloud", f"waiting for the next cloud on {cfg.cloud_topic}"
        code, reason = blocker
        return code, reason + (f" (last decision: {self.last_problem})" if self.last_problem else "")

    def status(self) -> PolicyStatus:
        """The status document (and one log line when the reason for not deciding changes)."""
        cfg = self.cfg
        code, reason = self.why()
        if code != self._logged_code:
            self._logged_code = code
            if code not in BUSY_CODES and self.state != DONE:  # a stop is logged by _stop
                self.report.info(f"{self.state}: {reason}")
        inputs = {"cloud": cfg.cloud_topic, "joint_states": cfg.joint_states_topic, "goal": cfg.goal_topic,
                  "task_status": cfg.task_status_topic, "success_reward": cfg.success_reward_topic}
        age = self._age
        task = None
        if self.task is not None:
            task = {"task": self.task.task, "episode": self.task.episode, "success": self.task.success,
                    "quality": self.task.quality, "source": cfg.task_status_topic}
        if cfg.success_reward_topic and self.success_reward is not None:
            task = {**(task or {}), "success_reward": self.success_reward, "threshold": cfg.success_threshold}
        scorer = {"topic": cfg.score_service, "subscribers": self._count("services", cfg.score_service),
                  "available": self._scorer_unusable() is None, "timeouts": self.timeouts,
                  "on_timeout": cfg.on_score_timeout, "scored": cfg.score_candidates}
        return PolicyStatus(self.state, code, reason, self.decisions, self.budget(),
                            {name: {"topic": topic, "age": None if age(name) is None else round(age(name), 2),
                                    "publishers": self._count("publishers", topic)}
                             for name, topic in inputs.items() if topic},
                            scorer, task, stamp_of_ns(self.clock_ns()))

    def on_score_response(self, value) -> Out:
        try:
            response = to_payload(ScoreResponse, value)
        except MessageConversionError as exc:
            self.report.error("response", f"score response rejected: {exc}")
            return []
        if self.scorer_down is not None and response.request_id.startswith("decision-"):
            self.report.info(f"the reward server answers again ({response.request_id}): scoring resumes")
            self.scorer_down = None
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
            self.last_problem = f"decision {pending['id']}: selection failed: {exc}"
            self.report.error("select", self.last_problem)
            self._to_idle()
            return []
        cset = CandidateSet(pending["id"], pending["stamp"], pending["goal"], candidates,
                            {k: v.members for k, v in families.items()}, d.utilities, d.chosen,
                            list(d.ranking), dict(d.rejected), SELECTOR)
        # The cloud first: a console that sees the set can then always find what it was sampled in.
        out: Out = [("decision_cloud", pending["cloud_msg"]), ("candidates", cset)]
        if d.chosen is None:
            self.last_problem = (f"decision {pending['id']}: none of the {len(candidates)} candidates "
                                 f"is feasible ({len(d.rejected)} rejected); waiting for a new cloud")
            self.report.error("infeasible", self.last_problem)
            self._fresh_after_ns = ns_of_stamp(pending["stamp"])
            self._to_idle()
            return out
        self.state = EXECUTING
        self._executing = pending["id"]
        self.feedback = None
        if self.cfg.execute_chosen:
            out.append(("primitive", PrimitiveCommand(pending["id"], cset.chosen_primitive(), "policy")))
        return out

    def on_executor_status(self, value) -> Out:
        """The end of an execution: the ExecutePrimitive result (as an ExecutorStatus), or the
        executor's status topic when a console sends the goals."""
        try:
            status = to_payload(ExecutorStatus, value)
        except MessageConversionError as exc:
            self.report.error("status", f"executor status rejected: {exc}")
            return []
        if self.state != EXECUTING or status.decision_id != self._executing or not status.terminal:
            return []
        if status.state != "succeeded":
            self.last_problem = (f"decision {status.decision_id} {status.state}: "
                                 f"code {status.error_code}: {status.error_string}")
            self.report.error("execution", self.last_problem)
        end_ns = ns_of_stamp(status.stamp) or self.clock_ns()
        self._ended_ns = end_ns
        self._fresh_after_ns = end_ns + int(self.cfg.settle_time * 1e9)
        self._to_idle()
        return []

    def tick(self) -> Out:
        """A decision whose scores did not come within score_timeout: dropped (on_score_timeout
        idle: the reward server counts as down until score_retry or a new server), or decided
        unscored (first_candidate). Also re-checks the stop (a success reward may come late)."""
        if self.state == IDLE:
            self._check_stop()
        if self.state == SCORING and self._pending is not None:
            waited = (self.clock_ns() - self._pending["since"]) / 1e9
            if waited > self.cfg.score_timeout:
                pending = self._pending
                self.timeouts += 1
                self.scorer_down = {"since": self.clock_ns(), "decision": pending["id"],
                                    "subscribers": self._count("services", self.cfg.score_service) or 0}
                if self.cfg.on_score_timeout == "first_candidate":
                    self.report.error("score_timeout", f"decision {pending['id']}: no scores from "
                                      f"{self.cfg.score_service} within {self.cfg.score_timeout:g} s; taking the "
                                      f"policy's first feasible candidate (on_score_timeout: first_candidate)")
                    return self._select({})
                self.last_problem = (f"decision {pending['id']}: no scores from {self.cfg.score_service} within "
                                     f"{self.cfg.score_timeout:g} s; dropped")
                self.report.error("score_timeout", self.last_problem + " (on_score_timeout: idle; ~/status says "
                                  "when the reward server is asked again)")
                self._pending = None
                self._to_idle()
        return []

"""`policy` node: sample candidates, have them scored, select, execute the choice, publish the set.

Scores come from reward_server's `ScoreCandidates` service (asynchronous: spin goes on while it
scores; `score_timeout` and `on_score_timeout` say what happens when it does not answer); the
chosen primitive goes to the executor as an `ExecutePrimitive` action goal (its feedback says
which segment runs; its result ends the decision; `~/stop` and shutdown cancel it). With
`execute_chosen: false` a console sends the goals and the executor's status topic ends a
decision. `~/status` (robot_rewards_interfaces/PolicyStatus, transient local, `status_rate` Hz
and on every change) says what it does and why nothing happens; `~/decide` answers with the
same reason.
"""

from __future__ import annotations

from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from robot_rewards.core.device import resolve_device
from robot_rewards.core.paths import resolve
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import get_arm
from robot_rewards.robots.workspace import narrowed
from robot_rewards.ros.config import PolicyNodeConfig
from robot_rewards.ros.convert_interfaces import (
    candidate_set_to_msg,
    policy_status_to_msg,
    primitive_goal_to_msg,
    score_request_to_msg,
    status_of_action_result,
)
from robot_rewards.ros.nodes._common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    message_types,
    now_ns,
    now_stamp,
    run,
)
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.payloads import EXECUTOR_GOAL_REJECTED, EXECUTOR_NO_SERVER, ExecutorStatus
from robot_rewards.ros.policy_core import PolicyCore, policy_decider, use_torch_threads
from robot_rewards.selection.feasibility import FeasibilityChecker
from robot_rewards_interfaces.action import ExecutePrimitive
from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg
from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg
from robot_rewards_interfaces.msg import PolicyStatus as PolicyStatusMsg
from robot_rewards_interfaces.msg import TaskStatus as TaskStatusMsg
from robot_rewards_interfaces.srv import ScoreCandidates


def load_node_policy(cfg: PolicyNodeConfig):
    """The configured checkpoint's policy (it samples the candidates; its workspace bounds them),
    on `torch_threads` CPU threads."""
    use_torch_threads(cfg.torch_threads)
    # resolved here so device:=cuda on a machine without a GPU is a one-line error at start-up
    return load_policy(resolve(cfg.checkpoint), device=resolve_device(cfg.device)).policy


def bound_policy_workspace(cfg: PolicyNodeConfig, policy) -> str | None:
    """Bound `policy`'s workspace by the configured arm's box (`robots.workspace.narrowed`, as the
    console does): the checkpoint may narrow it, a wider one is intersected, a disjoint one is
    refused (WorkspaceError). Returns the warning to log, or None."""
    # The arm's box is what the operator set up; the checkpoint's is data that may be edited.
    box, warning = narrowed(get_arm(cfg.arm).workspace, policy.workspace, f"the policy checkpoint {cfg.checkpoint}")
    policy.workspace = box  # the policy clips its candidates into it, the checker checks against it
    return warning


class PolicyNode(Node):
    """Thin rclpy shell of PolicyCore: a ScoreCandidates client and an ExecutePrimitive client."""

    def __init__(self, **node_kwargs):
        super().__init__("policy", **node_kwargs)
        self.cfg = cfg = declare_config(self, PolicyNodeConfig)
        policy = load_node_policy(cfg)
        warning = bound_policy_workspace(cfg, policy)
        if warning:  # once, at start-up
            self.get_logger().warning(warning)
        self.kin = ArmKinematics(get_arm(cfg.arm))
        self.types = message_types()
        self.score_client = self.create_client(ScoreCandidates, cfg.score_service)
        self.execute_client = ActionClient(self, ExecutePrimitive, cfg.execute_action)
        self._goal = None  # (decision id, ClientGoalHandle) of the goal the executor runs
        decider = policy_decider(cfg, policy, FeasibilityChecker(policy.workspace, self.kin))
        self.core = PolicyCore(cfg, decider, self.get_logger(), lambda: now_ns(self), home=self.kin.home, graph=self,
                               executor_ready=self.execute_client.server_is_ready)
        if cfg.status_rate <= 0:
            raise ValueError(f"parameter 'status_rate' must be positive, got {cfg.status_rate}")
        self.status_pub = self.create_publisher(PolicyStatusMsg, cfg.status_topic, LATCHED_QOS)
        self._status_state = None  # the state of the last status published
        self._frame_id = ""  # of the cloud the last candidate set was sampled in
        self.pub = {
            # Latched, with the cloud it was sampled in: in a console:=true graph the policy waits
            # for the operator's execution, so a console started later must still get this set.
            "candidates": self.create_publisher(CandidateSetMsg, cfg.candidates_topic, LATCHED_QOS),
            "decision_cloud": self.create_publisher(PointCloud2, cfg.decision_cloud_topic, LATCHED_QOS),
        }
        self.create_subscription(PointCloud2, cfg.cloud_topic, self._out(self.core.on_cloud), RELIABLE_QOS)
        self.create_subscription(JointState, cfg.joint_states_topic, self.core.on_joint_state, SENSOR_QOS)
        self.create_subscription(String, cfg.goal_topic, lambda m: self.core.on_goal(m.data), LATCHED_QOS)
        if not cfg.execute_chosen:  # a console sends the goals: the executor's status ends a decision
            self.create_subscription(ExecutorStatusMsg, cfg.executor_status_topic,
                                     self._out(self.core.on_executor_status), RELIABLE_QOS)
        if cfg.task_status_topic:  # volatile: hears latched and plain publishers alike
            self.create_subscription(TaskStatusMsg, cfg.task_status_topic, self._out(self.core.on_task_status),
                                     RELIABLE_QOS)
        if cfg.success_reward_topic:
            self.create_subscription(Float64, cfg.success_reward_topic,
                                     self._out(lambda m: self.core.on_success_reward(m.data)), RELIABLE_QOS)
        self.create_service(Trigger, "~/decide", self._decide)
        self.create_service(Trigger, "~/stop", self._stop)
        self.create_timer(0.5, self._out(lambda: self.core.tick()))
        self.create_timer(1.0 / cfg.status_rate, self._publish_status)
        self.get_logger().info(f"policy: {cfg.checkpoint}, {cfg.n_candidates} candidates per decision, "
                               f"{cfg.aggregator} aggregation; scores from {cfg.score_service}, executes on "
                               f"{cfg.execute_action if cfg.execute_chosen else '(a console)'}")

    def close(self) -> None:
        self._cancel_goal("the policy node shuts down")
        if hasattr(self, "kin"):  # not where start-up failed before it (e.g. a refused workspace)
            self.kin.close()

    # -- outputs -------------------------------------------------------------------------------
    def _emit(self, outputs) -> None:
        for channel, payload in outputs:
            if channel == "score_request":
                self._request_scores(payload)
            elif channel == "primitive":
                self._send_goal(payload)
            elif channel == "candidates":
                self.pub["candidates"].publish(candidate_set_to_msg(payload, self.types, self._frame_id))
            else:  # the decision's cloud, as received
                self._frame_id = payload.header.frame_id
                self.pub[channel].publish(payload)
        if self.core.state != self._status_state:
            self._publish_status()

    def _publish_status(self) -> None:
        self._status_state = self.core.state
        self.status_pub.publish(policy_status_to_msg(self.core.status(), self.types))

    def _out(self, handler):
        def callback(*args):
            self._emit(handler(*args))
        return callback

    # -- ScoreCandidates -------------------------------------------------------------------------
    def _request_scores(self, request) -> None:
        future = self.score_client.call_async(score_request_to_msg(request, self.types))
        # a late answer (after score_timeout) still comes here: it tells the core the server is back
        future.add_done_callback(self._scored)

    def _scored(self, future) -> None:
        if future.cancelled() or future.exception() is not None:
            self.get_logger().error(f"score request failed: {future.exception() or 'canceled'}")
            return
        self._emit(self.core.on_score_response(future.result()))

    # -- ExecutePrimitive ------------------------------------------------------------------------
    def _end(self, decision_id: int, state: str, code: int, text: str) -> None:
        self._emit(self.core.on_executor_status(ExecutorStatus(decision_id, state, code, text,
                                                               stamp=now_stamp(self))))

    def _send_goal(self, command) -> None:
        did = command.decision_id
        if not self.execute_client.server_is_ready():  # nobody would ever answer the goal
            self._end(did, "rejected", EXECUTOR_NO_SERVER, f"nobody serves {self.cfg.execute_action}: nothing sent")
            return

        def feedback(msg):
            fb = msg.feedback
            self.core.on_feedback(did, fb.segment, fb.segments, fb.label)

        future = self.execute_client.send_goal_async(primitive_goal_to_msg(command, self.types),
                                                     feedback_callback=feedback)
        future.add_done_callback(lambda f: self._goal_answered(did, f))

    def _goal_answered(self, decision_id: int, future) -> None:
        handle = future.result()
        if not handle.accepted:
            self._end(decision_id, "rejected", EXECUTOR_GOAL_REJECTED, f"{self.cfg.execute_action} rejected the goal "
                      "(is the executor running another primitive? its log says why)")
            return
        self._goal = (decision_id, handle)
        handle.get_result_async().add_done_callback(lambda f: self._executed(decision_id, f))

    def _executed(self, decision_id: int, future) -> None:
        if self._goal is not None and self._goal[0] == decision_id:
            self._goal = None
        response = future.result()
        status = status_of_action_result(decision_id, int(response.status), response.result, now_stamp(self))
        self._emit(self.core.on_executor_status(status))

    def _cancel_goal(self, why: str) -> None:
        goal, self._goal = getattr(self, "_goal", None), None
        if goal is None:
            return
        try:  # the context may already be shut down (Ctrl-C under ros2 launch): nothing to cancel then
            goal[1].cancel_goal_async()
        except Exception as exc:
            self.get_logger().warning(f"could not cancel decision {goal[0]} ({why}): {exc}")
            return
        self.get_logger().info(f"decision {goal[0]}: ExecutePrimitive goal canceled ({why})")

    # -- services --------------------------------------------------------------------------------
    def _decide(self, request, response):
        outputs = self.core.decide()
        self._emit(outputs)
        response.success = bool(outputs)
        code, reason = self.core.why()
        response.message = (f"decision started ({self.core.state})" if outputs
                            else f"no decision ({self.core.state}, {code}): {reason}")
        return response

    def _stop(self, request, response):
        executing = self.core.stop()
        if executing is not None:
            self._cancel_goal("~/stop")
        self._publish_status()
        response.success = True
        response.message = self.core.why()[1] + "; ~/decide decides again"
        return response


def main(args=None) -> int:
    return run(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

"""`policy` node: sample candidates, have them scored, select, publish the choice and the set.

`~/status` (std_msgs/String JSON, transient local, `status_rate` Hz and on every change) says
what it does and why nothing happens; `~/decide` answers with the same reason.
"""

from __future__ import annotations

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
from robot_rewards.ros.nodes._common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, now_ns, run
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.policy_core import PolicyCore, policy_decider
from robot_rewards.selection.feasibility import FeasibilityChecker


def load_node_policy(cfg: PolicyNodeConfig):
    """The configured checkpoint's policy (it samples the candidates; its workspace bounds them)."""
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
    """Thin rclpy shell of PolicyCore."""

    def __init__(self, **node_kwargs):
        super().__init__("policy", **node_kwargs)
        self.cfg = cfg = declare_config(self, PolicyNodeConfig)
        policy = load_node_policy(cfg)
        warning = bound_policy_workspace(cfg, policy)
        if warning:  # once, at start-up
            self.get_logger().warning(warning)
        self.kin = ArmKinematics(get_arm(cfg.arm))
        decider = policy_decider(cfg, policy, FeasibilityChecker(policy.workspace, self.kin))
        self.core = PolicyCore(cfg, decider, self.get_logger(), lambda: now_ns(self), home=self.kin.home, graph=self)
        if cfg.status_rate <= 0:
            raise ValueError(f"parameter 'status_rate' must be positive, got {cfg.status_rate}")
        self.status_pub = self.create_publisher(String, cfg.status_topic, LATCHED_QOS)
        self._status_state = None  # the state of the last status published
        self.pub = {
            "score_request": self.create_publisher(String, cfg.request_topic, RELIABLE_QOS),
            # Latched, with the cloud it was sampled in: in a console:=true graph the policy waits
            # for the operator's execution, so a console started later must still get this set.
            "candidates": self.create_publisher(String, cfg.candidates_topic, LATCHED_QOS),
            "decision_cloud": self.create_publisher(PointCloud2, cfg.decision_cloud_topic, LATCHED_QOS),
            "primitive": self.create_publisher(String, cfg.primitive_topic, RELIABLE_QOS),
        }
        self.create_subscription(PointCloud2, cfg.cloud_topic, self._out(self.core.on_cloud), RELIABLE_QOS)
        self.create_subscription(JointState, cfg.joint_states_topic, self.core.on_joint_state, SENSOR_QOS)
        self.create_subscription(String, cfg.goal_topic, lambda m: self.core.on_goal(m.data), LATCHED_QOS)
        self.create_subscription(String, cfg.response_topic,
                                 self._out(lambda m: self.core.on_score_response(m.data)), RELIABLE_QOS)
        self.create_subscription(String, cfg.executor_status_topic,
                                 self._out(lambda m: self.core.on_executor_status(m.data)), RELIABLE_QOS)
        if cfg.task_status_topic:  # volatile: hears latched and plain publishers alike
            self.create_subscription(String, cfg.task_status_topic,
                                     self._out(lambda m: self.core.on_task_status(m.data)), RELIABLE_QOS)
        if cfg.success_reward_topic:
            self.create_subscription(Float64, cfg.success_reward_topic,
                                     self._out(lambda m: self.core.on_success_reward(m.data)), RELIABLE_QOS)
        self.create_service(Trigger, "~/decide", self._decide)
        self.create_timer(0.5, self._out(lambda: self.core.tick()))
        self.create_timer(1.0 / cfg.status_rate, self._publish_status)
        self.get_logger().info(f"policy: {cfg.checkpoint}, {cfg.n_candidates} candidates per decision, "
                               f"{cfg.aggregator} aggregation")

    def close(self) -> None:
        if hasattr(self, "kin"):  # not where start-up failed before it (e.g. a refused workspace)
            self.kin.close()

    def _emit(self, outputs) -> None:
        for channel, payload in outputs:  # JSON text, or a ROS message (the decision's cloud)
            self.pub[channel].publish(String(data=payload) if isinstance(payload, str) else payload)
        if self.core.state != self._status_state:
            self._publish_status()

    def _publish_status(self) -> None:
        self._status_state = self.core.state
        self.status_pub.publish(String(data=self.core.status().to_json()))

    def _out(self, handler):
        def callback(*args):
            self._emit(handler(*args))
        return callback

    def _decide(self, request, response):
        outputs = self.core.decide()
        self._emit(outputs)
        response.success = bool(outputs)
        code, reason = self.core.why()
        response.message = (f"decision started ({self.core.state})" if outputs
                            else f"no decision ({self.core.state}, {code}): {reason}")
        return response


def main(args=None) -> int:
    return run(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

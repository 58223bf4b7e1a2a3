"""`console` node: the teleop/labelling console on the live graph.

Two roles, by the `mode` parameter:

- `chooser` (default): subscribes to the policy's candidate sets (robot_rewards_interfaces/
  CandidateSet), hands each to the chooser (named by the `chooser` parameter as
  module:factory; by default the policy's own choice) and sends the chosen primitive to the
  executor as an ExecutePrimitive goal (`execute_action`);
- `operator`: sends nothing, so that the human at `robot-rewards console backend=ros` is the
  only one choosing what the executor runs (it sends its goals to the same action). A
  launched node cannot read a terminal, so the interactive console runs in its own process;
  this mode keeps the graph's `console:=true` wiring (the policy only proposes).

`OperatorNode` is the rclpy shell of that interactive console (robot_rewards.ros.console_backend),
made by its backend rather than by `ros2 run`.
"""

from __future__ import annotations

from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from robot_rewards.rewards.registry import RewardSpecError, build
from robot_rewards.ros.config import ConsoleNodeConfig
from robot_rewards.ros.console_backend import OperatorCore
from robot_rewards.ros.console_core import ConsoleCore
from robot_rewards.ros.convert_interfaces import primitive_goal_to_msg, status_of_action_result
from robot_rewards.ros.nodes._common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    TF_QOS,
    TF_STATIC_QOS,
    message_types,
    now_stamp,
    run,
)
from robot_rewards.ros.params import ParameterError, declare_config
from robot_rewards.ros.payloads import EXECUTOR_GOAL_REJECTED, EXECUTOR_NO_SERVER, ExecutorStatus
from robot_rewards_interfaces.action import ExecutePrimitive
from robot_rewards_interfaces.msg import CandidateSet as CandidateSetMsg
from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg

MODES = ("chooser", "operator")


def build_chooser(spec: str, node=None):
    """The chooser callable made by the factory `spec` ('' = the policy's choice)."""
    if not spec:
        return None
    chooser = build(spec, node=node)
    if not callable(chooser):
        raise RewardSpecError(f"'{spec}' built a {type(chooser).__name__}, which is not callable")
    return chooser


def leave_to_operator(candidate_set) -> None:
    """The chooser of mode=operator: choose nothing (the operator console publishes)."""
    return None


class ConsoleNode(Node):
    """Thin rclpy shell of ConsoleCore."""

    def __init__(self, chooser=None, **node_kwargs):
        super().__init__("console", **node_kwargs)
        self.cfg = cfg = declare_config(self, ConsoleNodeConfig)
        if cfg.mode not in MODES:
            raise ParameterError(f"console: mode must be one of {', '.join(MODES)}, got '{cfg.mode}'")
        if cfg.mode == "operator":
            chooser = leave_to_operator
            self.get_logger().info(f"console: operator mode; `robot-rewards console backend=ros` sends the goals "
                                   f"to {cfg.execute_action}")
        self.core = ConsoleCore(chooser or build_chooser(cfg.chooser, self), self.get_logger())
        self.sender = GoalSender(self, cfg.execute_action, self._ended)
        self.create_subscription(CandidateSetMsg, cfg.candidates_topic, self._candidates, RELIABLE_QOS)

    def _candidates(self, msg) -> None:
        chosen = self.core.on_candidates(msg)
        if chosen is not None:
            self.sender.send(chosen)

    def _ended(self, status: ExecutorStatus) -> None:
        if status.state == "succeeded":
            self.get_logger().info(f"decision {status.decision_id}: executed")
        else:
            self.core.report.error("execution", f"decision {status.decision_id} {status.state} "
                                   f"(code {status.error_code}): {status.error_string}")


class GoalSender:
    """Sends PrimitiveCommands to the executor's ExecutePrimitive action; `on_end(ExecutorStatus)`
    gets each goal's end (also a refused goal, or nobody serving the action)."""

    def __init__(self, node, action: str, on_end):
        self.node, self.action, self.on_end = node, action, on_end
        self.client = ActionClient(node, ExecutePrimitive, action)
        self.types = message_types()

    def send(self, command) -> None:
        did = command.decision_id
        if not self.client.server_is_ready():
            self._end(did, "rejected", EXECUTOR_NO_SERVER, f"nobody serves {self.action}: is the executor running?")
            return
        future = self.client.send_goal_async(primitive_goal_to_msg(command, self.types))
        future.add_done_callback(lambda f: self._answered(did, f))

    def _end(self, decision_id: int, state: str, code: int, text: str) -> None:
        self.on_end(ExecutorStatus(decision_id, state, code, text, stamp=now_stamp(self.node)))

    def _answered(self, decision_id: int, future) -> None:
        handle = future.result()
        if not handle.accepted:
            self._end(decision_id, "rejected", EXECUTOR_GOAL_REJECTED, f"{self.action} rejected the goal (the "
                      "executor runs another primitive?)")
            return
        handle.get_result_async().add_done_callback(
            lambda f: self.on_end(status_of_action_result(decision_id, int(f.result().status), f.result().result,
                                                          now_stamp(self.node))))


class OperatorNode(Node):
    """Thin rclpy shell of OperatorCore: the interactive console's link to the graph.

    cfg: robot_rewards.console.config.RosConsoleConfig (hydra settings of `robot-rewards
    console`, so no ROS parameters are declared)."""

    def __init__(self, cfg, **node_kwargs):
        super().__init__(cfg.node_name, **node_kwargs)
        self.core = core = OperatorCore(cfg, self.get_logger())
        # a goal's end (its result, a refusal) counts like a final status on the status topic
        self.sender = GoalSender(self, cfg.execute_action, core.on_status)
        # Latched like the policy's publishers: a console started late gets the pending set (and its cloud).
        self.create_subscription(CandidateSetMsg, cfg.candidates_topic, core.on_candidates, LATCHED_QOS)
        self.create_subscription(ExecutorStatusMsg, cfg.status_topic, core.on_status, RELIABLE_QOS)
        self.create_subscription(String, cfg.goal_topic, lambda m: core.on_goal(m.data), LATCHED_QOS)
        # One cloud source, so perception's stream cannot push a pending decision's cloud out of the cache.
        if cfg.source == "policy":
            self.create_subscription(PointCloud2, cfg.decision_cloud_topic, core.on_cloud, LATCHED_QOS)
        else:
            self.create_subscription(PointCloud2, cfg.cloud_topic, core.on_cloud, RELIABLE_QOS)
        self.create_subscription(Image, cfg.color_topic, core.on_color, SENSOR_QOS)
        self.create_subscription(Image, cfg.depth_topic, core.on_depth, SENSOR_QOS)
        self.create_subscription(CameraInfo, cfg.camera_info_topic, core.on_camera_info, SENSOR_QOS)
        if core.extrinsics is None:
            self.create_subscription(TFMessage, "/tf", lambda m: core.on_tf(m, False), TF_QOS)
            self.create_subscription(TFMessage, "/tf_static", lambda m: core.on_tf(m, True), TF_STATIC_QOS)
        self.get_logger().info(f"console operator: {cfg.candidates_topic} -> labels; executes on {cfg.execute_action}")

    def execute(self, command) -> None:
        """Send a PrimitiveCommand to the executor as an ExecutePrimitive goal; its end reaches
        core.on_status (rclpy's action client may be used from the console's thread)."""
        self.sender.send(command)


def main(args=None) -> int:
    return run(ConsoleNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

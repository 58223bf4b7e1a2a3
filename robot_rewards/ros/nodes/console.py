"""`console` node: the teleop/labelling console on the live graph.

Two roles, by the `mode` parameter:

- `chooser` (default): subscribes to the policy's candidate sets, hands each to the chooser
  (named by the `chooser` parameter as module:factory; by default the policy's own choice)
  and publishes the chosen primitive for the executor;
- `operator`: forwards nothing, so that the human at `robot-rewards console backend=ros` is
  the only one choosing what the executor runs (it publishes on the same `chosen_topic`). A
  launched node cannot read a terminal, so the interactive console runs in its own process;
  this mode keeps the graph's `console:=true` wiring (executor on /console/primitive).

`OperatorNode` is the rclpy shell of that interactive console (robot_rewards.ros.console_backend),
made by its backend rather than by `ros2 run`.
"""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from robot_rewards.rewards.registry import RewardSpecError, build
from robot_rewards.ros.config import ConsoleNodeConfig
from robot_rewards.ros.console_backend import OperatorCore
from robot_rewards.ros.console_core import ConsoleCore
from robot_rewards.ros.nodes._common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, TF_QOS, TF_STATIC_QOS, run
from robot_rewards.ros.params import ParameterError, declare_config

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
            self.get_logger().info(f"console: operator mode; `robot-rewards console backend=ros` chooses on "
                                   f"{cfg.chosen_topic}")
        self.core = ConsoleCore(chooser or build_chooser(cfg.chooser, self), self.get_logger())
        self.pub = self.create_publisher(String, cfg.chosen_topic, RELIABLE_QOS)
        self.create_subscription(String, cfg.candidates_topic, self._candidates, RELIABLE_QOS)

    def _candidates(self, msg) -> None:
        chosen = self.core.on_candidates(msg.data)
        if chosen is not None:
            self.pub.publish(String(data=chosen))


class OperatorNode(Node):
    """Thin rclpy shell of OperatorCore: the interactive console's link to the graph.

    cfg: robot_rewards.console.config.RosConsoleConfig (hydra settings of `robot-rewards
    console`, so no ROS parameters are declared)."""

    def __init__(self, cfg, **node_kwargs):
        super().__init__(cfg.node_name, **node_kwargs)
        self.core = core = OperatorCore(cfg, self.get_logger())
        self.pub = self.create_publisher(String, cfg.execute_topic, RELIABLE_QOS)
        # Latched like the policy's publishers: a console started late gets the pending set (and its cloud).
        self.create_subscription(String, cfg.candidates_topic, lambda m: core.on_candidates(m.data), LATCHED_QOS)
        self.create_subscription(String, cfg.status_topic, lambda m: core.on_status(m.data), RELIABLE_QOS)
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
        self.get_logger().info(f"console operator: {cfg.candidates_topic} -> labels; executes on {cfg.execute_topic}")

    def publish_primitive(self, text: str) -> None:
        """Send a robot_rewards/primitive JSON to the executor (thread-safe in rclpy)."""
        self.pub.publish(String(data=text))


def main(args=None) -> int:
    return run(ConsoleNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

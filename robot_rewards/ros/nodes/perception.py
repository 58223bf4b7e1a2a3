"""`perception` node: synchronised RGB + depth + camera_info (+ TF) -> base-frame PointCloud2."""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from tf2_msgs.msg import TFMessage

from robot_rewards.ros.config import PerceptionNodeConfig
from robot_rewards.ros.nodes._common import RELIABLE_QOS, SENSOR_QOS, TF_QOS, TF_STATIC_QOS, message_types, run
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.perception_core import PerceptionCore


class PerceptionNode(Node):
    """Thin rclpy shell of PerceptionCore."""

    def __init__(self, **node_kwargs):
        super().__init__("perception", **node_kwargs)
        self.cfg = cfg = declare_config(self, PerceptionNodeConfig)
        self.core = PerceptionCore(cfg, message_types(), self.get_logger())
        self.pub = self.create_publisher(PointCloud2, cfg.output_topic, RELIABLE_QOS)
        self.create_subscription(Image, cfg.color_topic, self._publish(self.core.on_color), SENSOR_QOS)
        self.create_subscription(Image, cfg.depth_topic, self._publish(self.core.on_depth), SENSOR_QOS)
        self.create_subscription(CameraInfo, cfg.camera_info_topic, self.core.on_camera_info, SENSOR_QOS)
        if not cfg.extrinsics_file:
            self.create_subscription(TFMessage, "/tf", lambda m: self.core.on_tf(m, False), TF_QOS)
            self.create_subscription(TFMessage, "/tf_static", lambda m: self.core.on_tf(m, True), TF_STATIC_QOS)
        self.get_logger().info(f"perception: {cfg.color_topic} + {cfg.depth_topic} -> {cfg.output_topic} "
                               f"({self.core.perception.n_points} points in {cfg.base_frame})")

    def _publish(self, handler):
        def callback(msg):
            frame = handler(msg)
            if frame is not None:
                self.pub.publish(frame.msg)
        return callback


def main(args=None) -> int:
    return run(PerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

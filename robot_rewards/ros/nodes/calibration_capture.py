"""`calibration_capture` node: images + hand poses for hand-eye calibration, on ~/capture."""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from robot_rewards.ros.calibration_capture_core import CalibrationCaptureCore
from robot_rewards.ros.config import CalibrationCaptureConfig
from robot_rewards.ros.nodes._common import SENSOR_QOS, TF_QOS, TF_STATIC_QOS, run
from robot_rewards.ros.params import declare_config


class CalibrationCaptureNode(Node):
    """Thin rclpy shell of CalibrationCaptureCore."""

    def __init__(self, **node_kwargs):
        super().__init__("calibration_capture", **node_kwargs)
        self.cfg = cfg = declare_config(self, CalibrationCaptureConfig)
        self.core = CalibrationCaptureCore(cfg, self.get_logger())
        self.create_subscription(Image, cfg.color_topic, self.core.on_color, SENSOR_QOS)
        self.create_subscription(CameraInfo, cfg.camera_info_topic, self.core.on_camera_info, SENSOR_QOS)
        self.create_subscription(TFMessage, "/tf", lambda m: self.core.on_tf(m, False), TF_QOS)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self.core.on_tf(m, True), TF_STATIC_QOS)
        self.create_service(Trigger, "~/capture", self._capture)
        if cfg.auto_capture_period > 0:
            self.create_timer(cfg.auto_capture_period, self._auto)

    def _log(self, ok: bool, text: str) -> None:
        # one call site per severity: rclpy refuses a second severity from the same line
        if ok:
            self.get_logger().info(f"capture: {text}")
        else:
            self.get_logger().error(f"capture: {text}")

    def _capture(self, request, response):
        response.success, response.message = self.core.capture()
        self._log(response.success, response.message)
        return response

    def _auto(self) -> None:
        self._log(*self.core.capture())


def main(args=None) -> int:
    return run(CalibrationCaptureNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

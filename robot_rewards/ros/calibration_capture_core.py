"""The calibration capture node's logic: save views for `robot-rewards calibrate handeye`.

Each capture stores the latest colour image as images/view_NNN.png and the hand pose at
that image's stamp (from TF) in robot_poses.yaml; the first capture also writes the
camera's camera_info.yaml. The folder is then the input of
`robot-rewards calibrate handeye images=DIR/images poses=DIR/robot_poses.yaml intrinsics=DIR/camera_info.yaml`.
A view is refused (reported, nothing written) when no image or camera_info arrived, or the
hand pose is missing or stale.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from robot_rewards.calibration.camera_info import save_camera_info
from robot_rewards.calibration.handeye import RobotPoses, load_robot_poses, save_robot_poses
from robot_rewards.ros.config import CalibrationCaptureConfig
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_image import msg_to_camera_info, msg_to_rgb
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.tf_tree import TfTree, TransformError


class CalibrationCaptureCore:
    """`capture()` saves one view; inputs arrive through on_color / on_camera_info / on_tf."""

    def __init__(self, cfg: CalibrationCaptureConfig, log=None):
        self.cfg = cfg
        self.report = Reporter(log)
        self.out = Path(cfg.output_dir)
        self.tf = TfTree()
        self.color_msg = None
        self.info_msg = None
        poses_file = self.out / "robot_poses.yaml"
        self.poses = (load_robot_poses(poses_file) if poses_file.is_file()
                      else RobotPoses({}, cfg.base_frame, cfg.ee_frame))
        self.poses.base_frame, self.poses.ee_frame = cfg.base_frame, cfg.ee_frame

    def on_color(self, msg) -> None:
        self.color_msg = msg

    def on_camera_info(self, msg) -> None:
        self.info_msg = msg

    def on_tf(self, msg, static: bool = False) -> None:
        try:
            self.tf.add_message(msg, static)
        except MessageConversionError as exc:
            self.report.error("tf", f"tf message rejected: {exc}")

    def capture(self) -> tuple[bool, str]:
        """Save the latest image with its hand pose; (ok, message)."""
        if self.color_msg is None or self.info_msg is None:
            return False, f"no image/camera_info yet on {self.cfg.color_topic} / {self.cfg.camera_info_topic}"
        try:
            rgb = msg_to_rgb(self.color_msg)
            name, intrinsics = "camera", msg_to_camera_info(self.info_msg)[0]
        except MessageConversionError as exc:
            return False, f"image rejected: {exc}"
        stamp = stamp_to_ns(self.color_msg.header.stamp)
        try:
            base_T_ee = self.tf.lookup(self.cfg.base_frame, self.cfg.ee_frame, stamp, self.cfg.tf_tolerance)
        except TransformError as exc:
            return False, f"no hand pose for the image: {exc}"
        image = f"view_{len(self.poses.poses):03d}.png"
        images = self.out / "images"
        images.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(images / image), np.ascontiguousarray(rgb[:, :, ::-1])):
            return False, f"could not write {images / image}"
        self.poses.poses[image] = base_T_ee
        save_robot_poses(self.out / "robot_poses.yaml", self.poses)
        if not (self.out / "camera_info.yaml").exists():
            save_camera_info(self.out / "camera_info.yaml", name, intrinsics)
        return True, f"saved {image} ({len(self.poses.poses)} views in {self.out})"

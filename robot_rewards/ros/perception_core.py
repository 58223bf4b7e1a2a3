"""The perception node's logic: RGB + depth + camera_info (+ TF) -> base-frame cloud message.

Shared by the `perception` node and `robot-rewards bag replay`, so a recorded bag goes
through exactly what runs live. Every bad input is reported (throttled) and the frame is
dropped; nothing raises out of the `on_*` methods:

- unknown image encodings, malformed images or camera_info;
- image / depth sizes that do not match camera_info (after binning and ROI);
- no TF chain from the base frame to the camera, or a stale one;
- frames with no valid depth, or nothing left after cropping (perception errors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import Callable

import numpy as np

from robot_rewards.calibration.camera_info import load_base_transform
from robot_rewards.core.camera import CameraModel
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.core.paths import resolve
from robot_rewards.nn.artifacts import read_json
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive_with_info
from robot_rewards.perception.pointcloud import PerceptionError
from robot_rewards.policy.checkpoint import FORMAT, VERSION, checkpoint_paths
from robot_rewards.ros.config import PerceptionNodeConfig
from robot_rewards.ros.convert_cloud import points_to_msg
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_image import (
    camera_info_usable,
    check_image_matches_camera_info,
    msg_to_camera_info,
    msg_to_depth,
    msg_to_rgb,
)
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.sync import PairSync
from robot_rewards.ros.tf_tree import TfTree, TransformError


def perception_config(cfg: PerceptionNodeConfig) -> PerceptionConfig:
    """The PerceptionConfig named by the node parameters (or by the policy checkpoint's JSON)."""
    if cfg.perception_from_checkpoint:

        json_path, _ = checkpoint_paths(resolve(cfg.perception_from_checkpoint))
        meta = read_json(json_path, FORMAT, VERSION, "policy checkpoint")
        try:  # the checkpoint fixes what the clouds look like; where they are computed is ours
            return replace(PerceptionConfig(**meta["perception"]), device=cfg.device)
        except TypeError as exc:
            raise ValueError(f"{json_path}: unusable perception settings: {exc}") from None
    names = {f.name for f in fields(PerceptionConfig)} & {f.name for f in fields(PerceptionNodeConfig)}
    return PerceptionConfig(**{n: getattr(cfg, n) for n in names}, colors=True)


@dataclass(eq=False)
class PerceivedFrame:
    """One processed frame pair: the cloud message to publish and the Observation behind it."""

    msg: object
    observation: Observation
    stamp_ns: int


class PerceptionCore:
    """Feed it messages with `on_color`, `on_depth`, `on_camera_info`, `on_tf`; it returns a
    PerceivedFrame whenever a colour/depth pair was turned into a base-frame cloud."""

    def __init__(self, cfg: PerceptionNodeConfig, msg_types, log=None,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.types = msg_types
        self.report = Reporter(log)
        self.perception = perception_config(cfg)
        self.sync = PairSync(cfg.sync_slop)
        self.tf = TfTree()
        self.info_msg = None
        self.goal = ""
        self.clock = clock
        self._last_processed: float | None = None
        self.extrinsics: np.ndarray | None = None
        if cfg.extrinsics_file:
            self.extrinsics = load_base_transform(cfg.extrinsics_file, cfg.base_frame)
        self.frames_out = 0

    # -- inputs ------------------------------------------------------------------------------
    def on_camera_info(self, msg) -> None:
        if camera_info_usable(msg, lambda why: self.report.error("camera_info", why)):
            self.info_msg = msg

    def on_tf(self, msg, static: bool = False) -> None:
        try:
            self.tf.add_message(msg, static)
        except MessageConversionError as exc:
            self.report.error("tf", f"{'/tf_static' if static else '/tf'} message rejected: {exc}")

    def on_color(self, msg) -> PerceivedFrame | None:
        return self._push("a", msg)

    def on_depth(self, msg) -> PerceivedFrame | None:
        return self._push("b", msg)

    def _push(self, stream: str, msg) -> PerceivedFrame | None:
        pair = self.sync.push(stream, stamp_to_ns(msg.header.stamp), msg)
        if pair is None:
            return None
        if self.cfg.max_rate > 0 and self._last_processed is not None:
            if self.clock() - self._last_processed < 1.0 / self.cfg.max_rate:
                return None
        self._last_processed = self.clock()
        return self.process(*pair)

    # -- processing --------------------------------------------------------------------------
    def camera_model(self, info_msg, stamp_ns: int) -> CameraModel:
        """Intrinsics from camera_info and base_T_camera from the extrinsics file or TF."""
        intrinsics, info_frame = msg_to_camera_info(info_msg)
        frame = self.cfg.camera_frame or info_frame
        if not frame:
            raise MessageConversionError("camera_info.header.frame_id is empty and no camera_frame is set")
        if self.extrinsics is not None:
            T = self.extrinsics
        else:
            T = self.tf.lookup(self.cfg.base_frame, frame, stamp_ns, self.cfg.tf_tolerance)
        return CameraModel("camera", intrinsics, T, frame_id=frame, base_frame=self.cfg.base_frame)

    def process(self, color_msg, depth_msg, color_ns: int, depth_ns: int) -> PerceivedFrame | None:
        """One colour/depth pair -> PerceivedFrame, or None after reporting why not."""
        info = self.info_msg
        if info is None:
            self.report.warning("no_camera_info", f"no camera_info yet on {self.cfg.camera_info_topic}: frame dropped")
            return None
        try:
            check_image_matches_camera_info(depth_msg, info, check_frame=False)
            check_image_matches_camera_info(color_msg, info, check_frame=False)
            depth = msg_to_depth(depth_msg)
            rgb = msg_to_rgb(color_msg)
        except MessageConversionError as exc:
            self.report.error("image", f"image pair rejected: {exc}")
            return None
        try:
            camera = self.camera_model(info, depth_ns)
        except MessageConversionError as exc:
            self.report.error("camera_info", f"camera_info rejected: {exc}")
            return None
        except TransformError as exc:
            self.report.error("tf", f"no camera pose for the frame at {depth_ns / 1e9:.3f} s: {exc}")
            return None
        try:
            obs, result = perceive_with_info(
                {camera.name: CameraFrame(camera, rgb, depth)}, config=self.perception,
                goal=self.goal, timestamp=depth_ns / 1e9,
            )
        except (PerceptionError, ValueError) as exc:
            self.report.error(type(exc).__name__, f"perception failed: {exc}")
            return None
        if result.info.padded:
            self.report.warning("padded", f"only {result.info.sampling.n_input} points after filtering; "
                                f"the cloud repeats points to reach {self.perception.n_points}")
        stamp = divmod(depth_ns, 1_000_000_000)
        msg = points_to_msg(obs.points, (self.cfg.base_frame, stamp), self.types, rgb=obs.colors)
        self.frames_out += 1
        return PerceivedFrame(msg, obs, depth_ns)

"""Small, deterministic inputs shared by the ROS tests: a synthetic RGB-D frame and a tiny scorer."""

from __future__ import annotations

import numpy as np

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics
from robot_rewards.ros import convert as rc

SEC = 1_000_000_000
INTR = CameraIntrinsics.from_fov(64, 48, 60.0)
EYE, TARGET, PLATFORM_Z = np.array([0.1, 0.0, 0.7]), np.array([0.5, 0.0, 0.0]), 0.03


def synthetic_frame(stamp_ns: int, frame: str = "cam", msg_types=rc.ROSBAGS_TYPES):
    """(colour, depth, camera_info messages, base_T_camera): a red platform 3 cm above the table,
    seen obliquely by a 64x48 camera."""
    base_T_cam = transforms.look_at(EYE, TARGET)
    u, v = np.meshgrid(np.arange(INTR.width), np.arange(INTR.height))
    rays = np.stack([(u - INTR.cx) / INTR.fx, (v - INTR.cy) / INTR.fy, np.ones_like(u, float)], -1)
    dz = rays @ base_T_cam[:3, :3].T
    depth = ((PLATFORM_Z - EYE[2]) / dz[..., 2]).astype(np.float32)  # optical z = the ray parameter
    rgb = np.zeros((INTR.height, INTR.width, 3), np.uint8)
    rgb[..., 0] = 200
    header = (frame, divmod(stamp_ns, SEC))
    return (rc.image_to_msg(rgb, "rgb8", header, msg_types), rc.depth_to_msg(depth, header, msg_types),
            rc.camera_info_to_msg(INTR, header, msg_types), base_T_cam)


def tiny_scorer():
    """A seeded, untrained 3-member preference scorer small enough for tests."""
    import torch

    from robot_rewards.rewards.preference.config import ScorerConfig
    from robot_rewards.rewards.preference.scorer import PreferenceScorer

    torch.manual_seed(0)
    cfg = ScorerConfig(point_channels=[8, 16], attention_heads=1, obs_dim=16, goal_dim=8, token_dim=4, hidden=16)
    return PreferenceScorer(cfg, "pick_place", ["<pad>", "<unk>", "block", "red", "mark"], k=3).eval()

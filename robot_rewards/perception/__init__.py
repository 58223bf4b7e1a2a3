"""RGB-D frames -> metric point clouds in the robot base frame: back-projection, fusion,
cropping, table removal, segment selection, voxel and farthest-point sampling.

One implementation, in torch (CPU or CUDA): `perceive_cloud_batch` runs the pipeline on a batch,
and `perceive` / `perceive_cloud` / the numpy-facing helpers (`frame_to_cloud`,
`voxel_downsample`, `farthest_point_sampling`, ...) call the same code on one frame. The numpy
implementation it replaced is the test reference, `tests/perception_reference.py`.

Names are loaded on first use (PEP 562), so `import robot_rewards.perception.config` and the
command-line help stay free of torch.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "EmptyPointCloudError": "pointcloud",
    "ImageSizeMismatchError": "pointcloud",
    "InvalidDepthError": "pointcloud",
    "PerceptionConfig": "config",
    "PerceptionError": "pointcloud",
    "PerceptionInfo": "pipeline",
    "PerceptionResult": "pipeline",
    "Plane": "filters",
    "PointCloud": "pointcloud",
    "SamplingInfo": "filters",
    "TableRemovalWarning": "pipeline",
    "backproject": "pointcloud",
    "crop_box": "filters",
    "depth_in_metres": "pointcloud",
    "farthest_point_sampling": "filters",
    "fit_plane_ransac": "filters",
    "frame_to_cloud": "pointcloud",
    "fuse": "pointcloud",
    "perceive": "pipeline",
    "perceive_batch": "pipeline",
    "perceive_cloud": "pipeline",
    "perceive_cloud_batch": "pipeline",
    "perceive_points": "pipeline",
    "perceive_with_info": "pipeline",
    "remove_plane": "filters",
    "resolve_device": "pointcloud",
    "sample_fixed_count": "filters",
    "select_labels": "filters",
    "transform_points": "pointcloud",
    "valid_depth_mask": "pointcloud",
    "voxel_downsample": "filters",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'robot_rewards.perception' has no attribute '{name}'")
    return getattr(importlib.import_module(f"robot_rewards.perception.{_WHERE[name]}"), name)

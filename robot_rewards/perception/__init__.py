"""RGB-D frames -> metric point clouds in the robot base frame: back-projection, fusion,
cropping, table removal, segment selection, voxel and farthest-point sampling.

One implementation, in torch (CPU or CUDA): `perceive_cloud_batch` runs the pipeline on a batch,
and `perceive` / `perceive_cloud` / the numpy-facing helpers (`frame_to_cloud`,
`voxel_downsample`, `farthest_point_sampling`, ...) call the same code on one frame. The numpy
implementation it replaced is the test reference, `tests/perception_reference.py`."""

from robot_rewards.perception.filters import (
    Plane,
    SamplingInfo,
    crop_box,
    farthest_point_sampling,
    fit_plane_ransac,
    remove_plane,
    sample_fixed_count,
    select_labels,
    voxel_downsample,
)
from robot_rewards.perception.perceive import (
    PerceptionConfig,
    PerceptionInfo,
    PerceptionResult,
    perceive,
    perceive_batch,
    perceive_cloud,
    perceive_cloud_batch,
    perceive_with_info,
)
from robot_rewards.perception.pointcloud import (
    EmptyPointCloudError,
    ImageSizeMismatchError,
    InvalidDepthError,
    PerceptionError,
    PointCloud,
    backproject,
    frame_to_cloud,
    fuse,
    resolve_device,
    transform_points,
    valid_depth_mask,
)

__all__ = [
    "EmptyPointCloudError",
    "ImageSizeMismatchError",
    "InvalidDepthError",
    "PerceptionConfig",
    "PerceptionError",
    "PerceptionInfo",
    "PerceptionResult",
    "Plane",
    "PointCloud",
    "SamplingInfo",
    "backproject",
    "crop_box",
    "farthest_point_sampling",
    "fit_plane_ransac",
    "frame_to_cloud",
    "fuse",
    "perceive",
    "perceive_batch",
    "perceive_cloud",
    "perceive_cloud_batch",
    "perceive_with_info",
    "remove_plane",
    "resolve_device",
    "sample_fixed_count",
    "select_labels",
    "transform_points",
    "valid_depth_mask",
    "voxel_downsample",
]

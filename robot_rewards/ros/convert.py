"""ROS 2 message <-> numpy conversion, for rclpy's generated classes and `rosbags` classes alike.

Functions that build messages take the message types as a parameter (`msg_types`): either
`ROSBAGS_TYPES`, `rclpy_types()`, a rosbags `Typestore`, a name -> class mapping or a callable.
Functions that read messages only use field names, so they accept either kind of message.
This module never imports rclpy.

Conventions: depth in float32 metres with 0 = invalid; point clouds (N, 3) or (H, W, 3)
float32 with (.., 3) uint8 colours; transforms as 4x4 parent_T_child matrices with
quaternions (x, y, z, w); stamps as float seconds or exact (sec, nanosec) pairs.
Bad input raises `MessageConversionError` (a ValueError) naming the field and the values.

The implementation lives in convert_common (types, time, headers), convert_image (Image,
depth, CameraInfo), convert_cloud (PointCloud2) and convert_motion (JointState,
JointTrajectory, TF).
"""

from robot_rewards.ros.convert_cloud import (
    POINTFIELD_DTYPES,
    msg_to_points,
    pack_rgb,
    pointcloud2_dtype,
    pointcloud2_to_array,
    points_to_msg,
)
from robot_rewards.ros.convert_common import (
    ROSBAGS_TYPES,
    MessageConversionError,
    MessageTypes,
    as_message_types,
    header_of,
    make_header,
    ns_to_stamp,
    rclpy_types,
    rosbags_store,
    rosbags_typestore,
    sec_to_stamp,
    stamp_parts,
    stamp_to_ns,
    stamp_to_sec,
)
from robot_rewards.ros.convert_image import (
    IMAGE_ENCODINGS,
    camera_info_to_msg,
    check_image_matches_camera_info,
    depth_to_msg,
    expected_image_size,
    image_to_msg,
    msg_to_camera_info,
    msg_to_depth,
    msg_to_image,
    msg_to_rgb,
)
from robot_rewards.ros.convert_motion import (
    JointStateData,
    JointTrajectoryData,
    StampedTransform,
    joint_state_to_msg,
    joint_trajectory_to_msg,
    msg_to_joint_state,
    msg_to_joint_trajectory,
    msg_to_transform,
    stamped_transform_to_msg,
    tf_msg_to_transforms,
    transform_to_msg,
    transforms_to_tf_msg,
)

__all__ = [
    "IMAGE_ENCODINGS",
    "POINTFIELD_DTYPES",
    "ROSBAGS_TYPES",
    "JointStateData",
    "JointTrajectoryData",
    "MessageConversionError",
    "MessageTypes",
    "StampedTransform",
    "as_message_types",
    "camera_info_to_msg",
    "check_image_matches_camera_info",
    "depth_to_msg",
    "expected_image_size",
    "header_of",
    "image_to_msg",
    "joint_state_to_msg",
    "joint_trajectory_to_msg",
    "make_header",
    "msg_to_camera_info",
    "msg_to_depth",
    "msg_to_image",
    "msg_to_joint_state",
    "msg_to_joint_trajectory",
    "msg_to_points",
    "msg_to_rgb",
    "msg_to_transform",
    "ns_to_stamp",
    "pack_rgb",
    "pointcloud2_dtype",
    "pointcloud2_to_array",
    "points_to_msg",
    "rclpy_types",
    "rosbags_store",
    "rosbags_typestore",
    "sec_to_stamp",
    "stamp_parts",
    "stamp_to_ns",
    "stamp_to_sec",
    "stamped_transform_to_msg",
    "tf_msg_to_transforms",
    "transform_to_msg",
    "transforms_to_tf_msg",
]

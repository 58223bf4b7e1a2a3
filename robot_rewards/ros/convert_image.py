"""numpy <-> sensor_msgs/Image (colour, mono, depth) and CameraInfo <-> CameraIntrinsics."""

from __future__ import annotations

import numpy as np

from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.ros.convert_common import (
    MessageConversionError,
    as_message_types,
    float_array,
    header_of,
    uint8_buffer,
)

# encoding -> (numpy base type, channels), as in sensor_msgs/image_encodings.hpp.
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "8UC1": ("u1", 1),
    "8UC3": ("u1", 3),
    "16UC1": ("u2", 1),
    "16SC1": ("i2", 1),
    "32FC1": ("f4", 1),
    "64FC1": ("f8", 1),
}

# 16UC1 depth holds millimetres; 65535 mm is the farthest depth it can carry.
_MM_PER_M = 1000.0
_MAX_DEPTH_16U_M = np.iinfo(np.uint16).max / _MM_PER_M


def _encoding_layout(encoding: str) -> tuple[np.dtype, int]:
    try:
        base, channels = IMAGE_ENCODINGS[encoding]
    except KeyError:
        raise MessageConversionError(
            f"image.encoding: unknown encoding '{encoding}'; supported: {', '.join(IMAGE_ENCODINGS)}"
        ) from None
    return np.dtype(base), channels


def image_to_msg(array, encoding: str, header, msg_types):
    """A sensor_msgs/Image of `array` laid out as `encoding` says (no channel reordering).

    `array` is (H, W) or (H, W, 1) for one channel, (H, W, C) otherwise, with exactly the
    encoding's dtype (uint8 for rgb8, uint16 for 16UC1, float32 for 32FC1, ...). Data is
    written little-endian with no row padding (step = W * C * itemsize).
    """
    dtype, channels = _encoding_layout(encoding)
    array = np.asarray(array)
    if array.ndim == 3 and channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    expected = "(H, W)" if channels == 1 else f"(H, W, {channels})"
    if array.ndim != (2 if channels == 1 else 3) or (channels > 1 and array.shape[2] != channels):
        raise MessageConversionError(
            f"image: encoding '{encoding}' needs an array of shape {expected}, got {array.shape}"
        )
    if array.dtype.newbyteorder("=") != dtype.newbyteorder("="):
        raise MessageConversionError(
            f"image: encoding '{encoding}' needs {dtype.name} data, got {array.dtype}"
            + (" (use depth_to_msg for depth in metres)" if encoding == "16UC1" else "")
        )
    height, width = array.shape[:2]
    # A fresh, writable little-endian copy: the message never aliases the caller's array.
    data = np.array(array, dtype=dtype.newbyteorder("<"), order="C").view(np.uint8).reshape(-1)
    types = as_message_types(msg_types)
    return types.new(
        "sensor_msgs/msg/Image",
        header=header_of(header, types),
        height=int(height),
        width=int(width),
        encoding=encoding,
        is_bigendian=0,
        step=int(width * channels * dtype.itemsize),
        data=types.sequence(data, np.uint8),
    )


def msg_to_image(msg, *, copy: bool = True) -> np.ndarray:
    """The pixels of a sensor_msgs/Image in its own encoding: (H, W) or (H, W, C), native order.

    Honours `is_bigendian` and row padding (step > W * C * itemsize). With copy=False a
    little-endian, unpadded image is returned as a (possibly read-only) view of msg.data.
    """
    dtype, channels = _encoding_layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 0 or width < 0:  # uint32 in the message; numpy's own error would not say which
        raise MessageConversionError(f"image: height {height} and width {width} must not be negative")
    if msg.is_bigendian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    else:
        dtype = dtype.newbyteorder("<")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise MessageConversionError(
            f"image.step: {step} is less than width*channels*itemsize = "
            f"{width}*{channels}*{dtype.itemsize} = {row_bytes} for '{msg.encoding}'"
        )
    data = uint8_buffer(msg.data, "image")
    if data.size != step * height:
        raise MessageConversionError(
            f"image.data: {data.size} bytes, expected step*height = {step}*{height} = {step * height}"
        )
    if data.size == 0:
        pixels = np.zeros((height, width, channels), dtype)
    else:
        # Strided view over the buffer: skips row padding without a Python loop.
        pixels = np.ndarray(
            (height, width, channels),
            dtype,
            buffer=data,
            strides=(step, channels * dtype.itemsize, dtype.itemsize),
        )
    if channels == 1:
        pixels = pixels[:, :, 0]
    native = pixels.dtype.newbyteorder("=")
    if copy:
        return np.array(pixels, dtype=native, order="C")  # always a fresh, writable array
    return np.ascontiguousarray(pixels, dtype=native)  # a view when already native and unpadded


def msg_to_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an rgb8, bgr8, rgba8, bgra8 or mono8 image (alpha dropped)."""
    pixels = msg_to_image(msg, copy=False)
    encoding = msg.encoding
    if encoding in ("rgb8", "8UC3"):
        rgb = pixels
    elif encoding == "bgr8":
        rgb = pixels[:, :, ::-1]
    elif encoding == "rgba8":
        rgb = pixels[:, :, :3]
    elif encoding == "bgra8":
        rgb = pixels[:, :, 2::-1]
    elif encoding in ("mono8", "8UC1"):
        rgb = np.repeat(pixels[:, :, None], 3, axis=2)
    else:
        raise MessageConversionError(
            f"image.encoding: '{encoding}' is not a colour encoding "
            "(expected rgb8, bgr8, rgba8, bgra8 or mono8)"
        )
    return np.array(rgb, order="C")  # never a view of msg.data


def depth_to_msg(depth_m, header, msg_types, encoding: str = "16UC1"):
    """A depth image from (H, W) metres, where 0 or non-finite means invalid.

    16UC1 stores millimetres rounded to the nearest, with 0 for invalid (and for depths
    <= 0); depths over 65.535 m raise (usually a units mistake). 32FC1 stores metres with
    invalid as NaN, as REP 118 asks.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or depth.dtype.kind != "f":
        raise MessageConversionError(
            f"depth: expected an (H, W) float array in metres, got {depth.shape} {depth.dtype}"
        )
    invalid = ~np.isfinite(depth) | (depth <= 0)
    if encoding == "16UC1":
        too_far = ~invalid & (depth > _MAX_DEPTH_16U_M)
        if too_far.any():
            raise MessageConversionError(
                f"depth: {int(too_far.sum())} pixels beyond {_MAX_DEPTH_16U_M} m "
                f"(max {float(depth[too_far].max())}) do not fit 16UC1 millimetres; "
                "is the depth in metres?"
            )
        pixels = np.rint(np.where(invalid, 0.0, depth) * _MM_PER_M).astype(np.uint16)
    elif encoding == "32FC1":
        pixels = np.where(invalid, np.float32(np.nan), depth).astype(np.float32)
    else:
        raise MessageConversionError(
            f"depth: encoding must be '16UC1' or '32FC1', got '{encoding}'"
        )
    return image_to_msg(pixels, encoding, header, msg_types)


def msg_to_depth(msg) -> np.ndarray:
    """(H, W) float32 metres of a 16UC1 (millimetres) or 32FC1 (metres) image; 0 = invalid.

    Invalid pixels (16UC1 zero; 32FC1 NaN, +-inf or <= 0) become 0, the convention of
    `CameraFrame.depth`.
    """
    if msg.encoding not in ("16UC1", "32FC1"):
        raise MessageConversionError(
            f"depth.encoding: expected '16UC1' (mm) or '32FC1' (m), got '{msg.encoding}'"
        )
    pixels = msg_to_image(msg, copy=False)
    if msg.encoding == "16UC1":
        return pixels.astype(np.float32) / np.float32(_MM_PER_M)
    depth = np.array(pixels, dtype=np.float32)
    depth[~np.isfinite(depth) | (depth <= 0)] = 0.0
    return depth


def camera_info_to_msg(camera: CameraIntrinsics | CameraModel, header, msg_types):
    """A sensor_msgs/CameraInfo of intrinsics (or a CameraModel, whose frame_id is the default).

    Rectified conventions: R = I, P = [K | 0]; no binning, full-image ROI.
    """
    if isinstance(camera, CameraModel):
        header = camera.frame_id if header is None else header
        camera = camera.intrinsics
    if not isinstance(camera, CameraIntrinsics):
        raise MessageConversionError(
            f"camera_info: expected CameraIntrinsics or CameraModel, got {type(camera).__name__}"
        )
    types = as_message_types(msg_types)
    K = camera.K
    P = np.hstack([K, np.zeros((3, 1))])
    roi = types.new(
        "sensor_msgs/msg/RegionOfInterest",
        x_offset=0,
        y_offset=0,
        height=0,
        width=0,
        do_rectify=False,
    )
    return types.new(
        "sensor_msgs/msg/CameraInfo",
        header=header_of(header, types),
        height=int(camera.height),
        width=int(camera.width),
        distortion_model=str(camera.distortion_model),
        d=types.sequence(np.asarray(camera.distortion, dtype=np.float64), np.float64),
        k=types.fixed_array(K.ravel(), np.float64),
        r=types.fixed_array(np.eye(3).ravel(), np.float64),
        p=types.fixed_array(P.ravel(), np.float64),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def msg_to_camera_info(msg) -> tuple[CameraIntrinsics, str]:
    """(CameraIntrinsics, frame_id) of a sensor_msgs/CameraInfo.

    R, P, binning and ROI are not part of CameraIntrinsics and are ignored; use
    `check_image_matches_camera_info` to relate a (binned/ROI) image to it.
    """
    K = float_array(msg.k, "camera_info.k")
    if K.size != 9:
        raise MessageConversionError(f"camera_info.k: needs 9 values, has {K.size}")
    if not np.any(K):
        raise MessageConversionError("camera_info.k: all zeros, the camera is not calibrated")
    if K[1] != 0.0 or K[3] != 0.0 or K[6] != 0.0 or K[7] != 0.0 or K[8] != 1.0:
        raise MessageConversionError(
            f"camera_info.k: expected [fx, 0, cx, 0, fy, cy, 0, 0, 1], got {K.tolist()} "
            "(skew is not supported)"
        )
    distortion = float_array(msg.d, "camera_info.d")
    try:
        intrinsics = CameraIntrinsics(
            width=int(msg.width),
            height=int(msg.height),
            fx=float(K[0]),
            fy=float(K[4]),
            cx=float(K[2]),
            cy=float(K[5]),
            distortion=tuple(float(d) for d in distortion),
            distortion_model=str(msg.distortion_model),
        )
    except ValueError as exc:
        raise MessageConversionError(f"camera_info: {exc}") from exc
    return intrinsics, str(msg.header.frame_id)


def camera_info_usable(msg, on_error) -> bool:
    """Whether `msg` is a calibrated, well-formed camera_info; `on_error(text)` hears why not
    (so a node rejects a bad one when it arrives, not at the next frame)."""
    try:
        msg_to_camera_info(msg)
    except MessageConversionError as exc:
        on_error(f"camera_info rejected: {exc}")
        return False
    return True


def expected_image_size(info_msg) -> tuple[int, int]:
    """(width, height) of the images that go with a CameraInfo, after ROI and binning."""
    width, height = int(info_msg.width), int(info_msg.height)
    roi = info_msg.roi
    if int(roi.width) and int(roi.height):  # 0 x 0 ROI means the full image
        width, height = int(roi.width), int(roi.height)
    return width // max(int(info_msg.binning_x), 1), height // max(int(info_msg.binning_y), 1)


def check_image_matches_camera_info(image_msg, info_msg, *, check_frame: bool = True) -> None:
    """Raise MessageConversionError when an Image cannot be described by a CameraInfo.

    Checks the size (after ROI and binning) and, with check_frame, that both name the same
    frame when both name one.
    """
    width, height = expected_image_size(info_msg)
    if (int(image_msg.width), int(image_msg.height)) != (width, height):
        raise MessageConversionError(
            f"image size {image_msg.width}x{image_msg.height} (width x height) does not match "
            f"camera_info {width}x{height} (width={info_msg.width}, height={info_msg.height}, "
            f"binning={info_msg.binning_x}x{info_msg.binning_y}, "
            f"roi={info_msg.roi.width}x{info_msg.roi.height})"
        )
    image_frame, info_frame = str(image_msg.header.frame_id), str(info_msg.header.frame_id)
    if check_frame and image_frame and info_frame and image_frame != info_frame:
        raise MessageConversionError(
            f"image.header.frame_id '{image_frame}' differs from camera_info.header.frame_id "
            f"'{info_frame}'"
        )

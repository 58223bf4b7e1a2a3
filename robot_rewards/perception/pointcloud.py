"""Depth images -> metric point clouds: back-projection, frame transforms, multi-camera fusion.

One implementation, in torch, on the CPU or a CUDA device. The pipeline works on padded batches:
`backproject_torch` turns (B, H, W) depth images into (B, H*W, 3) base-frame points plus a
(B, H*W) validity mask, and every later stage (crop, table, segments, voxels, farthest-point
sampling in `filters`) keeps that layout. The numpy-facing helpers (`backproject`,
`frame_to_cloud`, `transform_points`, `valid_depth_mask`) are thin calls of the same torch code
on one frame that return numpy arrays / `PointCloud`s.

The back-projection reproduces the numpy pipeline this replaced bit for bit (float32 rays times
depth, the extrinsic applied in float64): policies were trained on those clouds, and the numpy
version is kept as the test reference in `tests/perception_reference.py`.

Depth follows the CameraFrame convention: float metres of z along the optical axis (not ray
length), 0 = no measurement; NaN, inf, negative values and values beyond the range limits are
dropped too. uint16 depth is taken as millimetres (ROS 16UC1), as `ros.convert` reads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from robot_rewards.core import device as core_device
from robot_rewards.core.camera import CameraIntrinsics, CameraModel


class PerceptionError(ValueError):
    """Bad input to the perception pipeline (shapes, empty clouds, invalid depth)."""


class ImageSizeMismatchError(PerceptionError):
    """A depth/colour/mask image whose size is not the camera's intrinsics size."""


class InvalidDepthError(PerceptionError):
    """A depth frame without a single valid measurement."""


class EmptyPointCloudError(PerceptionError):
    """No points left (after back-projection or after filtering)."""


@dataclass(eq=False)
class PointCloud:
    """Points (N, 3) float32 with optional per-point colours (N, 3) uint8 and segmentation
    labels (N,) int32 (body ids, -1 = background). All arrays share the first dimension."""

    points: np.ndarray
    colors: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 3)
        n = len(self.points)
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.uint8).reshape(-1, 3)
            if len(self.colors) != n:
                raise PerceptionError(f"{len(self.colors)} colours for {n} points")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
            if len(self.labels) != n:
                raise PerceptionError(f"{len(self.labels)} labels for {n} points")

    def __len__(self) -> int:
        return len(self.points)

    def select(self, index) -> PointCloud:
        """The sub-cloud at a boolean mask or integer index array (all fields together)."""
        return PointCloud(
            self.points[index],
            None if self.colors is None else self.colors[index],
            None if self.labels is None else self.labels[index],
        )

    def transformed(self, T) -> PointCloud:
        """The cloud with a 4x4 rigid transform applied to its points."""
        return PointCloud(transform_points(self.points, T), self.colors, self.labels)

    @staticmethod
    def empty(with_colors: bool = False, with_labels: bool = False) -> PointCloud:
        return PointCloud(
            np.zeros((0, 3), np.float32),
            np.zeros((0, 3), np.uint8) if with_colors else None,
            np.zeros((0,), np.int32) if with_labels else None,
        )


# --------------------------------------------------------------------------------------------
# Device selection
# --------------------------------------------------------------------------------------------


def resolve_device(device: str = "auto") -> str:
    """The torch device perception runs on (`core.device.resolve_device`), also accepting the
    names older configs and checkpoints saved: 'torch' (= auto) and 'numpy' (= cpu, from when a
    separate numpy backend existed; the torch CPU path gives the same clouds)."""
    name = {"torch": "auto", "numpy": "cpu"}.get(str(device).strip().lower(), device)
    try:
        return core_device.resolve_device(name)
    except core_device.DeviceError as exc:
        raise PerceptionError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# Back-projection (torch, batched)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _ray_grid(intrinsics: CameraIntrinsics) -> np.ndarray:
    """(H, W, 2) normalised image coordinates (x/z, y/z) of every pixel centre.

    Without distortion this is (u - cx)/fx, (v - cy)/fy; with distortion the pixel grid is
    undistorted once (cached per camera) so back-projection stays a multiply per frame.
    """
    i = intrinsics
    u, v = np.meshgrid(np.arange(i.width, dtype=np.float64), np.arange(i.height, dtype=np.float64))
    if not any(abs(d) > 0 for d in i.distortion):
        grid = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy], axis=-1)
    else:
        if i.distortion_model not in ("plumb_bob", "rational_polynomial"):
            raise PerceptionError(
                f"distortion model '{i.distortion_model}' is not supported for back-projection"
            )

        pix = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
        grid = cv2.undistortPoints(pix, i.K, np.asarray(i.distortion, np.float64)).reshape(
            i.height, i.width, 2
        )
    grid = grid.astype(np.float32)
    grid.setflags(write=False)
    return grid


@functools.lru_cache(maxsize=16)
def _ray_grid_cached(intrinsics: CameraIntrinsics, device: str) -> torch.Tensor:
    return torch.from_numpy(np.array(_ray_grid(intrinsics)).reshape(-1, 2)).to(device)


def ray_grid_torch(intrinsics: CameraIntrinsics, device="cpu") -> torch.Tensor:
    """The (H*W, 2) float32 normalised ray grid of `intrinsics` on `device` (cached per camera
    and device: treat it as read-only)."""
    return _ray_grid_cached(intrinsics, str(torch.device(device)))


def valid_depth_torch(depth: torch.Tensor, min_depth: float = 0.0, max_depth: float = float("inf")) -> torch.Tensor:
    """True where depth is a usable measurement: finite, > 0, > min_depth and <= max_depth."""
    return torch.isfinite(depth) & (depth > max(min_depth, 0.0)) & (depth <= max_depth)


def transform_points_torch(points: torch.Tensor, base_T: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) float32 points mapped by (B, 4, 4) rigid transforms, computed in float64 and
    rounded to float32 (p @ R^T + t, the order `core.transforms.apply` uses)."""
    T = base_T.to(device=points.device, dtype=torch.float64)
    out = torch.matmul(points.to(torch.float64), T[:, :3, :3].transpose(1, 2))
    out += T[:, None, :3, 3]
    return out.to(torch.float32)


def backproject_torch(depth, rays, base_T_camera=None, min_depth: float = 0.0, max_depth: float = float("inf")):
    """Batched back-projection, optionally transformed to the base frame.

    depth (B, H, W) float tensor, rays (B, H*W, 2) or (H*W, 2) normalised ray grid,
    base_T_camera (B, 4, 4) or None (camera frame). Returns points (B, H*W, 3) float32 and the
    validity mask (B, H*W) bool; invalid pixels hold arbitrary finite values.
    """
    B = depth.shape[0]
    z = depth.reshape(B, -1).to(torch.float32)
    valid = valid_depth_torch(z, min_depth, max_depth)
    z = torch.where(valid, z, torch.zeros((), dtype=z.dtype, device=z.device))
    if rays.dim() == 2:
        rays = rays.unsqueeze(0)
    cam = torch.empty(z.shape + (3,), dtype=torch.float32, device=z.device)
    torch.mul(rays[..., 0], z, out=cam[..., 0])
    torch.mul(rays[..., 1], z, out=cam[..., 1])
    cam[..., 2] = z
    if base_T_camera is None:
        return cam, valid
    return transform_points_torch(cam, base_T_camera), valid


# --------------------------------------------------------------------------------------------
# numpy-facing helpers (one frame; the same torch code)
# --------------------------------------------------------------------------------------------


def as_tensor(array, dtype=None) -> torch.Tensor:
    """A CPU tensor of a numpy array, sharing its memory where it is contiguous, writable and
    of `dtype` (read-only arrays, e.g. from a bag or a cache, are copied: torch wants writable
    memory)."""
    a = np.ascontiguousarray(array, dtype=dtype)
    if not a.flags.writeable:
        a = a.copy()
    return torch.from_numpy(a)


def check_images(camera_name: str, intrinsics: CameraIntrinsics, depth, rgb=None, segmentation=None, mask=None):
    """ImageSizeMismatchError unless every given image has the intrinsics' size (rgb: 3 channels)."""
    _check_image(camera_name, depth, intrinsics, "depth", None)
    for what, image, channels in (("rgb", rgb, 3), ("segmentation", segmentation, None), ("mask", mask, None)):
        if image is not None:
            _check_image(camera_name, image, intrinsics, what, channels)


def _check_image(name: str, image, intrinsics: CameraIntrinsics, what: str, channels: int | None):
    h, w = intrinsics.height, intrinsics.width
    shape = np.shape(image)
    expected = (h, w) if channels is None else (h, w, channels)
    if tuple(shape) != expected:
        raise ImageSizeMismatchError(
            f"camera '{name}': {what} has shape {tuple(shape)} but the intrinsics are "
            f"{w}x{h} (expected {expected})"
        )


def invalid_depth_error(camera_name: str, width: int, height: int, min_depth: float, max_depth: float,
                        observations=None, depth=None) -> InvalidDepthError:
    """The InvalidDepthError of a frame without valid depth; given the `depth` values, it also
    says when they look like millimetres or centimetres rather than metres."""
    which = "" if observations is None else f"observation(s) {observations}: "
    return InvalidDepthError(
        f"camera '{camera_name}': no valid depth in a {width}x{height} frame "
        f"({which}every pixel is 0, NaN, inf or outside [{min_depth}, {max_depth}] m)"
        + ("" if depth is None else depth_units_hint(depth, max_depth))
    )


MM_PER_M = 1000.0  # 16UC1 depth (ROS REP 118) holds millimetres


def depth_in_metres(depth) -> np.ndarray:
    """Depth as float metres: uint16 images are millimetres (16UC1, as ROS drivers publish and
    `ros.convert.msg_to_depth` reads them); float images are already metres."""
    depth = np.asarray(depth)
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) / np.float32(MM_PER_M)
    return depth


def depth_units_hint(depth, max_depth: float) -> str:
    """'' or a note on the units when every finite positive depth lies beyond `max_depth` at
    values typical of millimetres (or centimetres)."""
    d = torch.as_tensor(np.asarray(depth) if not isinstance(depth, torch.Tensor) else depth).reshape(-1)
    d = d[torch.isfinite(d) & (d > 0)].to(torch.float64)
    if d.numel() == 0 or float(d.min()) <= max_depth:
        return ""
    median = float(d.median())
    for unit, scale in (("millimetres", 1000.0), ("centimetres", 100.0)):
        if 0.2 <= median / scale <= 20.0:  # a depth camera's working range, in metres
            return (f"; the values (median {median:g}) look like {unit}: give depth in metres "
                    f"(divide by {scale:g}){', or as uint16 millimetres' if unit == 'millimetres' else ''}")
    return f"; every value is beyond max_depth (median {median:g}): is the depth in metres?"


def valid_depth_mask(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    """True where depth is a usable measurement: finite, > 0, > min_depth and <= max_depth
    (uint16 depth in millimetres, like everywhere in perception)."""
    depth = depth_in_metres(depth)
    if depth.dtype.kind != "f":
        depth = depth.astype(np.float64)
    return valid_depth_torch(as_tensor(depth), min_depth, max_depth).numpy()


def _take(array, index: np.ndarray, channels: int | None) -> np.ndarray:
    """Pixels `index` of an (H, W[, C]) image (any dtype: colours, segment ids)."""
    a = np.asarray(array)
    return (a.reshape(-1) if channels is None else a.reshape(-1, channels))[index]


def _frame_cloud(depth, intrinsics, base_T, rgb, segmentation, mask, min_depth, max_depth, camera_name) -> PointCloud:
    check_images(camera_name, intrinsics, depth, rgb, segmentation, mask)
    d = as_tensor(depth_in_metres(depth), np.float32)[None]
    T = None if base_T is None else as_tensor(base_T, np.float64).reshape(1, 4, 4)
    points, valid = backproject_torch(d, ray_grid_torch(intrinsics), T, min_depth, max_depth)
    if not bool(valid.any()):
        raise invalid_depth_error(camera_name, d.shape[2], d.shape[1], min_depth, max_depth, depth=d)
    if mask is not None:
        valid &= as_tensor(mask, bool).reshape(1, -1)
    index = valid[0].nonzero().squeeze(1)
    pix = index.numpy()
    return PointCloud(
        points[0].index_select(0, index).numpy(),
        None if rgb is None else _take(rgb, pix, 3),
        None if segmentation is None else _take(segmentation, pix, None),
    )


def backproject(
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    rgb: np.ndarray | None = None,
    segmentation: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    min_depth: float = 0.0,
    max_depth: float = np.inf,
    camera_name: str = "camera",
) -> PointCloud:
    """Camera-frame point cloud of the valid pixels of a depth image (`backproject_torch` on
    the CPU, numpy out).

    `mask` (H, W) bool restricts the pixels used (e.g. an object mask). Points are
    x = (u - cx)/fx * z, y = (v - cy)/fy * z, z = depth (undistorted rays when the intrinsics
    carry distortion). Raises ImageSizeMismatchError on images of the wrong size and
    InvalidDepthError when no pixel holds a valid depth.
    """
    return _frame_cloud(depth, intrinsics, None, rgb, segmentation, mask, min_depth, max_depth, camera_name)


def transform_points(points: np.ndarray, T) -> np.ndarray:
    """(N, 3) float32 points mapped by a 4x4 rigid transform (computed in float64)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise PerceptionError(f"transform must be 4x4, got {T.shape}")
    p = as_tensor(points, np.float32).reshape(1, -1, 3)
    return transform_points_torch(p, as_tensor(T)[None])[0].numpy()


def frame_to_cloud(
    frame,
    camera: CameraModel | None = None,
    min_depth: float = 0.0,
    max_depth: float = np.inf,
    colors: bool = True,
    labels: bool = True,
    mask: np.ndarray | None = None,
) -> PointCloud:
    """Base-frame point cloud of one CameraFrame (`backproject_torch` on the CPU, numpy out).

    `camera` overrides `frame.camera` (e.g. freshly calibrated intrinsics/extrinsics); its
    intrinsics must match the image size.
    """
    camera = camera or frame.camera
    return _frame_cloud(frame.depth, camera.intrinsics, camera.base_T_camera, frame.rgb if colors else None,
                        frame.segmentation if labels else None, mask, min_depth, max_depth, camera.name)


def fuse(clouds: list[PointCloud]) -> PointCloud:
    """Concatenate clouds that are already in one frame (e.g. several cameras in the base frame).

    Colours/labels are kept only if every cloud has them.
    """
    if not clouds:
        raise EmptyPointCloudError("fuse: no clouds given")
    with_colors = all(c.colors is not None for c in clouds)
    with_labels = all(c.labels is not None for c in clouds)
    return PointCloud(
        np.concatenate([c.points for c in clouds]),
        np.concatenate([c.colors for c in clouds]) if with_colors else None,
        np.concatenate([c.labels for c in clouds]) if with_labels else None,
    )

"""Depth images -> metric point clouds: back-projection, frame transforms, multi-camera fusion.

Two backends compute the same thing:

- numpy (default on CPU): one frame at a time, variable-length clouds (`PointCloud`);
- torch (CPU or CUDA): a batch of frames at once as padded (B, H*W, 3) tensors plus a validity
  mask, so a GPU processes many frames in one call.

`resolve_device("auto")` picks torch on CUDA when a GPU is present and numpy otherwise.
Depth follows the CameraFrame convention: float metres of z along the optical axis (not ray
length), 0 = no measurement; NaN, inf, negative values and values beyond the range limits are
dropped too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from robot_rewards.core import transforms
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
# Backend selection
# --------------------------------------------------------------------------------------------


def resolve_device(device: str = "auto") -> str:
    """'numpy', or a torch device string ('cpu', 'cuda', 'cuda:1', ...).

    'auto' means torch on CUDA if a GPU is visible, else numpy (on CPU numpy is as fast for
    single frames and avoids tensor conversions). 'torch' means torch on CUDA if present, else
    torch on CPU.
    """
    device = str(device).strip().lower()
    if device == "numpy":
        return "numpy"
    if device in ("auto", "torch"):
        try:
            import torch
        except ImportError:  # torch is a dependency, but keep numpy usable without it
            if device == "torch":
                raise PerceptionError("device='torch' requested but torch is not installed")
            return "numpy"
        if torch.cuda.is_available():
            return "cuda"
        return "numpy" if device == "auto" else "cpu"
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise PerceptionError(f"device='{device}' requested but no CUDA device is visible")
        return device
    raise PerceptionError(f"unknown perception device '{device}' (use auto, numpy, torch, cpu, cuda[:N])")


# --------------------------------------------------------------------------------------------
# numpy backend
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
        import cv2

        pix = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
        grid = cv2.undistortPoints(pix, i.K, np.asarray(i.distortion, np.float64)).reshape(
            i.height, i.width, 2
        )
    grid = grid.astype(np.float32)
    grid.setflags(write=False)
    return grid


def valid_depth_mask(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    """True where depth is a usable measurement: finite, > 0, > min_depth and <= max_depth."""
    depth = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > max(min_depth, 0.0)) & (depth <= max_depth)


def _check_image(name: str, image, intrinsics: CameraIntrinsics, what: str, channels: int | None):
    h, w = intrinsics.height, intrinsics.width
    shape = np.shape(image)
    expected = (h, w) if channels is None else (h, w, channels)
    if tuple(shape) != expected:
        raise ImageSizeMismatchError(
            f"camera '{name}': {what} has shape {tuple(shape)} but the intrinsics are "
            f"{w}x{h} (expected {expected})"
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
    """Camera-frame point cloud of the valid pixels of a depth image (numpy).

    `mask` (H, W) bool restricts the pixels used (e.g. an object mask). Points are
    x = (u - cx)/fx * z, y = (v - cy)/fy * z, z = depth (undistorted rays when the intrinsics
    carry distortion). Raises ImageSizeMismatchError on images of the wrong size and
    InvalidDepthError when no pixel holds a valid depth.
    """
    _check_image(camera_name, depth, intrinsics, "depth", None)
    if rgb is not None:
        _check_image(camera_name, rgb, intrinsics, "rgb", 3)
    if segmentation is not None:
        _check_image(camera_name, segmentation, intrinsics, "segmentation", None)
    if mask is not None:
        _check_image(camera_name, mask, intrinsics, "mask", None)
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_depth_mask(depth, min_depth, max_depth)
    if not valid.any():
        raise InvalidDepthError(
            f"camera '{camera_name}': no valid depth in a {depth.shape[1]}x{depth.shape[0]} frame "
            f"(every pixel is 0, NaN, inf or outside [{min_depth}, {max_depth}] m)"
        )
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    z = depth[valid]
    rays = _ray_grid(intrinsics)[valid]
    points = np.empty((len(z), 3), dtype=np.float32)
    points[:, 0] = rays[:, 0] * z
    points[:, 1] = rays[:, 1] * z
    points[:, 2] = z
    return PointCloud(
        points,
        None if rgb is None else np.asarray(rgb)[valid],
        None if segmentation is None else np.asarray(segmentation)[valid],
    )


def transform_points(points: np.ndarray, T) -> np.ndarray:
    """(N, 3) float32 points mapped by a 4x4 rigid transform (computed in float64)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise PerceptionError(f"transform must be 4x4, got {T.shape}")
    return transforms.apply(T, np.asarray(points, dtype=np.float64)).astype(np.float32)


def frame_to_cloud(
    frame,
    camera: CameraModel | None = None,
    min_depth: float = 0.0,
    max_depth: float = np.inf,
    colors: bool = True,
    labels: bool = True,
    mask: np.ndarray | None = None,
) -> PointCloud:
    """Base-frame point cloud of one CameraFrame (numpy).

    `camera` overrides `frame.camera` (e.g. freshly calibrated intrinsics/extrinsics); its
    intrinsics must match the image size.
    """
    camera = camera or frame.camera
    cloud = backproject(
        frame.depth,
        camera.intrinsics,
        rgb=frame.rgb if colors else None,
        segmentation=frame.segmentation if labels else None,
        mask=mask,
        min_depth=min_depth,
        max_depth=max_depth,
        camera_name=camera.name,
    )
    return cloud.transformed(camera.base_T_camera)


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


# --------------------------------------------------------------------------------------------
# torch backend (batched)
# --------------------------------------------------------------------------------------------


def ray_grid_torch(intrinsics: CameraIntrinsics, device):
    """The (H*W, 2) normalised ray grid of `intrinsics` as a float32 tensor on `device`."""
    import torch

    # Copy: the cached grid is read-only, and torch wants writable memory.
    return torch.from_numpy(np.array(_ray_grid(intrinsics)).reshape(-1, 2)).to(device)


def backproject_torch(depth, rays, base_T_camera, min_depth: float = 0.0, max_depth: float = float("inf")):
    """Batched back-projection and transform to the base frame (torch).

    depth (B, H, W) float tensor, rays (B, H*W, 2) or (H*W, 2) normalised ray grid,
    base_T_camera (B, 4, 4). Returns points (B, H*W, 3) float32 in the base frame and the
    validity mask (B, H*W) bool; invalid pixels hold arbitrary finite values (0).
    """
    import torch

    B = depth.shape[0]
    z = depth.reshape(B, -1).to(torch.float32)
    valid = torch.isfinite(z) & (z > max(min_depth, 0.0)) & (z <= max_depth)
    z = torch.where(valid, z, torch.zeros_like(z))
    if rays.dim() == 2:
        rays = rays.unsqueeze(0)
    cam = torch.stack([rays[..., 0] * z, rays[..., 1] * z, z], dim=-1)  # (B, HW, 3)
    # The transform runs in float64 like the numpy path, so both give bit-identical points
    # (FPS on a grid-like cloud otherwise breaks exact distance ties differently).
    T = base_T_camera.to(device=depth.device, dtype=torch.float64)
    points = cam.to(torch.float64) @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
    return points.to(torch.float32), valid

"""Pinhole camera model: intrinsics (OpenCV convention) plus the camera's pose in the robot base frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rewards.core import transforms


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels; pixel (u, v) centres sit at integer coordinates (OpenCV)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    distortion_model: str = "plumb_bob"

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @property
    def K(self) -> np.ndarray:
        """3x3 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, factor: float) -> CameraIntrinsics:
        """Intrinsics of the same camera with images resized by `factor` (pixel-centre aware)."""
        w, h = int(round(self.width * factor)), int(round(self.height * factor))
        sx, sy = w / self.width, h / self.height
        return CameraIntrinsics(
            w, h, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            self.distortion, self.distortion_model,
        )

    @classmethod
    def from_fov(cls, width: int, height: int, vertical_fov_deg: float) -> CameraIntrinsics:
        """Square-pixel intrinsics with the principal point at the image centre."""
        f = (height / 2.0) / np.tan(np.radians(vertical_fov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


@dataclass(frozen=True, eq=False)
class CameraModel:
    """A calibrated camera: intrinsics and `base_T_camera` (optical frame: z forward, y down)."""

    name: str
    intrinsics: CameraIntrinsics
    base_T_camera: np.ndarray = field(default_factory=lambda: np.eye(4))
    frame_id: str = "camera_color_optical_frame"
    base_frame: str = "base_link"  # the robot base frame (REP 105 name; the arm description has the real one)

    def __post_init__(self):
        T = np.asarray(self.base_T_camera, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"base_T_camera must be 4x4, got {T.shape}")
        if not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6):
            raise ValueError("base_T_camera rotation is not orthonormal")
        object.__setattr__(self, "base_T_camera", T)

    def project(self, points_base) -> np.ndarray:
        """Pixel coordinates (..., 2) of base-frame points (no distortion)."""
        p = transforms.apply(transforms.invert(self.base_T_camera), points_base)
        uv = p[..., :2] / p[..., 2:3]
        i = self.intrinsics
        return np.stack([i.fx * uv[..., 0] + i.cx, i.fy * uv[..., 1] + i.cy], axis=-1)

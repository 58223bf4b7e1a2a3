"""Photograph-like renders of a calibration board with known corner positions.

For measuring corner detectors and calibrations where the truth is known: the printed board
(`BoardSpec.render`) is warped into a camera by the exact plane-to-image homography at
`supersample` times the resolution, bent by the lens distortion, area-averaged down to the
camera's pixels, and then given what real photos have: uneven light, defocus blur, sensor noise
and JPEG compression. `true_corners` are the board corners projected with the same camera
(cv2.projectPoints, distortion included), in the OpenCV pixel convention (pixel centres at
integer coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_rewards.calibration.boards import BoardSpec
from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics


@dataclass(frozen=True)
class RenderStyle:
    """How photograph-like a render is: blur sigma (px), noise sigma (grey levels), JPEG quality
    (None = lossless), light: how much the illumination varies across the image (0 = even),
    supersample: sub-pixels per pixel side of the anti-aliased render."""

    blur: float = 0.7
    noise: float = 2.0
    jpeg_quality: int | None = None
    light: float = 0.25
    supersample: int = 3


def true_corners(board: BoardSpec, intrinsics: CameraIntrinsics, camera_T_board: np.ndarray) -> np.ndarray:
    """(n_corners, 2) pixel positions of the board's inner corners (detection-id order)."""
    T = np.asarray(camera_T_board, np.float64)
    rvec = cv2.Rodrigues(T[:3, :3])[0]
    pts, _ = cv2.projectPoints(board.corner_points().astype(np.float64), rvec, T[:3, 3],
                               intrinsics.K, np.asarray(intrinsics.distortion, np.float64))
    return pts.reshape(-1, 2)


def _supersampled(intrinsics: CameraIntrinsics, s: int) -> np.ndarray:
    """K of the s-times finer image whose s x s blocks average to the camera's pixels."""
    K = intrinsics.K.copy()
    K[0, 0] *= s
    K[1, 1] *= s
    K[0, 2] = K[0, 2] * s + (s - 1) / 2.0
    K[1, 2] = K[1, 2] * s + (s - 1) / 2.0
    return K


def render_board(board: BoardSpec, intrinsics: CameraIntrinsics, camera_T_board: np.ndarray,
                 rng: np.random.Generator, style: RenderStyle = RenderStyle(),
                 px_per_square: int = 64) -> np.ndarray:
    """A BGR uint8 photo of `board` seen from `camera_T_board` (board frame -> camera frame)."""
    s = int(style.supersample)
    w, h = intrinsics.width * s, intrinsics.height * s
    tex = board.render(px_per_square).astype(np.float32)
    step = board.square_length / px_per_square
    margin = round(board.margin / board.square_length * px_per_square) * step
    # texture pixel centre (i, j) -> board-frame metres -> ideal (undistorted) fine pixels
    S = np.array([[step, 0, step / 2 - margin], [0, step, step / 2 - margin], [0, 0, 1]])
    T = np.asarray(camera_T_board, np.float64)
    Ks = _supersampled(intrinsics, s)
    H = Ks @ np.column_stack([T[:3, 0], T[:3, 1], T[:3, 3]]) @ S
    background = cv2.resize(
        cv2.GaussianBlur(rng.uniform(40, 200, (intrinsics.height // 8, intrinsics.width // 8)).astype(np.float32),
                         (0, 0), 2), (w, h), interpolation=cv2.INTER_CUBIC)
    dist = np.asarray(intrinsics.distortion, np.float64)
    if np.any(dist != 0):
        # where each distorted fine pixel's ray lands in the ideal image: undistort the grid
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        ideal = cv2.undistortPoints(np.stack([u, v], -1).reshape(-1, 1, 2), Ks, dist, P=Ks).reshape(h, w, 2)
        # the texture coordinate of each fine pixel: the inverse homography of its ideal position
        tex_xy = cv2.perspectiveTransform(ideal.reshape(1, -1, 2), np.linalg.inv(H)).reshape(h, w, 2)
        img = cv2.remap(tex, tex_xy[..., 0].astype(np.float32), tex_xy[..., 1].astype(np.float32),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    else:
        img = cv2.warpPerspective(tex, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=-1)
    img = np.where(img < 0, background, img)
    if s > 1:
        img = cv2.resize(img, (intrinsics.width, intrinsics.height), interpolation=cv2.INTER_AREA)
    u, v = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    phase = rng.uniform(0, 2 * np.pi, 2)
    light = 1.0 - style.light + style.light * np.cos(u / intrinsics.width * 2.0 + phase[0]) * np.cos(
        v / intrinsics.height * 1.5 + phase[1])
    img = img * light
    if style.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), style.blur)
    img = img + rng.normal(0, style.noise, img.shape)
    gray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if style.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(style.jpeg_quality)])
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return bgr


def random_view(board: BoardSpec, rng: np.random.Generator, distance=(0.45, 0.8), tilt=(10, 40),
                offset=(0.1, 0.07)) -> np.ndarray:
    """camera_T_board: the board in front of the camera at `distance` m, tilted by `tilt`
    degrees about a random in-plane axis, rolled up to 25 degrees, off centre by up to `offset`."""
    R = _rot([0, 0, 1], rng.uniform(-25, 25))
    phi = rng.uniform(0, 2 * np.pi)
    R = _rot([np.cos(phi), np.sin(phi), 0], rng.uniform(*tilt)) @ R
    centre = np.array([rng.uniform(-offset[0], offset[0]), rng.uniform(-offset[1], offset[1]), rng.uniform(*distance)])
    return transforms.make_transform(R, centre - R @ board.centre())


def view_fits(board: BoardSpec, intrinsics: CameraIntrinsics, camera_T_board: np.ndarray, border: float = 10) -> bool:
    """Whether every inner corner projects at least `border` px inside the image."""
    uv = true_corners(board, intrinsics, camera_T_board)
    return bool(uv.min() >= border and uv[:, 0].max() <= intrinsics.width - 1 - border
                and uv[:, 1].max() <= intrinsics.height - 1 - border)


def _rot(axis, deg) -> np.ndarray:
    axis = np.asarray(axis, float)
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(deg))[0]

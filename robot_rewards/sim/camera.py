"""Render RGB-D-segmentation frames from a calibrated CameraModel in PyBullet.

The projection is built from the camera matrix K (not a field of view), so any intrinsics,
including an off-centre principal point, render the way OpenCV would project them.
"""

from __future__ import annotations

import numpy as np
import pybullet as p

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraModel
from robot_rewards.core.observation import CameraFrame

# OpenCV optical frame (z forward, y down) -> OpenGL camera frame (looking down -z, y up).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def view_matrix(camera: CameraModel) -> list[float]:
    """Column-major OpenGL view matrix (world -> GL camera) of `camera`."""
    view = _CV_TO_GL @ transforms.invert(camera.base_T_camera)
    return view.T.ravel().tolist()


def projection_matrix(camera: CameraModel, near: float, far: float) -> list[float]:
    """Column-major OpenGL projection matrix equivalent to K (pixel centres at integers).

    PyBullet's tiny renderer samples image pixel (u, v) at the continuous point (u, v + 1)
    (corner-origin coordinates) rather than at the pixel centre (u + 0.5, v + 0.5); the
    principal point is shifted by that half pixel so depth back-projects exactly through K.
    Ignoring it costs 1-3 mm on oblique cameras.
    """
    i = camera.intrinsics
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * i.fx / i.width
    P[0, 2] = 1.0 - 2.0 * i.cx / i.width
    P[1, 1] = 2.0 * i.fy / i.height
    P[1, 2] = 2.0 * (i.cy + 1.0) / i.height - 1.0
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = -1.0
    return P.T.ravel().tolist()


def depth_buffer_to_metres(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric z-depth from the non-linear OpenGL depth buffer; background (far plane) -> 0."""
    buffer = np.asarray(buffer, dtype=np.float64)
    depth = far * near / (far - (far - near) * buffer)
    depth[buffer >= 1.0 - 1e-7] = 0.0
    return depth.astype(np.float32)


def render(
    camera: CameraModel, client: int, near: float = 0.05, far: float = 3.0, shadows: bool = False
) -> CameraFrame:
    """One frame from `camera` with the (headless) tiny renderer."""
    i = camera.intrinsics
    _, _, rgba, depth_buffer, seg = p.getCameraImage(
        i.width,
        i.height,
        viewMatrix=view_matrix(camera),
        projectionMatrix=projection_matrix(camera, near, far),
        shadow=int(shadows),
        renderer=p.ER_TINY_RENDERER,
        physicsClientId=client,
    )
    rgba = np.asarray(rgba, dtype=np.uint8).reshape(i.height, i.width, 4)
    depth = depth_buffer_to_metres(np.asarray(depth_buffer).reshape(i.height, i.width), near, far)
    seg = np.asarray(seg, dtype=np.int64).reshape(i.height, i.width)
    # Low 24 bits hold the body id; -1 stays background.
    seg = np.where(seg < 0, -1, seg & ((1 << 24) - 1)).astype(np.int32)
    return CameraFrame(camera=camera, rgb=np.ascontiguousarray(rgba[..., :3]), depth=depth, segmentation=seg)

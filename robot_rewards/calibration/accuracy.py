"""How accurate are the chessboard corners, and the calibration made from them, on photo-like
renders with known corners (`calibration.synthetic`)?

`corner_accuracy` renders one set of views per condition (clean, JPEG + blur, heavy JPEG + blur
+ uneven light, a small board far away), detects the board with every corner refinement, and
reports the corner errors against the truth and the calibration each set of corners gives (with
ROS's 4-coefficient and the full 5-coefficient distortion model) against the true camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rewards.calibration.boards import CORNER_REFINEMENTS, BoardSpec
from robot_rewards.calibration.errors import CalibrationError
from robot_rewards.calibration.intrinsics import calibrate_from_detections
from robot_rewards.calibration.synthetic import RenderStyle, random_view, render_board, true_corners, view_fits
from robot_rewards.core.camera import CameraIntrinsics

# A 640x480 camera with a visible barrel distortion and k3 != 0, like a webcam's.
CAMERA = CameraIntrinsics(640, 480, 600.0, 602.0, 321.0, 238.5, (-0.28, 0.11, 0.0008, -0.0005, -0.02))
BOARD = BoardSpec(kind="chessboard", squares_x=10, squares_y=7, square_length=0.025, marker_length=0.0,
                  margin=0.015, name="chessboard_9x6")


@dataclass(frozen=True)
class Condition:
    """A way the photos are taken: render style and camera distance (m)."""

    name: str
    style: RenderStyle
    distance: tuple[float, float] = (0.45, 0.8)


CONDITIONS = (
    Condition("clean", RenderStyle(blur=0.5, noise=1.0, light=0.1)),
    Condition("jpeg75 blur1.0", RenderStyle(blur=1.0, noise=2.0, jpeg_quality=75, light=0.3)),
    Condition("jpeg50 blur1.5 uneven light", RenderStyle(blur=1.5, noise=3.0, jpeg_quality=50, light=0.45)),
    Condition("small board (1.0-1.4 m) jpeg75", RenderStyle(blur=0.8, noise=2.0, jpeg_quality=75, light=0.3),
              (1.0, 1.4)),
)


@dataclass
class MethodResult:
    """One corner refinement on one condition's views."""

    detected: int
    corner_errors: np.ndarray  # px, every corner of every detected view
    calibration: dict = field(default_factory=dict)  # radial_coeffs -> errors of the calibrated camera

    @property
    def median(self) -> float:
        return float(np.median(self.corner_errors)) if self.corner_errors.size else float("nan")

    @property
    def p90(self) -> float:
        return float(np.percentile(self.corner_errors, 90)) if self.corner_errors.size else float("nan")


def _matched(found: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(corners in the board's id order, per-corner errors): the detector's order or its
    reverse (a half-turned board reads backwards), whichever fits."""
    backward = found[::-1]
    forward_err = np.linalg.norm(found - truth, axis=1)
    backward_err = np.linalg.norm(backward - truth, axis=1)
    if np.median(forward_err) <= np.median(backward_err):
        return found, forward_err
    return backward.copy(), backward_err


def _calibration_errors(detections: dict, camera: CameraIntrinsics, radial: int) -> dict:
    """The calibration of `detections` (corners re-ordered to the board's ids) against `camera`."""
    try:
        result = calibrate_from_detections(detections, (camera.width, camera.height), min_views=4,
                                           radial_coeffs=radial, max_view_error=5.0)
    except CalibrationError as exc:
        return {"error": str(exc)}
    i = result.intrinsics
    d_true = np.asarray(camera.distortion)
    d = np.asarray(i.distortion)[:len(d_true)]
    return {"fx_error_percent": 100 * abs(i.fx - camera.fx) / camera.fx,
            "cx_error_px": abs(i.cx - camera.cx), "cy_error_px": abs(i.cy - camera.cy),
            "distortion_error_sum": float(np.abs(d - d_true).sum()), "rms_px": result.rms}


def corner_accuracy(n_views: int = 10, seed: int = 0, conditions=CONDITIONS, board: BoardSpec = BOARD,
                    camera: CameraIntrinsics = CAMERA, refinements=CORNER_REFINEMENTS,
                    radial_coeffs=(2, 3)) -> dict[str, dict[str, MethodResult]]:
    """{condition: {refinement: MethodResult}} over `n_views` renders per condition."""
    out = {}
    for cond in conditions:
        rng = np.random.default_rng(seed)
        views = []
        while len(views) < n_views:
            T = random_view(board, rng, distance=cond.distance)
            if view_fits(board, camera, T, border=15):
                views.append((render_board(board, camera, T, rng, cond.style), true_corners(board, camera, T)))
        out[cond.name] = {}
        for method in refinements:
            errors, detections = [], {}
            for k, (image, truth) in enumerate(views):
                det = board.detect(image, corner_refinement=method)
                if det is None:
                    continue
                det.image_points, e = _matched(det.image_points, truth)
                if np.median(e) > 3.0:  # a mismatched grid, not a corner error
                    continue
                errors.append(e)
                detections[f"view_{k:02d}"] = det
            res = MethodResult(len(errors), np.concatenate(errors) if errors else np.zeros(0))
            res.calibration = {r: _calibration_errors(detections, camera, r) for r in radial_coeffs}
            out[cond.name][method] = res
    return out


def accuracy_rows(results: dict[str, dict[str, MethodResult]]) -> list[list]:
    """Table rows: condition, refinement, views, median/p90 corner error, and per distortion
    model the fx error %, the sum of |distortion errors| and the RMS."""
    rows = []
    for cond, methods in results.items():
        for method, r in methods.items():
            row = [cond, method, r.detected, r.median, r.p90]
            for _, c in sorted(r.calibration.items()):
                row += [c.get("fx_error_percent", float("nan")), c.get("distortion_error_sum", float("nan")),
                        c.get("rms_px", float("nan"))]
            rows.append(row)
    return rows

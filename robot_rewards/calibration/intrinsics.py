"""Camera intrinsics from views of a ChArUco board or a chessboard.

`calibrate_intrinsics` detects the board in every image, calibrates with
`cv2.calibrateCameraExtended`, then drops views whose reprojection error is far above the
rest (and recalibrates), reporting the overall RMS and every view's error. Images without a
usable board are listed by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from robot_rewards.calibration.boards import BoardSpec, Detection
from robot_rewards.calibration.errors import (
    BoardNotFoundError,
    BoardSizeError,
    ImageLoadError,
    ImageSizeError,
    NotEnoughViewsError,
)
from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def load_images(directory: str | os.PathLike) -> dict[str, np.ndarray]:
    """{file name: BGR image} of every image in `directory`, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ImageLoadError(f"image folder not found: {directory}")
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise ImageLoadError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {directory}")
    images = {}
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise ImageLoadError(f"cannot read image {p}")
        images[p.name] = img
    return images


def check_image_sizes(images: Mapping[str, np.ndarray], expected: tuple[int, int] | None = None) -> tuple[int, int]:
    """The common (width, height) of `images`; ImageSizeError naming the odd ones otherwise."""
    sizes: dict[tuple[int, int], list[str]] = {}
    for name, img in images.items():
        sizes.setdefault((img.shape[1], img.shape[0]), []).append(name)
    if len(sizes) > 1:
        detail = "; ".join(f"{w}x{h}: {', '.join(n)}" for (w, h), n in sizes.items())
        raise ImageSizeError(f"images have different sizes ({detail})")
    size = next(iter(sizes))
    if expected is not None and tuple(expected) != size:
        raise ImageSizeError(
            f"images are {size[0]}x{size[1]} but the intrinsics are {expected[0]}x{expected[1]}"
        )
    return size


def detect_all(images: Mapping[str, np.ndarray], board: BoardSpec, min_corners: int = 6,
               corner_refinement: str = "cornersubpix"):
    """({name: Detection} for images with the board, [names without it]).

    BoardSizeError when the printed chessboard continues beyond the found grid in any image:
    the board file declares fewer squares than the board has, and the corners would be matched
    to the wrong board points.
    """
    found, missing = {}, []
    for name, img in images.items():
        det = board.detect(img, min_corners=min_corners, corner_refinement=corner_refinement)
        if det is None:
            missing.append(name)
        else:
            found[name] = det
    check_board_size(found, board)
    return found, missing


def check_board_size(detections: Mapping[str, Detection], board: BoardSpec) -> None:
    """BoardSizeError naming the images where the board is larger than `board` declares."""
    larger = {n: d.extends for n, d in detections.items() if d.extends}
    if not larger:
        return
    nx, ny = board.inner_corners
    sides = sorted({s for ext in larger.values() for s in ext})
    names = ", ".join(list(larger)[:5]) + (", ..." if len(larger) > 5 else "")
    raise BoardSizeError(
        f"the printed board is larger than declared: in {len(larger)} image(s) ({names}) the chessboard "
        f"continues past the {nx}x{ny} inner corners of '{board.name}' ({'/'.join(sides)} side); "
        f"set squares_x/squares_y to the printed board's squares (inner corners + 1)"
    )


@dataclass
class IntrinsicsResult:
    """A calibrated camera and how well the views fit it (errors in pixels)."""

    intrinsics: CameraIntrinsics
    rms: float
    per_view_errors: dict[str, float]
    rejected: dict[str, str]  # image name -> why it was not used
    n_corners: dict[str, int]
    std_intrinsics: dict[str, float] = field(default_factory=dict)  # 1-sigma of fx, fy, cx, cy
    camera_T_board: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def used(self) -> list[str]:
        return list(self.per_view_errors)

    def metrics(self) -> dict:
        i = self.intrinsics
        return {
            "image_size": [i.width, i.height],
            "fx": i.fx, "fy": i.fy, "cx": i.cx, "cy": i.cy,
            "distortion": list(i.distortion),
            "rms_px": self.rms,
            "n_views_used": len(self.per_view_errors),
            "per_view_error_px": dict(self.per_view_errors),
            "n_corners": dict(self.n_corners),
            "rejected": dict(self.rejected),
            "std_intrinsics": dict(self.std_intrinsics),
        }


def _calibration_flags(radial_coeffs: int, tangential: bool, fix_aspect_ratio: bool) -> int:
    if radial_coeffs not in (0, 1, 2, 3):
        raise ValueError(f"radial_coeffs must be 0..3, got {radial_coeffs}")
    flags = 0
    fixed = [cv2.CALIB_FIX_K1, cv2.CALIB_FIX_K2, cv2.CALIB_FIX_K3]
    for k in range(radial_coeffs, 3):
        flags |= fixed[k]
    if not tangential:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    if fix_aspect_ratio:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    return flags


def calibrate_from_detections(
    detections: Mapping[str, Detection],
    image_size: tuple[int, int],
    min_views: int = 8,
    max_view_error: float = 1.0,
    outlier_factor: float = 3.0,
    radial_coeffs: int = 2,
    tangential: bool = True,
    fix_aspect_ratio: bool = False,
    rejected: Mapping[str, str] | None = None,
) -> IntrinsicsResult:
    """Calibrate from board detections, dropping bad views.

    A view is dropped (and the camera recalibrated without it) when its RMS reprojection error
    exceeds both `max_view_error` pixels and `outlier_factor` times the median view error; the
    worst such view goes first, one per round. Defaults follow ROS camera_calibration: k1, k2,
    p1, p2 estimated, k3 fixed at 0 (`radial_coeffs=3` frees it).
    """
    rejected = dict(rejected or {})
    views = dict(detections)
    if len(views) < min_views:
        raise NotEnoughViewsError(
            f"{len(views)} usable view(s), need at least {min_views}"
            + (f"; rejected: {_fmt_rejected(rejected)}" if rejected else "")
        )
    flags = _calibration_flags(radial_coeffs, tangential, fix_aspect_ratio)
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    w, h = image_size
    while True:
        names = list(views)
        obj = [views[n].object_points.astype(np.float32) for n in names]
        img = [views[n].image_points.astype(np.float32).reshape(-1, 1, 2) for n in names]
        rms, K, dist, rvecs, tvecs, std_in, _, per_view = cv2.calibrateCameraExtended(
            obj, img, (w, h), None, None, flags=flags, criteria=criteria
        )
        per_view = per_view.ravel()
        median = float(np.median(per_view))
        bad = [k for k in np.argsort(-per_view) if per_view[k] > max(max_view_error, outlier_factor * median)]
        if not bad:
            break
        worst = names[bad[0]]
        rejected[worst] = f"reprojection error {per_view[bad[0]]:.2f} px (median {median:.2f} px)"
        del views[worst]
        if len(views) < min_views:
            raise NotEnoughViewsError(
                f"only {len(views)} view(s) left after rejecting bad ones, need {min_views}; "
                f"rejected: {_fmt_rejected(rejected)}"
            )
    dist = dist.ravel()
    n_dist = 5 if len(dist) <= 5 else 8
    dist_model = "plumb_bob" if n_dist == 5 else "rational_polynomial"
    intrinsics = CameraIntrinsics(
        width=w, height=h, fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]),
        distortion=tuple(float(d) for d in np.pad(dist, (0, max(0, n_dist - len(dist))))[:n_dist]),
        distortion_model=dist_model,
    )
    std = std_in.ravel()
    poses = {}
    for n, r, t in zip(names, rvecs, tvecs):
        poses[n] = transforms.make_transform(cv2.Rodrigues(r)[0], t.ravel())
    return IntrinsicsResult(
        intrinsics=intrinsics,
        rms=float(rms),
        per_view_errors={n: float(e) for n, e in zip(names, per_view)},
        rejected=rejected,
        n_corners={n: len(views[n]) for n in names},
        std_intrinsics={k: float(v) for k, v in zip(("fx", "fy", "cx", "cy"), std[:4])},
        camera_T_board=poses,
    )


def calibrate_intrinsics(
    images: Mapping[str, np.ndarray],
    board: BoardSpec,
    min_views: int = 8,
    max_view_error: float = 1.0,
    outlier_factor: float = 3.0,
    radial_coeffs: int = 2,
    tangential: bool = True,
    fix_aspect_ratio: bool = False,
    strict: bool = False,
    expected_size: tuple[int, int] | None = None,
    min_corners: int = 6,
    corner_refinement: str = "cornersubpix",
) -> IntrinsicsResult:
    """Intrinsics of the camera that took `images` ({name: image}) of `board`.

    Images without a usable board are rejected and listed (`strict=True` makes any of them an
    error). Raises BoardNotFoundError (no image has the board, or strict), NotEnoughViewsError
    (fewer than `min_views` usable views) or ImageSizeError (mixed sizes, or not
    `expected_size`). `corner_refinement`: see `BoardSpec.detect`; `radial_coeffs=3` frees
    k3 too, giving the 5-coefficient plumb_bob model other tools calibrate (the default, 2,
    keeps k3 = 0 as ROS camera_calibration does).
    """
    if not images:
        raise ImageLoadError("no images given")
    size = check_image_sizes(images, expected_size)
    found, missing = detect_all(images, board, min_corners, corner_refinement)
    if not found:
        raise BoardNotFoundError(missing, f"{board.kind} {board.squares_x}x{board.squares_y}")
    if missing and strict:
        raise BoardNotFoundError(missing, "strict mode")
    rejected = {n: "board not found" for n in missing}
    return calibrate_from_detections(
        found, size, min_views, max_view_error, outlier_factor, radial_coeffs, tangential,
        fix_aspect_ratio, rejected,
    )


def _fmt_rejected(rejected: Mapping[str, str]) -> str:
    return "; ".join(f"{n}: {why}" for n, why in rejected.items())

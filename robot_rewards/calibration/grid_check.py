"""Does a detected chessboard grid continue beyond its declared size?

Chessboard detectors find the pattern size they are asked for: told 8x6 inner corners, they
happily return an 8x6 sub-grid of a printed 9x6 board, and the calibration then fits the
wrong object points. The check here looks one corner beyond each side of the found grid: on the
declared board that line runs along the outer edge of the outermost squares, where the board's
margin (or the background) makes both outer quadrants alike; on a larger board it is another
row of X-junctions (diagonal quadrants alike, neighbours opposite). The positions come from a
homography fitted to the three corner lines nearest that side, so lens distortion matters little.
"""

from __future__ import annotations

import cv2
import numpy as np

SIDES = ("left", "right", "top", "bottom")


def _patch_mean(gray: np.ndarray, centre: np.ndarray, size: int) -> float:
    return float(cv2.getRectSubPix(gray, (size, size), (float(centre[0]), float(centre[1]))).mean())


def _side_lines(nx: int, ny: int, side: str):
    """(grid coordinates of the 3 known corner lines nearest `side`, the extrapolated line)."""
    if side in ("left", "right"):
        cols = [0, 1, 2] if side == "left" else [nx - 1, nx - 2, nx - 3]
        known = [(c, r) for c in cols if 0 <= c < nx for r in range(ny)]
        beyond = [(-1 if side == "left" else nx, r) for r in range(ny)]
    else:
        rows = [0, 1, 2] if side == "top" else [ny - 1, ny - 2, ny - 3]
        known = [(c, r) for r in rows if 0 <= r < ny for c in range(nx)]
        beyond = [(c, -1 if side == "top" else ny) for c in range(nx)]
    return known, beyond


def grid_extensions(gray: np.ndarray, image_points: np.ndarray, pattern: tuple[int, int],
                    min_visible: float = 0.6, min_junctions: float = 0.75) -> list[str]:
    """The sides ("left", "right", "top", "bottom" of the grid) where the chessboard continues.

    `image_points` (nx*ny, 2) are the found corners in row-major order (x fastest), `pattern`
    = (nx, ny). A side counts when at least `min_visible` of its extrapolated corners fall well
    inside the image and at least `min_junctions` of those are X-junctions of the board's
    contrast.
    """
    nx, ny = pattern
    if nx < 2 or ny < 2:
        return []
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    h, w = gray.shape
    pts = np.asarray(image_points, np.float64).reshape(ny, nx, 2)
    grid = {(c, r): pts[r, c] for r in range(ny) for c in range(nx)}
    contrast = _board_contrast(gray, pts)
    if contrast <= 0:
        return []
    found = []
    for side in SIDES:
        known, beyond = _side_lines(nx, ny, side)
        src = np.array(known, np.float64)
        dst = np.array([grid[k] for k in known], np.float64)
        H, _ = cv2.findHomography(src, dst, 0)
        if H is None:
            continue
        visible = junctions = 0
        for c, r in beyond:
            quad = np.array([(c - 0.5, r - 0.5), (c + 0.5, r - 0.5), (c + 0.5, r + 0.5), (c - 0.5, r + 0.5)])
            px = cv2.perspectiveTransform(np.vstack([quad, [(c, r), (c + 1, r)]])[None], H)[0]
            square = float(np.linalg.norm(px[5] - px[4]))
            if not np.isfinite(px).all() or square < 4:
                continue
            edge = 0.5 * square
            if (px[:4, 0].min() < edge or px[:4, 1].min() < edge or px[:4, 0].max() > w - 1 - edge
                    or px[:4, 1].max() > h - 1 - edge):
                continue
            visible += 1
            size = max(1, int(round(0.3 * square)))
            q = [_patch_mean(gray, p, size) for p in px[:4]]
            # clockwise a, b, c, d: an X-junction has a, c alike and b, d alike and opposite
            a, b, cc, d = q
            margin = 0.35 * contrast
            if min(a, cc) - max(b, d) > margin or min(b, d) - max(a, cc) > margin:
                junctions += 1
        if visible >= max(2, min_visible * len(beyond)) and junctions >= min_junctions * visible:
            found.append(side)
    return found


def _board_contrast(gray: np.ndarray, pts: np.ndarray) -> float:
    """Median |light - dark| of the found grid's inner squares (their centres: mean of 4 corners)."""
    centres = 0.25 * (pts[:-1, :-1] + pts[1:, :-1] + pts[:-1, 1:] + pts[1:, 1:])
    if centres.size == 0:
        return 0.0
    spacing = float(np.median(np.linalg.norm(np.diff(pts, axis=1), axis=-1)))
    size = max(1, int(round(0.3 * spacing)))
    values = np.array([[_patch_mean(gray, c, size) for c in row] for row in centres])
    parity = (np.add.outer(np.arange(values.shape[0]), np.arange(values.shape[1])) % 2).astype(bool)
    if parity.all() or not parity.any():
        return 0.0
    return abs(float(np.median(values[parity])) - float(np.median(values[~parity])))

"""Draw numbered candidate primitives on a camera image (what the labeller looks at).

Pure functions: an RGB uint8 image in, a new (upscaled) RGB uint8 image out. Candidates are
projected with the camera model: pick_place as an arrow from pick to place with a bar across
the pick showing the gripper's closing direction, push as an arrow from start to end with a
pusher bar at the start. Labels sit at the arrow heads, nudged apart (with a leader line)
where candidates nearly coincide, as a policy's samples often do. Tick marks along the top
and left edges are labelled in *camera* pixels, so an operator over SSH can read off the
pixels to type for a demonstration.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates

# matplotlib's tab10 (RGB): distinct and readable on a grey table; hues fill in beyond ten.
_TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
          (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
GRIPPER_BAR_M = 0.025  # half-length of the drawn gripper closing bar


def candidate_colors(n: int) -> list[tuple[int, int, int]]:
    """n distinct RGB colours (tab10 first, then evenly spaced hues)."""
    colors = list(_TAB10[:n])
    extra = n - len(colors)
    for k in range(extra):
        hsv = np.uint8([[[int(180 * k / extra), 220, 230]]])
        colors.append(tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]))
    return colors


def display_scale(width: int, display_width: int) -> float:
    """Upscale factor that makes an image `width` pixels wide `display_width` wide (never < 1)."""
    return max(1.0, display_width / float(width))


def to_display(uv, scale: float) -> np.ndarray:
    """Camera pixel coordinates -> coordinates in the image upscaled by `scale` (pixel centres)."""
    return (np.asarray(uv, dtype=np.float64) + 0.5) * scale - 0.5


def from_display(xy, scale: float) -> np.ndarray:
    """Coordinates in the upscaled image (a mouse click) -> camera pixel coordinates."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) / scale - 0.5


def draw_candidates(
    rgb: np.ndarray,
    camera: CameraModel,
    candidates: Candidates,
    labels: Sequence[str] | None = None,
    show: Sequence[int] | None = None,
    highlight: Mapping[int, str] | None = None,
    scale: float = 1.0,
    title: str | None = None,
    ticks: int = 100,
) -> np.ndarray:
    """A new image: `rgb` upscaled by `scale` with candidates drawn and labelled.

    labels: text per candidate (default "1".."N"); show: indices to draw (default all);
    highlight: index -> tag for candidates to emphasise (e.g. {3: "#1"} for the first pick):
    drawn thicker, with the tag after the label, while the others are drawn thinner;
    title: a caption band at the bottom; ticks: camera-pixel spacing of the edge ruler (0: none).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"overlay needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if (w, h) != (camera.intrinsics.width, camera.intrinsics.height):
        raise ValueError(f"image is {w}x{h} but camera '{camera.name}' is "
                         f"{camera.intrinsics.width}x{camera.intrinsics.height}")
    if scale < 1.0:
        raise ValueError(f"scale must be >= 1, got {scale}")
    n = len(candidates)
    labels = [str(i + 1) for i in range(n)] if labels is None else list(labels)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} candidates")
    show = list(range(n)) if show is None else [int(i) for i in show]
    bad = [i for i in show if not 0 <= i < n]
    if bad:
        raise ValueError(f"candidates {bad} do not exist (0-{n - 1})")
    highlight = dict(highlight or {})

    size = (int(round(w * scale)), int(round(h * scale)))
    img = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR) if scale != 1.0 else rgb.copy()
    img = np.ascontiguousarray(img)
    colors = candidate_colors(n)
    base = max(1, int(round(2 * scale)))
    # Highlighted candidates last, so they are drawn on top of the others.
    order = [i for i in show if i not in highlight] + [i for i in show if i in highlight]
    anchors = {}
    for i in order:
        thick = base * 2 if i in highlight else (base if not highlight else max(1, base // 2 + 1))
        anchor = _draw_one(img, camera, candidates, i, colors[i], thick, scale)
        if anchor is not None:
            anchors[i] = anchor
    # Labels go on top of all the lines, nudged apart: policy candidates often nearly coincide.
    font = 0.5 * scale
    taken: list[tuple[int, int, int, int]] = []
    placed = []
    for i in sorted(anchors):
        text = labels[i] + (f" {highlight[i]}" if i in highlight else "")
        placed.append((i, text, _place_label(img.shape, text, anchors[i], font, taken)))
    for i, _, (_org, leader) in placed:  # leader lines first: no line crosses a label
        if leader:
            cv2.line(img, anchors[i], leader, colors[i], 1, cv2.LINE_AA)
    for i, text, (org, _) in placed:
        _text(img, text, org, colors[i], font)
    if ticks > 0:
        _draw_ruler(img, w, h, ticks, scale)
    if title:
        _draw_caption(img, title, scale)
    return img


def _draw_one(img, camera, candidates, i, color, thick, scale) -> tuple[int, int] | None:
    """Draw candidate i; returns where its label belongs (the end point), None if not drawn."""
    prim = candidates.primitive(i)
    spec = prim.spec
    pts = np.stack([prim[p] for p in spec.points])  # (2, 3): pick/place or start/end
    cam_z = (np.linalg.inv(camera.base_T_camera) @ np.c_[pts, np.ones(len(pts))].T)[2]
    if np.any(cam_z <= 1e-6):
        return None  # behind the camera: nothing sensible to draw
    a, b = (tuple(int(round(c)) for c in p) for p in to_display(camera.project(pts), scale))
    length = max(float(np.hypot(b[0] - a[0], b[1] - a[1])), 1.0)
    tip = min(0.3, 10.0 * scale / length)  # a fixed-size head, whatever the arrow's length
    if prim.name == "pick_place":
        yaw = prim["yaw"]
        # yaw = 0 closes the fingers along the base y axis (see kinematics.down_quat).
        d = GRIPPER_BAR_M * np.array([-np.sin(yaw), np.cos(yaw), 0.0])
        bar = to_display(camera.project(np.stack([pts[0] - d, pts[0] + d])), scale)
        _line(img, bar[0], bar[1], color, thick)
    else:
        normal = np.array([a[1] - b[1], b[0] - a[0]]) / length
        _line(img, np.add(a, 6 * scale * normal), np.subtract(a, 6 * scale * normal), color, thick)
    cv2.arrowedLine(img, a, b, (0, 0, 0), thick + 2, cv2.LINE_AA, tipLength=tip)
    cv2.arrowedLine(img, a, b, color, thick, cv2.LINE_AA, tipLength=tip)
    if prim.name == "pick_place":
        cv2.circle(img, b, int(3 * scale), color, -1, cv2.LINE_AA)
    return b


def _place_label(shape, text, anchor, font_scale, taken):
    """((x, y) text origin, leader-line end or None): next to `anchor`, or the nearest free
    slot above/below it where other labels are in the way. Appends the label's box to `taken`."""
    t = max(1, int(round(2 * font_scale)))
    (tw, th), _ = cv2.getTextSize(text, _FONT, font_scale, t + 2)
    pad = max(2, int(4 * font_scale))
    step = th + 2 * pad
    h, w = shape[:2]
    x0 = int(np.clip(anchor[0] + pad, 0, max(w - tw - pad, 0)))
    y0 = anchor[1] - pad
    y = int(np.clip(y0, th + pad, h - pad))
    for k in range(24):  # slots 0, -1, +1, -2, +2, ... label heights above/below the anchor
        cand = int(np.clip(y0 + ((k + 1) // 2) * step * (1 if k % 2 else -1), th + pad, h - pad))
        box = (x0 - pad, cand - th - pad, x0 + tw + pad, cand + pad)
        if not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in taken):
            y = cand
            break
    taken.append((x0 - pad, y - th - pad, x0 + tw + pad, y + pad))
    return (x0, y), ((x0, y - th // 2) if abs(y - y0) > step // 2 else None)


def _line(img, p, q, color, thick) -> None:
    p = tuple(int(round(c)) for c in p)
    q = tuple(int(round(c)) for c in q)
    cv2.line(img, p, q, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.line(img, p, q, color, thick, cv2.LINE_AA)


def _text(img, text, org, color, font_scale) -> None:
    t = max(1, int(round(2 * font_scale)))
    cv2.putText(img, text, org, _FONT, font_scale, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, font_scale, color, t, cv2.LINE_AA)


def _draw_ruler(img, w, h, step, scale) -> None:
    """Ticks every `step` camera pixels along the top and left edges, labelled in camera pixels."""
    fs = 0.3 * scale
    for u in range(step, w, step):
        x = int(round(to_display(u, scale)))
        cv2.line(img, (x, 0), (x, int(6 * scale)), (255, 255, 255), 1)
        _text(img, str(u), (x + 2, int(14 * scale)), (255, 255, 255), fs)
    for v in range(step, h, step):
        y = int(round(to_display(v, scale)))
        cv2.line(img, (0, y), (int(6 * scale), y), (255, 255, 255), 1)
        _text(img, str(v), (int(8 * scale), y + int(4 * scale)), (255, 255, 255), fs)


def _draw_caption(img, text, scale) -> None:
    band = int(22 * scale)
    h = img.shape[0]
    img[h - band:] = (img[h - band:].astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken for contrast
    _text(img, text, (int(6 * scale), h - int(7 * scale)), (255, 255, 255), 0.45 * scale)

"""Camera frames -> CLIP input tensors, batched in torch, with an explicit resize policy.

Cameras are rarely square (the front camera is 640x480) and CLIP models are (usually). How a
frame is fitted changes what the model sees, so the policy is a setting, saved with a trained
model and used the same way at training and inference:

- ``crop``: scale so the frame covers the model input, cut the centre (CLIP's own; loses the
  frame's sides);
- ``pad``: scale so the whole frame fits, pad the rest with the mean colour (keeps everything,
  wastes pixels);
- ``squash``: scale each axis separately (keeps everything, distorts aspect).

An optional region of interest (relative x0, y0, x1, y1) is cut first, e.g. the part of the
table where the task happens. Resizing is bilinear with antialiasing, so a 640x480 frame and the
same scene rendered at 256x192 give nearly the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robot_rewards.rewards.base import RewardInputError

RESIZE_POLICIES = ("crop", "pad", "squash")


@dataclass(frozen=True)
class Preprocess:
    """How frames become model inputs: size (H, W), normalisation, resize policy, ROI."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "crop"
    roi: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"unknown resize policy '{self.resize}'; use one of {', '.join(RESIZE_POLICIES)}")
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
                raise ValueError(f"roi must be relative (x0, y0, x1, y1) with 0 <= x0 < x1 <= 1 and "
                                 f"0 <= y0 < y1 <= 1, got {self.roi}")

    def to_dict(self) -> dict:
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std), "resize": self.resize,
                "roi": None if self.roi is None else list(self.roi)}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        roi = d.get("roi")
        return cls(tuple(d["size"]), tuple(d["mean"]), tuple(d["std"]), d.get("resize", "crop"),
                   None if roi is None else tuple(roi))


def check_image(image, index: int = 0) -> np.ndarray:
    """`image` as an (H, W, 3) uint8 array, or RewardInputError saying what is wrong."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise RewardInputError(f"image {index}: expected an (H, W, 3) uint8 array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise RewardInputError(f"image {index}: expected uint8 RGB (0..255), got dtype {image.dtype} "
                               "(convert float images in [0, 1] with (img * 255).round().astype(np.uint8))")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise RewardInputError(f"image {index}: expected shape (H, W, 3) RGB, got {image.shape}")
    return image


def _roi_box(h: int, w: int, roi) -> tuple[int, int, int, int]:
    if roi is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = roi
    return int(round(x0 * w)), int(round(y0 * h)), max(int(round(x1 * w)), 1), max(int(round(y1 * h)), 1)


def _fit(x: torch.Tensor, size: tuple[int, int], policy: str) -> torch.Tensor:
    """(B, 3, h, w) float in [0, 1] -> (B, 3, H, W) under `policy` (pad value: NaN, filled later)."""
    H, W = size
    h, w = x.shape[-2:]
    if policy == "squash":
        return F.interpolate(x, size=(H, W), mode="bilinear", antialias=True, align_corners=False)
    scale = max(H / h, W / w) if policy == "crop" else min(H / h, W / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    if policy == "crop":
        top, left = (nh - H) // 2, (nw - W) // 2
        return x[..., top:top + H, left:left + W]
    out = x.new_full((x.shape[0], 3, H, W), float("nan"))
    top, left = (H - nh) // 2, (W - nw) // 2
    out[..., top:top + nh, left:left + nw] = x
    return out


def preprocess(images: Sequence[np.ndarray], spec: Preprocess, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, 3, H, W) normalised float32 inputs of (H, W, 3) uint8 frames (sizes may differ:
    frames of one size are processed together)."""
    if len(images) == 0:
        raise RewardInputError("no images to preprocess")
    arrays = [check_image(im, i) for i, im in enumerate(images)]
    out = torch.empty((len(arrays), 3, *spec.size), dtype=torch.float32, device=device)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    by_shape: dict[tuple, list[int]] = {}
    for i, a in enumerate(arrays):
        by_shape.setdefault(a.shape, []).append(i)
    for shape, idx in by_shape.items():
        x0, y0, x1, y1 = _roi_box(shape[0], shape[1], spec.roi)
        batch = torch.from_numpy(np.stack([arrays[i][y0:y1, x0:x1] for i in idx])).to(device)
        x = batch.permute(0, 3, 1, 2).float().div_(255.0)
        x = (_fit(x, spec.size, spec.resize) - mean) / std
        out[idx] = torch.nan_to_num(x, nan=0.0)  # padding = the mean colour
    return out

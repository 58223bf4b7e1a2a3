"""LeRobot's per-feature statistics: min, max, mean, std, count and the q01..q99 quantiles.

Shapes follow LeRobot: a vector feature gets per-dimension values, a video per-channel values
(3, 1, 1) of pixels scaled to [0, 1]. A depth image gets one value over all its pixels (LeRobot
would keep an (H, W) map per statistic: megabytes per episode for nothing a policy uses).
Episodes' statistics pool into the dataset's as LeRobot's `aggregate_stats` does: counts weight
means and quantiles, variances add their spread around the pooled mean.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.data.lerobot.layout import QUANTILES


def _quantile_key(q: float) -> str:
    return f"q{int(round(q * 100)):02d}"


def feature_stats(values: np.ndarray, axis, keepdims: bool = False) -> dict[str, np.ndarray]:
    """Statistics of `values` reduced over `axis` (NaNs, e.g. a malformed step's action, are left out)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        out = {"min": np.nanmin(v, axis=axis, keepdims=keepdims), "max": np.nanmax(v, axis=axis, keepdims=keepdims),
               "mean": np.nanmean(v, axis=axis, keepdims=keepdims), "std": np.nanstd(v, axis=axis, keepdims=keepdims)}
        for q in QUANTILES:
            out[_quantile_key(q)] = np.nanquantile(v, q, axis=axis, keepdims=keepdims)
    out["count"] = np.array([v.shape[0]], dtype=np.int64)  # frames, as LeRobot counts
    return out


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension statistics of (T, D) rows (a (T,) column is treated as (T, 1))."""
    v = np.asarray(values, dtype=np.float64)
    return feature_stats(v.reshape(len(v), -1), axis=0)


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics (3, 1, 1) of (T, H, W, 3) uint8 frames, pixels scaled to [0, 1]."""
    v = np.asarray(frames, dtype=np.float64) / 255.0
    s = feature_stats(v, axis=(0, 1, 2))
    return {k: (x if k == "count" else x.reshape(-1, 1, 1)) for k, x in s.items()}


def scalar_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """One value per statistic over every element (a depth map), count = frames."""
    v = np.asarray(values, dtype=np.float64)
    s = feature_stats(v.reshape(-1), axis=0)
    return {k: np.atleast_1d(x) for k, x in s.items()} | {"count": np.array([len(v)], dtype=np.int64)}


def aggregate(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pool per-episode statistics of one feature into the dataset's."""
    counts = np.stack([s["count"] for s in stats]).astype(np.float64)
    means = np.stack([s["mean"] for s in stats])
    total = counts.sum(axis=0)
    w = counts.reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
    mean = (means * w).sum(axis=0) / total
    var = ((np.stack([s["std"] for s in stats]) ** 2 + (means - mean) ** 2) * w).sum(axis=0) / total
    out = {"min": np.min(np.stack([s["min"] for s in stats]), axis=0),
           "max": np.max(np.stack([s["max"] for s in stats]), axis=0),
           "mean": mean, "std": np.sqrt(var), "count": total.astype(np.int64)}
    for q in QUANTILES:
        key = _quantile_key(q)
        out[key] = (np.stack([s[key] for s in stats]) * w).sum(axis=0) / total
    return out

"""What measuring commands share: confidence intervals, tables, metrics.json, videos."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import imageio.v2 as imageio
import numpy as np

from robot_rewards.core.atomic import write_atomic


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (well-behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% interval of the mean."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    m = float(v.mean())
    half = z * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    return (m, m - half, m + half)


def format_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def write_metrics(output_dir: str | os.PathLike, metrics: dict) -> Path:
    """Write `metrics.json` (atomically) in `output_dir`."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    return write_atomic(path, json.dumps(metrics, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def save_video(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames as an mp4 (H.264 through imageio-ffmpeg), or a GIF if ffmpeg is missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError(f"no frames to write to {path}")
    try:
        with imageio.get_writer(path.with_suffix(".mp4"), fps=fps, codec="libx264", quality=7,
                                macro_block_size=1, ffmpeg_log_level="error") as writer:
            for f in frames:
                writer.append_data(np.asarray(f))
        return path.with_suffix(".mp4")
    except Exception:  # no ffmpeg binary available: GIF needs nothing beyond Pillow
        imageio.mimsave(path.with_suffix(".gif"), list(frames), duration=1.0 / fps, loop=0)
        return path.with_suffix(".gif")

"""Colour frames <-> mp4 files through the ffmpeg that imageio-ffmpeg ships (a dependency).

LeRobot records with libsvtav1 (AV1), yuv420p, a keyframe every 2 frames (g=2) and crf 30; we
default to the same settings so its decoders (torchcodec, PyAV) seek the same way. Frame i of a
file sits at i / fps seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio_ffmpeg
import numpy as np

# encoder -> the codec name LeRobot records in info.json ("video.codec", PyAV's canonical name)
CODECS = {"libsvtav1": "av1", "libaom-av1": "av1", "libx264": "h264", "libx265": "hevc"}


class VideoError(ValueError):
    """A video that cannot be written or read as asked."""


def encode_frames(path: Path, frames: np.ndarray, fps: int, codec: str = "libsvtav1", crf: int = 30,
                  gop: int = 2) -> dict:
    """Write (T, H, W, 3) uint8 frames to `path`; returns LeRobot's `info` entries of the video."""
    if codec not in CODECS:
        raise VideoError(f"unknown video codec '{codec}'; use one of {sorted(CODECS)}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise VideoError(f"frames must be (T>0, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise VideoError(f"yuv420p video needs even image sizes, got {w}x{h}")
    path.parent.mkdir(parents=True, exist_ok=True)
    params = ["-g", str(gop), "-crf", str(crf)]
    if codec == "libsvtav1":
        params += ["-preset", "8"]
    # SVT-AV1 logs its whole configuration to stderr unless told otherwise (1: errors only)
    os.environ.setdefault("SVT_LOG", "1")
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec=codec, pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
                                         output_params=params, ffmpeg_log_level="error")
    writer.send(None)  # start the encoder
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
    return {"video.height": int(h), "video.width": int(w), "video.codec": CODECS[codec],
            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": int(fps),
            "video.channels": 3, "has_audio": False}


def decode_frames(path: Path) -> np.ndarray:
    """Every frame of the video at `path` as (T, H, W, 3) uint8."""
    if not Path(path).is_file():
        raise VideoError(f"video file missing: {path}")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in reader]
    except (OSError, RuntimeError, StopIteration) as exc:
        raise VideoError(f"{path}: cannot decode ({exc})") from exc
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)

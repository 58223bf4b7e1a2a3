"""The episode format: one HDF5 file per dataset, one group per episode.

Layout (format "robot_rewards.episodes", version 1)::

    /                      attrs: format, version, task, primitive, param_names (JSON),
                                  robot_rewards_version, created
    /cameras/<name>        attrs: width, height, K (3x3), base_T_camera (4x4), frame_id, base_frame
    /episodes/<000000>     attrs: seed, goal, success, quality (final), n_steps
        obs/<camera>/rgb           (T+1, H, W, 3) uint8    frame before each step and after the last
        obs/<camera>/depth         (T+1, H, W)    float32  metres, 0 = no return
        obs/<camera>/segmentation  (T+1, H, W)    int32    body ids, -1 = background
        obs/joint_positions        (T+1, dof)     float64  the arm's joints (7 for the default arm)
        obs/gripper_width          (T+1,)         float64
        actions                    (T, D)         float64  primitive parameters (layout: param_names)
        executed                   (T,)           bool
        reasons                    (T,)           str      why a step was not executed ("" if it was)
        success                    (T,)           bool     task success after each step
        quality                    (T,)           float64  task quality after each step (m, lower better)
    seg_labels (JSON attr on /episodes/<id>): body id -> object name

Images are chunked one frame per chunk and gzip-compressed, so reading one frame is cheap.
Episodes are appended one at a time and flushed, so an interrupted collection keeps every
finished episode.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from robot_rewards import __version__
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.primitives import PRIMITIVE_SPECS

FORMAT = "robot_rewards.episodes"
VERSION = 1


class EpisodeFormatError(ValueError):
    """A file that is not an episode dataset, or one from an unsupported version."""


@contextmanager
def reading(path: str | os.PathLike, what: str, error: type[Exception] = EpisodeFormatError) -> Iterator[None]:
    """Reads of an opened HDF5 file at `path` inside this block fail as one `error` naming the
    file and `what` was read.

    h5py reports a damaged chunk (a flipped bit, a bad sector) only when the chunk is read, long
    after the file opened fine, as a bare OSError that names no file."""
    try:
        yield
    except OSError as exc:
        raise error(f"{path}: {what} damaged, cannot be read ({exc})") from exc


@dataclass(eq=False)
class Episode:
    """One recorded episode in memory (see the module docstring for the meaning of fields)."""

    seed: int
    goal: str
    primitive: str
    frames: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)  # cam -> kind -> list
    joint_positions: list[np.ndarray] = field(default_factory=list)
    gripper_width: list[float] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    executed: list[bool] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    success: list[bool] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    seg_labels: dict[int, str] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.actions)

    def add_observation(self, obs) -> None:
        """Append an Observation's frames and proprioception."""
        for name, frame in obs.frames.items():
            kinds = self.frames.setdefault(name, {"rgb": [], "depth": [], "segmentation": []})
            kinds["rgb"].append(frame.rgb)
            kinds["depth"].append(frame.depth)
            seg = frame.segmentation if frame.segmentation is not None else np.full(frame.depth.shape, -1)
            kinds["segmentation"].append(seg.astype(np.int32))
        self.joint_positions.append(np.asarray(obs.proprio.joint_positions, dtype=np.float64))
        self.gripper_width.append(float(obs.proprio.gripper_width))
        self.seg_labels.update(obs.seg_labels)

    def add_step(self, result) -> None:
        """Append a StepResult (its primitive may be None when the vector was malformed)."""
        spec = PRIMITIVE_SPECS[self.primitive]
        params = result.primitive.params if result.primitive is not None else np.full(spec.dim, np.nan)
        self.actions.append(np.asarray(params, dtype=np.float64))
        self.executed.append(bool(result.executed))
        self.reasons.append(result.reason)
        self.success.append(bool(result.success))
        self.quality.append(float(result.quality))


class EpisodeWriter:
    """Append episodes to a dataset file (created, or opened for appending if compatible)."""

    def __init__(self, path: str | os.PathLike, task: str, primitive: str, cameras: list[CameraModel]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists()
        self.file = h5py.File(self.path, "a")
        if exists:
            try:
                _check_header(self.file, self.path)
                held = str(self.file.attrs["task"])
                if held != task or self.file.attrs["primitive"] != primitive:
                    raise EpisodeFormatError(f"{self.path} holds {held} episodes; refusing to append {task}")
            except Exception:
                self.file.close()
                raise
        else:
            self.file.attrs.update(
                format=FORMAT, version=VERSION, task=task, primitive=primitive,
                param_names=json.dumps(PRIMITIVE_SPECS[primitive].param_names),
                robot_rewards_version=__version__,
                created=_dt.datetime.now(_dt.timezone.utc).isoformat(),
            )
            for cam in cameras:
                g = self.file.create_group(f"cameras/{cam.name}")
                i = cam.intrinsics
                g.attrs.update(width=i.width, height=i.height, K=i.K, base_T_camera=cam.base_T_camera,
                               distortion=np.asarray(i.distortion), frame_id=cam.frame_id,
                               base_frame=cam.base_frame)
            self.file.create_group("episodes")
            self.file.flush()

    def __len__(self) -> int:
        return len(self.file["episodes"])

    def write(self, episode: Episode) -> str:
        """Store one episode; returns its group name."""
        key = f"{len(self):06d}"
        g = self.file["episodes"].create_group(key)
        try:
            g.attrs.update(seed=episode.seed, goal=episode.goal, n_steps=episode.n_steps,
                           success=bool(episode.success[-1]) if episode.success else False,
                           quality=episode.quality[-1] if episode.quality else np.nan,
                           seg_labels=json.dumps({str(k): v for k, v in episode.seg_labels.items()}))
            for cam, kinds in episode.frames.items():
                for kind, frames in kinds.items():
                    arr = np.stack(frames)
                    g.create_dataset(f"obs/{cam}/{kind}", data=arr, chunks=(1, *arr.shape[1:]),
                                     compression="gzip", compression_opts=4, shuffle=True)
            q = np.asarray(episode.joint_positions)
            # one row per observation, as many columns as the arm has joints ((0, 7) when empty, as always)
            g["obs/joint_positions"] = q.reshape(len(q), -1) if len(q) else q.reshape(0, 7)
            g["obs/gripper_width"] = np.asarray(episode.gripper_width, dtype=np.float64)
            dim = PRIMITIVE_SPECS[episode.primitive].dim
            g["actions"] = np.asarray(episode.actions, dtype=np.float64).reshape(-1, dim)
            g["executed"] = np.asarray(episode.executed, dtype=bool)
            g["reasons"] = np.asarray(episode.reasons, dtype=h5py.string_dtype())
            g["success"] = np.asarray(episode.success, dtype=bool)
            g["quality"] = np.asarray(episode.quality, dtype=np.float64)
        except Exception:
            del self.file["episodes"][key]  # never leave a half-written episode behind
            raise
        self.file.flush()
        return key

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_header(f: h5py.File, path) -> None:
    if f.attrs.get("format") != FORMAT:
        raise EpisodeFormatError(f"{path} is not a robot_rewards episode file")
    if int(f.attrs.get("version", -1)) > VERSION:
        raise EpisodeFormatError(
            f"{path} has format version {f.attrs['version']}, newer than this code reads ({VERSION}); "
            "upgrade robot_rewards"
        )


class EpisodeReader:
    """Read-only access to an episode dataset."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"episode file not found: {self.path}")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise EpisodeFormatError(f"{self.path} is not a readable HDF5 file: {exc}") from exc
        _check_header(self.file, self.path)
        self.task = str(self.file.attrs["task"])
        self.primitive = str(self.file.attrs["primitive"])
        self.param_names = tuple(json.loads(self.file.attrs["param_names"]))

    def __len__(self) -> int:
        return len(self.file["episodes"])

    def keys(self) -> list[str]:
        return sorted(self.file["episodes"])

    def cameras(self) -> dict[str, CameraModel]:
        out = {}
        for name, g in self.file["cameras"].items():
            K = np.asarray(g.attrs["K"])
            intr = CameraIntrinsics(int(g.attrs["width"]), int(g.attrs["height"]), K[0, 0], K[1, 1],
                                    K[0, 2], K[1, 2], tuple(np.asarray(g.attrs["distortion"]).tolist()))
            out[name] = CameraModel(name, intr, np.asarray(g.attrs["base_T_camera"]),
                                    str(g.attrs["frame_id"]), str(g.attrs["base_frame"]))
        return out

    def episode(self, key: str | int) -> h5py.Group:
        """The HDF5 group of one episode (index or key); arrays load lazily."""
        key = f"{key:06d}" if isinstance(key, int) else key
        return self.file["episodes"][key]

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

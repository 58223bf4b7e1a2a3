"""A LeRobotDataset v3.0 folder -> episodes appended to an episode HDF5 file.

What an import needs (checked before anything is written, each missing piece named):
info.json at v3.0; `action` with one primitive's layout; `observation.state` (joints then the
gripper width); per camera a colour feature (video or image) and `observation.depth.<camera>`;
and the cameras' intrinsics and extrinsics from the side-car meta/robot_rewards.json. Depth and
camera models are what turn an observation into a point cloud, so a dataset without them cannot
become our episodes. Success, quality, executed flags and reasons are taken where present.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.data.episodes import Episode, EpisodeWriter
from robot_rewards.data.lerobot import layout as L
from robot_rewards.data.lerobot import tables
from robot_rewards.data.lerobot.video import VideoError, decode_frames


@dataclass
class ImportSummary:
    out: Path
    episodes: int
    frames: int
    first_key: str
    task: str
    cameras: list[str]


@dataclass
class _Dataset:
    root: Path
    info: dict
    features: dict
    sidecar: dict
    cameras: dict[str, CameraModel]
    primitive: str
    task: str


def _load_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise L.LeRobotFormatError(f"{path}: {what} unreadable ({exc})") from exc


def open_dataset(root: str | os.PathLike) -> _Dataset:
    """Check a dataset folder has what an import needs; LeRobotFormatError naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LeRobot dataset folder not found: {root}")
    if not (root / L.INFO_PATH).is_file():
        raise L.LeRobotFormatError(f"{root} is not a LeRobot dataset: no {L.INFO_PATH}")
    info = _load_json(root / L.INFO_PATH, "info.json")
    version = str(info.get("codebase_version", "?"))
    if not version.startswith("v3"):
        raise L.LeRobotFormatError(f"{root} is a LeRobot {version} dataset; this reads v3.0 (convert it with "
                                   "LeRobot's convert_dataset_v21_to_v30 first)")
    features = info.get("features", {})
    sidecar = _load_json(root / L.SIDECAR_PATH, "side-car") if (root / L.SIDECAR_PATH).is_file() else {}
    missing = []
    cams = list(sidecar.get("cameras", {})) or [k[len(L.IMAGE_PREFIX):] for k in features
                                                 if k.startswith(L.IMAGE_PREFIX)]
    if not cams:
        missing.append(f"a colour camera ({L.IMAGE_PREFIX}<camera>)")
    for cam in cams:
        if features.get(L.image_key(cam), {}).get("dtype") not in ("video", "image"):
            missing.append(f"{L.image_key(cam)} (colour)")
        if L.depth_key(cam) not in features:
            missing.append(f"{L.depth_key(cam)} (depth in metres)")
    if L.STATE not in features:
        missing.append(f"{L.STATE} (joint positions + gripper width)")
    if L.ACTION not in features:
        missing.append(f"{L.ACTION} (primitive parameters)")
    if not sidecar:
        missing.append(f"{L.SIDECAR_PATH} (camera intrinsics/extrinsics to build point clouds)")
    if missing:
        raise L.LeRobotFormatError(f"{root} lacks what robot_rewards episodes need: {'; '.join(missing)}")
    if sidecar.get("format") != L.SIDECAR_FORMAT or int(sidecar.get("version", 99)) > L.SIDECAR_VERSION:
        raise L.LeRobotFormatError(f"{root / L.SIDECAR_PATH} is not a robot_rewards side-car of version "
                                   f"<= {L.SIDECAR_VERSION}")
    primitive = sidecar.get("primitive", "")
    spec = PRIMITIVE_SPECS.get(primitive)
    dim = int(np.prod(features[L.ACTION]["shape"]))
    if spec is None or spec.dim != dim:
        raise L.LeRobotFormatError(f"{root}: action has {dim} values; the side-car's primitive "
                                   f"'{primitive}' is not one of {sorted(PRIMITIVE_SPECS)} with that many")
    cameras = {}
    for name, c in sidecar["cameras"].items():
        K = np.asarray(c["K"], dtype=np.float64)
        intr = CameraIntrinsics(int(c["width"]), int(c["height"]), K[0, 0], K[1, 1], K[0, 2], K[1, 2],
                                tuple(c.get("distortion", (0.0,) * 5)))
        cameras[name] = CameraModel(name, intr, np.asarray(c["base_T_camera"], dtype=np.float64),
                                    c.get("frame_id", "camera_color_optical_frame"),
                                    c.get("base_frame", "base_link"))
        shape = tuple(features[L.depth_key(name)]["shape"])
        if shape != (intr.height, intr.width):
            raise L.LeRobotFormatError(f"{root}: {L.depth_key(name)} is {shape}, camera '{name}' is "
                                       f"{intr.height}x{intr.width}")
    return _Dataset(root, info, features, sidecar, cameras, primitive, str(sidecar.get("task", "")))


class _Videos:
    """Decoded video files, kept while an episode reads them (a file may hold several episodes)."""

    def __init__(self, root: Path, template: str):
        self.root, self.template, self.cache = root, template, {}

    def frames(self, key: str, row: dict, timestamps: np.ndarray, fps: int) -> np.ndarray:
        c, f = int(row[f"videos/{key}/chunk_index"]), int(row[f"videos/{key}/file_index"])
        path = self.root / self.template.format(video_key=key, chunk_index=c, file_index=f)
        if path not in self.cache:
            self.cache = {path: decode_frames(path)}  # one file at a time: episodes come in order
        frames = self.cache[path]
        idx = np.rint((float(row[f"videos/{key}/from_timestamp"]) + timestamps) * fps).astype(int)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(frames)):
            raise VideoError(f"{path} has {len(frames)} frames; episode {row['episode_index']} needs frame "
                             f"{idx.max()}")
        return frames[idx]


def _images(col, feature: dict) -> np.ndarray:
    """Frames of an `image` feature (PNG/JPEG bytes in a struct column)."""
    out = []
    for item in col.to_pylist():
        buf = np.frombuffer(item["bytes"], dtype=np.uint8)
        out.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out)


def import_lerobot(dataset: str | os.PathLike, out: str | os.PathLike, episodes: list[int] | None = None,
                   progress=None) -> ImportSummary:
    """Append the episodes of a LeRobot v3.0 `dataset` to the episode file `out` (created if
    missing; an existing file must hold the same task and primitive)."""
    tables.require_pyarrow()
    ds = open_dataset(dataset)
    rows = tables.read_parquet_folder(ds.root / "meta" / "episodes").to_pylist()
    rows.sort(key=lambda r: int(r["episode_index"]))
    wanted = episodes or [int(r["episode_index"]) for r in rows]
    by_index = {int(r["episode_index"]): r for r in rows}
    bad = [i for i in wanted if i not in by_index]
    if bad:
        raise ValueError(f"episodes {bad} not in {ds.root} (it holds {len(rows)})")
    side_eps = {int(e["episode_index"]): e for e in ds.sidecar.get("episodes", [])}
    tasks = tables.read_parquet(ds.root / L.TASKS_PATH).to_pylist()
    task_text = {int(t["task_index"]): t.get("__index_level_0__") or t.get("task") for t in tasks}
    videos = _Videos(ds.root, ds.info.get("video_path") or L.VIDEO_PATH)
    fps = int(ds.info["fps"])
    frames_total, first_key = 0, ""
    iterator = progress(wanted, len(wanted)) if progress else wanted
    with EpisodeWriter(out, ds.task or "unknown", ds.primitive, list(ds.cameras.values())) as writer:
        for i in iterator:
            ep = _episode(ds, by_index[i], side_eps.get(i, {}), task_text, videos, fps)
            key = writer.write(ep)
            first_key = first_key or key
            frames_total += len(ep.joint_positions)
    return ImportSummary(Path(out), len(wanted), frames_total, first_key, ds.task, list(ds.cameras))


def _episode(ds: _Dataset, row: dict, side: dict, task_text: dict, videos: _Videos, fps: int) -> Episode:
    idx = int(row["episode_index"])
    c, f = int(row["data/chunk_index"]), int(row["data/file_index"])
    path = ds.root / (ds.info.get("data_path") or L.DATA_PATH).format(chunk_index=c, file_index=f)
    if not path.is_file():
        raise L.LeRobotFormatError(f"{ds.root}: data file of episode {idx} missing: {path}")
    t = tables.read_parquet(path, filters=[("episode_index", "=", idx)])
    order = np.argsort(t.column("frame_index").to_numpy())
    t = t.take(order)
    n = t.num_rows
    if n == 0:
        raise L.LeRobotFormatError(f"{path} has no frames of episode {idx}")
    feats = ds.features

    def col(key, default=None):
        if key not in t.column_names:
            return default
        return tables.to_numpy(t.column(key), feats[key])

    goal = side.get("goal") or (row.get("tasks") or [""])[0] or task_text.get(int(col("task_index")[0]), "")
    ep = Episode(seed=int(side.get("seed", idx)), goal=str(goal), primitive=ds.primitive)
    timestamps = col("timestamp").astype(np.float64)
    for cam in ds.cameras:
        key = L.image_key(cam)
        if feats[key]["dtype"] == "video":
            rgb = videos.frames(key, row, timestamps, fps)
        else:
            rgb = _images(t.column(key), feats[key])
        depth = col(L.depth_key(cam)).astype(np.float32)
        seg = col(L.segmentation_key(cam))
        ep.frames[cam] = {"rgb": list(rgb), "depth": list(depth),
                          "segmentation": list(seg.astype(np.int32) if seg is not None
                                               else np.full(depth.shape, -1, np.int32))}
    state = col(L.STATE).astype(np.float64)
    ep.joint_positions = list(state[:, :-1])
    ep.gripper_width = [float(x) for x in state[:, -1]]
    steps = n - 1  # the last frame is the final observation
    action = col(L.ACTION).astype(np.float64)
    ep.actions = list(action[:steps])
    ep.executed = [bool(x) for x in col(L.EXECUTED, np.ones(n, bool))[:steps]]
    ep.success = [bool(x) for x in col(L.SUCCESS, np.zeros(n, bool))[:steps]]
    ep.quality = [float(x) for x in col(L.QUALITY, np.full(n, np.nan))[:steps]]
    reasons = list(side.get("reasons", []))
    ep.reasons = reasons if len(reasons) == steps else [""] * steps
    ep.seg_labels = {int(k): v for k, v in side.get("seg_labels", {}).items()}
    return ep

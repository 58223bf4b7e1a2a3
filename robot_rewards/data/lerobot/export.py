"""An episode HDF5 file -> a LeRobotDataset v3.0 folder (layout: `layout`).

The folder is built under a temporary name next to `out` and renamed when complete, so an
interrupted export leaves no half dataset at `out`; an existing `out` is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rewards import __version__
from robot_rewards.data.episodes import EpisodeReader, reading
from robot_rewards.data.lerobot import layout as L
from robot_rewards.data.lerobot import stats as S
from robot_rewards.data.lerobot import tables
from robot_rewards.data.lerobot.video import encode_frames


@dataclass
class ExportOptions:
    """fps: frames per second recorded in the dataset (one frame per observation, so 1 = one
    decision a second; LeRobot's readers check timestamps against it). codec / crf / gop: the
    colour videos' encoding (LeRobot's defaults). segmentation: also the sim's body-id images.
    episodes: indices to export (empty: all). robot_type: info.json's robot_type."""

    fps: int = 1
    codec: str = "libsvtav1"
    crf: int = 30
    gop: int = 2
    segmentation: bool = True
    episodes: list[int] = field(default_factory=list)
    robot_type: str | None = None


@dataclass
class ExportSummary:
    out: Path
    episodes: int
    frames: int
    cameras: list[str]
    tasks: list[str]
    bytes: int
    features: list[str]


def _features(reader: EpisodeReader, first, options: ExportOptions, video_info: dict) -> dict:
    dof = first["obs/joint_positions"].shape[1]
    feats: dict[str, dict] = {}
    for cam, model in reader.cameras().items():
        h, w = model.intrinsics.height, model.intrinsics.width
        feats[L.image_key(cam)] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                                   "info": video_info.get(cam)}
        feats[L.depth_key(cam)] = {"dtype": "float32", "shape": [h, w], "names": ["height", "width"]}
        if options.segmentation:
            feats[L.segmentation_key(cam)] = {"dtype": "int32", "shape": [h, w], "names": ["height", "width"]}
    feats[L.STATE] = {"dtype": "float32", "shape": [dof + 1],
                      "names": [f"joint_{i + 1}" for i in range(dof)] + ["gripper_width"]}
    feats[L.ACTION] = {"dtype": "float32", "shape": [len(reader.param_names)], "names": list(reader.param_names)}
    feats[L.EXECUTED] = {"dtype": "bool", "shape": [1], "names": None}
    feats[L.SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
    feats[L.QUALITY] = {"dtype": "float32", "shape": [1], "names": None}
    feats[L.DONE] = {"dtype": "bool", "shape": [1], "names": None}
    return feats


def _frame_columns(g, cams: list[str], options: ExportOptions, dim: int) -> tuple[dict[str, np.ndarray], dict]:
    """Per-frame arrays of one episode group (T+1 frames) and its colour frames per camera."""
    q = g["obs/joint_positions"][:]
    n = len(q)
    t = int(g.attrs["n_steps"])
    if n != t + 1:
        raise L.LeRobotFormatError(f"episode {g.name} has {n} observations for {t} steps (need steps + 1)")
    actions = np.asarray(g["actions"][:], dtype=np.float64).reshape(t, dim)
    last = actions[-1:] if t else np.zeros((1, dim))
    cols = {
        L.STATE: np.concatenate([q, g["obs/gripper_width"][:].reshape(n, 1)], axis=1),
        L.ACTION: np.concatenate([actions, last]),
        L.EXECUTED: np.append(g["executed"][:].astype(bool), False),
        L.SUCCESS: np.append(g["success"][:].astype(bool), bool(g["success"][-1]) if t else False),
        L.QUALITY: np.append(g["quality"][:], g["quality"][-1] if t else np.nan),
        L.DONE: np.arange(n) == n - 1,
    }
    rgb = {}
    for cam in cams:
        rgb[cam] = g[f"obs/{cam}/rgb"][:]
        cols[L.depth_key(cam)] = g[f"obs/{cam}/depth"][:]
        if options.segmentation:
            cols[L.segmentation_key(cam)] = g[f"obs/{cam}/segmentation"][:]
    return cols, rgb


def _episode_stats(cols: dict[str, np.ndarray], rgb: dict[str, np.ndarray]) -> dict[str, dict]:
    out = {}
    for key, v in cols.items():
        if key.startswith(L.SEGMENTATION_PREFIX):
            continue  # body ids: labels, not quantities
        out[key] = S.scalar_stats(v) if key.startswith(L.DEPTH_PREFIX) else S.vector_stats(v)
    for cam, frames in rgb.items():
        out[L.image_key(cam)] = S.image_stats(frames)
    return out


def export_lerobot(episode_file: str | os.PathLike, out: str | os.PathLike,
                   options: ExportOptions | None = None, progress=None) -> ExportSummary:
    """Write the episodes of `episode_file` as a LeRobotDataset v3.0 folder `out` (which must
    not exist yet). `progress(iterable, total)` wraps the episode loop (e.g. tqdm)."""
    tables.require_pyarrow()
    options = options or ExportOptions()
    if isinstance(options.fps, bool) or not isinstance(options.fps, int) or options.fps < 1:
        raise ValueError(f"fps must be an integer >= 1 (LeRobot stores whole frames per second), got {options.fps!r}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; give a new folder (nothing was written)")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with EpisodeReader(episode_file) as reader:
            summary = _write(reader, tmp, options, progress)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.out = out
    summary.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return summary


def _write(reader: EpisodeReader, root: Path, options: ExportOptions, progress) -> ExportSummary:
    keys = reader.keys()
    if not keys:
        raise ValueError(f"{reader.path} holds no episodes")
    chosen = options.episodes or list(range(len(keys)))
    bad = [i for i in chosen if not 0 <= i < len(keys)]
    if bad:
        raise ValueError(f"episodes {bad} not in {reader.path} (it holds {len(keys)}: 0..{len(keys) - 1})")
    cams = list(reader.cameras())
    dim = len(reader.param_names)
    features: dict[str, dict] | None = None
    video_info: dict[str, dict] = {}
    tasks: list[str] = []
    rows: list[dict] = []
    ep_stats: list[dict] = []
    sidecar_eps = []
    pending: list = []  # data tables of the current data file
    pending_bytes, data_file, total = 0, 0, 0
    iterator = progress(chosen, len(chosen)) if progress else chosen

    def flush():
        nonlocal pending, pending_bytes, data_file
        if pending:
            import pyarrow as pa  # optional: the `lerobot` extra (checked on entry)

            c, f = L.chunk_file(data_file)
            tables.write_parquet(root / L.DATA_PATH.format(chunk_index=c, file_index=f), pa.concat_tables(pending))
            pending, pending_bytes, data_file = [], 0, data_file + 1

    for ep_index, src in enumerate(iterator):
        key = keys[src]
        with reading(reader.path, f"episode {key}"):
            g = reader.episode(key)
            cols, rgb = _frame_columns(g, cams, options, dim)
            goal = str(g.attrs["goal"]) or reader.task
            seed = int(g.attrs["seed"])
            seg_labels = json.loads(g.attrs.get("seg_labels", "{}"))
            reasons = [r.decode() if isinstance(r, bytes) else str(r) for r in g["reasons"][:]]
        n = len(cols[L.STATE])
        if goal not in tasks:
            tasks.append(goal)
        meta = {"episode_index": ep_index, "tasks": [goal], "length": n}
        for cam in cams:
            c, f = L.chunk_file(ep_index)
            path = root / L.VIDEO_PATH.format(video_key=L.image_key(cam), chunk_index=c, file_index=f)
            video_info[cam] = encode_frames(path, rgb[cam], options.fps, options.codec, options.crf, options.gop)
            meta |= {f"videos/{L.image_key(cam)}/chunk_index": c, f"videos/{L.image_key(cam)}/file_index": f,
                     f"videos/{L.image_key(cam)}/from_timestamp": 0.0,
                     f"videos/{L.image_key(cam)}/to_timestamp": n / options.fps}
        if features is None:
            features = _features(reader, g, options, video_info) | L.INDEX_FEATURES
        frame_index = np.arange(n)
        cols |= {"timestamp": (frame_index / options.fps).astype(np.float32), "frame_index": frame_index,
                 "episode_index": np.full(n, ep_index), "index": total + frame_index,
                 "task_index": np.full(n, tasks.index(goal))}
        c, f = L.chunk_file(data_file)
        meta |= {"data/chunk_index": c, "data/file_index": f, "dataset_from_index": total,
                 "dataset_to_index": total + n, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        st = _episode_stats({k: v for k, v in cols.items() if k in features and k not in L.INDEX_FEATURES}, rgb)
        ep_stats.append(st)
        for feat, values in st.items():
            for name, value in values.items():
                meta[f"stats/{feat}/{name}"] = value.tolist()
        rows.append(meta)
        tbl = tables.table({k: tables.column(v, features[k]) for k, v in cols.items()}, features)
        pending.append(tbl)
        pending_bytes += tbl.nbytes
        total += n
        sidecar_eps.append({"episode_index": ep_index, "source_key": key, "seed": seed, "goal": goal,
                            "reasons": reasons, "seg_labels": seg_labels})
        if pending_bytes >= L.DATA_FILE_MB * 2**20:
            flush()
    flush()
    _write_meta(root, reader, features, options, video_info, tasks, rows, ep_stats, sidecar_eps, total)
    return ExportSummary(root, len(rows), total, cams, tasks, 0,
                         [k for k in features if k not in L.INDEX_FEATURES])


def _write_meta(root: Path, reader: EpisodeReader, features: dict, options: ExportOptions, video_info: dict,
                tasks: list[str], rows: list[dict], ep_stats: list[dict], sidecar_eps: list[dict],
                total: int) -> None:
    import pyarrow as pa  # optional: the `lerobot` extra (checked on entry)

    for cam, info in video_info.items():
        features[L.image_key(cam)]["info"] = info
    info = {"codebase_version": L.CODEBASE_VERSION, "robot_type": options.robot_type,
            "total_episodes": len(rows), "total_frames": total, "total_tasks": len(tasks),
            "chunks_size": L.CHUNKS_SIZE, "data_files_size_in_mb": L.DATA_FILE_MB,
            "video_files_size_in_mb": L.VIDEO_FILE_MB, "fps": options.fps,
            "splits": {"train": f"0:{len(rows)}"}, "data_path": L.DATA_PATH, "video_path": L.VIDEO_PATH,
            "features": features}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / L.INFO_PATH).write_text(json.dumps(info, indent=4))
    pooled = {feat: S.aggregate([s[feat] for s in ep_stats]) for feat in ep_stats[0]}
    (root / L.STATS_PATH).write_text(json.dumps(
        {feat: {k: v.tolist() for k, v in st.items()} for feat, st in pooled.items()}, indent=4))
    tables.write_parquet(root / L.TASKS_PATH, tables.tasks_table(tasks))
    episodes = pa.Table.from_pylist(rows)
    tables.write_parquet(root / L.EPISODES_PATH.format(chunk_index=0, file_index=0), episodes)
    cams = reader.cameras()
    sidecar = {
        "format": L.SIDECAR_FORMAT, "version": L.SIDECAR_VERSION, "robot_rewards_version": __version__,
        "source": str(reader.path), "task": reader.task, "primitive": reader.primitive,
        "param_names": list(reader.param_names), "state": {"joints": features[L.STATE]["shape"][0] - 1,
                                                             "gripper_width_index": -1},
        "cameras": {name: {"width": m.intrinsics.width, "height": m.intrinsics.height,
                           "K": np.asarray(m.intrinsics.K).tolist(),
                           "distortion": list(map(float, m.intrinsics.distortion)),
                           "base_T_camera": np.asarray(m.base_T_camera).tolist(),
                           "frame_id": m.frame_id, "base_frame": m.base_frame} for name, m in cams.items()},
        "episodes": sidecar_eps,
    }
    (root / L.SIDECAR_PATH).write_text(json.dumps(sidecar, indent=1))

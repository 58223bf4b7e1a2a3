"""Episode HDF5 (from `collect-demos`) -> policy training samples (cloud, goal, action).

One sample per executed step (of successful episodes, with `successful_only`): the point cloud
that `perceive` makes of the frames recorded before the step (with the file's camera models and
the episode's segmentation labels), the episode's goal, and the executed primitive's parameters.

Perception of 640x480 frames costs ~0.3 s each, so clouds are cached in an HDF5 file next to
the data, named by a hash of the perception config: `<data>.clouds-<hash>.h5`. The cache is
filled incrementally (episodes appended to the dataset later are perceived on the next run),
and it is rebuilt if the data file it was made from has been replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from robot_rewards.core.observation import CameraFrame
from robot_rewards.data.episodes import EpisodeReader, reading
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive_cloud
from robot_rewards.perception.pointcloud import PerceptionError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PolicyDataset:
    """In-memory training samples of one task (arrays aligned on the first axis)."""

    task: str
    primitive: str
    points: np.ndarray  # (N, P, 3) float32, base frame
    colors: np.ndarray | None  # (N, P, 3) uint8
    goals: list[str]
    actions: np.ndarray  # (N, D) float64 primitive parameters
    episode: np.ndarray  # (N,) index of the source episode in the file
    step: np.ndarray  # (N,) step within the episode
    seeds: np.ndarray  # (N,) the source episode's reset seed

    def __len__(self) -> int:
        return len(self.actions)


def perception_key(config: PerceptionConfig) -> str:
    """Short hash naming a perception config (cache file names)."""
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:12]


def default_cache_path(data: str | os.PathLike, config: PerceptionConfig) -> Path:
    data = Path(data)
    return data.with_name(f"{data.stem}.clouds-{perception_key(config)}.h5")


def _episode_clouds(reader: EpisodeReader, key: str, cameras, config: PerceptionConfig):
    """(points (T, P, 3), colors (T, P, 3) | None, valid (T,)) of the frames before each step."""
    g = reader.episode(key)
    T = int(g.attrs["n_steps"])
    seg_labels = {int(k): v for k, v in json.loads(g.attrs.get("seg_labels", "{}")).items()}
    P = config.n_points
    points = np.zeros((T, P, 3), np.float32)
    colors = np.zeros((T, P, 3), np.uint8)
    valid = np.zeros(T, bool)
    for t in range(T):
        frames = {}
        for name, cam in cameras.items():
            seg = g[f"obs/{name}/segmentation"][t] if f"obs/{name}/segmentation" in g else None
            frames[name] = CameraFrame(cam, g[f"obs/{name}/rgb"][t], g[f"obs/{name}/depth"][t], seg)
        try:
            res = perceive_cloud(frames, cameras, config, seg_labels)
        except PerceptionError as exc:  # e.g. an empty scene: unusable, not fatal for the dataset
            log.warning("episode %s step %d: no cloud (%s); skipped", key, t, exc)
            continue
        points[t] = res.cloud.points
        if res.cloud.colors is not None:
            colors[t] = res.cloud.colors
        valid[t] = True
    return points, colors, valid


def load_dataset(data: str | os.PathLike, perception: PerceptionConfig, successful_only: bool = True,
                 max_episodes: int | None = None, cache: str | os.PathLike | None = None,
                 progress: bool = True) -> PolicyDataset:
    """Training samples of an episode file, perceiving (and caching) clouds where needed."""
    data = Path(data)
    if not str(data) or not data.is_file():
        raise FileNotFoundError(f"episode data not found: '{data}' (record some with "
                                "`robot-rewards collect-demos task=... out=PATH`)")
    cache = Path(cache) if cache else default_cache_path(data, perception)
    pts, cols, goals, acts, eps, steps, seeds = [], [], [], [], [], [], []
    with EpisodeReader(data) as reader:
        cameras = reader.cameras()
        created = str(reader.file.attrs.get("created", ""))
        keys = reader.keys()[: max_episodes] if max_episodes is not None else reader.keys()
        with reading(data, "headers"):
            use = [k for k in keys if not successful_only or bool(reader.episode(k).attrs["success"])]
        with _open_cache(cache, perception, created) as store:
            # An episode without "valid" was interrupted while being written: redo it.
            todo = [k for k in use if k not in store or "valid" not in store[k]]
            for k in tqdm(todo, desc=f"perceive {data.name}", unit="ep", disable=not progress or not todo):
                with reading(data, f"episode {k}"):
                    p, c, v = _episode_clouds(reader, k, cameras, perception)
                if k in store:
                    del store[k]
                grp = store.create_group(k)
                grp.create_dataset("points", data=p, compression="gzip", compression_opts=1)
                grp.create_dataset("colors", data=c, compression="gzip", compression_opts=1)
                grp["valid"] = v
                store.flush()
            for k in use:
                with reading(data, f"episode {k}"):
                    g = reader.episode(k)
                    actions = np.asarray(g["actions"][:], np.float64)
                    executed = np.asarray(g["executed"][:], bool)
                valid = store[k]["valid"][:]
                ok = executed & valid & np.all(np.isfinite(actions), axis=1)
                if not ok.any():
                    continue
                idx = np.flatnonzero(ok)
                pts.append(store[k]["points"][:][idx])
                cols.append(store[k]["colors"][:][idx])
                acts.append(actions[idx])
                goals += [str(g.attrs["goal"])] * len(idx)
                eps.append(np.full(len(idx), int(k)))
                steps.append(idx)
                seeds.append(np.full(len(idx), int(g.attrs["seed"])))
        task, primitive = reader.task, reader.primitive
    if not acts:
        raise ValueError(f"{data}: no usable steps ({len(keys)} episodes, "
                         f"{len(use)} {'successful ' if successful_only else ''}with executed steps: none)")
    return PolicyDataset(task, primitive, np.concatenate(pts), np.concatenate(cols) if perception.colors else None,
                         goals, np.concatenate(acts), np.concatenate(eps), np.concatenate(steps),
                         np.concatenate(seeds))


def _open_cache(path: Path, perception: PerceptionConfig, created: str) -> h5py.File:
    """The cache file for this perception config and source file (rebuilt if the source changed)."""
    conf = json.dumps(asdict(perception), sort_keys=True)
    if path.exists():
        try:
            f = h5py.File(path, "a")
            if f.attrs.get("perception") == conf and f.attrs.get("source_created") == created:
                return f
            f.close()
            log.info("cloud cache %s is for other data or settings: rebuilding", path)
        except OSError:
            log.warning("cloud cache %s is unreadable: rebuilding", path)
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(path, "w")
    f.attrs.update(perception=conf, source_created=created, format="robot_rewards.policy_clouds")
    return f

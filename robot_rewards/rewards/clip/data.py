"""Sim frames with captions from sim state, for training and evaluating CLIP rewards.

Frames come from the tasks with a `Task.captioning` spec, in registration order, and from two
kinds of scenes, both in the real `TabletopEnv` worlds and cameras:

- arranged scenes: a task reset, then objects moved straight to chosen places and settled
  by the physics (`Task.arrange`; no arm motion, ~50 ms a frame). place_block: each block in a
  bowl, just outside one (near misses), or anywhere on the table, the goal's block in its bowl
  about half the time. align_rope: a rope of chosen curvature (straight to curled) laid along
  the marks or anywhere. This gives satisfied and unsatisfied states in equal measure, cheaply.
- episodes: the noisy scripted expert acting (frames before every step and after the last),
  i.e. the states a policy meets; ~1 s a step, so used mainly for evaluation.

How many of each: `ClipDataConfig.<prefix>_scenes`, `<prefix>_frames`, `<prefix>_episodes`
with the task's `CaptionSpec.config_prefix`.

Labels are measured after settling, never intended: `success`/`quality` are the task's own,
`true`/`false` are the task's closed-world captions (`Task.captions`; a sentence is true of a
frame iff it is in `true`).

File format (HDF5, format "robot_rewards.clip_frames", version 1), one row per frame:
images (N, H, W, 3) uint8 (gzip, one frame per chunk); task, goal, kind ("arranged" /
"episode") strings; scene int64 (frames of one scene share a goal); success bool; quality
float64 (task quality, m, lower is better); straightness float64 (rope end-to-end distance /
length, NaN for blocks); true, false JSON lists of captions. Attributes: format, version,
config (JSON), camera (JSON: width, height, K).
"""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
from tqdm import tqdm

from robot_rewards.core.workers import resolve_workers
from robot_rewards.data.episodes import reading
from robot_rewards.rewards.clip.config import ClipDataConfig
from robot_rewards.sim.camera import render
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks import TASKS
from robot_rewards.sim.tasks.base import CaptionSpec

FORMAT = "robot_rewards.clip_frames"
VERSION = 1


class ClipDataError(ValueError):
    """A frames file that is missing, foreign, or made with other settings."""


@dataclass(eq=False)
class Frame:
    """One rendered state with its labels."""

    image: np.ndarray
    task: str
    goal: str
    kind: str
    scene: int
    success: bool
    quality: float
    straightness: float
    true: list[str]
    false: list[str]


@dataclass(eq=False)
class FrameSet:
    """A loaded frames file (arrays of N rows; see the module docstring)."""

    images: np.ndarray
    task: np.ndarray
    goal: np.ndarray
    kind: np.ndarray
    scene: np.ndarray
    success: np.ndarray
    quality: np.ndarray
    straightness: np.ndarray
    true: list[list[str]]
    false: list[list[str]]

    def __len__(self) -> int:
        return len(self.task)

    def rows(self, task: str, kind: str | None = None) -> np.ndarray:
        """Indices of the frames of `task` (and `kind`)."""
        m = self.task == task
        if kind is not None:
            m &= self.kind == kind
        return np.flatnonzero(m)


# -- scenes ------------------------------------------------------------------------------------

def caption_tasks() -> list[str]:
    """The registered tasks with CLIP captions (a `Task.captioning` spec), in registration order."""
    return [name for name, cls in TASKS.items() if cls.captioning is not None]


def scene_counts(cfg: ClipDataConfig, spec: CaptionSpec) -> tuple[int, int, int]:
    """(scenes, frames per arranged scene, episodes) of one task in `cfg`."""
    try:
        return tuple(int(getattr(cfg, f"{spec.config_prefix}_{k}")) for k in ("scenes", "frames", "episodes"))
    except AttributeError as exc:
        raise ValueError(f"ClipDataConfig has no {spec.config_prefix}_scenes / _frames / _episodes fields "
                         f"for a task with captioning prefix '{spec.config_prefix}'") from exc


def _render(env, scale: float) -> np.ndarray:
    world = env.world
    cam = replace(world.camera, intrinsics=world.camera.intrinsics.scaled(scale))
    cfg = world.cfg.cameras[0]
    return render(cam, world.client, cfg.near, cfg.far, world.cfg.render_shadows).rgb


def _frame(env, goal: str, kind: str, seed: int, cfg: ClipDataConfig) -> Frame:
    """The current state as a frame, with the task's captions and measures."""
    captions = env.task.captions(env.world)
    return Frame(_render(env, cfg.render_scale), env.task.name, goal, kind, seed, env.success(), env.quality(),
                 captions.straightness, captions.true, captions.false)


def arranged_scene(env, seed: int, cfg: ClipDataConfig) -> list[Frame]:
    """The reset scene of seed `seed` (a frame itself if the task's `reset_frame`), then the
    task's `<prefix>_frames` arrangements of it (`Task.arrange`)."""
    spec = env.task.captioning
    goal = env.reset(seed)
    rng = np.random.default_rng([seed, spec.seed_salt])
    frames = [_frame(env, goal, "arranged", seed, cfg)] if spec.reset_frame else []
    for _ in range(scene_counts(cfg, spec)[1]):
        env.task.arrange(env.world, rng)
        frames.append(_frame(env, goal, "arranged", seed, cfg))
    return frames


def episode_frames(env, seed: int, cfg: ClipDataConfig) -> list[Frame]:
    """A noisy-expert episode: the frame before every step and after the last."""
    goal = env.reset(seed)
    frames = [_frame(env, goal, "episode", seed, cfg)]
    while not env.done:
        env.step(env.expert_action(ExpertConfig()))
        frames.append(_frame(env, goal, "episode", seed, cfg))
    return frames


# -- generation ------------------------------------------------------------------------------

def _jobs(cfg: ClipDataConfig) -> list[tuple[str, str, int]]:
    """(task, kind, seed) of every scene; episode seeds follow the arranged ones."""
    counts = {name: scene_counts(cfg, TASKS[name].captioning) for name in caption_tasks()}
    jobs = [(name, "arranged", cfg.seed + k) for name, (scenes, _, _) in counts.items() for k in range(scenes)]
    jobs += [(name, "episode", cfg.seed + 50_000 + k) for name, (_, _, episodes) in counts.items()
             for k in range(episodes)]
    return jobs


_ENVS: dict = {}


def _run_job(job: tuple[str, str, int], cfg: ClipDataConfig) -> list[Frame]:
    task, kind, seed = job
    env = _ENVS.get(task)
    if env is None:
        env = _ENVS[task] = TabletopEnv(task)
    return (episode_frames if kind == "episode" else arranged_scene)(env, seed, cfg)


def _worker(args) -> list[Frame]:
    return _run_job(*args)


def iter_frames(cfg: ClipDataConfig, progress: bool = True) -> Iterator[Frame]:
    """Every frame of `cfg`, in scene order (the same for any number of workers)."""
    jobs = _jobs(cfg)
    workers = resolve_workers(cfg.workers)
    bar = tqdm(total=len(jobs), desc="clip frames", unit="scene", disable=not progress)
    try:
        if workers > 1:  # streamed in scene order: a whole set of frames may not fit in memory
            with mp.get_context("spawn").Pool(workers) as pool:
                for frames in pool.imap(_worker, [(j, cfg) for j in jobs]):
                    bar.update(1)
                    yield from frames
        else:
            for j in jobs:
                yield from _run_job(j, cfg)
                bar.update(1)
    finally:
        bar.close()
        for env in _ENVS.values():
            env.close()
        _ENVS.clear()


def generate_frames(cfg: ClipDataConfig, path: str | Path, progress: bool = True) -> Path:
    """Render every frame of `cfg` into an HDF5 frames file at `path` (written to a temporary
    file first, so an interrupted run leaves no half file behind)."""
    counts = [c for name in caption_tasks() for c in scene_counts(cfg, TASKS[name].captioning)]
    if min(counts, default=0) < 0 or cfg.render_scale <= 0:
        raise ValueError("scene/frame counts must be >= 0 and render_scale > 0")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    str_t = h5py.string_dtype()
    n = 0
    with h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, version=VERSION, config=json.dumps(asdict(cfg)))
        for frame in iter_frames(cfg, progress):
            if n == 0:
                h, w = frame.image.shape[:2]
                f.create_dataset("images", (0, h, w, 3), np.uint8, maxshape=(None, h, w, 3),
                                 chunks=(1, h, w, 3), compression="gzip", compression_opts=4)
                for name, dt in (("task", str_t), ("goal", str_t), ("kind", str_t), ("scene", np.int64),
                                 ("success", bool), ("quality", np.float64), ("straightness", np.float64),
                                 ("true", str_t), ("false", str_t)):
                    f.create_dataset(name, (0,), dt, maxshape=(None,), chunks=(256,))
            row = {"images": frame.image, "task": frame.task, "goal": frame.goal, "kind": frame.kind,
                   "scene": frame.scene, "success": frame.success, "quality": frame.quality,
                   "straightness": frame.straightness, "true": json.dumps(frame.true),
                   "false": json.dumps(frame.false)}
            for name, value in row.items():
                ds = f[name]
                ds.resize(n + 1, axis=0)
                ds[n] = value
            n += 1
        if n == 0:
            raise ValueError("the data config asks for no frames")
    tmp.replace(path)
    return path


def load_frames(path: str | Path, expect: ClipDataConfig | None = None) -> FrameSet:
    """A frames file; with `expect`, refuse one made with other generation settings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CLIP frames file missing: {path} (train-clip/eval-clip generate it)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ClipDataError(f"{path} is not a readable HDF5 frames file ({exc})") from exc
    with f:
        if f.attrs.get("format") != FORMAT:
            raise ClipDataError(f"{path} is not a robot_rewards CLIP frames file")
        if int(f.attrs.get("version", -1)) > VERSION:
            raise ClipDataError(f"{path} has version {f.attrs['version']}, newer than this code reads ({VERSION})")
        if expect is not None:  # the same frames whatever the number of workers
            made = {k: v for k, v in json.loads(f.attrs["config"]).items() if k != "workers"}
            want = {k: v for k, v in asdict(expect).items() if k != "workers"}
            if made != want:
                diff = sorted(k for k in set(made) | set(want) if made.get(k) != want.get(k))
                raise ClipDataError(f"{path} was generated with other settings ({', '.join(diff)}); "
                                    "delete it or point data=... elsewhere")
        s = lambda name: np.array([x.decode() if isinstance(x, bytes) else x for x in f[name][:]])
        with reading(path, "frames", ClipDataError):  # a damaged chunk names the file
            return FrameSet(f["images"][:], s("task"), s("goal"), s("kind"), f["scene"][:], f["success"][:].astype(bool),
                            f["quality"][:], f["straightness"][:], [json.loads(x) for x in s("true")],
                            [json.loads(x) for x in s("false")])


def frames_for(path: str | Path, cfg: ClipDataConfig, progress: bool = True) -> FrameSet:
    """The frames file at `path`, generated from `cfg` first if it does not exist yet."""
    path = Path(path)
    if not path.exists():
        generate_frames(cfg, path, progress)
    return load_frames(path, cfg)

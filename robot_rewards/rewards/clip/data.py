"""Sim frames with captions from sim state, for training and evaluating CLIP rewards.

Frames come from two kinds of scenes, both in the real `TabletopEnv` worlds and cameras:

- arranged scenes: a task reset, then objects moved straight to chosen places and settled
  by the physics (no arm motion, ~50 ms a frame). place_block: each block in a bowl, just
  outside one (near misses), or anywhere on the table, the goal's block in its bowl about half
  the time. align_rope: a rope of chosen curvature (straight to curled) laid along the marks
  or anywhere. This gives satisfied and unsatisfied states in equal measure, cheaply.
- episodes: the noisy scripted expert acting (frames before every step and after the last),
  i.e. the states a policy meets; ~1 s a step, so used mainly for evaluation.

Labels are measured after settling, never intended: `success`/`quality` are the task's own,
`true`/`false` are the closed-world captions of `clip_prompts` (a sentence is true of a frame
iff it is in `true`).

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

import numpy as np

from robot_rewards.core.workers import resolve_workers
from robot_rewards.rewards.clip.config import ClipDataConfig
from robot_rewards.rewards.clip.prompts import (
    PLACE_BASELINE,
    block_in_bowl,
    block_outside,
    bowl_empty,
    rope_captions,
)

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


# -- scene builders ---------------------------------------------------------------------------

def _render(env, scale: float) -> np.ndarray:
    from robot_rewards.sim.camera import render

    world = env.world
    cam = replace(world.camera, intrinsics=world.camera.intrinsics.scaled(scale))
    cfg = world.cfg.cameras[0]
    return render(cam, world.client, cfg.near, cfg.far, world.cfg.render_shadows).rgb


def _place_facts(world, task) -> tuple[list[str], list[str]]:
    """(true, false) captions of a place_block state, with the task's own "inside" test."""
    from robot_rewards.sim.tasks.base import BLOCK_HALF
    from robot_rewards.sim.tasks.place_block import BOWL_INNER_RADIUS, BOWL_WALL

    colour = lambda name: name.rsplit("_", 1)[0]
    true, false = [PLACE_BASELINE], []
    filled = set()
    for block in task.blocks:
        inside = []
        for bowl in task.bowls:
            d = world.position(block) - world.position(bowl)
            if np.linalg.norm(d[:2]) < BOWL_INNER_RADIUS - BLOCK_HALF + 0.005 and d[2] < BOWL_WALL + BLOCK_HALF:
                inside.append(bowl)
        filled.update(inside)
        for bowl in task.bowls:
            (true if bowl in inside else false).append(block_in_bowl(colour(block), colour(bowl)))
        (false if inside else true).append(block_outside(colour(block)))
    for bowl in task.bowls:
        (false if bowl in filled else true).append(bowl_empty(colour(bowl)))
    return true, false


def _teleport(world, name: str, xyz, yaw: float) -> None:
    import pybullet as p

    body = world.objects[name]
    p.resetBasePositionAndOrientation(body, list(map(float, xyz)), p.getQuaternionFromEuler([0, 0, yaw]),
                                      physicsClientId=world.client)
    p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=world.client)


def _arrange_blocks(env, rng: np.random.Generator) -> None:
    """Move the blocks to new places: the goal's block in its bowl ~45% of the time, otherwise
    just outside it, in another bowl or anywhere; other blocks in free bowls or on the table."""
    from robot_rewards.sim.tasks.base import BLOCK_HALF
    from robot_rewards.sim.tasks.place_block import BOWL_FLOOR

    world, task = env.world, env.task
    bowls = {b: world.position(b)[:2] for b in task.bowls}
    placed: list[np.ndarray] = []
    free_bowls = list(task.bowls)

    def on_table(near: np.ndarray | None = None) -> np.ndarray:
        for _ in range(500):
            if near is not None:  # a near miss: just outside the rim
                a = rng.uniform(0, 2 * np.pi)
                xy = near + rng.uniform(0.085, 0.12) * np.array([np.cos(a), np.sin(a)])
            else:
                xy = rng.uniform([0.33, -0.27], [0.67, 0.27])
            if all(np.linalg.norm(xy - c) > 0.09 for c in bowls.values()) and \
                    all(np.linalg.norm(xy - q) > 0.065 for q in placed):
                return xy
        raise RuntimeError("could not find a free spot on the table")

    def in_bowl(bowl: str) -> np.ndarray:
        r, a = rng.uniform(0, 0.015), rng.uniform(0, 2 * np.pi)
        free_bowls.remove(bowl)
        return bowls[bowl] + r * np.array([np.cos(a), np.sin(a)])

    for i, block in enumerate(task.blocks):
        u = rng.random()
        if i == 0:  # the goal's block
            target = task.target_bowl
            if u < 0.45:
                xy, z = in_bowl(target), BOWL_FLOOR + BLOCK_HALF + 0.003
            elif u < 0.65:
                xy, z = on_table(near=bowls[target]), BLOCK_HALF + 0.001
            elif u < 0.8 and len(free_bowls) > 1:
                xy, z = in_bowl(next(b for b in free_bowls if b != target)), BOWL_FLOOR + BLOCK_HALF + 0.003
            else:
                xy, z = on_table(), BLOCK_HALF + 0.001
        elif u < 0.3 and free_bowls:
            xy, z = in_bowl(free_bowls[int(rng.integers(len(free_bowls)))]), BOWL_FLOOR + BLOCK_HALF + 0.003
        else:
            near = bowls[task.bowls[int(rng.integers(len(task.bowls)))]] if u < 0.5 else None
            xy, z = on_table(near), BLOCK_HALF + 0.001
        placed.append(xy)
        _teleport(world, block, (xy[0], xy[1], z), rng.uniform(-np.pi, np.pi))
    world.settle()


def place_scene(env, seed: int, cfg: ClipDataConfig) -> list[Frame]:
    """The reset scene of place_block seed `seed`, then `cfg.place_frames` arrangements of it."""
    goal = env.reset(seed)
    rng = np.random.default_rng([seed, 1])
    frames = []
    for k in range(cfg.place_frames + 1):
        if k:
            _arrange_blocks(env, rng)
        true, false = _place_facts(env.world, env.task)
        frames.append(Frame(_render(env, cfg.render_scale), "place_block", goal, "arranged", seed,
                            env.success(), env.quality(), float("nan"), true, false))
    return frames


def _rope_shape(rng: np.random.Generator, marks: np.ndarray, curl: float, on_line: bool) -> np.ndarray | None:
    """(n_links, 2) rope centres: curvature scaled by `curl` (0 = straight); centred on the marks'
    segment (with small offsets) when `on_line`, else anywhere. None if it does not fit."""
    from robot_rewards.sim.rope import chain_from_headings
    from robot_rewards.sim.tasks.align_rope import REGION_HIGH, REGION_LOW, ROPE

    n, pitch = ROPE.n_links, ROPE.pitch
    s = (np.arange(n - 1) + 0.5) / (n - 1)
    curvature = rng.uniform(-3.0, 3.0)
    for k in (1, 2):
        curvature = curvature + rng.uniform(2.0, 9.0) / k * np.sin(k * np.pi * s + rng.uniform(0, 2 * np.pi))
    a, b = marks
    heading = rng.uniform(-np.pi, np.pi)
    if on_line:
        heading = np.arctan2(*(b - a)[::-1]) + rng.normal(0, 0.15) + np.pi * rng.integers(2)
    headings = heading + np.cumsum(curl * curvature * pitch)
    headings -= headings.mean() - heading  # keep the mean direction
    pts = chain_from_headings((0.0, 0.0), headings, pitch)
    if on_line:
        pts = pts - pts.mean(0) + (a + b) / 2 + rng.normal(0, rng.uniform(0.0, 0.03), 2)
    else:  # anywhere it fits
        room = (REGION_HIGH - REGION_LOW) - (pts.max(0) - pts.min(0))
        if np.any(room < 0):
            return None
        pts = pts - pts.min(0) + REGION_LOW + rng.uniform(0, 1, 2) * room
    iu = np.triu_indices(n, k=2)
    if np.linalg.norm(pts[:, None] - pts[None], axis=-1)[iu].min() < 2.5 * ROPE.radius:
        return None
    if np.any(pts < REGION_LOW - 0.02) or np.any(pts > REGION_HIGH + 0.02):
        return None
    return pts


def _rope_build(env, marks: np.ndarray, colours: tuple[str, str], pts: np.ndarray) -> None:
    """An align_rope scene with given marks and rope shape, laid out as `AlignRope.reset` does."""
    from robot_rewards.sim.rope import Rope
    from robot_rewards.sim.tasks.align_rope import MARK_HALF
    from robot_rewards.sim.tasks.base import COLORS

    world, task = env.world, env.task
    world.reset()
    task.marks, task.mark_colors = marks, colours
    u = marks[1] - marks[0]
    yaw = float(np.arctan2(u[1], u[0]))
    for name, xy, colour in zip(("mark_a", "mark_b"), marks, colours):
        world.add_marker(name, MARK_HALF, (xy[0], xy[1], MARK_HALF[2]), COLORS[colour], yaw=yaw)
    task.rope = Rope(world, pts, task.spec)
    world.settle()


def rope_straightness(env) -> float:
    """End-to-end distance of the rope over its length (1 = straight)."""
    pts = env.task.positions(env.world)[:, :2]
    return float(np.linalg.norm(pts[-1] - pts[0]) / env.task.spec.length)


def rope_scene(env, seed: int, cfg: ClipDataConfig) -> list[Frame]:
    """Marks and goal of align_rope seed `seed`, with `cfg.rope_frames` rope shapes among them:
    curl drawn from straight to curled, on the marks' line 60% of the time."""
    goal = env.reset(seed)
    marks, colours = env.task.marks.copy(), tuple(env.task.mark_colors)
    rng = np.random.default_rng([seed, 2])
    frames = []
    for _ in range(cfg.rope_frames):
        pts = None
        while pts is None:
            pts = _rope_shape(rng, marks, rng.uniform(0.0, 2.5), rng.random() < 0.6)
        _rope_build(env, marks, colours, pts)
        straight, quality = rope_straightness(env), env.quality()
        true, false = rope_captions(straight, quality, colours)
        frames.append(Frame(_render(env, cfg.render_scale), "align_rope", goal, "arranged", seed,
                            env.success(), quality, straight, true, false))
    return frames


def episode_frames(env, seed: int, cfg: ClipDataConfig) -> list[Frame]:
    """A noisy-expert episode: the frame before every step and after the last."""
    from robot_rewards.sim.expert_config import ExpertConfig

    frames = []
    goal = env.reset(seed)

    def record() -> None:
        if env.task.name == "place_block":
            true, false = _place_facts(env.world, env.task)
            straight = float("nan")
        else:
            straight = rope_straightness(env)
            true, false = rope_captions(straight, env.quality(), tuple(env.task.mark_colors))
        frames.append(Frame(_render(env, cfg.render_scale), env.task.name, goal, "episode", seed,
                            env.success(), env.quality(), straight, true, false))

    record()
    while not env.done:
        env.step(env.expert_action(ExpertConfig()))
        record()
    return frames


# -- generation ------------------------------------------------------------------------------

_JOBS = {"place_block": place_scene, "align_rope": rope_scene}


def _jobs(cfg: ClipDataConfig) -> list[tuple[str, str, int]]:
    """(task, kind, seed) of every scene; episode seeds follow the arranged ones."""
    jobs = [("place_block", "arranged", cfg.seed + k) for k in range(cfg.place_scenes)]
    jobs += [("align_rope", "arranged", cfg.seed + k) for k in range(cfg.rope_scenes)]
    jobs += [("place_block", "episode", cfg.seed + 50_000 + k) for k in range(cfg.place_episodes)]
    jobs += [("align_rope", "episode", cfg.seed + 50_000 + k) for k in range(cfg.rope_episodes)]
    return jobs


_ENVS: dict = {}


def _run_job(job: tuple[str, str, int], cfg: ClipDataConfig) -> list[Frame]:
    from robot_rewards.sim.env import TabletopEnv

    task, kind, seed = job
    env = _ENVS.get(task)
    if env is None:
        env = _ENVS[task] = TabletopEnv(task)
    return (episode_frames if kind == "episode" else _JOBS[task])(env, seed, cfg)


def _worker(args) -> list[Frame]:
    return _run_job(*args)


def iter_frames(cfg: ClipDataConfig, progress: bool = True) -> Iterator[Frame]:
    """Every frame of `cfg`, in scene order (the same for any number of workers)."""
    from tqdm import tqdm

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
    import h5py

    if min(cfg.place_scenes, cfg.rope_scenes, cfg.place_frames, cfg.rope_frames,
           cfg.place_episodes, cfg.rope_episodes) < 0 or cfg.render_scale <= 0:
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
    import h5py

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
        return FrameSet(f["images"][:], s("task"), s("goal"), s("kind"), f["scene"][:], f["success"][:].astype(bool),
                        f["quality"][:], f["straightness"][:], [json.loads(x) for x in s("true")],
                        [json.loads(x) for x in s("false")])


def frames_for(path: str | Path, cfg: ClipDataConfig, progress: bool = True) -> FrameSet:
    """The frames file at `path`, generated from `cfg` first if it does not exist yet."""
    path = Path(path)
    if not path.exists():
        generate_frames(cfg, path, progress)
    return load_frames(path, cfg)

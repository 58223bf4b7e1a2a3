"""`robot-rewards train-keypoints`: a learned keypoint model (goal-conditioned PointNet) trained
on sim ground truth, evaluated in mm on held-out seeds against the mean-position baseline.

Data: each sim seed gives its reset state and `extra_states` states with the task's objects
moved by the task's own `perturb` (teleported, then settled by physics; no arm primitives: those
cost seconds each). The ground truth is `task_keypoints`, with the K object/target pairs put in
a canonical order the cloud can tell (`canonical_order`): for the rope, whose two ends look
alike, the pair whose mark has the smaller y comes first. Any task with `keypoint_names` works.

Errors: per keypoint kind (object / target), their mean, for K > 1 also the mean under the best
permutation of the pairs (what the keypoint reward and the analytic scores depend on: both are
invariant to the pairs' order), and the error of the reward's mean object-to-target distance.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rewards.core.keypoints import canonical_order
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.core.workers import run_jobs
from robot_rewards.policy.config import keep_flat_targets
from robot_rewards.rewards.keypoints.config import TrainKeypointsCommandConfig
from robot_rewards.rewards.keypoints.io import save_keypoint_model
from robot_rewards.rewards.keypoints.net import KeypointDataset, predict_keypoints, train_keypoint_model
from robot_rewards.rewards.keypoints.reward import task_keypoints
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.tasks import TASKS

STATE_KINDS = ("reset", "moved")


def keypoint_tasks() -> list[str]:
    """The registered tasks with ground-truth keypoints (a non-empty `Task.keypoint_names`)."""
    return [name for name, cls in TASKS.items() if cls.keypoint_names]


def keypoint_names(task: str) -> list[str]:
    """Names of `task`'s keypoint pairs in `canonical_order`."""
    return list(TASKS[task].keypoint_names)


# -- data ----------------------------------------------------------------------------------------

@dataclass(eq=False)
class CollectedKeypoints:
    """A KeypointDataset plus, per sample, the state kind (reset / moved) and what was moved."""

    data: object  # KeypointDataset
    kinds: np.ndarray  # (M,) str
    moves: np.ndarray  # (M,) str: "" for reset states


class KeypointScenes:
    """One simulator (per worker); `runner(scene_seed)` -> that scene's rows: the reset state, then
    `extra_states` times the objects moved (seeded by (seed, scene seed))."""

    def __init__(self, task: str, sim, perception, extra_states: int, seed: int):
        self.env = TabletopEnv(task, sim=sim, perception=perception)
        self.extra_states, self.seed = extra_states, seed

    def _row(self, obs, s: int, kind: str, move: str) -> tuple:
        kp = task_keypoints(self.env.task, self.env.world)
        obj, tgt = canonical_order(kp.objects, kp.targets)
        return obs.points, obs.colors, obs.goal, obj, tgt, s, kind, move

    def __call__(self, s: int) -> list[tuple]:
        env = self.env
        env.reset(int(s))
        rows = [self._row(env.observe(), int(s), "reset", "")]
        rng = np.random.default_rng([int(self.seed), int(s), 7])
        for _ in range(self.extra_states):
            move = env.task.perturb(env.world, rng)
            rows.append(self._row(env.observe(), int(s), "moved", move))
        return rows

    def close(self) -> None:
        self.env.close()


def collect_keypoints(task: str, seeds, extra_states: int, seed: int, perception, sim=None,
                      desc: str = "collect", workers: Any = 1) -> CollectedKeypoints:
    """Per seed: reset + observe, then `extra_states` times move the objects + observe; ground
    truth from `task_keypoints`, in `canonical_order`. Scenes run on `workers` processes; the
    data is the same for any number."""
    scenes = run_jobs(partial(KeypointScenes, task, sim, perception, extra_states, seed),
                      [int(s) for s in seeds], workers, desc)
    cols = list(zip(*[row for rows in scenes for row in rows]))
    points, colors, goals, objects, targets, scene_seeds, kinds, moves = cols
    colors = np.stack(colors) if all(c is not None for c in colors) else None
    data = KeypointDataset(np.stack(points), colors, list(goals), np.stack(objects), np.stack(targets),
                           np.asarray(scene_seeds), keypoint_names(task))
    return CollectedKeypoints(data, np.asarray(kinds), np.asarray(moves))


def augment(data, copies: int, max_rotation: float, max_shift: float, seed: int, centre=(0.5, 0.0)):
    """`data` plus `copies` planar-augmented copies of every sample: one random turn about the
    vertical line through `centre` and one xy shift per copy, applied to the cloud and to the
    keypoints alike (pairs re-sorted into `canonical_order` afterwards)."""
    if copies <= 0:
        return data
    rng = np.random.default_rng([int(seed), 31])
    m = len(data)
    theta = rng.uniform(-max_rotation, max_rotation, (copies, m))
    shift = rng.uniform(-max_shift, max_shift, (copies, m, 2))
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (copies, m, 2, 2)
    centre = np.asarray(centre, np.float64)

    def move(xyz):  # (m, n, 3) -> (copies, m, n, 3)
        out = np.repeat(np.asarray(xyz, np.float64)[None], copies, axis=0)
        out[..., :2] = np.einsum("cmij,cmnj->cmni", rot, out[..., :2] - centre) + centre + shift[:, :, None]
        return out

    pts, obj, tgt = move(data.points), move(data.objects), move(data.targets)
    for i in np.ndindex(copies, m):
        obj[i], tgt[i] = canonical_order(obj[i], tgt[i])
    cols = None if data.colors is None else np.concatenate([data.colors] * (copies + 1))
    return KeypointDataset(np.concatenate([data.points, pts.reshape(-1, *data.points.shape[1:]).astype(np.float32)]),
                           cols, list(data.goals) * (copies + 1),
                           np.concatenate([data.objects, obj.reshape(-1, *data.objects.shape[1:])]),
                           np.concatenate([data.targets, tgt.reshape(-1, *data.targets.shape[1:])]),
                           np.tile(data.seeds, copies + 1), data.names)


def _cache_file(folder: str, task: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return Path(folder) / f"{task}_{digest}.npz"


def _save_collected(path: Path, c: CollectedKeypoints, key: dict) -> None:
    d = c.data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    arrays = dict(points=d.points, objects=d.objects, targets=d.targets, seeds=d.seeds,
                  goals=np.asarray(d.goals), names=np.asarray(d.names), kinds=c.kinds, moves=c.moves,
                  key=np.asarray(json.dumps(key, sort_keys=True, default=str)))
    if d.colors is not None:
        arrays["colors"] = d.colors
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _load_collected(path: Path, key: dict) -> CollectedKeypoints | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != json.dumps(key, sort_keys=True, default=str):
                return None
            data = KeypointDataset(z["points"], z["colors"] if "colors" in z.files else None,
                                   [str(g) for g in z["goals"]], z["objects"], z["targets"], z["seeds"],
                                   [str(n) for n in z["names"]])
            return CollectedKeypoints(data, z["kinds"].astype(str), z["moves"].astype(str))
    except (OSError, KeyError, ValueError) as exc:
        print(f"cache {path} unreadable ({type(exc).__name__}: {exc}); collecting again")
        return None


def collect_cached(cfg: TrainKeypointsCommandConfig, seeds: list[int], desc: str) -> tuple[CollectedKeypoints, float]:
    """`collect_keypoints`, through `cfg.cache` when set; returns (data, seconds spent collecting)."""
    key = {"task": cfg.task, "seeds": [seeds[0], seeds[-1], len(seeds)], "extra_states": cfg.extra_states,
           "seed": cfg.seed, "perception": asdict(cfg.perception), "sim": asdict(cfg.sim), "format": 1}
    path = _cache_file(cfg.cache, cfg.task, key) if cfg.cache else None
    if path is not None and path.is_file():
        got = _load_collected(path, key)
        if got is not None:
            print(f"{desc}: {len(got.data)} samples from {path}")
            return got, 0.0
    t0 = time.perf_counter()
    got = collect_keypoints(cfg.task, seeds, cfg.extra_states, cfg.seed, cfg.perception, cfg.sim, desc,
                            cfg.workers)
    seconds = time.perf_counter() - t0
    if path is not None:
        _save_collected(path, got, key)
    return got, seconds


# -- errors --------------------------------------------------------------------------------------

def keypoint_errors(obj_pred, tgt_pred, data) -> dict[str, np.ndarray]:
    """Per-sample errors (mm) of predicted (M, K, 3) keypoints against `data`'s ground truth:
    object, target (mean over the K keypoints), mean (both kinds), set (mean under the best
    permutation of the K pairs) and distance (|predicted - true| mean object-to-target distance,
    what `keypoint_reward` reads)."""
    obj_pred = np.broadcast_to(np.asarray(obj_pred, np.float64), data.objects.shape)
    tgt_pred = np.broadcast_to(np.asarray(tgt_pred, np.float64), data.targets.shape)
    e_obj = np.linalg.norm(obj_pred - data.objects, axis=-1) * 1000
    e_tgt = np.linalg.norm(tgt_pred - data.targets, axis=-1) * 1000
    k = data.objects.shape[1]
    perms = [list(q) for q in itertools.permutations(range(k))] if k <= 4 else [list(range(k))]
    best = np.min([(np.linalg.norm(obj_pred[:, q] - data.objects, axis=-1).mean(axis=1)
                    + np.linalg.norm(tgt_pred[:, q] - data.targets, axis=-1).mean(axis=1)) / 2
                   for q in perms], axis=0) * 1000
    d_pred = np.linalg.norm(obj_pred - tgt_pred, axis=-1).mean(axis=1)
    d_true = np.linalg.norm(data.objects - data.targets, axis=-1).mean(axis=1)
    obj_mm, tgt_mm = e_obj.mean(axis=1), e_tgt.mean(axis=1)
    return {"object": obj_mm, "target": tgt_mm, "mean": (obj_mm + tgt_mm) / 2, "set": best,
            "distance": np.abs(d_pred - d_true) * 1000}


def summarise(errors: dict[str, np.ndarray], mask=None) -> dict:
    """Means (and the median of `mean`) over the samples in `mask` (all by default), in mm."""
    m = np.ones(len(errors["mean"]), bool) if mask is None else np.asarray(mask, bool)
    if not m.any():
        return {"n": 0}
    out = {f"{k}_error_mm": float(v[m].mean()) for k, v in errors.items()}
    out["median_error_mm"] = float(np.median(errors["mean"][m]))
    out["n"] = int(m.sum())
    return out


# -- the command ---------------------------------------------------------------------------------

def _check(cfg: TrainKeypointsCommandConfig) -> None:
    if cfg.task not in keypoint_tasks():
        raise ValueError(f"train-keypoints: no ground-truth keypoints for task '{cfg.task}' "
                         f"(known: {', '.join(keypoint_tasks())})")
    if cfg.scenes < 1 or cfg.heldout_scenes < 0 or cfg.extra_states < 0 or cfg.augment_copies < 0:
        raise ValueError(f"need scenes >= 1, heldout_scenes >= 0, extra_states >= 0, augment_copies >= 0 "
                         f"(got {cfg.scenes}, {cfg.heldout_scenes}, {cfg.extra_states}, {cfg.augment_copies})")
    a0, a1 = cfg.train_seed, cfg.train_seed + cfg.scenes
    b0, b1 = cfg.heldout_seed, cfg.heldout_seed + cfg.heldout_scenes
    if cfg.heldout_scenes and a0 < b1 and b0 < a1:
        raise ValueError(f"training seeds {a0}..{a1 - 1} and held-out seeds {b0}..{b1 - 1} overlap")


def train_keypoints_command(cfg: TrainKeypointsCommandConfig) -> dict:
    """Collect, train, evaluate on held-out seeds against the mean baseline; save the model as
    `<output_dir>/keypoints.{json,safetensors}` and the figures as `metrics.json`."""

    _check(cfg)
    cfg = replace(cfg, perception=keep_flat_targets(cfg.perception, cfg.task))
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(cfg.output_dir)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    train_seeds = list(range(cfg.train_seed, cfg.train_seed + cfg.scenes))
    held_seeds = list(range(cfg.heldout_seed, cfg.heldout_seed + cfg.heldout_scenes))
    train, collect_train_s = collect_cached(cfg, train_seeds, f"{cfg.task} train scenes")
    held, collect_held_s = (collect_cached(cfg, held_seeds, f"{cfg.task} held-out scenes")
                            if held_seeds else (None, 0.0))
    k = train.data.objects.shape[1]
    tcfg = replace(cfg.train, seed=cfg.seed, model=replace(cfg.train.model, n_keypoints=k))
    fit_data = augment(train.data, cfg.augment_copies, cfg.augment_rotation, cfg.augment_shift, cfg.seed)
    print(f"training on {len(train.data)} samples ({cfg.scenes} scenes x {1 + cfg.extra_states} states)"
          f"{f' + {len(fit_data) - len(train.data)} augmented copies' if cfg.augment_copies > 0 else ''}, "
          f"{tcfg.steps} steps of batch {tcfg.batch_size} ...", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    model, fit = train_keypoint_model(fit_data, tcfg)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    mean_obj, mean_tgt = train.data.objects.mean(axis=0), train.data.targets.mean(axis=0)
    splits = {"train": train, **({"heldout": held} if held is not None else {})}
    results: dict = {}
    rows = []
    for split, c in splits.items():
        obj, tgt = predict_keypoints(model, c.data.points, c.data.colors, c.data.goals)
        for predictor, errs in (("model", keypoint_errors(obj, tgt, c.data)),
                                ("mean baseline", keypoint_errors(mean_obj[None], mean_tgt[None], c.data))):
            for kind, mask in (("all", None), *((s, c.kinds == s) for s in STATE_KINDS if cfg.extra_states)):
                r = summarise(errs, mask)
                results.setdefault(split, {}).setdefault(predictor.replace(" ", "_"), {})[kind] = r
                if r["n"] and (kind == "all" or split == "heldout"):  # the table: held-out by state kind
                    rows.append([split if kind == "all" else f"{split} ({kind})", predictor, r["n"],
                                 r["object_error_mm"], r["target_error_mm"], r["mean_error_mm"],
                                 r["set_error_mm"], r["distance_error_mm"]])
    names = keypoint_names(cfg.task)
    ckpt = save_keypoint_model(out / "keypoints", model, cfg.task, names, cfg.perception, training={
        "seed": cfg.seed, "steps": tcfg.steps, "train_scenes": cfg.scenes, "train_seed": cfg.train_seed,
        "extra_states": cfg.extra_states, "samples": len(train.data), "augment_copies": cfg.augment_copies,
        "train_loss": fit["train_loss"],
        **({"heldout_error_mm": results["heldout"]["model"]["all"]["mean_error_mm"],
            "heldout_set_error_mm": results["heldout"]["model"]["all"]["set_error_mm"],
            "heldout_seed": cfg.heldout_seed, "heldout_scenes": cfg.heldout_scenes} if held is not None else {}),
    })
    metrics = {
        "command": "train-keypoints", "task": cfg.task, "config": asdict(cfg), "names": names,
        "train_samples": len(train.data), "heldout_samples": 0 if held is None else len(held.data),
        "train_seeds": [train_seeds[0], train_seeds[-1]],
        "heldout_seeds": [held_seeds[0], held_seeds[-1]] if held_seeds else [],
        "moves": {split: {str(m): int(n) for m, n in zip(*np.unique(c.moves[c.moves != ""], return_counts=True))}
                  for split, c in splits.items()},
        "train_loss": fit["train_loss"], "errors": results,
        "augmented_samples": len(fit_data) - len(train.data),
        "collect_train_s": collect_train_s, "collect_heldout_s": collect_held_s, "train_s": train_s,
        "train_cpu_s": train_cpu_s, "seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start, "checkpoint": str(ckpt),
    }
    print(f"\ntrain-keypoints {cfg.task}: keypoint error (mm) of the learned model vs always predicting the "
          f"training mean; {'set = best pair order, ' if k > 1 else ''}distance = error of the reward's "
          f"object-target distance")
    print(format_table(["split", "predictor", "samples", "object", "target", "mean", "set", "distance"], rows))
    print(f"collect {collect_train_s + collect_held_s:.0f} s, train {train_s:.0f} s ({tcfg.steps} steps, "
          f"{train_cpu_s:.0f} s of CPU); whole run {metrics['seconds']:.0f} s ({metrics['cpu_seconds']:.0f} s of CPU)")
    print(f"model: {ckpt}\nmetrics: {write_metrics(out, metrics)}")
    return metrics

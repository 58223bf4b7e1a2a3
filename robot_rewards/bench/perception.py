"""`robot-rewards bench perception`: 640x480 depth -> fixed-size base-frame cloud, ms per frame.

Frames are real PyBullet renders of tabletop scenes (rendered once, before timing). The torch
pipeline runs on `device` one frame at a time (`perceive_cloud`, what the simulator, the policy
and the ROS node call) and in batches of `batch` frames (`perceive_cloud_batch`). When the
repository's tests are next to the package, the numpy reference implementation
(`tests/perception_reference.py`, the pipeline before it became torch-only) is timed too, one
frame at a time, and the table gives torch / numpy; installed without the tests, that column is
left out. Workloads: the table kept in the crop (tens of thousands of voxels for farthest-point
sampling to choose from), objects only (known table removed), the table found by RANSAC and
removed, and the policies' settings (objects only, 1024 points).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive_cloud, perceive_cloud_batch
from robot_rewards.policy.config import policy_perception
from robot_rewards.sim.world import World


def render_scenes(n_frames: int, seed: int = 0) -> tuple[list[dict], dict]:
    """`n_frames` rendered front-camera frames of random box scenes: ([{name: frame}], seg_labels)."""
    rng = np.random.default_rng(seed)
    frames = []
    world = World()
    try:
        for _k in range(n_frames):
            world.reset()
            for j in range(int(rng.integers(3, 7))):
                half = rng.uniform(0.01, 0.04, size=3)
                xy = rng.uniform([0.35, -0.25], [0.7, 0.25])
                world.add_box(f"box{j}", half, (xy[0], xy[1], half[2] + 0.001),
                              (*rng.uniform(0.1, 0.9, size=3), 1.0), yaw=float(rng.uniform(-np.pi, np.pi)))
            frames.append({world.camera.name: world.render()})
        labels = dict(world.seg_labels)
    finally:
        world.close()
    return frames, labels


def load_reference(path: str | Path | None = None):
    """The numpy reference pipeline module (`tests/perception_reference.py` of the repository
    checkout that holds this package), or None where it is not there (an installed package)."""
    path = Path(path) if path else Path(__file__).resolve().parents[2] / "tests" / "perception_reference.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("perception_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time(fn, repeats: int) -> float:
    """Best-of-`repeats` wall time of fn() in seconds (best-of rejects scheduler noise)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def workloads(n_points: int, voxel_size: float, seed: int) -> dict[str, PerceptionConfig]:
    base = dict(voxel_size=voxel_size, n_points=n_points, seed=seed)
    return {
        "table kept": PerceptionConfig(table="none", **base),
        "objects only": PerceptionConfig(table="known", **base),
        "ransac table": PerceptionConfig(table="ransac", **base),
        "policy (1024 pts)": replace(policy_perception(), seed=seed),
    }


def run_perception_bench(output_dir, n_frames: int = 8, batch: int = 8, device: str = "cpu",
                         n_points: int = 2048, voxel_size: float = 0.005, repeats: int = 3,
                         seed: int = 0, torch_threads: int | None = None, reference: str | None = None) -> dict:
    """Time the perception pipeline on rendered 640x480 frames; print a table and write
    `<output_dir>/metrics.json`. `device` is the torch device ('cpu', 'cuda');
    `torch_threads` sets torch's CPU thread count (on a busy machine 1 thread avoids the
    thread pool fighting other processes: farthest-point sampling is thousands of tiny ops).
    `reference`: the numpy reference module's path (default: the repository's tests/).
    """
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    ref = load_reference(reference)
    frames, labels = render_scenes(n_frames, seed)
    h, w = next(iter(frames[0].values())).depth.shape
    configs = workloads(n_points, voxel_size, seed)
    results = {}
    rows = []
    for wname, base in configs.items():
        cfg = replace(base, device=device)
        # warm-up (torch kernels, caches), and the voxel counts farthest-point sampling sees
        infos = [perceive_cloud(f, config=cfg, seg_labels=labels).info for f in frames]
        perceive_cloud_batch(frames[:batch], config=cfg, seg_labels=labels)

        def numpy_single():
            for f in frames:
                ref.perceive_cloud(f, config=cfg, seg_labels=labels)

        def torch_single():
            for f in frames:
                perceive_cloud(f, config=cfg, seg_labels=labels)
            _sync(device)

        def torch_batched():
            for k in range(0, len(frames), batch):
                perceive_cloud_batch(frames[k:k + batch], config=cfg, seg_labels=labels)
            _sync(device)

        single, batched = f"torch_{device}_single", f"torch_{device}_batched"
        ms = {}
        if ref is not None:
            ms["numpy_single"] = 1000 * _time(numpy_single, repeats) / len(frames)
        ms[single] = 1000 * _time(torch_single, repeats) / len(frames)
        ms[batched] = 1000 * _time(torch_batched, repeats) / len(frames)
        voxels = [i.counts.get("voxels", 0) for i in infos]
        results[wname] = {
            "ms_per_frame": ms,
            "batched_over_single": ms[batched] / ms[single],
            "mean_voxels": float(np.mean(voxels)),
            "n_points": cfg.n_points,
            "padded_frames": int(sum(i.padded for i in infos)),
        }
        if ref is not None:
            results[wname]["torch_single_over_numpy"] = ms[single] / ms["numpy_single"]
        rows.append([wname, cfg.n_points, results[wname]["mean_voxels"], ms.get("numpy_single", float("nan")),
                     ms[single], ms[batched], results[wname].get("torch_single_over_numpy", float("nan"))])
    print(f"\nPerception: {w}x{h} depth -> base-frame points ({n_frames} rendered frames, batch {batch}, "
          f"voxel {voxel_size * 1000:.0f} mm, best of {repeats}), ms per frame"
          + ("" if ref is not None else " (numpy reference not found: tests/ is not next to the package)"))
    print(format_table(["workload", "points", "voxels", "numpy ref", f"torch {device}", f"torch {device} x{batch}",
                        "torch / numpy"], rows))
    metrics = {
        "command": "bench perception",
        "config": {"n_frames": n_frames, "batch": batch, "device": device, "n_points": n_points,
                   "torch_threads": torch_threads, "reference": None if ref is None else ref.__file__,
                   "voxel_size": voxel_size, "repeats": repeats, "seed": seed,
                   "image_size": [w, h], "perception": {k: asdict(v) for k, v in configs.items()}},
        "workloads": results,
    }
    print(f"metrics: {write_metrics(output_dir, metrics)}")
    return metrics


def bench_perception(cfg) -> dict:
    """`robot-rewards bench perception` (BenchPerceptionConfig)."""
    return run_perception_bench(cfg.output_dir, cfg.n_frames, cfg.batch, cfg.device, cfg.n_points,
                                cfg.voxel_size, cfg.repeats, cfg.seed, cfg.torch_threads)

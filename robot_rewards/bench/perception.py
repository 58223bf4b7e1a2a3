"""`robot-rewards bench perception`: 640x480 depth -> fixed-size base-frame cloud, ms per frame.

Frames are real PyBullet renders of tabletop scenes (rendered once, before timing). The same
pipeline runs three ways: numpy one frame at a time, torch on `device` one frame at a time,
and torch on `device` in batches of `batch` frames; the table shows ms per frame and the
batched / one-at-a-time ratio. Two workloads: the table kept in the crop (tens of thousands
of voxels for FPS to choose 2048 from) and objects only (table removed).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import numpy as np

from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.perception.perceive import PerceptionConfig, perceive_cloud, perceive_cloud_batch
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
        import torch

        torch.cuda.synchronize()


def run_perception_bench(output_dir, n_frames: int = 8, batch: int = 8, device: str = "cpu",
                         n_points: int = 2048, voxel_size: float = 0.005, repeats: int = 3,
                         seed: int = 0, torch_threads: int | None = None) -> dict:
    """Time the perception pipeline on rendered 640x480 frames; print a table and write
    `<output_dir>/metrics.json`. `device` is the torch device for the torch rows ('cpu', 'cuda');
    `torch_threads` sets torch's CPU thread count (on a busy machine 1 thread avoids the
    thread pool fighting other processes: the FPS loop is thousands of tiny ops).
    """
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))
    frames, labels = render_scenes(n_frames, seed)
    h, w = next(iter(frames[0].values())).depth.shape
    workloads = {
        "table kept": PerceptionConfig(table="none", voxel_size=voxel_size, n_points=n_points, seed=seed),
        "objects only": PerceptionConfig(table="known", voxel_size=voxel_size, n_points=n_points, seed=seed),
    }
    results = {}
    rows = []
    for wname, base in workloads.items():
        np_cfg = replace(base, device="numpy")
        th_cfg = replace(base, device=device)
        # warm-up (torch kernels, caches), and the voxel counts FPS sees
        infos = [perceive_cloud(f, config=np_cfg, seg_labels=labels).info for f in frames]
        perceive_cloud_batch(frames[:batch], config=th_cfg, seg_labels=labels)

        def numpy_single():
            for f in frames:
                perceive_cloud(f, config=np_cfg, seg_labels=labels)

        def torch_single():
            for f in frames:
                perceive_cloud_batch([f], config=th_cfg, seg_labels=labels)
            _sync(device)

        def torch_batched():
            for k in range(0, len(frames), batch):
                perceive_cloud_batch(frames[k:k + batch], config=th_cfg, seg_labels=labels)
            _sync(device)

        ms = {
            "numpy_single": 1000 * _time(numpy_single, repeats) / len(frames),
            f"torch_{device}_single": 1000 * _time(torch_single, repeats) / len(frames),
            f"torch_{device}_batched": 1000 * _time(torch_batched, repeats) / len(frames),
        }
        voxels = [i.counts.get("voxels", 0) for i in infos]
        results[wname] = {
            "ms_per_frame": ms,
            "batched_over_single": ms[f"torch_{device}_batched"] / ms[f"torch_{device}_single"],
            "torch_single_over_numpy": ms[f"torch_{device}_single"] / ms["numpy_single"],
            "mean_voxels": float(np.mean(voxels)),
            "padded_frames": int(sum(i.padded for i in infos)),
        }
        for mode, v in ms.items():
            rows.append([wname, mode, v, results[wname]["mean_voxels"]])
    print(f"\nPerception: {w}x{h} depth -> {n_points} points in the base frame "
          f"({n_frames} rendered frames, batch {batch}, voxel {voxel_size * 1000:.0f} mm, best of {repeats})")
    print(format_table(["workload", "mode", "ms/frame", "voxels"], rows))
    for wname, r in results.items():
        print(f"{wname}: batched / one-at-a-time = {r['batched_over_single']:.2f}, "
              f"torch one-at-a-time / numpy = {r['torch_single_over_numpy']:.2f}")
    metrics = {
        "command": "bench perception",
        "config": {"n_frames": n_frames, "batch": batch, "device": device, "n_points": n_points,
                   "torch_threads": torch_threads,
                   "voxel_size": voxel_size, "repeats": repeats, "seed": seed,
                   "image_size": [w, h], "perception": asdict(workloads["table kept"])},
        "workloads": results,
    }
    print(f"metrics: {write_metrics(output_dir, metrics)}")
    return metrics


def bench_perception(cfg) -> dict:
    """`robot-rewards bench perception` (BenchPerceptionConfig)."""
    return run_perception_bench(cfg.output_dir, cfg.n_frames, cfg.batch, cfg.device, cfg.n_points,
                                cfg.voxel_size, cfg.repeats, cfg.seed, cfg.torch_threads)

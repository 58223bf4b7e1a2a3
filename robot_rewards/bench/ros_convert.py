"""Benchmark: ROS message conversion (PointCloud2 xyz / xyzrgb, 640x480 Image) vs a naive loop.

Run:  robot-rewards bench ros-convert [n_points=300000] [repeats=20] [naive_points=20000] [seed=0]

Each conversion is timed `repeats` times (median reported), both ways, with rosbags message
classes. The naive reference packs/unpacks one point (or pixel) at a time with `struct`, as
hand-written converters often do; it runs on a subset and is scaled linearly to the full size
(its cost is linear by construction). Results print as a table and go to metrics.json.
"""

from __future__ import annotations

import statistics
import struct
import time
from collections.abc import Callable
from importlib.metadata import version

import numpy as np

from robot_rewards.core.reporting import write_metrics
from robot_rewards.ros import convert as rc


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


# --- the naive reference: one struct call per point / pixel -----------------------------------


def _naive_cloud_bytes(xyz: np.ndarray, rgb: np.ndarray | None) -> bytes:
    if rgb is None:
        return b"".join(struct.pack("<fff", x, y, z) for x, y, z in xyz.tolist())
    return b"".join(
        struct.pack("<fffI", x, y, z, (r << 16) | (g << 8) | b)
        for (x, y, z), (r, g, b) in zip(xyz.tolist(), rgb.tolist())
    )


def _naive_cloud_points(data: bytes, n: int, with_rgb: bool):
    step = 16 if with_rgb else 12
    xyz, rgb = [], []
    for i in range(n):
        if with_rgb:
            x, y, z, packed = struct.unpack_from("<fffI", data, i * step)
            rgb.append(((packed >> 16) & 255, (packed >> 8) & 255, packed & 255))
        else:
            x, y, z = struct.unpack_from("<fff", data, i * step)
        xyz.append((x, y, z))
    points = np.array(xyz, dtype=np.float32)
    return (points, np.array(rgb, dtype=np.uint8)) if with_rgb else points


def _naive_image_bytes(image: np.ndarray) -> bytes:
    return b"".join(struct.pack("BBB", r, g, b) for row in image.tolist() for r, g, b in row)


def _naive_image_pixels(data: bytes, height: int, width: int) -> np.ndarray:
    pixels = [struct.unpack_from("BBB", data, 3 * i) for i in range(height * width)]
    return np.array(pixels, dtype=np.uint8).reshape(height, width, 3)


# --- the benchmark ---------------------------------------------------------------------------


def _cloud_case(xyz, rgb, n_naive: int, repeats: int, naive_repeats: int) -> dict:
    types = rc.ROSBAGS_TYPES
    msg = rc.points_to_msg(xyz, "base", types, rgb=rgb)
    with_rgb = rgb is not None
    to_ms = _median_ms(lambda: rc.points_to_msg(xyz, "base", types, rgb=rgb), repeats)
    from_ms = _median_ms(lambda: rc.msg_to_points(msg, with_rgb=with_rgb), repeats)

    # The naive loop must produce the same bytes and values, or its timing means nothing.
    sub_xyz, sub_rgb = xyz[:n_naive], None if rgb is None else rgb[:n_naive]
    sub_data = np.asarray(rc.points_to_msg(sub_xyz, "base", types, rgb=sub_rgb).data).tobytes()
    assert _naive_cloud_bytes(sub_xyz, sub_rgb) == sub_data
    decoded = _naive_cloud_points(sub_data, n_naive, with_rgb)
    assert np.array_equal(decoded[0] if with_rgb else decoded, sub_xyz)
    scale = len(xyz) / n_naive
    naive_to = scale * _median_ms(lambda: _naive_cloud_bytes(sub_xyz, sub_rgb), naive_repeats)
    naive_from = scale * _median_ms(
        lambda: _naive_cloud_points(sub_data, n_naive, with_rgb), naive_repeats
    )
    return _row(to_ms, from_ms, naive_to, naive_from, len(xyz), n_naive)


def _image_case(image, n_naive_rows: int, repeats: int, naive_repeats: int) -> dict:
    types = rc.ROSBAGS_TYPES
    msg = rc.image_to_msg(image, "rgb8", "camera", types)
    to_ms = _median_ms(lambda: rc.image_to_msg(image, "rgb8", "camera", types), repeats)
    from_ms = _median_ms(lambda: rc.msg_to_image(msg), repeats)

    sub = image[:n_naive_rows]
    sub_data = _naive_image_bytes(sub)
    assert sub_data == np.asarray(rc.image_to_msg(sub, "rgb8", "camera", types).data).tobytes()
    assert np.array_equal(_naive_image_pixels(sub_data, *sub.shape[:2]), sub)
    scale = image.shape[0] / n_naive_rows
    naive_to = scale * _median_ms(lambda: _naive_image_bytes(sub), naive_repeats)
    naive_from = scale * _median_ms(
        lambda: _naive_image_pixels(sub_data, *sub.shape[:2]), naive_repeats
    )
    return _row(
        to_ms,
        from_ms,
        naive_to,
        naive_from,
        image.shape[0] * image.shape[1],
        n_naive_rows * image.shape[1],
    )


def _row(to_ms, from_ms, naive_to, naive_from, size, naive_size) -> dict:
    return {
        "size": int(size),
        "to_msg_ms": round(to_ms, 4),
        "from_msg_ms": round(from_ms, 4),
        "naive_to_msg_ms": round(naive_to, 2),
        "naive_from_msg_ms": round(naive_from, 2),
        "naive_measured_on": int(naive_size),
        "speedup_to_msg": round(naive_to / to_ms, 1),
        "speedup_from_msg": round(naive_from / from_ms, 1),
    }


def run_ros_convert_bench(
    output_dir,
    n_points: int = 300_000,
    repeats: int = 20,
    naive_points: int = 20_000,
    naive_repeats: int = 3,
    seed: int = 0,
) -> dict:
    """Time conversions both ways, print a table and write metrics.json into output_dir."""
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-2.0, 2.0, size=(n_points, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(n_points, 3), dtype=np.uint8)
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    n_naive = min(naive_points, n_points)
    naive_rows = max(1, min(480, naive_points // 640))
    cases = {
        "pointcloud2_xyz": _cloud_case(xyz, None, n_naive, repeats, naive_repeats),
        "pointcloud2_xyzrgb": _cloud_case(xyz, rgb, n_naive, repeats, naive_repeats),
        "image_rgb8_640x480": _image_case(image, naive_rows, repeats, naive_repeats),
    }
    metrics = {
        "benchmark": "ros_convert",
        "n_points": n_points,
        "repeats": repeats,
        "naive_points": n_naive,
        "seed": seed,
        "rosbags_version": version("rosbags"),
        "typestore": rc.rosbags_store().value,
        "numpy_version": np.__version__,
        "cases": cases,
    }
    _print_table(metrics)
    print(f"metrics: {write_metrics(output_dir, metrics)}")
    return metrics


def _print_table(metrics: dict) -> None:
    header = (
        f"{'case':<22}{'size':>9}{'to msg ms':>11}{'from msg ms':>13}"
        f"{'naive to':>11}{'naive from':>12}{'x to':>8}{'x from':>8}"
    )
    print(
        f"ROS conversion, median of {metrics['repeats']} runs "
        "(naive: struct per element, scaled from a subset; x = naive / ours)"
    )
    print(header)
    print("-" * len(header))
    for name, r in metrics["cases"].items():
        print(
            f"{name:<22}{r['size']:>9}{r['to_msg_ms']:>11.2f}{r['from_msg_ms']:>13.2f}"
            f"{r['naive_to_msg_ms']:>11.1f}{r['naive_from_msg_ms']:>12.1f}"
            f"{r['speedup_to_msg']:>8.0f}{r['speedup_from_msg']:>8.0f}"
        )


def bench_ros_convert(cfg) -> dict:
    """`robot-rewards bench ros-convert` (config: BenchRosConvertConfig)."""
    return run_ros_convert_bench(cfg.output_dir, cfg.n_points, cfg.repeats, cfg.naive_points,
                                 cfg.naive_repeats, cfg.seed)

"""`msg_to_points(drop_nan=True)` vs `drop_nan=False` on dense and non-dense PointCloud2s.

    .venv/bin/python benchmarks/cloud_drop_nan.py [n_points] [repeats]

Prints the best-of-`repeats` milliseconds of each call and the ratio. A dense cloud (is_dense
set) is not scanned for NaNs, so both calls should cost the same; a non-dense one pays for the
finite mask and the copy of the kept points.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from robot_rewards.core.reporting import format_table
from robot_rewards.ros import convert as rc


def best_ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main(n_points: int = 300_000, repeats: int = 15) -> list[list]:
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(n_points, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=xyz.shape, dtype=np.uint8)
    holed = xyz.copy()
    holed[::7, 1] = np.nan  # one point in 7 invalid, as behind a depth camera's shadows
    clouds = {
        "xyz, dense": rc.points_to_msg(xyz, "base", rc.ROSBAGS_TYPES),
        "xyz+rgb, dense": rc.points_to_msg(xyz, "base", rc.ROSBAGS_TYPES, rgb=rgb),
        "xyz, 1/7 NaN": rc.points_to_msg(holed, "base", rc.ROSBAGS_TYPES),
    }
    rows = []
    for name, msg in clouds.items():
        plain = best_ms(lambda m=msg: rc.msg_to_points(m), repeats)
        dropping = best_ms(lambda m=msg: rc.msg_to_points(m, drop_nan=True), repeats)
        rows.append([name, bool(msg.is_dense), plain, dropping, dropping / plain])
    print(f"msg_to_points on {n_points} points, best of {repeats}")
    print(format_table(["cloud", "is_dense", "plain ms", "drop_nan ms", "ratio"], rows))
    return rows


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

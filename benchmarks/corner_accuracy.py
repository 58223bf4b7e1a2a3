"""Chessboard corner accuracy on photo-like renders with known corners, and the calibrations
those corners give, per corner refinement (`cornersubpix`, the default, and `sb`).

    .venv/bin/python benchmarks/corner_accuracy.py [n_views] [seed]

Renders `n_views` views per condition (robot_rewards.calibration.accuracy.CONDITIONS: clean,
JPEG + blur, heavy JPEG + blur + uneven light, a small board far away) of a 9x6-corner board
through a 640x480 camera with barrel distortion and k3 != 0, and prints: views detected, the
median and 90th-percentile corner error (px), and for the ROS model (k3 = 0, "4 coef") and the
full plumb_bob model ("5 coef") the fx error (%), the sum of |distortion coefficient errors| and
the RMS reprojection error (px).
"""

from __future__ import annotations

import sys
import time

from robot_rewards.calibration.accuracy import accuracy_rows, corner_accuracy
from robot_rewards.core.reporting import format_table


def main(n_views: int = 10, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    results = corner_accuracy(n_views=n_views, seed=seed)
    headers = ["condition", "refinement", "views", "median px", "p90 px",
               "4 coef fx %", "4 coef |dD|", "4 coef rms", "5 coef fx %", "5 coef |dD|", "5 coef rms"]
    print(f"chessboard corner accuracy, {n_views} views per condition, seed {seed} "
          f"({time.perf_counter() - t0:.0f} s)")
    print(format_table(headers, accuracy_rows(results)))
    return results


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

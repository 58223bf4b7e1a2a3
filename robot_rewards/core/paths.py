"""Find the installed data folder (launch/, config/, sim/, calibration/) however the package was installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "robot_rewards"


def share_dir() -> Path:
    """The folder holding `sim/`, `calibration/`, `launch/` and `config/`.

    Looked up in order: $ROBOT_REWARDS_SHARE; the source checkout (editable installs and
    running from the repo); the ament index (colcon builds); `<prefix>/share/robot_rewards`
    (pip installs, where setup.py's data_files put it).
    """
    env = os.environ.get("ROBOT_REWARDS_SHARE")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "package.xml").is_file() and (checkout / "sim").is_dir():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # not a ROS environment, or the package is not in the ament index
        pass
    for prefix in (sys.prefix, sys.base_prefix):
        candidate = Path(prefix) / "share" / PACKAGE
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "cannot find the robot_rewards data folder (sim/, calibration/); "
        "install the package or set ROBOT_REWARDS_SHARE"
    )


def data_file(*parts: str) -> Path:
    """Path of a shipped data file, e.g. ``data_file("calibration", "front_camera.yaml")``."""
    path = share_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"missing data file {path} (looked in {share_dir()})")
    return path


def resolve(path: str | os.PathLike) -> Path:
    """An existing path as given, or else relative to the data folder."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    return data_file(*p.parts)

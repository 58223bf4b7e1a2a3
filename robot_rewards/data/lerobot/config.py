"""Structured configs of `robot-rewards export-lerobot` and `robot-rewards import-lerobot`."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class ExportLeRobotConfig:
    """`robot-rewards export-lerobot episodes=demos.h5 [out=DIR] [fps=1] [codec=libsvtav1]`."""

    episodes: str = MISSING  # episode HDF5 file (collect-demos, experiment episodes)
    out: str = ""  # dataset folder (must not exist); default <output_dir>/lerobot
    select: list[int] = field(default_factory=list)  # episode indices to export ([] = all)
    fps: int = 1  # one frame per observation: frames per second recorded in info.json
    codec: str = "libsvtav1"  # libsvtav1 (LeRobot's default) | libx264 | libx265 | libaom-av1
    crf: int = 30
    gop: int = 2
    segmentation: bool = True  # also the body-id images (sim ground truth)
    robot_type: str = ""  # info.json robot_type ('' = null)
    output_dir: str = _OUT.format("export-lerobot")


@dataclass
class ImportLeRobotConfig:
    """`robot-rewards import-lerobot dataset=DIR [out=episodes.h5] [select=[0,2]]`."""

    dataset: str = MISSING  # LeRobot v3.0 dataset folder
    out: str = ""  # episode HDF5 file (appended to if it exists); default <output_dir>/episodes.h5
    select: list[int] = field(default_factory=list)  # episode indices to import ([] = all)
    output_dir: str = _OUT.format("import-lerobot")

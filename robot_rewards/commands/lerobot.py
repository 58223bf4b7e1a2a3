"""`robot-rewards export-lerobot` and `robot-rewards import-lerobot`: LeRobotDataset v3.0 folders."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.data.lerobot.config import ExportLeRobotConfig, ImportLeRobotConfig
from robot_rewards.data.lerobot.export import ExportOptions, export_lerobot
from robot_rewards.data.lerobot.importer import import_lerobot


def _bar(desc: str):
    return lambda items, total: tqdm(items, total=total, desc=desc, unit="ep")


def export_lerobot_command(cfg: ExportLeRobotConfig) -> dict:
    """Write an episode file as a LeRobotDataset v3.0 folder; prints what went where."""
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "lerobot"
    options = ExportOptions(fps=cfg.fps, codec=cfg.codec, crf=cfg.crf, gop=cfg.gop, segmentation=cfg.segmentation,
                            episodes=list(cfg.select), robot_type=cfg.robot_type or None)
    s = export_lerobot(resolve(cfg.episodes), out, options, progress=_bar("export"))
    print(f"\nLeRobot v3.0 dataset {s.out}: {s.episodes} episodes, {s.frames} frames, "
          f"{len(s.tasks)} tasks, {s.bytes / 2**20:.1f} MiB")
    print(format_table(["feature"], [(f,) for f in s.features]))
    metrics = {"command": "export-lerobot", "config": asdict(cfg), "dataset": str(s.out), "episodes": s.episodes,
               "frames": s.frames, "tasks": len(s.tasks), "bytes": s.bytes, "features": s.features}
    write_metrics(cfg.output_dir, metrics)
    return metrics


def import_lerobot_command(cfg: ImportLeRobotConfig) -> dict:
    """Append a LeRobot v3.0 dataset's episodes to an episode file."""
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "episodes.h5"
    s = import_lerobot(resolve(cfg.dataset), out, list(cfg.select) or None, progress=_bar("import"))
    print(f"\nimported {s.episodes} episodes ({s.frames} observations) of {s.task} into {s.out}, "
          f"from key {s.first_key}; cameras {', '.join(s.cameras)}")
    metrics = {"command": "import-lerobot", "config": asdict(cfg), "episode_file": str(s.out),
               "episodes": s.episodes, "observations": s.frames, "first_key": s.first_key, "task": s.task}
    write_metrics(cfg.output_dir, metrics)
    return metrics

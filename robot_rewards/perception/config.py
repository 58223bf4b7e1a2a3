"""`PerceptionConfig`, apart from the pipeline so that configs load without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class PerceptionConfig:
    """Settings of `perceive` (a hydra structured config; lengths in metres, base frame)."""

    device: str = "auto"  # auto|torch (CUDA if present, else CPU) | cpu | cuda[:N]; numpy = cpu (older configs)
    min_depth: float = 0.05
    max_depth: float = 2.5
    # Workspace crop box in the base frame; None disables the crop.
    workspace_lower: Optional[List[float]] = field(default_factory=lambda: [0.1, -0.5, -0.02])
    workspace_upper: Optional[List[float]] = field(default_factory=lambda: [0.9, 0.5, 0.5])
    table: str = "known"  # known (plane z = table_height) | ransac | none
    table_height: float = 0.0
    table_threshold: float = 0.004  # points within this of the plane (or below it) are removed
    ransac_iterations: int = 256
    # table=ransac: the base frame's up direction, and how far (degrees) the table's normal may
    # tilt from it; a cloud whose frame is not z-up needs its own up axis here.
    table_up: List[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])
    table_max_tilt_deg: float = 30.0
    # Segments (object names from seg_labels, or body ids as strings) to keep / to drop.
    keep_segments: Optional[List[str]] = None
    drop_segments: Optional[List[str]] = None
    voxel_size: float = 0.005  # 0 disables voxel downsampling
    n_points: int = 2048
    sampling: str = "fps"  # fps | random
    colors: bool = True
    seed: int = 0

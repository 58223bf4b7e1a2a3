"""What every task provides: a seeded scene, a goal sentence, a success test, a quality
measure, a step budget and a scripted expert that uses privileged sim state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.world import World

# Named colours used for objects and in goal sentences.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.9, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
    "purple": (0.55, 0.2, 0.75, 1.0),
    "orange": (1.0, 0.5, 0.05, 1.0),
}
BLOCK_HALF = 0.02  # 4 cm cubes
BLOCK_MASS = 0.05


class Task(ABC):
    """A tabletop task. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    primitive: ClassVar[str]  # the primitive the expert uses: "pick_place" or "push"
    max_steps: ClassVar[int]  # step budget of an episode

    goal: str = ""

    @abstractmethod
    def reset(self, world: World, rng: np.random.Generator) -> str:
        """Build a random scene in an empty `world`; return the language goal."""

    @abstractmethod
    def success(self, world: World) -> bool:
        """Whether the goal is achieved in the current state."""

    @abstractmethod
    def quality(self, world: World) -> float:
        """Residual distance to the goal configuration in metres (lower is better, 0 = perfect)."""

    @abstractmethod
    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        """The scripted expert's next primitive, from privileged state."""

    def grasp_targets(self, world: World) -> np.ndarray | None:
        """(K, 3) points that a useful grasp lands near (the expert grasps one of them), for
        evaluation diagnostics only; None for tasks that do not define them."""
        return None

    # -- helpers shared by the experts -----------------------------------------------------
    @staticmethod
    def jitter(xyz, rng: np.random.Generator, cfg: ExpertConfig) -> np.ndarray:
        """Position with the expert's Gaussian noise (none when cfg.noise == 0)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        if cfg.noise <= 0:
            return xyz.copy()
        return xyz + rng.normal(0.0, cfg.noise * cfg.pos_std, size=3)

    @staticmethod
    def jitter_yaw(yaw: float, rng: np.random.Generator, cfg: ExpertConfig) -> float:
        if cfg.noise <= 0:
            return float(yaw)
        return float(yaw + rng.normal(0.0, cfg.noise * cfg.yaw_std))

    @staticmethod
    def poor(rng: np.random.Generator, cfg: ExpertConfig) -> bool:
        """Whether this action should be a deliberately poor one."""
        return cfg.noise > 0 and rng.random() < cfg.noise * cfg.poor_rate


def sample_positions(
    rng: np.random.Generator, n: int, min_dist, low=(0.35, -0.25), high=(0.65, 0.25), tries: int = 1000
) -> np.ndarray:
    """n xy positions in the box [low, high] with pairwise distances >= min_dist[i] + min_dist[j].

    `min_dist` is a radius per position (or one number for all); rejection sampling.
    """
    radii = np.broadcast_to(np.asarray(min_dist, dtype=np.float64), (n,))
    out: list[np.ndarray] = []
    for i in range(n):
        for _ in range(tries):
            cand = rng.uniform(low, high)
            if all(np.linalg.norm(cand - q) >= radii[i] + radii[j] for j, q in enumerate(out)):
                out.append(cand)
                break
        else:
            raise RuntimeError(f"could not place {n} objects without overlap; widen the area")
    return np.array(out)

"""place_block: several coloured blocks and bowls; "put the red block in the green bowl"."""

from __future__ import annotations

import numpy as np

from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks.base import BLOCK_HALF, BLOCK_MASS, COLORS, Task, sample_positions
from robot_rewards.sim.world import World

BOWL_INNER_RADIUS = 0.055
BOWL_WALL = 0.025
BOWL_FLOOR = 0.004


class PlaceBlock(Task):
    """Success: the named block rests inside the named bowl (centre within the inner radius
    less half a block, below the rim)."""

    name = "place_block"
    primitive = "pick_place"
    max_steps = 3

    def __init__(self, n_blocks: int = 3, n_bowls: int = 2):
        self.n_blocks, self.n_bowls = n_blocks, n_bowls

    def reset(self, world: World, rng: np.random.Generator) -> str:
        names = list(COLORS)
        block_colors = rng.choice(names, self.n_blocks, replace=False)
        bowl_colors = rng.choice(names, self.n_bowls, replace=False)
        radii = [BOWL_INNER_RADIUS + 0.015] * self.n_bowls + [0.04] * self.n_blocks
        xy = sample_positions(rng, self.n_bowls + self.n_blocks, radii)
        self.bowls = [f"{c}_bowl" for c in bowl_colors]
        self.blocks = [f"{c}_block" for c in block_colors]
        for name, c, pos in zip(self.bowls, bowl_colors, xy[: self.n_bowls]):
            world.add_bowl(name, [*pos, 0.0], COLORS[c], BOWL_INNER_RADIUS, BOWL_WALL)
        for name, c, pos in zip(self.blocks, block_colors, xy[self.n_bowls :]):
            world.add_box(name, [BLOCK_HALF] * 3, [*pos, BLOCK_HALF], COLORS[c], BLOCK_MASS,
                          yaw=rng.uniform(-np.pi, np.pi))
        world.settle()
        self.target_block, self.target_bowl = self.blocks[0], self.bowls[0]
        self.goal = (f"put the {self.target_block.replace('_', ' ')} in the "
                     f"{self.target_bowl.replace('_', ' ')}")
        return self.goal

    def _offset(self, world: World) -> np.ndarray:
        return world.position(self.target_block) - world.position(self.target_bowl)

    def success(self, world: World) -> bool:
        d = self._offset(world)
        return bool(np.linalg.norm(d[:2]) < BOWL_INNER_RADIUS - BLOCK_HALF + 0.005
                    and d[2] < BOWL_WALL + BLOCK_HALF)

    def quality(self, world: World) -> float:
        return float(np.linalg.norm(self._offset(world)[:2]))

    def grasp_targets(self, world: World) -> np.ndarray:
        """The block to be placed."""
        return world.position(self.target_block)[None]

    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        block = world.position(self.target_block)
        yaw = world.yaw(self.target_block)
        bowl = world.position(self.target_bowl)
        if cfg.multimodal:
            yaw += rng.integers(0, 2) * np.pi / 2  # either pair of faces
            r, a = rng.uniform(0, 0.02), rng.uniform(0, 2 * np.pi)
            bowl = bowl + [r * np.cos(a), r * np.sin(a), 0.0]
        place = np.array([bowl[0], bowl[1], BOWL_FLOOR + BLOCK_HALF + 0.01])
        if self.poor(rng, cfg):
            others = [b for b in self.bowls if b != self.target_bowl]
            if others and rng.random() < 0.5:
                place[:2] = world.position(others[rng.integers(len(others))])[:2]
            else:
                place[:2] = rng.uniform([0.35, -0.25], [0.65, 0.25])
                place[2] = BLOCK_HALF + 0.01
        pick = np.array([block[0], block[1], max(block[2], BLOCK_HALF)])
        return Primitive.pick_place(
            self.jitter(pick, rng, cfg), self.jitter(place, rng, cfg), self.jitter_yaw(yaw, rng, cfg)
        )

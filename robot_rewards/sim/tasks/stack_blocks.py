"""stack_blocks: stack three named blocks in a given order (several pick-and-place steps)."""

from __future__ import annotations

import numpy as np

from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks.base import BLOCK_HALF, BLOCK_MASS, COLORS, Task, sample_positions
from robot_rewards.sim.world import World

STACK_XY_TOL = 0.015
STACK_Z_TOL = 0.01


class StackBlocks(Task):
    """Success: block 2 sits on block 1 and block 3 on block 2 (centres within 1.5 cm in xy,
    heights within 1 cm of one block size apart)."""

    name = "stack_blocks"
    primitive = "pick_place"
    max_steps = 6

    def reset(self, world: World, rng: np.random.Generator) -> str:
        colors = rng.choice(list(COLORS), 3, replace=False)
        xy = sample_positions(rng, 3, 0.05)
        self.order = [f"{c}_block" for c in colors]  # bottom, middle, top
        for name, c, pos in zip(self.order, colors, xy):
            world.add_box(name, [BLOCK_HALF] * 3, [*pos, BLOCK_HALF], COLORS[c], BLOCK_MASS,
                          yaw=rng.uniform(-np.pi, np.pi))
        world.settle()
        self.goal = (f"stack the blocks: the {colors[0]} block at the bottom, "
                     f"the {colors[1]} block in the middle and the {colors[2]} block on top")
        return self.goal

    def _on(self, world: World, upper: str, lower: str) -> bool:
        d = world.position(upper) - world.position(lower)
        return bool(np.linalg.norm(d[:2]) < STACK_XY_TOL and abs(d[2] - 2 * BLOCK_HALF) < STACK_Z_TOL)

    def success(self, world: World) -> bool:
        bottom, middle, top = self.order
        return self._on(world, middle, bottom) and self._on(world, top, middle)

    def quality(self, world: World) -> float:
        """Sum over the two upper blocks of their distance to where the stack wants them."""
        base = world.position(self.order[0])
        err = 0.0
        for level, name in enumerate(self.order[1:], start=1):
            want = base + [0.0, 0.0, 2 * BLOCK_HALF * level]
            err += float(np.linalg.norm(world.position(name) - want))
        return err

    def _free_spot(self, world: World, rng: np.random.Generator) -> np.ndarray:
        others = [world.position(n)[:2] for n in self.order]
        for _ in range(200):
            xy = rng.uniform([0.35, -0.25], [0.65, 0.25])
            if all(np.linalg.norm(xy - o) > 0.08 for o in others):
                return xy
        return xy

    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        bottom, middle, top = self.order
        if not self._on(world, middle, bottom):
            # Whatever sits on the block we need to move comes off first.
            blocker = next((n for n in self.order if n != middle and self._on(world, n, middle)), None)
            blocked_base = next((n for n in self.order if n != bottom and self._on(world, n, bottom)), None)
            if blocker is not None:
                moving, dest = blocker, np.r_[self._free_spot(world, rng), BLOCK_HALF]
            elif blocked_base is not None:
                moving, dest = blocked_base, np.r_[self._free_spot(world, rng), BLOCK_HALF]
            else:
                moving, dest = middle, world.position(bottom) + [0, 0, 2 * BLOCK_HALF]
        else:
            moving, dest = top, world.position(middle) + [0, 0, 2 * BLOCK_HALF]
        if self.poor(rng, cfg):
            dest = np.r_[self._free_spot(world, rng), BLOCK_HALF]
        pick = world.position(moving)
        yaw = world.yaw(moving) + (rng.integers(0, 2) * np.pi / 2 if cfg.multimodal else 0.0)
        place = dest + [0.0, 0.0, 0.008]  # release just above the contact
        return Primitive.pick_place(
            self.jitter(pick, rng, cfg), self.jitter(place, rng, cfg), self.jitter_yaw(yaw, rng, cfg)
        )

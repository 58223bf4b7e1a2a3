"""place_block: several coloured blocks and bowls; "put the red block in the green bowl"."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from robot_rewards.core.keypoints import Keypoints
from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.intents import Intent
from robot_rewards.sim.tasks.base import (
    BLOCK_HALF,
    BLOCK_MASS,
    COLORS,
    Captions,
    CaptionSpec,
    KeypointReading,
    Task,
    clear_spot,
    sample_positions,
)
from robot_rewards.sim.world import World

BOWL_INNER_RADIUS = 0.055
BOWL_WALL = 0.025
BOWL_FLOOR = 0.004

# CLIP wording: the generic scene (VLM-RM baseline prompt) and the state captions.
PLACE_BASELINE = "blocks and bowls on a table"
_GOAL = re.compile(r"^put the (\w+) block in the (\w+) bowl$")


def block_in_bowl(block: str, bowl: str) -> str:
    return f"the {block} block is in the {bowl} bowl"


def block_outside(block: str) -> str:
    return f"the {block} block is not in a bowl"


def bowl_empty(bowl: str) -> str:
    return f"the {bowl} bowl is empty"


def toward_base(block_xy, bowl_xy) -> float:
    """The block's offset from the bowl centre along the unit direction from the bowl to the
    robot base (at the origin), in m: > 0 in the bowl's half nearest the robot."""
    bowl = np.asarray(bowl_xy, np.float64)[:2]
    to_base = -bowl / max(float(np.linalg.norm(bowl)), 1e-9)
    return float((np.asarray(block_xy, np.float64)[:2] - bowl) @ to_base)


class NearHalf(Intent):
    """"near_half": the target block ends in the target bowl (the task's success) and in the
    half of that bowl nearest the robot base: its xy offset from the bowl centre points towards
    the base (`toward_base` > 0). The task metric does not care where in the bowl it rests."""

    name = "near_half"
    description = "the block in the half of the bowl nearest the robot"

    def satisfied(self, task: Task, world: World, before: Any) -> bool:
        """Success, with the block on the robot's side of the bowl centre."""
        return bool(task.success(world)) and toward_base(world.position(task.target_block),
                                                         world.position(task.target_bowl)) > 0.0


class PlaceBlock(Task):
    """Success: the named block rests inside the named bowl (centre within the inner radius
    less half a block, below the rim)."""

    name = "place_block"
    primitive = "pick_place"
    max_steps = 3
    keypoint_names = ("block",)
    # the block and its bowl / mark are the same after a step: the keypoint model measures outcomes
    # the block's top face; the bowl's rim top (z 20-30 mm, around its 55 mm inner radius)
    outcome_from_keypoints = KeypointReading(object_top=0.028, target_ring=(0.045, 0.08, 0.020, 0.030))
    captioning = CaptionSpec(config_prefix="place", seed_salt=1, reset_frame=True, metric="auc")
    scene_words = frozenset({"block", "bowl"})
    baseline = PLACE_BASELINE
    intents: ClassVar[dict[str, Intent]] = {NearHalf.name: NearHalf()}  # see robot_rewards.sim.intents

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

    @staticmethod
    def _inside(world: World, block: str, bowl: str) -> bool:
        """Whether `block` rests inside `bowl` (the success test for any block and bowl)."""
        d = world.position(block) - world.position(bowl)
        return bool(np.linalg.norm(d[:2]) < BOWL_INNER_RADIUS - BLOCK_HALF + 0.005
                    and d[2] < BOWL_WALL + BLOCK_HALF)

    def success(self, world: World) -> bool:
        return self._inside(world, self.target_block, self.target_bowl)

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

    # -- keypoints, perturbations, captions ----------------------------------------------------
    def keypoints(self, world: World) -> Keypoints:
        """Target block centre -> where its centre rests in the target bowl."""
        bowl = world.position(self.target_bowl)
        return Keypoints([world.position(self.target_block)], [[bowl[0], bowl[1], BOWL_FLOOR + BLOCK_HALF]],
                         [self.target_block])

    def perturb(self, world: World, rng: np.random.Generator) -> str:
        """Teleport the target block into the target bowl (40%), another bowl (20%) or a clear
        table spot (40%) and settle; returns "target_bowl", "other_bowl" or "table"."""
        block = self.target_block
        others = [b for b in self.bowls if b != self.target_bowl]
        u = rng.random()
        where = "target_bowl" if u < 0.4 or (u < 0.6 and not others) else "other_bowl" if u < 0.6 else "table"
        xy = None
        if where == "table":
            xy = clear_spot(rng, world, [n for n in self.bowls + self.blocks if n != block])
            where = "target_bowl" if xy is None else where
        if where != "table":
            bowl = self.target_bowl if where == "target_bowl" else others[int(rng.integers(len(others)))]
            r, a = rng.uniform(0, 0.02), rng.uniform(-np.pi, np.pi)
            xy = world.position(bowl)[:2] + r * np.array([np.cos(a), np.sin(a)])
            z = BOWL_FLOOR + BLOCK_HALF + 0.003
        else:
            z = BLOCK_HALF + 0.002
        world.teleport(block, [xy[0], xy[1], z], rng.uniform(-np.pi, np.pi))
        world.settle(max_s=1.0)
        return where

    def captions(self, world: World) -> Captions:
        """Per block and bowl "in" / "not in a bowl" / "empty" facts, with the success test."""
        colour = lambda name: name.rsplit("_", 1)[0]
        true, false = [PLACE_BASELINE], []
        filled = set()
        for block in self.blocks:
            inside = [bowl for bowl in self.bowls if self._inside(world, block, bowl)]
            filled.update(inside)
            for bowl in self.bowls:
                (true if bowl in inside else false).append(block_in_bowl(colour(block), colour(bowl)))
            (false if inside else true).append(block_outside(colour(block)))
        for bowl in self.bowls:
            (false if bowl in filled else true).append(bowl_empty(colour(bowl)))
        return Captions(true, false)

    def arrange(self, world: World, rng: np.random.Generator) -> None:
        """Move the blocks to new places: the goal's block in its bowl ~45% of the time, otherwise
        just outside it, in another bowl or anywhere; other blocks in free bowls or on the table."""
        bowls = {b: world.position(b)[:2] for b in self.bowls}
        placed: list[np.ndarray] = []
        free_bowls = list(self.bowls)

        def on_table(near: np.ndarray | None = None) -> np.ndarray:
            for _ in range(500):
                if near is not None:  # a near miss: just outside the rim
                    a = rng.uniform(0, 2 * np.pi)
                    xy = near + rng.uniform(0.085, 0.12) * np.array([np.cos(a), np.sin(a)])
                else:
                    xy = rng.uniform([0.33, -0.27], [0.67, 0.27])
                if all(np.linalg.norm(xy - c) > 0.09 for c in bowls.values()) and \
                        all(np.linalg.norm(xy - q) > 0.065 for q in placed):
                    return xy
            raise RuntimeError("could not find a free spot on the table")

        def in_bowl(bowl: str) -> np.ndarray:
            r, a = rng.uniform(0, 0.015), rng.uniform(0, 2 * np.pi)
            free_bowls.remove(bowl)
            return bowls[bowl] + r * np.array([np.cos(a), np.sin(a)])

        for i, block in enumerate(self.blocks):
            u = rng.random()
            if i == 0:  # the goal's block
                target = self.target_bowl
                if u < 0.45:
                    xy, z = in_bowl(target), BOWL_FLOOR + BLOCK_HALF + 0.003
                elif u < 0.65:
                    xy, z = on_table(near=bowls[target]), BLOCK_HALF + 0.001
                elif u < 0.8 and len(free_bowls) > 1:
                    xy, z = in_bowl(next(b for b in free_bowls if b != target)), BOWL_FLOOR + BLOCK_HALF + 0.003
                else:
                    xy, z = on_table(), BLOCK_HALF + 0.001
            elif u < 0.3 and free_bowls:
                xy, z = in_bowl(free_bowls[int(rng.integers(len(free_bowls)))]), BOWL_FLOOR + BLOCK_HALF + 0.003
            else:
                near = bowls[self.bowls[int(rng.integers(len(self.bowls)))]] if u < 0.5 else None
                xy, z = on_table(near), BLOCK_HALF + 0.001
            placed.append(xy)
            world.teleport(block, (xy[0], xy[1], z), rng.uniform(-np.pi, np.pi))
        world.settle()

    @classmethod
    def goal_prompts(cls, goal: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The goal "put the red block in the green bowl" -> "the red block is in the green bowl"."""
        m = _GOAL.match(goal)
        return ((block_in_bowl(*m.groups()),), (PLACE_BASELINE,)) if m else None

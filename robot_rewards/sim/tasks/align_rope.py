"""align_rope: straighten a deformable rope between two marks on the table.

The DeformPAM rope task / CLIPort's align-rope on the PyBullet tabletop. The rope (see
`robot_rewards.sim.rope`) starts in a random smooth curve; two flat coloured marks define the
target segment, slightly shorter than the rope, so a straight rope centred on the segment
overhangs each mark by (`RopeSpec.length` - `MARK_SPAN`) / 2 = 22.5 mm.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.primitives.kinematics import HOME, down_quat, wrap_gripper_yaw
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.rope import Rope, RopeSpec, chain_from_headings, point_segment_distances
from robot_rewards.sim.tasks.base import COLORS, Task
from robot_rewards.sim.world import World

ROPE = RopeSpec()
MARK_SPAN = 0.43  # m between the two mark centres (rope: 0.475 m between end-link centres)
MARK_HALF = (0.018, 0.018, 0.0005)  # flat 36 mm squares, visual only
MARK_COLORS = ("red", "blue", "green", "yellow", "purple")
# where rope links and marks may lie (inside the Workspace, away from its edges)
REGION_LOW = np.array([0.35, -0.28])
REGION_HIGH = np.array([0.70, 0.28])
GRASP_Z = 0.011  # m: grasp point height; the fingertips reach ~8 mm below it (table at z = 0)
PLACE_Z = 0.011

SUCCESS_MEAN_DIST = 0.02  # m: mean distance of the link centres to the target segment
SUCCESS_END_DIST = 0.03  # m: each rope end to its mark (the straight rope overhangs 12.5 mm)

GOALS = (
    "straighten the rope between the {a} and {b} marks",
    "align the rope between the {a} mark and the {b} mark",
    "lay the rope straight from the {a} mark to the {b} mark",
    "straighten the rope between the two marks",
)


def grasp_yaw(heading: float) -> float:
    """Gripper yaw whose fingers close across a rope running along `heading` (rad, base frame).

    Measured on the simulated Panda: the fingers close along the direction at angle
    pi/2 - yaw (yaw = 0: along base y; positive yaw turns the closing axis clockwise seen
    from above), so the fingers are perpendicular to the rope for yaw = -heading.
    """
    return wrap_gripper_yaw(-heading)


def sample_rope_shape(rng: np.random.Generator, spec: RopeSpec = ROPE, low=REGION_LOW, high=REGION_HIGH,
                      tries: int = 500) -> np.ndarray:
    """(n_links, 2) link centres of a random smooth, curved, non-self-touching rope inside [low, high].

    The curvature along the rope is a random low-frequency Fourier series; the rope is rejected
    unless it is clearly curved (ends closer than 85 % of its length) and no two non-neighbouring
    links come closer than 2.5 radii.
    """
    n, L = spec.n_links, spec.length
    s = (np.arange(n - 1) + 0.5) / (n - 1)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    iu = np.triu_indices(n, k=2)
    for _ in range(tries):
        curvature = rng.uniform(-3.0, 3.0)  # 1/m
        for k in (1, 2):
            curvature = curvature + rng.uniform(2.0, 9.0) / k * np.sin(k * np.pi * s + rng.uniform(0, 2 * np.pi))
        headings = rng.uniform(-np.pi, np.pi) + np.cumsum(curvature * spec.pitch)
        pts = chain_from_headings((0.0, 0.0), headings, spec.pitch)
        chord = float(np.linalg.norm(pts[-1] - pts[0]))
        if not 0.3 * L <= chord <= 0.85 * L:
            continue
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)[iu]
        if d.min() < 2.5 * spec.radius:
            continue
        span = pts.max(0) - pts.min(0)
        room = (high - low) - span
        if np.any(room < 0):
            continue
        return pts - pts.min(0) + low + rng.uniform(0, 1, 2) * room
    raise RuntimeError("could not sample a rope shape that fits the region")


def sample_marks(rng: np.random.Generator, span: float = MARK_SPAN, overhang: float = 0.04,
                 low=REGION_LOW, high=REGION_HIGH, tries: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Two mark centres `span` apart such that the segment, extended by `overhang` at both ends
    (room for the rope ends and the gripper), lies inside [low, high]."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    for _ in range(tries):
        angle = rng.uniform(-np.pi, np.pi)
        u = np.array([np.cos(angle), np.sin(angle)])
        half = (span / 2 + overhang) * np.abs(u)
        if np.any(2 * half > high - low):
            continue
        centre = rng.uniform(low + half, high - half)
        return centre - span / 2 * u, centre + span / 2 * u
    raise RuntimeError("could not place the marks inside the region")


class AlignRope(Task):
    """Straighten the rope between two marks.

    - Scene: a 20-link rope (0.475 m between end-link centres) in a random smooth curve, and two
      flat visual marks 0.43 m apart (random position and direction), all inside x 0.35..0.70,
      y -0.28..0.28 (`REGION_LOW`, `REGION_HIGH`).
    - quality: mean distance (m) of the link centres to the target segment between the marks.
    - success: quality < 0.02 m, and each rope end (end-link centre) within 0.03 m of a different
      mark (either end may go to either mark).
    - Expert (privileged link positions): drags the rope ends onto the extended target line,
      then pulls the rope taut by overshooting with one end; see `expert`.
    """

    name: ClassVar[str] = "align_rope"
    primitive: ClassVar[str] = "pick_place"
    max_steps: ClassVar[int] = 6

    def __init__(self, spec: RopeSpec = ROPE, span: float = MARK_SPAN):
        self.spec = spec
        self.span = span
        self.rope: Rope | None = None
        self.marks = np.zeros((2, 2))
        self.mark_colors = ("", "")
        self.goal = ""

    # -- scene --------------------------------------------------------------------------
    def reset(self, world: World, rng: np.random.Generator) -> str:
        pts = sample_rope_shape(rng, self.spec)
        a, b = sample_marks(rng, self.span)
        ca, cb = rng.choice(len(MARK_COLORS), size=2, replace=False)
        self.mark_colors = (MARK_COLORS[ca], MARK_COLORS[cb])
        self.marks = np.stack([a, b])
        u = (b - a) / np.linalg.norm(b - a)
        yaw = float(np.arctan2(u[1], u[0]))
        for name, xy, color in zip(("mark_a", "mark_b"), self.marks, self.mark_colors):
            world.add_marker(name, MARK_HALF, (xy[0], xy[1], MARK_HALF[2]), COLORS[color], yaw=yaw)
        self.rope = Rope(world, pts, self.spec)
        world.settle()
        self.goal = GOALS[int(rng.integers(len(GOALS)))].format(a=self.mark_colors[0], b=self.mark_colors[1])
        return self.goal

    def _rope(self, world: World) -> Rope:
        if self.rope is None or self.rope.world is not world:
            raise RuntimeError("call reset(world, rng) before using the task")
        return self.rope

    def positions(self, world: World) -> np.ndarray:
        """(n_links, 3) rope link centres."""
        return self._rope(world).positions()

    def grasp_targets(self, world: World) -> np.ndarray:
        """The two rope ends (end-link centres): what the expert pulls."""
        return self.positions(world)[[0, -1]]

    def end_errors(self, world: World) -> tuple[float, float]:
        """Distances of the two rope ends to the marks, under the better end-to-mark assignment."""
        pts = self.positions(world)[:, :2]
        e0, e1 = pts[0], pts[-1]
        a, b = self.marks
        straight = (np.linalg.norm(e0 - a), np.linalg.norm(e1 - b))
        swapped = (np.linalg.norm(e0 - b), np.linalg.norm(e1 - a))
        return min(straight, swapped, key=lambda d: max(d))

    def quality(self, world: World) -> float:
        """Mean distance (m) of the rope link centres (xy) to the segment between the marks."""
        return float(point_segment_distances(self.positions(world), *self.marks).mean())

    def success(self, world: World) -> bool:
        """quality < SUCCESS_MEAN_DIST (0.02 m) and both ends within SUCCESS_END_DIST (0.03 m)
        of their marks."""
        return self.quality(world) < SUCCESS_MEAN_DIST and max(self.end_errors(world)) < SUCCESS_END_DIST

    # -- scripted expert ----------------------------------------------------------------
    def _ends(self, pts: np.ndarray) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """[(end link, its neighbour, its mark, outward unit vector along the line)] for both
        rope ends, under the end-to-mark assignment with the smaller total distance."""
        a, b = self.marks
        u = (b - a) / np.linalg.norm(b - a)
        n = len(pts)
        keep = np.linalg.norm(pts[0] - a) + np.linalg.norm(pts[-1] - b)
        swap = np.linalg.norm(pts[0] - b) + np.linalg.norm(pts[-1] - a)
        if keep <= swap:
            return [(0, 1, a, -u), (n - 1, n - 2, b, u)]
        return [(0, 1, b, u), (n - 1, n - 2, a, -u)]

    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        """Pull the rope straight by its ends (privileged link positions).

        - Opening move (both ends far from the marks): drag one end to `EXPERT_FIRST_OVER`
          beyond its mark (the end nearer its mark; with `cfg.multimodal` either end at random).
        - Then: drag the end farther from its mark to the mark (a taut pull that also drags the
          other end inward, straightening the rope), or `EXPERT_BOW_OVER` beyond it when both
          ends are already near their marks but the rope still bows.
        The grasp is on the end link, or the first link in from the end whose neighbourhood is
        free of other rope (fingers would catch two strands); with `cfg.multimodal` the expert
        sometimes grasps one link in from the end. Noise: position/yaw jitter; poor actions
        drag a random link to a random spot.
        """
        pts = self.positions(world)[:, :2]
        if self.poor(rng, cfg):
            k = int(rng.integers(len(pts)))
            place = rng.uniform(REGION_LOW, REGION_HIGH)
        else:
            k, place = self._pull(pts, rng, cfg)
        yaw = self.jitter_yaw(grasp_yaw(_heading(pts, k)), rng, cfg)
        pick = self.jitter((*pts[k], GRASP_Z), rng, cfg)
        place = self.jitter((*place, PLACE_Z), rng, cfg)
        lo, hi = np.array(Workspace().low), np.array(Workspace().high)
        pick = np.clip(pick, (lo[0], lo[1], GRASP_Z_RANGE[0]), (hi[0], hi[1], GRASP_Z_RANGE[1]))
        place = np.clip(place, (lo[0], lo[1], GRASP_Z_RANGE[0]), (hi[0], hi[1], GRASP_Z_RANGE[1]))
        return Primitive.pick_place(pick, place, _reachable_yaw(world, pick, place, yaw))

    def _pull(self, pts: np.ndarray, rng: np.random.Generator, cfg: ExpertConfig) -> tuple[int, np.ndarray]:
        """(link to grasp, xy to place it) for the next straightening pull."""
        ends = self._ends(pts)
        errs = np.array([np.linalg.norm(pts[i] - m) for i, _, m, _ in ends])
        if errs.min() > EXPERT_FIRST_DIST:
            e = int(rng.integers(2)) if cfg.multimodal else int(np.argmin(errs))
            over = EXPERT_FIRST_OVER
        else:
            e = int(np.argmax(errs))
            over = EXPERT_BOW_OVER if errs.max() < SUCCESS_END_DIST else EXPERT_PULL_OVER
            i, _, mark, out = ends[e]
            along = float((pts[i] - mark) @ out)
            if along > EXPERT_OUT_TOL and along > 0.7 * errs[e]:
                # this end lies beyond its mark: pull the other end outward to drag it in
                e, over = 1 - e, min(along, EXPERT_FIRST_OVER)
        end, nxt, mark, out = ends[e]
        step = nxt - end  # +1 from the first link inward, -1 from the last
        start = 1 if cfg.multimodal and rng.random() < EXPERT_INSET_RATE else 0
        offsets = [o for o in range(start, EXPERT_MAX_INSET + 1)] + list(range(start))
        o = next((o for o in offsets if _clear(pts, end + step * o)), start)
        k = end + step * o
        # along the line, never drag the grasped link back inward (that would crumple the rope)
        shift = max(over - o * self.spec.pitch, float((pts[k] - mark) @ out))
        return k, mark + out * shift


def _heading(pts: np.ndarray, k: int) -> float:
    """Direction (rad) of the rope at link k (central difference, one-sided at the ends)."""
    d = pts[min(k + 1, len(pts) - 1)] - pts[max(k - 1, 0)]
    return float(np.arctan2(d[1], d[0]))


def _clear(pts: np.ndarray, k: int, along: float = 0.022, across: float = 0.055, skip: int = 3) -> bool:
    """Whether closing the fingers across link k catches no other strand of the rope (links
    within `skip` of k along the rope, e.g. a small curl at the end, do not count)."""
    h = _heading(pts, k)
    t = np.array([np.cos(h), np.sin(h)])
    n = np.array([-t[1], t[0]])
    others = np.array([i for i in range(len(pts)) if abs(i - k) > skip])
    rel = pts[others] - pts[k]
    return not np.any((np.abs(rel @ t) < along) & (np.abs(rel @ n) < across))


def _reachable_yaw(world: World, pick, place, yaw: float) -> float:
    """`yaw`, or the nearest small rotation of it for which the arm reaches the pick and place
    poses (near the robot base, yaws close to +-pi/2 run into the wrist joint limit)."""
    up = np.array([0.0, 0.0, world.cfg.motion.approach_height])
    for dy in YAW_FALLBACKS:
        y = wrap_gripper_yaw(yaw + dy)
        quat = down_quat(y)
        q = HOME
        for target in (pick + up, pick, pick + up, place + up, place):
            q = world.kin.ik(target, quat, seed=q)
            if q is None:
                break
        else:
            return y
    return wrap_gripper_yaw(yaw)


EXPERT_FIRST_DIST = 0.06  # m: both ends farther than this from their marks -> opening move
EXPERT_FIRST_OVER = 0.03  # m beyond the mark for the opening move
EXPERT_PULL_OVER = 0.0
EXPERT_OUT_TOL = 0.01
EXPERT_BOW_OVER = 0.03
EXPERT_INSET_RATE = 0.3  # multimodal: how often to grasp one link in from the end
EXPERT_MAX_INSET = 9
GRASP_Z_RANGE = (0.009, 0.02)
YAW_FALLBACKS = (0.0, 0.25, -0.25, 0.5, -0.5, 0.75, -0.75)

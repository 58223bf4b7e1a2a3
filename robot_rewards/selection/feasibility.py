"""Feasibility down the ranked list: the best candidate the arm can actually execute.

A candidate is checked the way `World.execute` would before moving, but without a world:
parameters inside the workspace (`Primitive.check`), fingertips above the table at every
waypoint, and a complete IK plan (`plan_primitive`) from the current joints. The checks run
cheapest first, and only until the first feasible candidate in the ranking is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.primitives.config import MotionConfig, limit_motion
from robot_rewards.primitives.planner import UnreachableError, plan_primitive
from robot_rewards.primitives.waypoints import waypoints
from robot_rewards.robots.description import ArmDescription
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.selection.best_of_n import SelectionError, rank

TABLE_Z = 0.0  # the table top in the robot base frame (sim.world puts it at z = 0)
CLIPPED_REASON = "clipped into the workspace by the sampler"


class FeasibilityChecker:
    """Why a primitive cannot be executed from joints `q_start`, or None if it can.

    kin: an ArmKinematics to plan with (one is created for `arm`, and closed by `close`, if None).
    table_z: height of the table top; clearance: metres the fingertips must stay above it.
    motion: the planner's settings (approach height, speeds), as the executor will use them
    (capped at the arm's speed limits).
    fingertip_depth: metres the fingertips reach below the gripper point (default: the arm's).
    arm: the arm's description (default: `kin`'s arm, else the default arm).
    """

    def __init__(self, workspace: Workspace | None = None, kin: ArmKinematics | None = None,
                 table_z: float = TABLE_Z, clearance: float = 0.0, motion: MotionConfig | None = None,
                 fingertip_depth: float | None = None, arm: ArmDescription | None = None):
        if clearance < 0:
            raise ValueError(f"table clearance must be >= 0 metres, got {clearance}")
        self.arm = arm or (kin.arm if kin is not None else get_arm(DEFAULT_ARM))
        self.workspace = workspace or self.arm.workspace
        self.table_z = float(table_z)
        self.clearance = float(clearance)
        self.motion = limit_motion(motion or MotionConfig(), self.arm)
        self.fingertip_depth = float(self.arm.gripper.fingertip_depth if fingertip_depth is None else fingertip_depth)
        self._own_kin = kin is None
        self._kin = kin

    @property
    def kin(self) -> ArmKinematics:
        if self._kin is None:  # lazily: a checker that rejects everything early needs no IK
            self._kin = ArmKinematics(self.arm)
        return self._kin

    def close(self) -> None:
        """Release the kinematics client if this checker created it."""
        if self._own_kin and self._kin is not None:
            self._kin.close()
            self._kin = None

    def __enter__(self) -> FeasibilityChecker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self, primitive: Primitive, q_start=None) -> str | None:
        """None if `primitive` is feasible from joints `q_start` (default: home), else the reason:
        "invalid parameters: ...", "outside workspace: ...", "below table: ..." or "unreachable: ..."."""
        if not np.all(np.isfinite(primitive.params)):
            return f"invalid parameters: {primitive.check(self.workspace)}"
        reason = primitive.check(self.workspace)
        if reason is not None:
            return f"outside workspace: {reason}"
        reason = self.table_reason(primitive)
        if reason is not None:
            return reason
        q = self.arm.home_positions if q_start is None else np.asarray(q_start, dtype=np.float64)
        if q.shape != (self.arm.dof,) or not np.all(np.isfinite(q)):
            raise ValueError(f"q_start must be {self.arm.dof} finite arm joint positions, got {np.shape(q_start)}")
        try:
            plan_primitive(self.kin, primitive, q, self.motion)
        except UnreachableError as exc:
            return f"unreachable: {exc}"
        return None

    def table_reason(self, primitive: Primitive) -> str | None:
        """'below table: ...' if the fingertips would go lower than table_z + clearance at a
        waypoint. Straight segments run between waypoints, so their lowest point is a waypoint."""
        floor = self.table_z + self.clearance
        for wp in waypoints(primitive, self.motion.approach_height, self.arm.gripper):
            tip = float(wp.position[2]) - self.fingertip_depth
            if tip < floor - 1e-9:
                return (f"below table: at '{wp.label}' {np.round(wp.position, 3).tolist()} the fingertips "
                        f"reach z = {tip * 1000:.1f} mm, under the table top + clearance "
                        f"({floor * 1000:.1f} mm)")
        return None


@dataclass
class Selection:
    """Outcome of walking a ranking: `index` is the chosen candidate (None: none feasible).

    order: the ranking walked; rejected: (candidate, reason) for every candidate tried and
    refused, in the order tried; utilities: the (N,) utilities the ranking came from.
    """

    index: int | None
    order: list[int]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    utilities: np.ndarray | None = None

    @property
    def feasible(self) -> bool:
        """Whether a candidate was chosen (False: the caller must not move the arm)."""
        return self.index is not None

    @property
    def rank(self) -> int | None:
        """Position of the chosen candidate in the ranking (0 = the top one)."""
        return None if self.index is None else self.order.index(self.index)

    def summary(self) -> str:
        """One line (plus one per rejection) for logs."""
        return summary_line(self.index, self.order, self.rejected, self.utilities)


def select(candidates: Candidates, utilities, checker: FeasibilityChecker | None, q_start=None,
           order: Sequence[int] | None = None) -> Selection:
    """The first feasible candidate in `order` (default: by descending utility).

    Candidates flagged as clipped by the sampler are refused (they are not what the model
    proposed). checker=None skips the feasibility checks (the top candidate is taken as it is).
    If none is feasible the result has index None and every reason recorded: the caller stops.
    """
    n = len(candidates)
    if n == 0:
        raise SelectionError("no candidates to select from")
    u = np.asarray(utilities, dtype=np.float64).reshape(-1)
    if u.shape != (n,):
        raise SelectionError(f"{u.shape[0]} utilities for {n} candidates")
    if order is None:
        order = rank(u)
    else:
        order = [int(i) for i in order]
        bad = [i for i in order if not 0 <= i < n]
        if bad:
            raise SelectionError(f"order has indices {bad} outside 0..{n - 1}")
        if len(set(order)) != len(order):
            raise SelectionError("order lists a candidate more than once")
        if not order:
            raise SelectionError("empty order: no candidate to try")
    rejected: list[tuple[int, str]] = []
    for i in order:
        if checker is not None:
            if candidates.clipped[i]:
                reason = CLIPPED_REASON
            else:
                reason = checker.check(candidates.primitive(i), q_start)
            if reason is not None:
                rejected.append((i, reason))
                continue
        return Selection(i, order, rejected, u)
    return Selection(None, order, rejected, u)


def summary_line(chosen: int | None, order: Sequence[int], rejected, utilities) -> str:
    """What a selection did, for logs: the pick, its rank and utility, then one line per rejection."""
    n = len(order)
    if chosen is None:
        head = f"no feasible candidate among {n}: not executing"
    else:
        u = "" if utilities is None else f", utility {float(utilities[chosen]):.4g}"
        head = f"chose candidate {chosen} (rank {list(order).index(chosen) + 1} of {n}{u})"
        if rejected:
            head += f" after rejecting {len(rejected)}"
    return "\n".join([head] + [f"  rejected {i}: {reason}" for i, reason in rejected])

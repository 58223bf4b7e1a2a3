"""The robot's configured workspace is the authority over where the arm may go.

A model file (policy, scorer) records the workspace box it was trained on, but that box is data
someone could edit or get wrong; the box in the robot's own configuration (its arm description,
`ArmDescription.workspace`) is what the operator set up and checked. So:

- `narrowed(configured, model)`: the box actually used. A model may narrow the configured box
  (its actions are only meaningful where it was trained), never widen it.
- `outside(primitive, box)`: why a primitive's targets leave the box (or None); the console
  checks every primitive against the box before executing it or storing it as a demonstration.
- `jog_problem(box, current, target)`: why a jog must not move the gripper to `target`.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.core.primitives import Primitive, Workspace


class WorkspaceError(ValueError):
    """A model's workspace that does not overlap the robot's configured one."""


def _fmt(ws: Workspace) -> str:
    return f"low {[round(v, 3) for v in ws.low]}, high {[round(v, 3) for v in ws.high]}"


def narrowed(configured: Workspace, model: Workspace, what: str = "the model") -> tuple[Workspace, str | None]:
    """(the box to use, a warning for the operator or None): the intersection of the robot's
    `configured` box and the box `model` was made for.

    A model box reaching beyond the configured one is intersected with it, with a warning, rather
    than refused: what a robot user expects is that the robot never leaves the box they set up,
    and that a policy trained on a larger table (the shipped ones, on a smaller arm such as the
    xArm6) still works inside it; refusing would make such models unusable for no safety gain.
    A model box that does not overlap the configured one at all is refused (WorkspaceError):
    none of its actions could run.
    """
    low = np.maximum(configured.low, model.low)
    high = np.minimum(configured.high, model.high)
    if not np.all(low < high):
        raise WorkspaceError(f"{what}'s workspace ({_fmt(model)}) does not overlap the robot's configured "
                             f"workspace ({_fmt(configured)}): nothing it proposes could be executed")
    box = Workspace(tuple(float(v) for v in low), tuple(float(v) for v in high))
    warning = None
    if box != model and (np.any(np.asarray(model.low) < configured.low)
                         or np.any(np.asarray(model.high) > configured.high)):
        warning = (f"{what}'s workspace ({_fmt(model)}) reaches beyond the robot's configured workspace "
                   f"({_fmt(configured)}): using their intersection ({_fmt(box)}); the configured one "
                   "is the limit")
    return box, warning


def outside(primitive: Primitive, box: Workspace) -> str | None:
    """Why `primitive` may not run in `box` (a target outside it, non-finite values), or None."""
    return primitive.check(box)


def jog_problem(box: Workspace, current, target) -> str | None:
    """Why a jog from gripper position `current` to `target` is refused, or None.

    Inside the box every target must stay inside it. A gripper outside the box (at home, above
    the table) may move closer to it or along it, so the operator can bring it in, but never
    further out."""
    cur, tgt = np.asarray(current, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if box.contains(tgt):
        return None
    lo, hi = np.asarray(box.low), np.asarray(box.high)

    def distance(p: np.ndarray) -> float:
        return float(np.linalg.norm(p - np.clip(p, lo, hi)))

    where = np.round(tgt, 3).tolist()
    if box.contains(cur) or distance(tgt) > distance(cur) + 1e-9:
        return f"target {where} is outside the workspace ({_fmt(box)})"
    return None

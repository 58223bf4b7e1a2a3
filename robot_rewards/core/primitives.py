"""Action primitives: typed, named parameter vectors with a fixed layout and bounds.

A policy predicts the flat vector; everything downstream (feasibility, execution, storage)
goes through `Primitive`, so the layout is written down in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class InvalidPrimitiveError(ValueError):
    """A primitive whose parameters cannot be executed (wrong size, NaN, out of bounds)."""


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box in the robot base frame (metres) that every target point must lie in."""

    low: tuple[float, float, float] = (0.25, -0.35, 0.0)
    high: tuple[float, float, float] = (0.75, 0.35, 0.30)

    def contains(self, xyz, tol: float = 1e-9) -> bool:
        xyz = np.asarray(xyz, dtype=np.float64)
        return bool(np.all(xyz >= np.asarray(self.low) - tol) and np.all(xyz <= np.asarray(self.high) + tol))


@dataclass(frozen=True)
class PrimitiveSpec:
    """Name and parameter layout of a primitive; `points` name the xyz triples in the vector."""

    name: str
    param_names: tuple[str, ...]
    points: tuple[str, ...]  # each occupies 3 consecutive params: <p>_x, <p>_y, <p>_z
    angles: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        return len(self.param_names)

    def bounds(self, workspace: Workspace) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the parameter vector inside `workspace`."""
        low, high = [], []
        for name in self.param_names:
            if name in self.angles:
                low.append(-np.pi)
                high.append(np.pi)
            else:
                axis = "xyz".index(name[-1])
                low.append(workspace.low[axis])
                high.append(workspace.high[axis])
        return np.array(low), np.array(high)


def _xyz(*names: str) -> tuple[str, ...]:
    return tuple(f"{n}_{a}" for n in names for a in "xyz")


PICK_PLACE = PrimitiveSpec("pick_place", _xyz("pick", "place") + ("yaw",), ("pick", "place"), ("yaw",))
PUSH = PrimitiveSpec("push", _xyz("start", "end"), ("start", "end"))
PRIMITIVE_SPECS: dict[str, PrimitiveSpec] = {s.name: s for s in (PICK_PLACE, PUSH)}


@dataclass(frozen=True, eq=False)
class Primitive:
    """One parameterised action, e.g. ``Primitive.pick_place((.5, 0, .02), (.6, .1, .02), 0.3)``."""

    name: str
    params: np.ndarray

    def __post_init__(self):
        if self.name not in PRIMITIVE_SPECS:
            raise InvalidPrimitiveError(
                f"unknown primitive '{self.name}'; known: {sorted(PRIMITIVE_SPECS)}"
            )
        params = np.asarray(self.params, dtype=np.float64).reshape(-1)
        if params.shape != (self.spec.dim,):
            raise InvalidPrimitiveError(
                f"{self.name} takes {self.spec.dim} parameters {self.spec.param_names}, "
                f"got {params.shape[0]}"
            )
        object.__setattr__(self, "params", params)

    @property
    def spec(self) -> PrimitiveSpec:
        return PRIMITIVE_SPECS[self.name]

    def __getitem__(self, key: str):
        """A named point (xyz array) or scalar parameter, e.g. ``prim["pick"]``, ``prim["yaw"]``."""
        names = self.spec.param_names
        if key in self.spec.points:
            i = names.index(f"{key}_x")
            return self.params[i : i + 3].copy()
        return float(self.params[names.index(key)])

    def check(self, workspace: Workspace) -> str | None:
        """Why this primitive must not be executed, or None when its parameters are fine."""
        if not np.all(np.isfinite(self.params)):
            bad = [n for n, v in zip(self.spec.param_names, self.params) if not np.isfinite(v)]
            return f"non-finite parameters: {', '.join(bad)}"
        for point in self.spec.points:
            if not workspace.contains(self[point]):
                return (
                    f"{point} point {np.round(self[point], 3).tolist()} is outside the workspace "
                    f"{workspace.low}..{workspace.high}"
                )
        return None

    @classmethod
    def pick_place(cls, pick_xyz, place_xyz, yaw: float = 0.0) -> Primitive:
        return cls("pick_place", np.concatenate([np.ravel(pick_xyz), np.ravel(place_xyz), [yaw]]))

    @classmethod
    def push(cls, start_xyz, end_xyz) -> Primitive:
        return cls("push", np.concatenate([np.ravel(start_xyz), np.ravel(end_xyz)]))

    def to_dict(self) -> dict:
        return {"name": self.name, "params": self.params.tolist()}

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v:.3f}" for n, v in zip(self.spec.param_names, self.params))
        return f"Primitive.{self.name}({body})"

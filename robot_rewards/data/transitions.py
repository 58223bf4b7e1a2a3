"""A robot's executed transitions: the cloud it saw, the primitive it executed, the cloud after.

What an outcome model learns from (`robot_rewards.rewards.outcome`), and what any robot running
the loop logs anyway: no labels, no sim state. States are stored once; each transition names the
state it starts from, so several actions tried from one state (in simulation, where a state can
be restored) share its cloud. Files are `.npz` without pickles, written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rewards.core.atomic import atomic_path

FORMAT = "robot_rewards.transitions"
VERSION = 1


class TransitionsError(ValueError):
    """A transitions file or dataset that cannot be used (damaged, inconsistent, another format)."""


@dataclass(eq=False)
class Transitions:
    """S observed states and T transitions from them.

    points: (S, P, 3) float32 clouds; goals, seeds, decisions: per state (episode seed and decision
    index, for splitting by episode); params: (T, D) executed primitive parameters; state: (T,)
    index of each transition's start state; next_points: (T, P, 3) the cloud after it; colors,
    next_colors: (S, P, 3) / (T, P, 3) uint8 point colours, or None (older files, colourless
    cameras; outcome measures read by a keypoint model need them)."""

    task: str
    primitive: str
    points: np.ndarray
    goals: list[str]
    seeds: np.ndarray
    decisions: np.ndarray
    params: np.ndarray
    state: np.ndarray
    next_points: np.ndarray
    meta: dict = field(default_factory=dict)
    colors: np.ndarray | None = None
    next_colors: np.ndarray | None = None

    def __post_init__(self):
        self.points = np.asarray(self.points, dtype=np.float32)
        self.next_points = np.asarray(self.next_points, dtype=np.float32)
        self.params = np.asarray(self.params, dtype=np.float64)
        self.state = np.asarray(self.state, dtype=np.int64).reshape(-1)
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)
        self.decisions = np.asarray(self.decisions, dtype=np.int64).reshape(-1)
        self.goals = [str(g) for g in self.goals]
        s, t = len(self.points), len(self.params)
        if self.points.ndim != 3 or self.points.shape[-1] != 3:
            raise TransitionsError(f"points must be (S, P, 3) clouds, got {self.points.shape}")
        if self.next_points.shape[1:] != self.points.shape[1:] or len(self.next_points) != t:
            raise TransitionsError(f"next_points must be ({t}, {self.points.shape[1]}, 3), got {self.next_points.shape}")
        if self.params.ndim != 2 or len(self.state) != t:
            raise TransitionsError(f"params must be (T, D) and state (T,), got {self.params.shape} and {self.state.shape}")
        if len(self.goals) != s or len(self.seeds) != s or len(self.decisions) != s:
            raise TransitionsError(f"goals, seeds and decisions need one entry per state ({s}), got "
                                   f"{len(self.goals)}, {len(self.seeds)}, {len(self.decisions)}")
        if t and (self.state.min() < 0 or self.state.max() >= s):
            raise TransitionsError(f"transition start states must index the {s} states, "
                                   f"got {self.state.min()}..{self.state.max()}")
        if (self.colors is None) != (self.next_colors is None):
            raise TransitionsError("colors and next_colors come together: both or neither")
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.uint8)
            self.next_colors = np.asarray(self.next_colors, dtype=np.uint8)
            if self.colors.shape != self.points.shape or self.next_colors.shape != self.next_points.shape:
                raise TransitionsError(f"colors {self.colors.shape} / next_colors {self.next_colors.shape} must match "
                                       f"points {self.points.shape} / next_points {self.next_points.shape}")
        if not (np.all(np.isfinite(self.points)) and np.all(np.isfinite(self.next_points)) and np.all(np.isfinite(self.params))):
            raise TransitionsError("transitions contain NaN/inf clouds or parameters")

    def __len__(self) -> int:
        return len(self.params)

    @property
    def n_states(self) -> int:
        return len(self.points)

    def state_colors(self, s: int) -> np.ndarray | None:
        return None if self.colors is None else self.colors[s]

    def next_state_colors(self, t: int) -> np.ndarray | None:
        return None if self.next_colors is None else self.next_colors[t]

    def subset(self, states: np.ndarray) -> Transitions:
        """The transitions starting from the given states (renumbered)."""
        keep = np.zeros(self.n_states, dtype=bool)
        keep[np.asarray(states, dtype=np.int64)] = True
        new_index = np.cumsum(keep) - 1
        t = keep[self.state]
        return Transitions(self.task, self.primitive, self.points[keep], [g for g, k in zip(self.goals, keep) if k],
                           self.seeds[keep], self.decisions[keep], self.params[t], new_index[self.state[t]],
                           self.next_points[t], dict(self.meta),
                           None if self.colors is None else self.colors[keep],
                           None if self.next_colors is None else self.next_colors[t])

    @classmethod
    def concat(cls, parts: list[Transitions]) -> Transitions:
        """One dataset from several of the same task and primitive (e.g. chunks collected apart)."""
        if not parts:
            raise TransitionsError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if (p.task, p.primitive) != (first.task, first.primitive):
                raise TransitionsError(f"cannot join {p.task}/{p.primitive} transitions to {first.task}/{first.primitive}")
        coloured = {p.colors is not None for p in parts}
        if len(coloured) > 1:
            raise TransitionsError("cannot join transitions with point colours to transitions without")
        offsets = np.cumsum([0] + [p.n_states for p in parts[:-1]])
        return cls(first.task, first.primitive, np.concatenate([p.points for p in parts]),
                   sum((p.goals for p in parts), []), np.concatenate([p.seeds for p in parts]),
                   np.concatenate([p.decisions for p in parts]), np.concatenate([p.params for p in parts]),
                   np.concatenate([p.state + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.next_points for p in parts]), dict(first.meta),
                   np.concatenate([p.colors for p in parts]) if first.colors is not None else None,
                   np.concatenate([p.next_colors for p in parts]) if first.colors is not None else None)


def save_transitions(path: str | os.PathLike, data: Transitions) -> Path:
    """Write `data` to `path` (.npz appended if missing), atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": FORMAT, "version": VERSION, "task": data.task, "primitive": data.primitive,
                         "meta": data.meta}, sort_keys=True, default=str)
    colors = {} if data.colors is None else {"colors": data.colors, "next_colors": data.next_colors}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, header=np.asarray(header), points=data.points, goals=np.asarray(data.goals, dtype=str),
                                seeds=data.seeds, decisions=data.decisions, params=data.params, state=data.state,
                                next_points=data.next_points, **colors)
    return path


def load_transitions(path: str | os.PathLike) -> Transitions:
    """Read a `save_transitions` file; FileNotFoundError if missing, TransitionsError if it is
    not one or is damaged."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no transitions file {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("format") != FORMAT:
                raise TransitionsError(f"{path} is not a transitions file (format {header.get('format')!r})")
            if header.get("version") != VERSION:
                raise TransitionsError(f"{path} is transitions version {header.get('version')}, this build reads {VERSION}")
            return Transitions(header["task"], header["primitive"], z["points"], [str(g) for g in z["goals"]],
                               z["seeds"], z["decisions"], z["params"], z["state"], z["next_points"],
                               dict(header.get("meta") or {}),
                               z["colors"] if "colors" in z.files else None,
                               z["next_colors"] if "next_colors" in z.files else None)
    except TransitionsError:
        raise
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise TransitionsError(f"{path} is not a readable transitions file ({type(exc).__name__}: {exc})") from exc

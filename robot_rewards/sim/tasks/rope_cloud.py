"""align_rope as an outcome model reads it from a cloud (`AlignRope.cloud_outcome`).

The marks are the cloud's flat points (they are 1 mm high, the rope 16 mm), clustered in two;
the rope is an ordered chain through the other points (`robot_rewards.perception.chain`), its
ends moved inwards from the tips to where the end links' centres are. In the
frame of the marks (origin between them, x from the mark at smaller y to the other) the scene
and a candidate become a fixed-size vector; the measures are the task's own quantities as the
cloud shows them: the chain's mean distance to the segment between the marks, and the farther
rope end's distance to its mark.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robot_rewards.perception.chain import (
    arc_lengths,
    ordered_chain,
    points_along,
    resample_polyline,
    segment_distances,
    two_clusters,
)
from robot_rewards.sim.tasks.base import CloudOutcome

# m: points below are the marks' (1 mm high); at 4 mm the rope's lower flanks (radius 8 mm) joined
# them and moved the marks' centres by 19 mm (median; 2.1 mm at 2 mm, on 48 policy states)
FLAT_Z = 0.002
# m: the chain's ends are the rope's tips; its end links' centres (what success measures) lie
# this far inwards along it (14.9 mm median on the same states)
END_INSET = 0.015
NODES = 24  # chain nodes in the inputs
UNIT = 0.2  # m per input unit for positions
QUALITY_UNIT, END_UNIT, NEAR_UNIT, HEIGHT_UNIT = 0.02, 0.03, 0.05, 0.05  # success: q < 0.02, ends < 0.03
# input layout: chain (NODES x 2), marks (2 x 2), measures (2), pick xy, place xy, pick/place z,
# pick-to-node distances (NODES), place - pick
_CHAIN, _MARKS = slice(0, 2 * NODES), slice(2 * NODES, 2 * NODES + 4)
_PICK = 2 * NODES + 6
_NEAR = slice(_PICK + 6, _PICK + 6 + NODES)
_DELTA = _PICK + 6 + NODES
DIM = _DELTA + 2


class RopeCloudOutcome(CloudOutcome):
    """Measures: the rope's mean distance to the target segment / 0.02 m and the farther end's
    distance to its mark / 0.03 m (success is both below 1). Score: minus the first, minus
    `end_weight` times the second."""

    measure_names: ClassVar[tuple[str, ...]] = ("rope_to_segment", "end_to_mark")
    input_dim: ClassVar[int] = DIM

    def __init__(self, end_weight: float = 0.0):
        self.end_weight = float(end_weight)

    def scene(self, points: np.ndarray):
        """(origin, rotation world->frame, marks (2, 2) and chain (NODES, 2) in the frame, node 0
        the end nearer mark 0, measures (2,)) of a cloud."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        flat, high = p[p[:, 2] < FLAT_Z, :2], p[p[:, 2] >= FLAT_Z, :2]
        if len(flat) < 2:
            raise ValueError(f"the cloud shows {len(flat)} mark points (flat, z < {FLAT_Z} m): no marks to align to")
        if len(high) < 2:
            raise ValueError(f"the cloud shows {len(high)} rope points (z >= {FLAT_Z} m): no rope")
        marks = two_clusters(flat)
        if marks[0, 1] > marks[1, 1]:
            marks = marks[::-1]
        chain = _inset(ordered_chain(high), END_INSET)
        nodes = resample_polyline(chain, NODES)
        straight = np.linalg.norm(nodes[0] - marks[0]) + np.linalg.norm(nodes[-1] - marks[1])
        crossed = np.linalg.norm(nodes[0] - marks[1]) + np.linalg.norm(nodes[-1] - marks[0])
        if crossed < straight:
            nodes = nodes[::-1]
        quality = segment_distances(chain, marks[0], marks[1]).mean()
        end = max(np.linalg.norm(nodes[0] - marks[0]), np.linalg.norm(nodes[-1] - marks[1]))
        origin = marks.mean(axis=0)
        u = marks[1] - marks[0]
        u = u / max(float(np.linalg.norm(u)), 1e-9)
        rot = np.array([[u[0], u[1]], [-u[1], u[0]]])
        return origin, rot, (marks - origin) @ rot.T, (nodes - origin) @ rot.T, \
            np.array([quality / QUALITY_UNIT, end / END_UNIT])

    def measures(self, points: np.ndarray, colors: np.ndarray | None = None, goal: str = "") -> np.ndarray:
        return self.scene(points)[4]

    def inputs(self, points: np.ndarray, params: np.ndarray, colors: np.ndarray | None = None,
               goal: str = "") -> np.ndarray:
        origin, rot, marks, nodes, measured = self.scene(points)
        P = np.asarray(params, dtype=np.float64).reshape(len(params), -1)
        pick, place = (P[:, 0:2] - origin) @ rot.T, (P[:, 3:5] - origin) @ rot.T
        near = np.linalg.norm(nodes[None] - pick[:, None], axis=2)
        scene = np.concatenate([nodes.ravel() / UNIT, marks.ravel() / UNIT, measured])
        return np.concatenate([np.repeat(scene[None], len(P), axis=0), pick / UNIT, place / UNIT,
                               P[:, [2, 5]] / HEIGHT_UNIT, near / NEAR_UNIT, (place - pick) / UNIT],
                              axis=1).astype(np.float32)

    def score(self, predicted: np.ndarray) -> np.ndarray:
        pred = np.asarray(predicted, dtype=np.float64).reshape(-1, 2)
        return -pred[:, 0] - self.end_weight * pred[:, 1]

    def symmetries(self, inputs: np.ndarray) -> list[np.ndarray]:
        """The scene mirrored across the marks' line, and seen with the marks' roles swapped
        (x -> -x, the chain and the marks listed from the other end), and both."""
        mirrored = _mirror(inputs)
        swapped = _swap(inputs)
        return [mirrored, swapped, _mirror(swapped)]


def _inset(chain: np.ndarray, inset: float) -> np.ndarray:
    """The chain without `inset` metres at each end (kept whole if it is shorter than 3 insets)."""
    s = arc_lengths(chain)
    if s[-1] < 3 * inset:
        return chain
    ends = points_along(chain, [inset, s[-1] - inset])
    return np.concatenate([ends[:1], chain[(s > inset) & (s < s[-1] - inset)], ends[1:]])


def _mirror(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=np.float32, copy=True)
    ys = list(range(1, 2 * NODES, 2)) + [_MARKS.start + 1, _MARKS.start + 3, _PICK + 1, _PICK + 3, _DELTA + 1]
    out[:, ys] *= -1
    return out


def _swap(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=np.float32, copy=True)
    chain = out[:, _CHAIN].reshape(-1, NODES, 2)[:, ::-1].copy()
    chain[..., 0] *= -1
    out[:, _CHAIN] = chain.reshape(-1, 2 * NODES)
    marks = out[:, _MARKS].reshape(-1, 2, 2)[:, ::-1].copy()
    marks[..., 0] *= -1
    out[:, _MARKS] = marks.reshape(-1, 4)
    out[:, [_PICK, _PICK + 2, _DELTA]] *= -1
    out[:, _NEAR] = out[:, _NEAR][:, ::-1]
    return out

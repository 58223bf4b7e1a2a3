"""Shapes read off an observed cloud without any model: an ordered chain through a rope's points
(farthest-point nodes, their minimum spanning tree, its longest path) and the two clusters of a
pair of flat marks. What a real robot's camera gives is enough: no sim state, no labels."""

from __future__ import annotations

import numpy as np


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None] - b[None], axis=-1)


def _spanning_tree(dist: np.ndarray) -> list[list[tuple[int, float]]]:
    """Adjacency lists of the minimum spanning tree of a full distance matrix (Prim)."""
    n = len(dist)
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best, parent = dist[0].copy(), np.zeros(n, dtype=int)
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for _ in range(n - 1):
        k = int(np.argmin(np.where(inside, np.inf, best)))
        inside[k] = True
        adj[k].append((int(parent[k]), float(dist[k, parent[k]])))
        adj[parent[k]].append((k, float(dist[k, parent[k]])))
        closer = (~inside) & (dist[k] < best)
        best[closer], parent[closer] = dist[k][closer], k
    return adj


def _farthest_in_tree(adj, start: int) -> tuple[int, dict[int, int]]:
    dist, pred, stack = {start: 0.0}, {start: -1}, [start]
    while stack:
        u = stack.pop()
        for v, w in adj[u]:
            if v not in dist:
                dist[v], pred[v] = dist[u] + w, u
                stack.append(v)
    return max(dist, key=dist.get), pred


def ordered_chain(xy: np.ndarray, n_nodes: int = 40) -> np.ndarray:
    """(M, 2) nodes along a rope-like set of points, end to end (M <= n_nodes): the longest path
    of the spanning tree over `n_nodes` farthest-point nodes. Side branches (a loop's far side)
    are dropped. Raises ValueError with fewer than 2 points."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) < 2:
        raise ValueError(f"a chain needs at least 2 points, got {len(xy)}")
    # filters imports torch; the task registry (and so the CLI) imports this module without it
    from robot_rewards.perception.filters import farthest_point_sampling

    # spread from the point nearest the centroid, so the nodes do not depend on a random start
    start = int(np.argmin(np.linalg.norm(xy - xy.mean(axis=0), axis=1)))
    nodes = xy[farthest_point_sampling(np.column_stack([xy, np.zeros(len(xy))]), min(n_nodes, len(xy)), start)]
    adj = _spanning_tree(_distances(nodes, nodes))
    a, _ = _farthest_in_tree(adj, 0)
    b, pred = _farthest_in_tree(adj, a)
    path = [b]
    while pred[path[-1]] != -1:
        path.append(pred[path[-1]])
    return nodes[path[::-1]]


def arc_lengths(chain: np.ndarray) -> np.ndarray:
    """(M,) distance along a polyline (M, D) from its first point to each of its points."""
    chain = np.asarray(chain, dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(chain, axis=0), axis=1))])


def points_along(chain: np.ndarray, at) -> np.ndarray:
    """(len(at), D) points of a polyline at the given distances along it (clamped to its ends)."""
    chain = np.asarray(chain, dtype=np.float64)
    s = arc_lengths(chain)
    return np.stack([np.interp(np.atleast_1d(at), s, chain[:, i]) for i in range(chain.shape[1])], axis=1)


def resample_polyline(chain: np.ndarray, n: int) -> np.ndarray:
    """(n, D) points evenly spaced by arc length along a polyline (a point repeated if it has no length)."""
    length = arc_lengths(chain)[-1]
    if length < 1e-9:
        return np.repeat(np.asarray(chain, dtype=np.float64)[:1], n, axis=0)
    return points_along(chain, np.linspace(0.0, length, n))


def two_clusters(xy: np.ndarray, iterations: int = 10) -> np.ndarray:
    """(2, 2) centres of two clusters (2-means seeded by the farthest pair), e.g. a pair of marks.
    Raises ValueError with fewer than 2 points."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) < 2:
        raise ValueError(f"two clusters need at least 2 points, got {len(xy)}")
    i = int(np.argmax(np.linalg.norm(xy - xy.mean(axis=0), axis=1)))
    j = int(np.argmax(np.linalg.norm(xy - xy[i], axis=1)))
    centres = xy[[i, j]].copy()
    for _ in range(iterations):
        label = np.argmin(_distances(xy, centres), axis=1)
        centres = np.stack([xy[label == k].mean(axis=0) if np.any(label == k) else centres[k] for k in range(2)])
    return centres


def segment_distances(points: np.ndarray, a, b) -> np.ndarray:
    """Distance of each point to the segment a-b, in the xy plane (z ignored)."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    a = np.asarray(a, dtype=np.float64)[:2]
    ab = np.asarray(b, dtype=np.float64)[:2] - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)

"""Point-cloud filters: workspace crop, table-plane removal (known plane or RANSAC), segment
selection, voxel downsampling, farthest-point sampling and fixed-count sampling.

One implementation, in torch (CPU or CUDA). The `*_torch` functions are what the pipeline runs:
they work on padded batches (B, N, 3) with a validity mask (B, N) (the layout
`backproject_torch` produces) or on one (N, 3) tensor. The functions without the suffix take
and return numpy `PointCloud`s / arrays and are thin calls of the same torch code.

Results reproduce the numpy implementation this replaced (kept as the test reference in
`tests/perception_reference.py`): the same voxel grid, voxel order and float64 voxel means,
the same farthest-point picks bit for bit (same start index from the seed, same float32
distance arithmetic, ties to the lowest index), and for RANSAC the same random hypotheses
(drawn from numpy's generator with the same seed and calls), scored and refined in float64.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import torch

from robot_rewards.perception.pointcloud import EmptyPointCloudError, PerceptionError, PointCloud, as_tensor


def _tensor(points: np.ndarray, dtype=np.float32) -> torch.Tensor:
    return as_tensor(points, dtype)


# --------------------------------------------------------------------------------------------
# Crop, plane, segments
# --------------------------------------------------------------------------------------------


def box_bounds(lower, upper, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The crop box corners as float32 tensors (PerceptionError unless lower <= upper, 3 each)."""
    lo = np.array(lower, dtype=np.float32)
    hi = np.array(upper, dtype=np.float32)
    if lo.shape != (3,) or hi.shape != (3,) or np.any(lo > hi):
        raise PerceptionError(f"crop box needs lower <= upper, 3 values each; got {lo}, {hi}")
    return torch.from_numpy(lo).to(device), torch.from_numpy(hi).to(device)


def box_mask_torch(points: torch.Tensor, lower, upper) -> torch.Tensor:
    """True for points (..., 3) inside the axis-aligned box [lower, upper] (inclusive)."""
    lo, hi = box_bounds(lower, upper, points.device)
    return ((points >= lo) & (points <= hi)).all(dim=-1)


def box_mask(points: np.ndarray, lower, upper) -> np.ndarray:
    """True for points inside the axis-aligned box [lower, upper] (inclusive)."""
    return box_mask_torch(_tensor(points), lower, upper).numpy()


def crop_box(cloud: PointCloud, lower, upper) -> PointCloud:
    """Points of `cloud` inside the axis-aligned box [lower, upper] (e.g. the robot workspace)."""
    return cloud.select(box_mask(cloud.points, lower, upper))


def signed_distance_torch(points: torch.Tensor, normals: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """n . p + d of points (B, N, 3) to one plane per item: normals (B, 3), offsets (B,), in the
    points' dtype. For the known table (0, 0, 1) it is z + d exactly."""
    normals = normals.to(device=points.device, dtype=points.dtype)
    offsets = offsets.to(device=points.device, dtype=points.dtype)
    return (points * normals[:, None, :]).sum(-1) + offsets[:, None]


@dataclass(frozen=True)
class Plane:
    """The plane n . p + d = 0 with a unit normal n; points with n . p + d > 0 are 'above'."""

    normal: tuple[float, float, float]
    d: float

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        dtype = points.dtype if points.dtype in (np.float32, np.float64) else np.float32
        p = _tensor(points, dtype).reshape(1, -1, 3)
        n = torch.tensor([self.normal], dtype=p.dtype)
        return signed_distance_torch(p, n, torch.tensor([self.d], dtype=p.dtype))[0].numpy()

    @staticmethod
    def horizontal(height: float = 0.0) -> Plane:
        """The plane z = height, normal +z (the table top in the base frame)."""
        return Plane((0.0, 0.0, 1.0), -float(height))


def _dot3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise a . b of (K, 3) tensors as (a0 b0 + a1 b1) + a2 b2 (no fused multiply-add)."""
    p = a * b
    return (p[:, 0] + p[:, 1]) + p[:, 2]


def fit_plane_ransac_torch(
    points: torch.Tensor,
    threshold: float = 0.005,
    iterations: int = 256,
    seed: int = 0,
    max_points: int = 20000,
    normal_hint=(0.0, 0.0, 1.0),
    max_tilt_deg: float | None = 30.0,
) -> tuple[Plane, torch.Tensor]:
    """Dominant plane of `points` (M, 3) by RANSAC, refined by least squares on its inliers.

    All `iterations` plane hypotheses (random point triples) are scored at once, as one float64
    matrix product against a random subset of at most `max_points` points. With
    `max_tilt_deg`, only planes whose normal is within that angle of `normal_hint` count, so a
    large box side never wins over the table. The best plane is refined twice by a least-squares
    fit to its inliers (the normal is the eigenvector of the smallest eigenvalue of their
    covariance) and oriented towards `normal_hint`. Returns the plane and the inlier mask (M,).

    The random subset and triples come from numpy's generator seeded with `seed`, in the same
    calls as the numpy version, so both score the same hypotheses.
    """
    M = int(points.shape[0])
    if M < 3:
        raise EmptyPointCloudError(f"plane fit needs at least 3 points, got {M}")
    device = points.device
    pts = points.to(torch.float64)
    rng = np.random.default_rng(seed)
    if M <= max_points:
        sub = pts
    else:
        sub = pts.index_select(0, torch.from_numpy(rng.choice(M, max_points, replace=False)).to(device))
    tri = torch.from_numpy(rng.integers(len(sub), size=(iterations, 3))).to(device)
    a, b, c = sub[tri[:, 0]], sub[tri[:, 1]], sub[tri[:, 2]]
    u, v = b - a, c - a
    normals = torch.stack([u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1],
                           u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2],
                           u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]], dim=1)
    norms = torch.sqrt(_dot3(normals, normals))
    ok = norms > 1e-12
    hint = np.asarray(normal_hint, dtype=np.float64)
    hint = hint / np.linalg.norm(hint)
    normals = torch.where(ok[:, None], normals / torch.where(ok, norms, 1.0)[:, None], normals)
    hint_t = torch.from_numpy(hint).to(device)
    if max_tilt_deg is not None:
        ok &= (normals @ hint_t).abs() >= float(np.cos(np.radians(max_tilt_deg)))
    if not bool(ok.any()):
        raise EmptyPointCloudError(
            f"plane fit: no plane within {max_tilt_deg} deg of normal {tuple(hint)} among "
            f"{iterations} hypotheses ({M} points)"
        )
    normals, a = normals[ok], a[ok]
    offsets = -_dot3(normals, a)
    # Score every hypothesis on the subset: |n . p + d| < threshold, in row chunks that stay in
    # cache (the (subset, K) float64 matrix is tens of MB).
    scores = torch.zeros(len(normals), dtype=torch.int64, device=device)
    nt = normals.T.contiguous()
    chunk = max(1, (1 << 17) // max(1, len(normals)))
    for s in range(0, len(sub), chunk):
        r = torch.mm(sub[s:s + chunk], nt)
        r += offsets
        r.abs_()
        scores += (r < threshold).sum(dim=0)
    best = int(scores.argmax())
    n, d = normals[best], offsets[best]
    # Least-squares refinement (twice: the refined plane may gather a few more inliers).
    for _ in range(2):
        inliers = (pts @ n + d).abs() < threshold
        if int(inliers.sum()) < 3:
            break
        inl = pts[inliers]
        centroid = inl.mean(dim=0)
        centred = inl - centroid
        _, vecs = torch.linalg.eigh(centred.T @ centred)
        n = vecs[:, 0]
        d = -(n @ centroid)
    if float(n @ hint_t) < 0:
        n, d = -n, -d
    inliers = (pts @ n + d).abs() < threshold
    return Plane(tuple(float(x) for x in n.tolist()), float(d)), inliers


def fit_plane_ransac(points: np.ndarray, threshold: float = 0.005, iterations: int = 256, seed: int = 0,
                     max_points: int = 20000, normal_hint=(0.0, 0.0, 1.0),
                     max_tilt_deg: float | None = 30.0) -> tuple[Plane, np.ndarray]:
    """`fit_plane_ransac_torch` on a numpy (N, 3) array: (plane, inlier mask (N,))."""
    plane, inliers = fit_plane_ransac_torch(_tensor(np.asarray(points).reshape(-1, 3), np.float64), threshold,
                                            iterations, seed, max_points, normal_hint, max_tilt_deg)
    return plane, inliers.numpy()


def remove_plane(cloud: PointCloud, plane: Plane, threshold: float = 0.005) -> PointCloud:
    """Points more than `threshold` above `plane` (the plane itself and everything under it go)."""
    return cloud.select(plane.signed_distance(cloud.points) > threshold)


def label_mask_torch(labels: torch.Tensor, keep=None, drop=None) -> torch.Tensor:
    """True where a label is in `keep` (if given) and not in `drop` (if given)."""
    mask = torch.ones(labels.shape, dtype=torch.bool, device=labels.device)
    if keep is not None:
        mask &= torch.isin(labels, torch.tensor(list(keep), dtype=labels.dtype, device=labels.device))
    if drop is not None:
        mask &= ~torch.isin(labels, torch.tensor(list(drop), dtype=labels.dtype, device=labels.device))
    return mask


def select_labels(cloud: PointCloud, keep=None, drop=None) -> PointCloud:
    """Points whose segmentation label is in `keep` (if given) and not in `drop` (if given)."""
    if cloud.labels is None:
        raise PerceptionError("segment selection needs segmentation labels, and the cloud has none")
    return cloud.select(label_mask_torch(as_tensor(cloud.labels), keep, drop).numpy())


# --------------------------------------------------------------------------------------------
# Voxel downsampling
# --------------------------------------------------------------------------------------------


def voxel_downsample_torch(points, valid, voxel_size: float, colors=None, labels=None):
    """Batched voxel means. points (B, N, 3), valid (B, N) bool, colors (B, N, 3) uint8 or None,
    labels (B, N) int or None.

    One point per occupied voxel: the float64 mean of its points (and of their colours, rounded).
    The grid is anchored at the frame origin, so the same scene gives the same voxels wherever
    the cloud starts. With labels, points of different segments never share a voxel (objects
    stay separate). Per item, voxels are ordered by (x, y, z) cell, then label.

    Returns (points (B, M, 3), valid (B, M), colors or None, labels or None), M = the largest
    voxel count in the batch, the voxels of each item packed at the front of its row.
    """
    B, N, _ = points.shape
    device = points.device
    b_idx, p_idx = valid.nonzero(as_tuple=True)
    if len(b_idx) == 0:
        raise EmptyPointCloudError("voxel downsampling: no valid points in the batch")
    pts = points[b_idx, p_idx]
    # Divide by a float32 tensor (not a Python scalar, which CUDA turns into a multiplication
    # by its reciprocal): floor(p / voxel) must be the reference's float32 division.
    keys = torch.floor(pts / torch.tensor(voxel_size, dtype=pts.dtype, device=device)).to(torch.int64)
    # Per-item offsets: each cloud's keys start at 0 (the reference subtracts each cloud's
    # minimum), so the linear keys below sort voxels in the same order.
    if B == 1:
        keys -= keys.amin(dim=0)
        dims = (keys.amax(dim=0) + 1)[None]
        item_dims = dims.expand(len(keys), 3)
    else:
        big = torch.iinfo(torch.int64).max
        kmin = torch.full((B, 3), big, dtype=torch.int64, device=device)
        kmin = kmin.scatter_reduce(0, b_idx[:, None].expand(-1, 3), keys, reduce="amin")
        keys -= kmin[b_idx]
        kmax = torch.zeros((B, 3), dtype=torch.int64, device=device)
        kmax = kmax.scatter_reduce(0, b_idx[:, None].expand(-1, 3), keys, reduce="amax")
        item_dims = (kmax + 1)[b_idx]
    lin = (keys[:, 0] * item_dims[:, 1] + keys[:, 1]) * item_dims[:, 2] + keys[:, 2]
    n_label = 1
    if labels is not None:
        lab = labels[b_idx, p_idx].to(torch.int64)
        label_values, codes = torch.unique(lab, return_inverse=True)
        n_label = len(label_values)
        lin = lin * n_label + codes
    # Batch index as the most significant key part: unique() then groups voxels by item.
    if B > 1:
        span = int(lin.max().item()) + 1
        lin += b_idx.to(torch.int64) * span
    uniq, inverse = torch.unique(lin, sorted=True, return_inverse=True)
    M_total = len(uniq)
    counts = torch.bincount(inverse, minlength=M_total).to(torch.float64)
    # float64 sums of float32 coordinates (exact for the few points of one voxel), as numpy's
    # bincount computes them.
    sums = torch.zeros((M_total, 3), dtype=torch.float64, device=device).index_add_(0, inverse, pts.to(torch.float64))
    means = (sums / counts[:, None]).to(torch.float32)
    if B == 1:
        vb = torch.zeros(M_total, dtype=torch.int64, device=device)
        slot = torch.arange(M_total, device=device)
        M = M_total
    else:
        vb = torch.div(uniq, span, rounding_mode="floor")
        per_item = torch.bincount(vb, minlength=B)
        M = int(per_item.max().item())
        offsets = torch.cumsum(per_item, 0) - per_item
        slot = torch.arange(M_total, device=device) - offsets[vb]
    if B == 1:
        out_pts = means[None]
        out_valid = torch.ones((1, M), dtype=torch.bool, device=device)
    else:
        out_pts = torch.zeros((B, M, 3), dtype=torch.float32, device=device)
        out_pts[vb, slot] = means
        out_valid = torch.zeros((B, M), dtype=torch.bool, device=device)
        out_valid[vb, slot] = True
    out_colors = None
    if colors is not None:
        csum = torch.zeros((M_total, 3), dtype=torch.float64, device=device).index_add_(
            0, inverse, colors[b_idx, p_idx].to(torch.float64)
        )
        cmean = torch.clamp(torch.round(csum / counts[:, None]), 0, 255).to(torch.uint8)
        if B == 1:
            out_colors = cmean[None]
        else:
            out_colors = torch.zeros((B, M, 3), dtype=torch.uint8, device=device)
            out_colors[vb, slot] = cmean
    out_labels = None
    if labels is not None:
        code = (uniq if B == 1 else uniq - vb * span) % n_label
        vlab = label_values[code].to(torch.int32)
        if B == 1:
            out_labels = vlab[None]
        else:
            out_labels = torch.full((B, M), -1, dtype=torch.int32, device=device)
            out_labels[vb, slot] = vlab
    return out_pts, out_valid, out_colors, out_labels


def voxel_downsample(cloud: PointCloud, voxel_size: float) -> PointCloud:
    """One point per occupied voxel: the mean of its points (and of their colours).

    The grid is anchored at the frame origin, so the same scene gives the same voxels
    wherever the cloud starts. With labels, points of different segments never share a voxel
    (objects stay separate); the output is ordered by (voxel, label) key.
    """
    if voxel_size <= 0 or len(cloud) == 0:
        return cloud
    pts = as_tensor(cloud.points)[None]
    cols = None if cloud.colors is None else as_tensor(cloud.colors)[None]
    labs = None if cloud.labels is None else as_tensor(cloud.labels)[None]
    p, _, c, lab = voxel_downsample_torch(pts, torch.ones(pts.shape[:2], dtype=torch.bool), voxel_size, cols, labs)
    return PointCloud(p[0].numpy(), None if c is None else c[0].numpy(), None if lab is None else lab[0].numpy())


# --------------------------------------------------------------------------------------------
# Farthest-point and fixed-count sampling
# --------------------------------------------------------------------------------------------
#
# Every strategy below picks exactly what the reference loop picks: start at `start`, then
# repeatedly the point whose squared distance to the picked set is largest, distances computed
# in float32 as (dx*dx + dy*dy) + dz*dz from the coordinate differences, ties to the lowest
# index. They differ only in how much of that work they redo per pick:
#
# - `_fps_matrix` (CPU, up to _MATRIX_MAX points): all pairwise distances up front, then two
#   small ops per pick (the policy's clouds: ~1-2k voxels of objects);
# - `_fps_slab` (CPU, large clouds sorted along x, as voxel output is): a pick can only lower
#   the distances of points within sqrt(current max) of it along x, a contiguous slab of the
#   array; block maxima make the next argmax cheap;
# - `_fps_loop` (CPU, the rest): the plain loop, with the fewest ops per pick;
# - `_fps_dense` (GPU): the plain loop on a padded batch, without host round trips.

_MATRIX_MAX = 2048  # points; the distance matrix is then at most 16 MB
_SLAB_MIN = 12000  # below this the plain loop is as fast
_BLOCK = 64


def start_index(n_points: int, seed: int) -> int:
    """The FPS start point for a cloud of `n_points` and a seed (numpy's generator, as always)."""
    return int(np.random.default_rng(seed).integers(n_points))


def _fps_matrix(P: torch.Tensor, n: int, start: int) -> list[int]:
    x, y, z = P
    N = x.shape[0]
    # D[i, j]: squared distance from point i to point j, computed in row chunks that stay in
    # cache, in the order the picks' distances are computed in (the same float32 values).
    D = torch.empty((N, N))
    rows = 128
    tmp = torch.empty((rows, N))
    for s in range(0, N, rows):
        e = min(N, s + rows)
        Dc, tc = D[s:e], tmp[: e - s]
        torch.sub(x[None, :], x[s:e, None], out=Dc)
        Dc.mul_(Dc)
        torch.sub(y[None, :], y[s:e, None], out=tc)
        tc.mul_(tc)
        Dc.add_(tc)
        torch.sub(z[None, :], z[s:e, None], out=tc)
        tc.mul_(tc)
        Dc.add_(tc)
    dist = D[start].clone()
    picks = [start]
    argmax = dist.argmax
    clamp = dist.clamp_max_
    for _ in range(n - 1):
        last = int(argmax())
        picks.append(last)
        clamp(D[last])
    return picks


def _x_sorted(x: torch.Tensor, tolerance: float) -> bool:
    """True if x is non-decreasing up to `tolerance` (voxel output: sorted by x cell)."""
    return bool((torch.cummax(x, 0).values - x).max() <= tolerance)


def _fps_slab(P: torch.Tensor, n: int, start: int) -> list[int]:
    S = _BLOCK
    N = P.shape[1]
    nb = -(-N // S)
    Np = nb * S
    x = P[0]
    # Positions before bisect_left(cmax, v) all have x < v; from bisect_right(rmin, v) on, x > v.
    cmax = torch.cummax(x, 0).values.tolist()
    rmin = torch.flip(torch.cummin(torch.flip(x, (0,)), 0).values, (0,)).tolist()
    xs = x.tolist()
    if Np != N:
        P = torch.cat([P, P[:, :1].expand(3, Np - N)], dim=1)
    P = P.contiguous()
    cols = P.T.contiguous()[:, :, None]  # cols[i]: point i as a (3, 1) column
    dist = torch.full((Np,), float("inf"))
    dist[N:] = -1.0  # padding: never the farthest
    rows = dist.view(nb, S)
    bmax = torch.empty(nb)
    diff = torch.empty((3, Np))
    picks = [start]
    last, M = start, math.inf
    sqrt, left, right, sub, amax = math.sqrt, bisect.bisect_left, bisect.bisect_right, torch.sub, torch.amax
    # (The loop is overhead-bound: few views, in-place ops, no out= where a method does it.)
    for _ in range(n - 1):
        if M == math.inf:
            lo, hi = 0, N
        else:
            # Every distance is <= M now, so a point farther than sqrt(M) from `last` along x
            # keeps its distance (1e-6 of slack covers float32 rounding of dx*dx).
            R = sqrt(M) * 1.000001 + 1e-30
            xp = xs[last]
            lo, hi = left(cmax, xp - R), right(rmin, xp + R)
        dw = diff[:, lo:hi]
        sub(P[:, lo:hi], cols[last], out=dw)
        dw.mul_(dw)
        dx, dy, dz = dw.unbind(0)
        dx.add_(dy).add_(dz)  # (dx^2 + dy^2) + dz^2
        dist[lo:hi].clamp_max_(dx)
        b0, b1 = lo // S, (hi - 1) // S + 1
        amax(rows[b0:b1], dim=1, out=bmax[b0:b1])
        b = int(bmax.argmax())  # first block holding the maximum ...
        M = bmax[b].item()
        last = b * S + int(rows[b].argmax())  # ... and its first point holding it
        picks.append(last)
    return picks


def _fps_loop(P: torch.Tensor, n: int, start: int) -> list[int]:
    """The plain loop on one (3, N) cloud on the CPU (the fewest ops per pick)."""
    N = P.shape[1]
    cols = P.T.contiguous()[:, :, None]
    dist = torch.full((N,), float("inf"))
    diff = torch.empty((3, N))
    dx, dy, dz = diff.unbind(0)
    picks = [start]
    last = start
    sub, clamp, argmax = torch.sub, dist.clamp_max_, dist.argmax
    for _ in range(n - 1):
        sub(P, cols[last], out=diff)
        diff.mul_(diff)
        dx.add_(dy).add_(dz)  # (dx^2 + dy^2) + dz^2
        clamp(dx)
        last = int(argmax())
        picks.append(last)
    return picks


def _fps_dense(points: torch.Tensor, valid: torch.Tensor, n: int, start: torch.Tensor) -> torch.Tensor:
    B, N, _ = points.shape
    device = points.device
    P = points.transpose(1, 2).contiguous()  # (B, 3, N)
    # Invalid (padding) points start at -1 and min() keeps them there: never the farthest.
    dist = torch.where(valid, torch.full((), float("inf"), device=device), torch.full((), -1.0, device=device))
    diff = torch.empty_like(P)
    dx, dy, dz = diff.unbind(1)
    last = start.to(device=device, dtype=torch.long).reshape(B, 1, 1)
    picks = [last.reshape(B, 1)]
    for _ in range(n - 1):
        torch.sub(P, P.gather(2, last.expand(B, 3, 1)), out=diff)
        diff.mul_(diff)
        dx.add_(dy).add_(dz)  # (dx^2 + dy^2) + dz^2
        dist.clamp_max_(dx)
        last = dist.argmax(dim=1).reshape(B, 1, 1)
        picks.append(last.reshape(B, 1))
    return torch.cat(picks, dim=1)


def farthest_point_sampling_torch(points: torch.Tensor, valid: torch.Tensor | None, n: int, start) -> torch.Tensor:
    """Batched farthest-point sampling. points (B, N, 3) float32, valid (B, N) bool or None (all
    valid) with at least `n` valid points per item, start (B,) start indices (of valid points).
    Returns (B, n) long indices into N: `start`, then each time the point farthest from those
    already picked (squared float32 distances, ties to the lowest index).
    """
    B, N, _ = points.shape
    if valid is None:
        valid = torch.ones((B, N), dtype=torch.bool, device=points.device)
    start = torch.as_tensor(start, dtype=torch.long).reshape(-1)
    if not 0 < n or int(valid.sum(dim=1).min().item()) < n:
        raise PerceptionError(f"farthest-point sampling of {n} points needs that many valid points per item")
    if points.device.type != "cpu":
        return _fps_dense(points, valid, n, start)
    out = torch.empty((B, n), dtype=torch.long)
    for b in range(B):
        keep = valid[b].nonzero().squeeze(1)
        whole = len(keep) == N
        P = (points[b] if whole else points[b, keep]).T.contiguous().to(torch.float32)
        s = int(start[b]) if whole else int((keep == int(start[b])).nonzero()[0, 0])
        M = P.shape[1]
        x = P[0]
        if M <= _MATRIX_MAX:
            picks = _fps_matrix(P, n, s)
        elif M >= _SLAB_MIN and _x_sorted(x, float(x.max() - x.min()) / 32):
            picks = _fps_slab(P, n, s)
        else:
            picks = _fps_loop(P.contiguous(), n, s)
        idx = torch.tensor(picks, dtype=torch.long)
        out[b] = idx if whole else keep[idx]
    return out


def farthest_point_sampling(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Indices (n,) of `n` points chosen greedily, each the farthest from those already chosen.

    Deterministic for a given start index; ties go to the lowest index.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    N = len(points)
    if not 0 < n <= N:
        raise PerceptionError(f"farthest-point sampling of {n} from {N} points")
    return farthest_point_sampling_torch(_tensor(points)[None], None, n, [int(start)])[0].numpy()


@dataclass(frozen=True)
class SamplingInfo:
    """How a fixed-size cloud was made: `n_input` points available; `padded` is True when
    fewer than the requested count existed and points were repeated to fill it."""

    n_input: int
    n_output: int
    padded: bool
    method: str


def sample_indices(n_points: int, n: int, method: str = "fps", seed: int = 0, points=None) -> np.ndarray:
    """Indices of exactly `n` points out of `n_points` (see `sample_fixed_count`)."""
    if n_points == 0:
        raise EmptyPointCloudError(f"cannot sample {n} points from an empty cloud")
    if n <= 0:
        raise PerceptionError(f"sample count must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if n_points < n:
        # Every real point once, then repeats drawn at random: the shape stays fixed and the
        # repeats carry no new geometry (the padded flag says so).
        return np.concatenate([np.arange(n_points), rng.choice(n_points, n - n_points, replace=True)])
    if method == "fps":
        return farthest_point_sampling(points, n, start_index(n_points, seed))
    if method == "random":
        return np.sort(rng.choice(n_points, n, replace=False))
    raise PerceptionError(f"unknown sampling method '{method}' (use fps or random)")


def sample_fixed_count(cloud: PointCloud, n: int, method: str = "fps", seed: int = 0) -> tuple[PointCloud, SamplingInfo]:
    """Exactly `n` points: farthest-point ('fps') or uniform random ('random') sampling.

    With fewer than `n` points, all of them are kept and random repeats fill the rest
    (`SamplingInfo.padded`). An empty cloud raises EmptyPointCloudError.
    """
    idx = sample_indices(len(cloud), n, method, seed, cloud.points)
    return cloud.select(idx), SamplingInfo(len(cloud), n, len(cloud) < n, method)

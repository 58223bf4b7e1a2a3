"""Point-cloud filters: workspace crop, table-plane removal, segment selection, voxel
downsampling, farthest-point sampling and fixed-count sampling.

numpy functions work on `PointCloud`s of any length. The `*_torch` functions work on padded
batches (B, N, 3) with a validity mask (B, N), the layout `backproject_torch` produces, and
give the same results as their numpy counterparts (same voxel order, same FPS picks up to
float32 rounding at exact ties).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.perception.pointcloud import EmptyPointCloudError, PerceptionError, PointCloud

# --------------------------------------------------------------------------------------------
# Crop, plane, segments
# --------------------------------------------------------------------------------------------


def box_mask(points: np.ndarray, lower, upper) -> np.ndarray:
    """True for points inside the axis-aligned box [lower, upper] (inclusive)."""
    lower = np.asarray(lower, dtype=np.float32)
    upper = np.asarray(upper, dtype=np.float32)
    if lower.shape != (3,) or upper.shape != (3,) or np.any(lower > upper):
        raise PerceptionError(f"crop box needs lower <= upper, 3 values each; got {lower}, {upper}")
    return np.all((points >= lower) & (points <= upper), axis=-1)


def crop_box(cloud: PointCloud, lower, upper) -> PointCloud:
    """Points of `cloud` inside the axis-aligned box [lower, upper] (e.g. the robot workspace)."""
    return cloud.select(box_mask(cloud.points, lower, upper))


@dataclass(frozen=True)
class Plane:
    """The plane n . p + d = 0 with a unit normal n; points with n . p + d > 0 are 'above'."""

    normal: tuple[float, float, float]
    d: float

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return points @ np.asarray(self.normal, dtype=points.dtype) + np.asarray(self.d, points.dtype)

    @staticmethod
    def horizontal(height: float = 0.0) -> Plane:
        """The plane z = height, normal +z (the table top in the base frame)."""
        return Plane((0.0, 0.0, 1.0), -float(height))


def fit_plane_ransac(
    points: np.ndarray,
    threshold: float = 0.005,
    iterations: int = 256,
    seed: int = 0,
    max_points: int = 20000,
    normal_hint=(0.0, 0.0, 1.0),
    max_tilt_deg: float | None = 30.0,
) -> tuple[Plane, np.ndarray]:
    """Dominant plane of `points` by RANSAC, refined by least squares on its inliers.

    Hypotheses are scored on a random subset of at most `max_points` points (all hypotheses at
    once, as one matrix product). With `max_tilt_deg`, only planes whose normal is within that
    angle of `normal_hint` count, so a large box side never wins over the table. The normal is
    oriented towards `normal_hint`. Returns the plane and the inlier mask over all points.
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        raise EmptyPointCloudError(f"plane fit needs at least 3 points, got {len(points)}")
    rng = np.random.default_rng(seed)
    sub = points if len(points) <= max_points else points[rng.choice(len(points), max_points, replace=False)]
    tri = rng.integers(len(sub), size=(iterations, 3))
    a, b, c = sub[tri[:, 0]], sub[tri[:, 1]], sub[tri[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    hint = np.asarray(normal_hint, dtype=np.float64)
    hint = hint / np.linalg.norm(hint)
    normals[ok] /= norms[ok, None]
    if max_tilt_deg is not None:
        ok &= np.abs(normals @ hint) >= np.cos(np.radians(max_tilt_deg))
    if not ok.any():
        raise EmptyPointCloudError(
            f"plane fit: no plane within {max_tilt_deg} deg of normal {tuple(hint)} among "
            f"{iterations} hypotheses ({len(points)} points)"
        )
    normals, a = normals[ok], a[ok]
    offsets = -np.einsum("ij,ij->i", normals, a)
    scores = (np.abs(sub @ normals.T + offsets) < threshold).sum(axis=0)
    best = int(np.argmax(scores))
    n, d = normals[best], offsets[best]
    # Least-squares refinement (twice: the refined plane may gather a few more inliers).
    for _ in range(2):
        inliers = np.abs(points @ n + d) < threshold
        if inliers.sum() < 3:
            break
        centroid = points[inliers].mean(axis=0)
        _, _, vt = np.linalg.svd(points[inliers] - centroid, full_matrices=False)
        n = vt[-1]
        d = -float(n @ centroid)
    if n @ hint < 0:
        n, d = -n, -d
    inliers = np.abs(points @ n + d) < threshold
    return Plane(tuple(float(x) for x in n), float(d)), inliers


def remove_plane(cloud: PointCloud, plane: Plane, threshold: float = 0.005) -> PointCloud:
    """Points more than `threshold` above `plane` (the plane itself and everything under it go)."""
    return cloud.select(plane.signed_distance(cloud.points) > threshold)


def select_labels(cloud: PointCloud, keep=None, drop=None) -> PointCloud:
    """Points whose segmentation label is in `keep` (if given) and not in `drop` (if given)."""
    if cloud.labels is None:
        raise PerceptionError("segment selection needs segmentation labels, and the cloud has none")
    mask = np.ones(len(cloud), dtype=bool)
    if keep is not None:
        mask &= np.isin(cloud.labels, np.asarray(list(keep), dtype=np.int32))
    if drop is not None:
        mask &= ~np.isin(cloud.labels, np.asarray(list(drop), dtype=np.int32))
    return cloud.select(mask)


# --------------------------------------------------------------------------------------------
# Voxel downsampling
# --------------------------------------------------------------------------------------------


def voxel_downsample(cloud: PointCloud, voxel_size: float) -> PointCloud:
    """One point per occupied voxel: the mean of its points (and of their colours).

    The grid is anchored at the frame origin, so the same scene gives the same voxels
    wherever the cloud starts. With labels, points of different segments never share a voxel
    (objects stay separate); the output is ordered by (voxel, label) key.
    """
    if voxel_size <= 0 or len(cloud) == 0:
        return cloud
    pts = cloud.points
    keys = np.floor(pts / np.float32(voxel_size)).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    lin = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    if cloud.labels is not None:
        label_values, codes = np.unique(cloud.labels, return_inverse=True)
        lin = lin * len(label_values) + codes
    _, first, inverse = np.unique(lin, return_index=True, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    means = np.stack([np.bincount(inverse, weights=pts[:, k]) for k in range(3)], axis=1) / counts[:, None]
    colors = None
    if cloud.colors is not None:
        csum = np.stack([np.bincount(inverse, weights=cloud.colors[:, k]) for k in range(3)], axis=1)
        colors = np.clip(np.round(csum / counts[:, None]), 0, 255).astype(np.uint8)
    labels = None if cloud.labels is None else cloud.labels[first]
    return PointCloud(means.astype(np.float32), colors, labels)


# --------------------------------------------------------------------------------------------
# Farthest-point and fixed-count sampling
# --------------------------------------------------------------------------------------------


def start_index(n_points: int, seed: int) -> int:
    """The FPS start point for a cloud of `n_points` and a seed (shared by both backends)."""
    return int(np.random.default_rng(seed).integers(n_points))


def farthest_point_sampling(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Indices (n,) of `n` points chosen greedily, each the farthest from those already chosen.

    Deterministic for a given start index; ties go to the lowest index.
    """
    points = np.asarray(points, dtype=np.float32)
    N = len(points)
    if not 0 < n <= N:
        raise PerceptionError(f"farthest-point sampling of {n} from {N} points")
    # Coordinates as separate contiguous arrays: about 2x faster than (N, 3) row arithmetic.
    x, y, z = (np.ascontiguousarray(points[:, k]) for k in range(3))
    dist = np.full(N, np.inf, dtype=np.float32)
    d = np.empty(N, dtype=np.float32)
    tmp = np.empty(N, dtype=np.float32)
    idx = np.empty(n, dtype=np.int64)
    last = int(start)
    for i in range(n):
        idx[i] = last
        np.subtract(x, x[last], out=d)
        np.multiply(d, d, out=d)
        np.subtract(y, y[last], out=tmp)
        np.multiply(tmp, tmp, out=tmp)
        np.add(d, tmp, out=d)
        np.subtract(z, z[last], out=tmp)
        np.multiply(tmp, tmp, out=tmp)
        np.add(d, tmp, out=d)
        np.minimum(dist, d, out=dist)
        last = int(np.argmax(dist))
    return idx


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


# --------------------------------------------------------------------------------------------
# torch versions (padded batches)
# --------------------------------------------------------------------------------------------


def voxel_downsample_torch(points, valid, voxel_size: float, colors=None, labels=None):
    """Batched voxel means. points (B, N, 3), valid (B, N) bool, colors (B, N, 3) uint8 or None,
    labels (B, N) int or None.

    Returns (points (B, M, 3), valid (B, M), colors or None, labels or None), M = the largest
    voxel count in the batch; per item the voxels are in the same order as `voxel_downsample`.
    """
    import torch

    B, N, _ = points.shape
    device = points.device
    b_idx, p_idx = valid.nonzero(as_tuple=True)
    if len(b_idx) == 0:
        raise EmptyPointCloudError("voxel downsampling: no valid points in the batch")
    pts = points[b_idx, p_idx]
    keys = torch.floor(pts / voxel_size).to(torch.int64)
    # Per-item offsets reproduce the numpy key layout (which subtracts each cloud's minimum),
    # so both backends sort voxels identically.
    big = torch.iinfo(torch.int64).max
    kmin = torch.full((B, 3), big, dtype=torch.int64, device=device)
    kmin = kmin.scatter_reduce(0, b_idx[:, None].expand(-1, 3), keys, reduce="amin")
    keys = keys - kmin[b_idx]
    kmax = torch.zeros((B, 3), dtype=torch.int64, device=device)
    kmax = kmax.scatter_reduce(0, b_idx[:, None].expand(-1, 3), keys, reduce="amax")
    dims = (kmax + 1)[b_idx]
    lin = (keys[:, 0] * dims[:, 1] + keys[:, 1]) * dims[:, 2] + keys[:, 2]
    n_label = 1
    if labels is not None:
        lab = labels[b_idx, p_idx].to(torch.int64)
        label_values, codes = torch.unique(lab, return_inverse=True)
        n_label = len(label_values)
        lin = lin * n_label + codes
    # Batch index as the most significant key part: unique() then groups voxels by item.
    span = int(lin.max().item()) + 1
    lin = b_idx.to(torch.int64) * span + lin
    uniq, inverse = torch.unique(lin, sorted=True, return_inverse=True)
    M_total = len(uniq)
    counts = torch.bincount(inverse, minlength=M_total).to(torch.float64)
    sums = torch.zeros((M_total, 3), dtype=torch.float64, device=device).index_add_(0, inverse, pts.to(torch.float64))
    means = (sums / counts[:, None]).to(torch.float32)
    vb = torch.div(uniq, span, rounding_mode="floor")
    per_item = torch.bincount(vb, minlength=B)
    M = int(per_item.max().item())
    offsets = torch.cumsum(per_item, 0) - per_item
    slot = torch.arange(M_total, device=device) - offsets[vb]
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
        out_colors = torch.zeros((B, M, 3), dtype=torch.uint8, device=device)
        out_colors[vb, slot] = cmean
    out_labels = None
    if labels is not None:
        code = (uniq - vb * span) % n_label
        out_labels = torch.full((B, M), -1, dtype=torch.int32, device=device)
        out_labels[vb, slot] = label_values[code].to(torch.int32)
    return out_pts, out_valid, out_colors, out_labels


def farthest_point_sampling_torch(points, valid, n: int, start):
    """Batched FPS. points (B, N, 3), valid (B, N) with at least `n` valid points per item,
    start (B,) long start indices (valid ones). Returns (B, n) long indices.
    """
    import torch

    B, N, _ = points.shape
    device = points.device
    if int(valid.sum(dim=1).min().item()) < n:
        raise PerceptionError(f"farthest-point sampling of {n} points needs that many valid points per item")
    # Invalid (padding) points start at -1 and min() keeps them there: never the farthest.
    dist = torch.where(valid, torch.full((B, N), float("inf"), device=device),
                       torch.full((B, N), -1.0, device=device))
    # Separate contiguous coordinates and in-place ops into preallocated buffers: the loop
    # runs n times, so allocations and strided (B, N, 3) arithmetic dominate otherwise. The
    # association order (dx^2 + dy^2) + dz^2 matches the numpy version bit for bit.
    x, y, z = (points[..., k].contiguous() for k in range(3))
    d = torch.empty((B, N), dtype=points.dtype, device=device)
    tmp = torch.empty_like(d)
    idx = torch.empty((B, n), dtype=torch.long, device=device)
    last = start.to(device=device, dtype=torch.long).reshape(B, 1)
    for i in range(n):
        idx[:, i : i + 1] = last
        torch.sub(x, x.gather(1, last), out=d)
        d.mul_(d)
        torch.sub(y, y.gather(1, last), out=tmp)
        tmp.mul_(tmp)
        d.add_(tmp)
        torch.sub(z, z.gather(1, last), out=tmp)
        tmp.mul_(tmp)
        d.add_(tmp)
        torch.minimum(dist, d, out=dist)
        last = dist.argmax(dim=1, keepdim=True)
    return idx

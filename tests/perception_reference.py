"""The numpy perception pipeline: the reference the torch implementation is tested against.

This is the numpy code `robot_rewards.perception` ran before it became torch-only (policies
up to then were trained on its clouds). It is kept here, out of the package, only as a test and
benchmark reference: `tests/test_perception*.py` check that the torch pipeline gives the same
points, and `robot-rewards bench perception` times it (when this file is present) as the
"numpy" column. Nothing in `robot_rewards` imports it.

Same algorithms, one frame at a time, variable-length `PointCloud`s: back-projection, float64
extrinsic transform, fusion, workspace crop, table removal (known plane or RANSAC), segment
selection, voxel means, farthest-point sampling / padding.
"""

from __future__ import annotations

import functools

import numpy as np

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.perception import filters
from robot_rewards.perception.filters import Plane, SamplingInfo, start_index
from robot_rewards.perception.pipeline import (
    PerceptionConfig,
    PerceptionInfo,
    PerceptionResult,
    _as_config,
    _as_frame_dict,
    _camera_for,
    _check_sampling,
    _empty_error,
    _segment_ids,
)
from robot_rewards.perception.pointcloud import (
    EmptyPointCloudError,
    InvalidDepthError,
    PerceptionError,
    PointCloud,
    check_images,  # input checks are shared; the geometry is what the reference is for
)

# --------------------------------------------------------------------------------------------
# Back-projection, transform, fusion
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def ray_grid(intrinsics: CameraIntrinsics) -> np.ndarray:
    """(H, W, 2) normalised image coordinates (x/z, y/z) of every pixel centre (float32)."""
    i = intrinsics
    u, v = np.meshgrid(np.arange(i.width, dtype=np.float64), np.arange(i.height, dtype=np.float64))
    if not any(abs(d) > 0 for d in i.distortion):
        grid = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy], axis=-1)
    else:
        import cv2

        pix = np.stack([u, v], axis=-1).reshape(-1, 1, 2)
        grid = cv2.undistortPoints(pix, i.K, np.asarray(i.distortion, np.float64)).reshape(i.height, i.width, 2)
    grid = grid.astype(np.float32)
    grid.setflags(write=False)
    return grid


def valid_depth_mask(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    depth = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > max(min_depth, 0.0)) & (depth <= max_depth)


def backproject(depth, intrinsics: CameraIntrinsics, rgb=None, segmentation=None, mask=None,
                min_depth: float = 0.0, max_depth: float = np.inf, camera_name: str = "camera") -> PointCloud:
    check_images(camera_name, intrinsics, depth, rgb, segmentation, mask)
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_depth_mask(depth, min_depth, max_depth)
    if not valid.any():
        raise InvalidDepthError(
            f"camera '{camera_name}': no valid depth in a {depth.shape[1]}x{depth.shape[0]} frame "
            f"(every pixel is 0, NaN, inf or outside [{min_depth}, {max_depth}] m)"
        )
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    z = depth[valid]
    rays = ray_grid(intrinsics)[valid]
    points = np.empty((len(z), 3), dtype=np.float32)
    points[:, 0] = rays[:, 0] * z
    points[:, 1] = rays[:, 1] * z
    points[:, 2] = z
    return PointCloud(points, None if rgb is None else np.asarray(rgb)[valid],
                      None if segmentation is None else np.asarray(segmentation)[valid])


def transform_points(points: np.ndarray, T) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise PerceptionError(f"transform must be 4x4, got {T.shape}")
    return transforms.apply(T, np.asarray(points, dtype=np.float64)).astype(np.float32)


def frame_to_cloud(frame, camera: CameraModel | None = None, min_depth: float = 0.0, max_depth: float = np.inf,
                   colors: bool = True, labels: bool = True, mask=None) -> PointCloud:
    camera = camera or frame.camera
    cloud = backproject(frame.depth, camera.intrinsics, rgb=frame.rgb if colors else None,
                        segmentation=frame.segmentation if labels else None, mask=mask,
                        min_depth=min_depth, max_depth=max_depth, camera_name=camera.name)
    return PointCloud(transform_points(cloud.points, camera.base_T_camera), cloud.colors, cloud.labels)


def fuse(clouds: list[PointCloud]) -> PointCloud:
    if not clouds:
        raise EmptyPointCloudError("fuse: no clouds given")
    with_colors = all(c.colors is not None for c in clouds)
    with_labels = all(c.labels is not None for c in clouds)
    return PointCloud(np.concatenate([c.points for c in clouds]),
                      np.concatenate([c.colors for c in clouds]) if with_colors else None,
                      np.concatenate([c.labels for c in clouds]) if with_labels else None)


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def box_mask(points: np.ndarray, lower, upper) -> np.ndarray:
    lower = np.asarray(lower, dtype=np.float32)
    upper = np.asarray(upper, dtype=np.float32)
    if lower.shape != (3,) or upper.shape != (3,) or np.any(lower > upper):
        raise PerceptionError(f"crop box needs lower <= upper, 3 values each; got {lower}, {upper}")
    return np.all((points >= lower) & (points <= upper), axis=-1)


def crop_box(cloud: PointCloud, lower, upper) -> PointCloud:
    return cloud.select(box_mask(cloud.points, lower, upper))


def signed_distance(plane: Plane, points: np.ndarray) -> np.ndarray:
    return points @ np.asarray(plane.normal, dtype=points.dtype) + np.asarray(plane.d, points.dtype)


def fit_plane_ransac(points, threshold: float = 0.005, iterations: int = 256, seed: int = 0,
                     max_points: int = 20000, normal_hint=(0.0, 0.0, 1.0),
                     max_tilt_deg: float | None = 30.0) -> tuple[Plane, np.ndarray]:
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
    return cloud.select(signed_distance(plane, cloud.points) > threshold)


def select_labels(cloud: PointCloud, keep=None, drop=None) -> PointCloud:
    if cloud.labels is None:
        raise PerceptionError("segment selection needs segmentation labels, and the cloud has none")
    mask = np.ones(len(cloud), dtype=bool)
    if keep is not None:
        mask &= np.isin(cloud.labels, np.asarray(list(keep), dtype=np.int32))
    if drop is not None:
        mask &= ~np.isin(cloud.labels, np.asarray(list(drop), dtype=np.int32))
    return cloud.select(mask)


def voxel_downsample(cloud: PointCloud, voxel_size: float) -> PointCloud:
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


def farthest_point_sampling(points, n: int, start: int = 0) -> np.ndarray:
    points = np.asarray(points, dtype=np.float32)
    N = len(points)
    if not 0 < n <= N:
        raise PerceptionError(f"farthest-point sampling of {n} from {N} points")
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


def sample_indices(n_points: int, n: int, method: str = "fps", seed: int = 0, points=None) -> np.ndarray:
    # only farthest-point sampling is the reference's own; padding, random picks and the errors
    # are the package's
    if method == "fps" and 0 < n <= n_points:
        return farthest_point_sampling(points, n, start_index(n_points, seed))
    return filters.sample_indices(n_points, n, method, seed, points)


def sample_fixed_count(cloud: PointCloud, n: int, method: str = "fps", seed: int = 0) -> tuple[PointCloud, SamplingInfo]:
    idx = sample_indices(len(cloud), n, method, seed, cloud.points)
    return cloud.select(idx), SamplingInfo(len(cloud), n, len(cloud) < n, method)


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def perceive_cloud(frames, cameras=None, config: PerceptionConfig | None = None, seg_labels=None) -> PerceptionResult:
    """The numpy `perceive_cloud` (device is ignored: always numpy)."""
    config = _as_config(config)
    _check_sampling(config)
    frames = _as_frame_dict(frames)
    seg_labels = dict(seg_labels or {})
    want_labels = all(f.segmentation is not None for f in frames.values())
    clouds = [frame_to_cloud(f, _camera_for(name, f, cameras), config.min_depth, config.max_depth,
                             colors=config.colors, labels=want_labels)
              for name, f in frames.items()]
    cloud = fuse(clouds)
    counts = {"backprojected": len(cloud)}
    if config.workspace_lower is not None:
        cloud = crop_box(cloud, config.workspace_lower, config.workspace_upper)
        counts["cropped"] = len(cloud)
        if len(cloud) == 0:
            raise _empty_error(counts, "the workspace crop")
    plane = None
    if config.table != "none":
        if config.table == "known":
            plane = Plane.horizontal(config.table_height)
        else:
            plane, _ = fit_plane_ransac(cloud.points, config.table_threshold, config.ransac_iterations,
                                        seed=config.seed)
        cloud = remove_plane(cloud, plane, config.table_threshold)
        counts["table_removed"] = len(cloud)
        if len(cloud) == 0:
            raise _empty_error(counts, "table removal")
    if config.keep_segments is not None or config.drop_segments is not None:
        if not want_labels:
            raise PerceptionError("keep_segments/drop_segments need segmentation in every frame")
        keep = None if config.keep_segments is None else _segment_ids(config.keep_segments, seg_labels)
        drop = None if config.drop_segments is None else _segment_ids(config.drop_segments, seg_labels)
        cloud = select_labels(cloud, keep, drop)
        counts["segments"] = len(cloud)
        if len(cloud) == 0:
            raise _empty_error(counts, "segment selection")
    if config.voxel_size > 0:
        cloud = voxel_downsample(cloud, config.voxel_size)
        counts["voxels"] = len(cloud)
    sampled, info = sample_fixed_count(cloud, config.n_points, config.sampling, config.seed)
    return PerceptionResult(sampled, PerceptionInfo(counts, info, plane))

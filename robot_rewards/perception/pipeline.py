"""The perception entry point: camera frames -> Observation with a fixed-size base-frame cloud.

Pipeline (same for sim, ROS nodes and replay): back-project each camera's depth, transform
to the base frame with that camera's extrinsic, fuse the cameras, crop to the workspace box,
remove the table plane (known height or RANSAC), keep/drop segments, voxel-downsample, then
sample exactly `n_points` points by farthest-point sampling (padding with repeats, flagged,
when fewer exist).

There is one implementation, in torch: `perceive_cloud_batch` runs a batch of observations
through the pipeline as padded tensors, on the CPU or a GPU (`PerceptionConfig.device`), and
`perceive_cloud` / `perceive` are that pipeline on a batch of one. The clouds are the ones the
earlier numpy implementation made for the same frames and seed (the policies were trained on
those); that numpy code is kept as the test reference in `tests/perception_reference.py`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.perception import filters
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.filters import Plane, SamplingInfo
from robot_rewards.perception.pointcloud import (
    EmptyPointCloudError,
    ImageSizeMismatchError,
    PerceptionError,
    PointCloud,
    _check_image,
    as_tensor,
    backproject_torch,
    depth_in_metres,
    invalid_depth_error,
    ray_grid_torch,
    resolve_device,
)


@dataclass
class PerceptionInfo:
    """What happened on the way to the fixed-size cloud (for logs and the padded flag)."""

    counts: dict  # points after each stage: backprojected, cropped, table_removed, segments, voxels
    sampling: SamplingInfo
    plane: Optional[Plane] = None
    warnings: list = field(default_factory=list)  # what looked wrong (e.g. the table removal)

    @property
    def padded(self) -> bool:
        return self.sampling.padded


@dataclass(eq=False)
class PerceptionResult:
    """The fixed-size cloud (with per-point segment labels where the frames had them) and info."""

    cloud: PointCloud
    info: PerceptionInfo


def _as_frame_dict(frames) -> dict[str, CameraFrame]:
    if isinstance(frames, CameraFrame):
        frames = [frames]
    if isinstance(frames, Mapping):
        out = dict(frames)
    else:
        out = {}
        for f in frames:
            if f.camera.name in out:
                raise PerceptionError(f"two frames from camera '{f.camera.name}'")
            out[f.camera.name] = f
    if not out:
        raise PerceptionError("perceive: no camera frames given")
    return out


def _camera_for(name: str, frame: CameraFrame, cameras) -> CameraModel:
    camera = frame.camera if not cameras or name not in cameras else cameras[name]
    i = camera.intrinsics
    if frame.depth.shape != (i.height, i.width):
        raise ImageSizeMismatchError(
            f"camera '{name}': depth is {frame.depth.shape[1]}x{frame.depth.shape[0]} but its "
            f"intrinsics are {i.width}x{i.height}"
        )
    return camera


def _segment_ids(names, seg_labels: Mapping[int, str]) -> list[int]:
    by_name = {v: k for k, v in seg_labels.items()}
    ids = []
    for n in names:
        if n in by_name:
            ids.append(int(by_name[n]))
        elif str(n).lstrip("-").isdigit():
            ids.append(int(n))
        else:
            raise PerceptionError(f"unknown segment '{n}' (known: {sorted(by_name)})")
    return ids


def _as_config(config) -> PerceptionConfig:
    """A PerceptionConfig from None, a PerceptionConfig, or a hydra/OmegaConf node of one."""
    if config is None:
        return PerceptionConfig()
    if isinstance(config, PerceptionConfig):
        return config
    try:
        obj = OmegaConf.to_object(config)
    except Exception as exc:  # not an OmegaConf node either
        raise PerceptionError(f"expected a PerceptionConfig, got {type(config).__name__}") from exc
    return obj if isinstance(obj, PerceptionConfig) else PerceptionConfig(**obj)


def _check_sampling(config: PerceptionConfig) -> None:
    if config.n_points <= 0:
        raise PerceptionError(f"n_points must be positive, got {config.n_points}")
    if config.sampling not in ("fps", "random"):
        raise PerceptionError(f"unknown sampling '{config.sampling}' (use fps or random)")
    if config.table not in ("known", "ransac", "none"):
        raise PerceptionError(f"unknown table mode '{config.table}' (use known, ransac or none)")
    if (config.workspace_lower is None) != (config.workspace_upper is None):
        raise PerceptionError("give both workspace_lower and workspace_upper, or neither")
    if config.table == "ransac":
        up = np.asarray(config.table_up, dtype=np.float64).reshape(-1)
        if up.shape != (3,) or not np.isfinite(up).all() or np.linalg.norm(up) == 0:
            raise PerceptionError(f"table_up must be a non-zero 3-vector, got {list(config.table_up)}")
        if not 0 < config.table_max_tilt_deg <= 90:
            raise PerceptionError(f"table_max_tilt_deg must be in (0, 90], got {config.table_max_tilt_deg}")


class TableRemovalWarning(UserWarning):
    """table=ransac removed a plane that does not look like the table under the scene."""


def _check_table_removal(signed: torch.Tensor, valid: torch.Tensor, inliers: int, config: PerceptionConfig,
                         plane: Plane, camera_origins: np.ndarray) -> str | None:
    """Why the removed RANSAC plane looks wrong (None when it looks like a table). A camera sees
    a table from above, so a camera under the plane means the up axis is not the cloud's; and
    more of the cloud under the plane than over it means the objects go and the floor stays."""
    normal = tuple(round(x, 2) for x in plane.normal)
    heights = camera_origins @ np.asarray(plane.normal) + plane.d
    heights = heights[np.isfinite(heights)]  # unknown sensor positions (point-cloud input) say nothing
    if (heights < 0).any():
        return (f"table=ransac: the removed plane (normal {normal}, {inliers} points) has the camera "
                f"{-float(heights.min()):.2f} m under it, so it was fitted upside down or is not the table; "
                f"is the cloud's up axis table_up={list(config.table_up)}?")
    above = int(((signed > config.table_threshold) & valid).sum())
    below = int(((signed < -config.table_threshold) & valid).sum())
    if below > above:
        return (f"table=ransac: the removed plane (normal {normal}, {inliers} points) has more points under "
                f"it ({below}) than over it ({above}), so what is kept is not what stands on a table; "
                f"is the cloud's up axis table_up={list(config.table_up)}?")
    return None


def _empty_error(counts: dict, stage: str) -> EmptyPointCloudError:
    trail = ", ".join(f"{k}={v}" for k, v in counts.items())
    return EmptyPointCloudError(f"no points left after {stage} ({trail})")


def _observation(frames, result: PerceptionResult, proprio, goal, timestamp, seg_labels) -> Observation:
    return Observation(
        frames=_as_frame_dict(frames),
        proprio=proprio,
        goal=goal,
        timestamp=timestamp,
        points=result.cloud.points,
        colors=result.cloud.colors,
        point_labels=result.cloud.labels,
        points_padded=result.info.padded,
        seg_labels=dict(seg_labels or {}),
    )


def perceive_with_info(frames, cameras=None, config: PerceptionConfig | None = None,
                       proprio: Proprio | None = None, goal: str = "", timestamp: float = 0.0,
                       seg_labels: Mapping[int, str] | None = None) -> tuple[Observation, PerceptionResult]:
    """`perceive`, also returning the PerceptionResult (per-point labels, counts, padded flag)."""
    result = perceive_cloud(frames, cameras, config, seg_labels)
    return _observation(frames, result, proprio, goal, timestamp, seg_labels), result


def perceive(frames, cameras: Mapping[str, CameraModel] | None = None,
             config: PerceptionConfig | None = None, proprio: Proprio | None = None,
             goal: str = "", timestamp: float = 0.0,
             seg_labels: Mapping[int, str] | None = None) -> Observation:
    """Observation with a fixed-size (config.n_points, 3) float32 base-frame cloud of `frames`.

    frames: {camera name: CameraFrame} or a list of CameraFrames; cameras: optional
    {name: CameraModel} overriding the frames' own cameras (calibrated intrinsics/extrinsics);
    seg_labels: {body id: name}, used to resolve keep/drop segment names and stored in the
    Observation. Raises InvalidDepthError (a frame without valid depth),
    ImageSizeMismatchError, EmptyPointCloudError (nothing left after a stage, named).
    """
    return perceive_with_info(frames, cameras, config, proprio, goal, timestamp, seg_labels)[0]


def perceive_cloud(frames, cameras: Mapping[str, CameraModel] | None = None,
                   config: PerceptionConfig | None = None,
                   seg_labels: Mapping[int, str] | None = None) -> PerceptionResult:
    """The fixed-size base-frame cloud of one set of frames, with stage counts: the torch
    pipeline (`perceive_cloud_batch`) on a batch of one, on `config.device`.

    `cameras` (name -> CameraModel) overrides the cameras carried by the frames, e.g. with
    calibrated ones.
    """
    return perceive_cloud_batch([frames], cameras, config, seg_labels)[0]


# --------------------------------------------------------------------------------------------
# The pipeline (torch, batched)
# --------------------------------------------------------------------------------------------

_STAGE_TEXT = {"cropped": "the workspace crop", "table_removed": "table removal", "segments": "segment selection"}


def _pack(valid, *tensors):
    """Compact the valid entries of (B, N, ...) tensors to the front of each row, in order."""
    B = valid.shape[0]
    counts = valid.sum(dim=1)
    M = int(counts.max().item())
    b_idx, p_idx = valid.nonzero(as_tuple=True)
    offsets = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(b_idx), device=valid.device) - offsets[b_idx]
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        fill = torch.zeros((B, M) + tuple(t.shape[2:]), dtype=t.dtype, device=t.device)
        if t.dtype == torch.int32:
            fill -= 1
        fill[b_idx, slot] = t[b_idx, p_idx]
        out.append(fill)
    packed_valid = torch.zeros((B, M), dtype=torch.bool, device=valid.device)
    packed_valid[b_idx, slot] = True
    return packed_valid, out


def _images(frames: list[CameraFrame], what: str, device, dtype=None):
    """The (B, H*W[, C]) tensor of one image kind of `frames` (no copy for a single frame;
    uint16 depth, i.e. millimetres, becomes metres)."""
    arrays = [getattr(f, what) for f in frames]
    if what == "depth":
        arrays = [depth_in_metres(a) for a in arrays]
    t = as_tensor(arrays[0][None] if len(arrays) == 1 else np.stack(arrays), dtype).to(device)
    return t.reshape(len(arrays), -1, *t.shape[3:])


def perceive_cloud_batch(frame_sets: Sequence, cameras: Mapping[str, CameraModel] | None = None,
                         config: PerceptionConfig | None = None,
                         seg_labels: Mapping[int, str] | None = None) -> list[PerceptionResult]:
    """The fixed-size base-frame clouds of many observations (same camera names and sizes in
    each), as one batch on `config.device` (CPU or CUDA).

    All observations go through back-projection, filtering and voxelisation as padded
    (B, N, ...) tensors; farthest-point sampling runs per item on the CPU and batched on a GPU.
    Each result is the one `perceive_cloud` gives for that observation alone.
    """
    config = _as_config(config)
    _check_sampling(config)
    device = torch.device(resolve_device(config.device))
    sets = [_as_frame_dict(f) for f in frame_sets]
    if not sets:
        raise PerceptionError("perceive_batch: no observations given")
    names = list(sets[0])
    for k, s in enumerate(sets):
        if list(s) != names:
            raise PerceptionError(f"observation {k} has cameras {list(s)}, expected {names}")
    seg_labels = dict(seg_labels or {})
    want_labels = all(f.segmentation is not None for s in sets for f in s.values())
    B = len(sets)

    pts_all, valid_all, col_all, lab_all = [], [], [], []
    origins = np.zeros((B, len(names), 3))  # camera positions in the base frame (table checks)
    for name in names:
        frames = [s[name] for s in sets]
        cams = [_camera_for(name, f, cameras) for f in frames]
        for f, c in zip(frames, cams):
            if config.colors:
                _check_image(c.name, f.rgb, c.intrinsics, "rgb", 3)
            if want_labels:
                _check_image(c.name, f.segmentation, c.intrinsics, "segmentation", None)
        sizes = {(c.intrinsics.width, c.intrinsics.height) for c in cams}
        if len(sizes) != 1:
            raise ImageSizeMismatchError(f"camera '{name}': frames of different sizes in one batch: {sizes}")
        if all(c.intrinsics == cams[0].intrinsics for c in cams):
            rays = ray_grid_torch(cams[0].intrinsics, device)
        else:
            rays = torch.stack([ray_grid_torch(c.intrinsics, device) for c in cams])
        depth = _images(frames, "depth", device, np.float32)
        T = torch.from_numpy(np.stack([np.asarray(c.base_T_camera, dtype=np.float64) for c in cams])).to(device)
        origins[:, names.index(name)] = [np.asarray(c.base_T_camera, dtype=np.float64)[:3, 3] for c in cams]
        pts, valid = backproject_torch(depth, rays, T, config.min_depth, config.max_depth)
        empty = (~valid.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            w, h = sizes.pop()
            raise invalid_depth_error(cams[0].name if B == 1 else name, w, h, config.min_depth, config.max_depth,
                                      None if B == 1 else empty, depth=depth[empty[0]])
        pts_all.append(pts)
        valid_all.append(valid)
        if config.colors:
            col_all.append(_images(frames, "rgb", device, np.uint8))
        if want_labels:
            lab_all.append(_images(frames, "segmentation", device, np.int32))
    join = (lambda ts: ts[0]) if len(names) == 1 else (lambda ts: torch.cat(ts, dim=1))
    points = join(pts_all)
    valid = join(valid_all)
    colors = join(col_all) if config.colors else None
    labels = join(lab_all) if want_labels else None

    return _filter_and_sample(points, valid, colors, labels, origins, config, device, seg_labels, want_labels,
                              "backprojected")


def _filter_and_sample(points, valid, colors, labels, origins: np.ndarray, config: PerceptionConfig, device,
                       seg_labels: Mapping[int, str], want_labels: bool, first_stage: str) -> list[PerceptionResult]:
    """The stages after the base-frame points exist: crop, table, segments, voxels, sampling.

    points (B, N, 3) float32, valid (B, N) bool, colors (B, N, 3) uint8 or None, labels (B, N)
    int32 or None, origins (B, C, 3) the sensors' positions in the base frame; `first_stage`
    names the count of the input points.
    """
    B = points.shape[0]
    counts = [dict() for _ in range(B)]
    notes: list[list[str]] = [[] for _ in range(B)]

    def record(stage):
        for b, c in enumerate(valid.sum(dim=1).tolist()):
            counts[b][stage] = int(c)
        bad = [b for b in range(B) if counts[b][stage] == 0]
        if bad and stage != first_stage:
            where = "" if B == 1 else f" (observation {bad[0]})"
            error = _empty_error(counts[bad[0]], _STAGE_TEXT[stage] + where)
            if notes[bad[0]]:  # e.g. the table removal that emptied the cloud looked wrong
                error = EmptyPointCloudError(f"{error}; {notes[bad[0]][-1]}")
            raise error

    record(first_stage)
    if config.workspace_lower is not None:
        valid &= filters.box_mask_torch(points, config.workspace_lower, config.workspace_upper)
        record("cropped")
    planes: list[Optional[Plane]] = [None] * B
    n_inliers = [0] * B
    if config.table != "none":
        for b in range(B):
            if config.table == "known":
                planes[b] = Plane.horizontal(config.table_height)
            else:
                planes[b], inliers = filters.fit_plane_ransac_torch(
                    points[b][valid[b]], config.table_threshold, config.ransac_iterations, seed=config.seed,
                    normal_hint=tuple(float(x) for x in config.table_up),
                    max_tilt_deg=float(config.table_max_tilt_deg))
                n_inliers[b] = int(inliers.sum())
        if all(pl.normal == (0.0, 0.0, 1.0) for pl in planes):
            # z + d: what n . p + d is for this normal, without the multiply-adds
            offsets = torch.tensor([pl.d for pl in planes], dtype=torch.float32, device=device)
            signed = points[..., 2] + offsets[:, None]
        else:
            normals = torch.tensor([pl.normal for pl in planes], dtype=torch.float32, device=device)
            offsets = torch.tensor([pl.d for pl in planes], dtype=torch.float32, device=device)
            signed = filters.signed_distance_torch(points, normals, offsets)
        if config.table == "ransac":
            for b in range(B):
                note = _check_table_removal(signed[b], valid[b], n_inliers[b], config, planes[b], origins[b])
                if note is not None:
                    notes[b].append(note)
                    # one stable text per up axis, so a long replay warns once, not per frame
                    warnings.warn(f"table=ransac with table_up={list(config.table_up)} removed a plane that does "
                                  "not look like the table (see PerceptionInfo.warnings): is that the cloud's up axis?",
                                  TableRemovalWarning, stacklevel=3)
        valid &= signed > config.table_threshold
        record("table_removed")
    if config.keep_segments is not None or config.drop_segments is not None:
        if not want_labels:
            raise PerceptionError("keep_segments/drop_segments need segmentation in every frame")
        keep = None if config.keep_segments is None else _segment_ids(config.keep_segments, seg_labels)
        drop = None if config.drop_segments is None else _segment_ids(config.drop_segments, seg_labels)
        valid &= filters.label_mask_torch(labels, keep, drop)
        record("segments")
    if config.voxel_size > 0:
        points, valid, colors, labels = filters.voxel_downsample_torch(points, valid, config.voxel_size, colors, labels)
        record("voxels")
    else:
        valid, (points, colors, labels) = _pack(valid, points, colors, labels)

    n = config.n_points
    n_valid = valid.sum(dim=1).tolist()
    index = torch.zeros((B, n), dtype=torch.long, device=device)
    fps_items = [b for b in range(B) if n_valid[b] >= n and config.sampling == "fps"]
    for b in range(B):
        if b not in fps_items:
            index[b] = torch.from_numpy(filters.sample_indices(n_valid[b], n, config.sampling, config.seed)).to(device)
    if fps_items:
        rows = torch.tensor(fps_items, device=device)
        start = torch.tensor([filters.start_index(n_valid[b], config.seed) for b in fps_items])
        sub_pts = points if len(fps_items) == B else points[rows]
        sub_valid = valid if len(fps_items) == B else valid[rows]
        picked = filters.farthest_point_sampling_torch(sub_pts, sub_valid, n, start).to(device)
        if len(fps_items) == B:
            index = picked
        else:
            index[rows] = picked
    gather = torch.arange(B, device=device)[:, None]
    out_pts = points[gather, index].cpu().numpy()
    out_col = None if colors is None else colors[gather, index].cpu().numpy()
    out_lab = None if labels is None else labels[gather, index].cpu().numpy()
    return [
        PerceptionResult(
            PointCloud(out_pts[b], None if out_col is None else out_col[b], None if out_lab is None else out_lab[b]),
            PerceptionInfo(counts[b], SamplingInfo(n_valid[b], n, n_valid[b] < n, config.sampling), planes[b],
                           notes[b]),
        )
        for b in range(B)
    ]


def perceive_points(points, colors=None, config: PerceptionConfig | None = None,
                    viewpoint=None) -> PerceptionResult:
    """The fixed-size cloud of base-frame points from a sensor that gives points, not depth
    images (a lidar, a depth camera's PointCloud2), through the same stages as `perceive_cloud`
    after back-projection: workspace crop, table removal, voxels, sampling.

    points (N, 3) in the base frame (non-finite rows are dropped); colors (N, 3) uint8 or None
    (grey when config.colors wants some); viewpoint: the sensor's position in the base frame,
    for the table check (None: the check on which side the cloud lies only).
    """
    config = _as_config(config)
    _check_sampling(config)
    if config.keep_segments is not None or config.drop_segments is not None:
        raise PerceptionError("keep_segments/drop_segments need segmentation, which point clouds do not carry")
    device = torch.device(resolve_device(config.device))
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise PerceptionError(f"points must be (N, 3), got {pts.shape}")
    finite = np.isfinite(pts).all(axis=1)
    if not finite.any():
        raise EmptyPointCloudError(f"no finite points in a cloud of {len(pts)}")
    pts = np.where(finite[:, None], pts, np.float32(0))  # invalid points hold finite values, as in back-projection
    col = None
    if config.colors:
        if colors is None:
            col = np.full(pts.shape, 128, np.uint8)
        else:
            col = np.asarray(colors, dtype=np.uint8)
            if col.shape != pts.shape:
                raise PerceptionError(f"{col.shape} colours for points of shape {pts.shape}")
    origins = np.full((1, 1, 3), np.nan) if viewpoint is None else np.asarray(viewpoint, np.float64).reshape(1, 1, 3)
    return _filter_and_sample(
        as_tensor(pts)[None].to(device), torch.from_numpy(finite)[None].to(device),
        None if col is None else as_tensor(col)[None].to(device), None, origins, config, device, {}, False,
        "points")[0]


def perceive_batch(frame_sets: Sequence, cameras: Mapping[str, CameraModel] | None = None,
                   config: PerceptionConfig | None = None, proprios: Sequence[Proprio] | None = None,
                   goal: str = "", timestamps: Sequence[float] | None = None,
                   seg_labels: Mapping[int, str] | None = None) -> list[Observation]:
    """`perceive` for many observations at once (one batch on the torch backend)."""
    results = perceive_cloud_batch(frame_sets, cameras, config, seg_labels)
    return [
        _observation(f, r, None if proprios is None else proprios[k], goal,
                     0.0 if timestamps is None else timestamps[k], seg_labels)
        for k, (f, r) in enumerate(zip(frame_sets, results))
    ]

"""Perception building blocks on constructed data: back-projection, invalid depth, filters,
voxel/FPS sampling, and the torch implementation against the numpy reference
(`tests/perception_reference.py`): same points, same errors."""

import numpy as np
import perception_reference as ref
import pytest
import torch

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.observation import CameraFrame
from robot_rewards.perception import (
    EmptyPointCloudError,
    ImageSizeMismatchError,
    InvalidDepthError,
    PerceptionConfig,
    PerceptionError,
    Plane,
    PointCloud,
    backproject,
    crop_box,
    farthest_point_sampling,
    fit_plane_ransac,
    frame_to_cloud,
    fuse,
    perceive,
    perceive_cloud,
    perceive_cloud_batch,
    perceive_with_info,
    remove_plane,
    resolve_device,
    sample_fixed_count,
    select_labels,
    transform_points,
    valid_depth_mask,
    voxel_downsample,
)

K = CameraIntrinsics(64, 48, 60.0, 62.0, 31.2, 24.7)


def plane_depth(intr: CameraIntrinsics, T_cam, height=0.0):
    """Exact z-depth of the plane z = height (base frame) seen by a camera at T_cam."""
    u, v = np.meshgrid(np.arange(intr.width), np.arange(intr.height))
    rays = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u, float)], -1)
    R, o = T_cam[:3, :3], T_cam[:3, 3]
    d_base = rays @ R.T
    s = (height - o[2]) / d_base[..., 2]  # the ray scale is the optical z-depth
    return s.astype(np.float32)


def make_frame(camera, depth, seg=None):
    h, w = depth.shape
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    return CameraFrame(camera, rgb, depth, seg)


def test_backprojection_lands_on_the_plane_and_reprojects_to_its_pixel():
    T = transforms.look_at((0.8, 0.3, 0.6), (0.4, 0.0, 0.0))
    cam = CameraModel("c", K, T)
    depth = plane_depth(K, T)
    cloud = frame_to_cloud(make_frame(cam, depth))
    assert len(cloud) == K.width * K.height
    assert np.abs(cloud.points[:, 2]).max() < 1e-5
    uv = cam.project(cloud.points.astype(np.float64))
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    assert np.abs(uv - np.stack([u.ravel(), v.ravel()], -1)).max() < 1e-3
    # colours follow their pixels
    assert np.array_equal(cloud.colors[:, 0], u.ravel().astype(np.uint8))


def test_invalid_depth_values_are_dropped():
    depth = np.full((K.height, K.width), 1.0, np.float32)
    depth[0, :5] = 0.0
    depth[1, :4] = np.nan
    depth[2, :3] = np.inf
    depth[3, :2] = -1.0
    depth[4, :6] = 5.0  # beyond max_depth
    cloud = backproject(depth, K, max_depth=2.0)
    assert len(cloud) == K.width * K.height - (5 + 4 + 3 + 2 + 6)
    assert np.all(np.isfinite(cloud.points))


def test_all_invalid_depth_is_a_clear_error():
    depth = np.zeros((K.height, K.width), np.float32)
    depth[::2] = np.nan
    with pytest.raises(InvalidDepthError, match="camera 'wrist'.*no valid depth"):
        backproject(depth, K, camera_name="wrist")
    cam = CameraModel("front", K, transforms.look_at((0.8, 0, 0.6), (0.4, 0, 0)))
    frame = make_frame(cam, np.zeros((K.height, K.width), np.float32))
    with pytest.raises(InvalidDepthError, match="camera 'front': no valid depth in a 64x48 frame"):
        perceive({"front": frame}, config=PerceptionConfig(device="cpu"))
    with pytest.raises(InvalidDepthError, match=r"observation\(s\) \[1\]"):
        perceive_cloud_batch([{"front": make_frame(cam, np.ones((K.height, K.width), np.float32))}, {"front": frame}])


def test_image_size_mismatch_is_a_clear_error():
    with pytest.raises(ImageSizeMismatchError, match="depth has shape \\(48, 63\\).*64x48"):
        backproject(np.ones((48, 63), np.float32), K)
    with pytest.raises(ImageSizeMismatchError, match="rgb"):
        backproject(np.ones((48, 64), np.float32), K, rgb=np.zeros((48, 64), np.uint8))
    # calibrated camera of another size than the frames
    T = transforms.look_at((0.8, 0, 0.6), (0.4, 0, 0))
    frame = make_frame(CameraModel("front", K, T), plane_depth(K, T))
    other = CameraModel("front", CameraIntrinsics(640, 480, 600, 600, 320, 240), T)
    with pytest.raises(ImageSizeMismatchError, match="intrinsics are 640x480"):
        perceive({"front": frame}, cameras={"front": other}, config=PerceptionConfig(device="numpy"))


def test_distorted_intrinsics_backproject_along_undistorted_rays():
    import cv2

    Kd = CameraIntrinsics(64, 48, 60.0, 60.0, 32.0, 24.0, distortion=(-0.2, 0.05, 0.001, -0.001, 0.0))
    pts = np.array([[0.1, -0.05, 1.0], [-0.2, 0.1, 1.5], [0.0, 0.0, 0.8]])
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), Kd.K, np.array(Kd.distortion))
    # nearest pixels: check that back-projection through the pixel grid inverts projection there
    depth = np.zeros((48, 64), np.float32)
    for (u, v), p in zip(uv.reshape(-1, 2), pts):
        depth[int(round(v)), int(round(u))] = p[2]
    cloud = backproject(depth, Kd)
    re, _ = cv2.projectPoints(cloud.points.astype(np.float64), np.zeros(3), np.zeros(3), Kd.K, np.array(Kd.distortion))
    pix = np.sort(np.round(uv.reshape(-1, 2)), axis=0)
    assert np.abs(np.sort(re.reshape(-1, 2), axis=0) - pix).max() < 1e-3


def test_crop_plane_and_segment_selection():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, -0.1], [1, 1, 0.5], size=(5000, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=5000)
    cloud = PointCloud(pts, labels=labels)
    c = crop_box(cloud, [0, 0, -1], [1, 1, 1])
    assert np.all(c.points[:, :2] >= 0) and len(c) > 1000
    above = remove_plane(cloud, Plane.horizontal(0.1), threshold=0.01)
    assert np.all(above.points[:, 2] > 0.11 - 1e-6)
    kept = select_labels(cloud, keep=[1, 2], drop=[2])
    assert set(np.unique(kept.labels)) == {1}
    with pytest.raises(Exception, match="segmentation labels"):
        select_labels(PointCloud(pts), keep=[1])


def test_ransac_finds_a_tilted_plane_among_outliers():
    rng = np.random.default_rng(1)
    n_true = np.array([0.1, -0.05, 1.0])
    n_true /= np.linalg.norm(n_true)
    d_true = -0.02
    xy = rng.uniform(-0.5, 0.5, size=(4000, 2))
    z = (-d_true - n_true[0] * xy[:, 0] - n_true[1] * xy[:, 1]) / n_true[2]
    plane_pts = np.c_[xy, z] + rng.normal(0, 0.001, size=(4000, 3))
    outliers = rng.uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 0.4], size=(1500, 3))
    pts = np.concatenate([plane_pts, outliers])
    plane, inliers = fit_plane_ransac(pts, threshold=0.004, seed=0)
    angle = np.degrees(np.arccos(np.clip(np.dot(plane.normal, n_true), -1, 1)))
    assert angle < 0.5 and abs(plane.d - d_true) < 0.002
    assert inliers[:4000].mean() > 0.97 and inliers[4000:].mean() < 0.05


def test_voxel_downsample_means_and_keeps_segments_apart():
    pts = np.array([[0.001, 0.001, 0.001], [0.003, 0.003, 0.003], [0.012, 0.0, 0.0], [0.002, 0.002, 0.002]], np.float32)
    cols = np.array([[0, 0, 0], [100, 100, 100], [50, 50, 50], [10, 10, 10]], np.uint8)
    v = voxel_downsample(PointCloud(pts, cols), 0.005)
    assert len(v) == 2
    assert np.allclose(v.points[0], [0.002, 0.002, 0.002], atol=1e-7)
    assert np.array_equal(v.colors[0], [37, 37, 37])  # round(110 / 3)
    labelled = voxel_downsample(PointCloud(pts, labels=[1, 1, 1, 2]), 0.005)
    assert len(labelled) == 3 and sorted(labelled.labels.tolist()) == [1, 1, 2]


def test_farthest_point_sampling_is_deterministic_and_spreads_points():
    rng = np.random.default_rng(2)
    # a dense cluster plus sparse points: FPS must not spend its budget in the cluster
    pts = np.concatenate([rng.normal(0, 0.01, size=(5000, 3)), rng.uniform(-1, 1, size=(50, 3))]).astype(np.float32)
    a, _ = sample_fixed_count(PointCloud(pts), 100, "fps", seed=3)
    b, _ = sample_fixed_count(PointCloud(pts), 100, "fps", seed=3)
    c, _ = sample_fixed_count(PointCloud(pts), 100, "fps", seed=4)
    assert np.array_equal(a.points, b.points) and not np.array_equal(a.points, c.points)
    sparse_hits = (np.abs(a.points).max(axis=1) > 0.1).sum()
    assert sparse_hits >= 45
    idx = farthest_point_sampling(pts, 10, start=0)
    assert len(set(idx.tolist())) == 10 and idx[0] == 0


def test_fixed_count_pads_with_a_flag_and_errors_when_empty():
    pts = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    out, info = sample_fixed_count(PointCloud(pts), 64, "fps", seed=0)
    assert out.points.shape == (64, 3) and info.padded and info.n_input == 30
    assert np.array_equal(out.points[:30], pts)  # every real point once, then repeats
    full, info = sample_fixed_count(PointCloud(pts), 30, "random", seed=0)
    assert not info.padded and len(np.unique(full.points, axis=0)) == 30
    with pytest.raises(EmptyPointCloudError):
        sample_fixed_count(PointCloud(np.zeros((0, 3))), 64)


def _synthetic_scene():
    """Two cameras over a table with two 'objects' (raised patches with their own labels)."""
    frames = {}
    for name, eye in (("front", (0.9, 0.2, 0.6)), ("side", (0.4, -0.7, 0.5))):
        T = transforms.look_at(eye, (0.5, 0.0, 0.0))
        depth = plane_depth(K, T)
        seg = np.zeros(depth.shape, np.int32)
        # pull two pixel blocks towards the camera: they become objects above the table
        seg[10:20, 10:22] = 5
        seg[30:40, 40:50] = 7
        depth = np.where(seg > 0, depth * 0.9, depth).astype(np.float32)
        depth[0, 0] = np.nan
        frames[name] = make_frame(CameraModel(name, K, T), depth, seg)
    return frames


def test_fusion_concatenates_cameras_in_the_base_frame():
    frames = _synthetic_scene()
    clouds = [frame_to_cloud(f) for f in frames.values()]
    fused = fuse(clouds)
    assert len(fused) == sum(len(c) for c in clouds) == 2 * (K.width * K.height - 1)
    table = fused.labels == 0
    assert np.abs(fused.points[table, 2]).max() < 1e-5  # both cameras agree on the table


@pytest.mark.parametrize("voxel", [0.0, 0.01])
@pytest.mark.parametrize("sampling", ["fps", "random"])
@pytest.mark.parametrize("table", ["known", "ransac"])
def test_pipeline_matches_the_numpy_reference(voxel, sampling, table):
    frames = _synthetic_scene()
    cfg = PerceptionConfig(device="cpu", workspace_lower=[-1, -1, -0.1], workspace_upper=[2, 2, 1], table=table,
                           table_threshold=0.002, voxel_size=voxel, n_points=64, sampling=sampling, seed=5)
    want = ref.perceive_cloud(frames, config=cfg)
    got = perceive_cloud(frames, config=cfg)
    batch = perceive_cloud_batch([frames, frames], config=cfg)
    for g in [got, *batch]:
        assert g.info.counts == want.info.counts
        assert g.info.sampling == want.info.sampling
        assert np.array_equal(g.cloud.points, want.cloud.points)  # bit for bit
        assert np.array_equal(g.cloud.colors, want.cloud.colors)
        assert np.array_equal(g.cloud.labels, want.cloud.labels)
        if table == "ransac":
            assert np.allclose(g.info.plane.normal, want.info.plane.normal, atol=1e-12)
            assert abs(g.info.plane.d - want.info.plane.d) < 1e-12
        else:
            assert g.info.plane == want.info.plane
    assert set(np.unique(want.cloud.labels)) == {5, 7}  # table removed, objects kept


def test_backprojection_and_fusion_match_the_reference():
    """Camera-frame points bit for bit. The float64 extrinsic transform rounds to the same
    float32 except, at most 1 ulp apart, where numpy's BLAS fuses multiply-adds (OpenBLAS on
    AVX2/AVX-512 does) and a coordinate sits on a float32 rounding boundary: in practice table
    points at z ~ 1e-8."""
    frames = _synthetic_scene()
    for f in frames.values():
        for kw in ({}, {"min_depth": 0.5, "max_depth": 0.9, "colors": False}):
            a, b = ref.frame_to_cloud(f, **kw), frame_to_cloud(f, **kw)
            np.testing.assert_array_max_ulp(a.points, b.points, maxulp=1)
            assert np.array_equal(a.labels, b.labels)
            assert (a.colors is None and b.colors is None) or np.array_equal(a.colors, b.colors)
        mask = f.segmentation == 5
        a = ref.backproject(f.depth, K, rgb=f.rgb, segmentation=f.segmentation, mask=mask)
        b = backproject(f.depth, K, rgb=f.rgb, segmentation=f.segmentation, mask=mask)
        assert len(b) == mask.sum() and np.array_equal(a.points, b.points)
        assert np.array_equal(a.colors, b.colors) and np.array_equal(a.labels, b.labels)
    depth = np.full((K.height, K.width), 1.0, np.float32)
    depth[0, :5], depth[1, :4], depth[2, :3] = 0.0, np.nan, np.inf
    assert np.array_equal(ref.valid_depth_mask(depth, 0.1, 2.0), valid_depth_mask(depth, 0.1, 2.0))
    T = transforms.look_at((0.9, 0.2, 0.6), (0.5, 0.0, 0.0))
    pts = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    np.testing.assert_array_max_ulp(ref.transform_points(pts, T), transform_points(pts, T), maxulp=1)


def test_filters_match_the_reference():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, -0.1], [1, 1, 0.5], size=(5000, 3)).astype(np.float32)
    cloud = PointCloud(pts, rng.integers(0, 255, size=(5000, 3)), labels=rng.integers(0, 4, size=5000))
    for a, b in [
        (ref.crop_box(cloud, [0, -0.5, -1], [1, 1, 0.2]), crop_box(cloud, [0, -0.5, -1], [1, 1, 0.2])),
        (ref.remove_plane(cloud, Plane.horizontal(0.1), 0.01), remove_plane(cloud, Plane.horizontal(0.1), 0.01)),
        (ref.select_labels(cloud, keep=[1, 2], drop=[2]), select_labels(cloud, keep=[1, 2], drop=[2])),
        (ref.voxel_downsample(cloud, 0.05), voxel_downsample(cloud, 0.05)),
        (ref.voxel_downsample(PointCloud(pts), 0.03), voxel_downsample(PointCloud(pts), 0.03)),
    ]:
        assert len(a) == len(b) > 0
        assert np.array_equal(a.points, b.points)
        assert (a.colors is None and b.colors is None) or np.array_equal(a.colors, b.colors)
        assert (a.labels is None and b.labels is None) or np.array_equal(a.labels, b.labels)
    tilted = Plane((0.1, -0.2, float(np.sqrt(1 - 0.05))), -0.03)
    np.testing.assert_allclose(ref.signed_distance(tilted, pts), tilted.signed_distance(pts), atol=1e-6)
    with pytest.raises(PerceptionError, match=r"crop box needs lower <= upper, 3 values each; got \[1\. 0\. 0\.\]"):
        crop_box(cloud, [1, 0, 0], [0, 1, 1])


def _tilted_plane_with_outliers(seed=1):
    rng = np.random.default_rng(seed)
    n_true = np.array([0.1, -0.05, 1.0])
    n_true /= np.linalg.norm(n_true)
    xy = rng.uniform(-0.5, 0.5, size=(30000, 2))
    z = (0.02 - n_true[0] * xy[:, 0] - n_true[1] * xy[:, 1]) / n_true[2]
    plane_pts = np.c_[xy, z] + rng.normal(0, 0.001, size=(30000, 3))
    outliers = rng.uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 0.4], size=(8000, 3))
    return np.concatenate([plane_pts, outliers]).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ransac_draws_the_same_hypotheses_as_the_reference(seed):
    """Same seed -> same subset and triples (numpy's generator, same calls) -> same best plane:
    equal up to float64 rounding of the least-squares refinement, and the same inliers."""
    pts = _tilted_plane_with_outliers()  # 38k points: the 20k subset is drawn too
    want, want_in = ref.fit_plane_ransac(pts, threshold=0.004, seed=seed)
    got, got_in = fit_plane_ransac(pts, threshold=0.004, seed=seed)
    np.testing.assert_allclose(got.normal, want.normal, atol=1e-12)
    assert abs(got.d - want.d) < 1e-12
    assert np.array_equal(got_in, want_in)
    wall = np.c_[np.zeros(50), np.random.default_rng(seed).uniform(size=(50, 2))]  # x = 0: no table there
    want = _error(ref.fit_plane_ransac, wall, seed=seed)
    assert want[0] is EmptyPointCloudError and "no plane within 30.0 deg" in want[1]
    assert _error(fit_plane_ransac, wall, seed=seed) == want


def _grid_cloud(n_side=40):
    """A regular grid (many exactly equal distances: ties must go to the lowest index) with
    random jitter rows, as voxel output would be ordered (sorted by x)."""
    g = np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side), np.arange(3), indexing="ij"), -1)
    pts = (g.reshape(-1, 3) * 0.01).astype(np.float32)
    jitter = np.random.default_rng(3).normal(0, 0.002, size=pts.shape).astype(np.float32)
    pts[::7] += jitter[::7]
    return pts[np.argsort(pts[:, 0], kind="stable")]


@pytest.mark.parametrize("strategy", ["matrix", "slab", "loop"])
def test_farthest_point_sampling_matches_the_reference_bit_for_bit(strategy, monkeypatch):
    """Each CPU strategy (and the batched loop the GPU runs, here on the CPU) picks exactly the
    reference's points: same start, same float32 distances, ties to the lowest index."""
    from robot_rewards.perception import filters

    if strategy == "matrix":
        monkeypatch.setattr(filters, "_MATRIX_MAX", 10**5)
    elif strategy == "slab":  # exact in any point order, fast when sorted along x (voxel output)
        monkeypatch.setattr(filters, "_MATRIX_MAX", 0)
        monkeypatch.setattr(filters, "_SLAB_MIN", 0)
        monkeypatch.setattr(filters, "_x_sorted", lambda x, tol: True)
    elif strategy == "loop":
        monkeypatch.setattr(filters, "_MATRIX_MAX", 0)
        monkeypatch.setattr(filters, "_x_sorted", lambda x, tol: False)
    rng = np.random.default_rng(2)
    clouds = [_grid_cloud(),
              np.concatenate([rng.normal(0, 0.01, size=(3000, 3)), rng.uniform(-1, 1, size=(60, 3))]).astype(np.float32),
              rng.uniform(0, 1, size=(2500, 3)).astype(np.float32)]
    for pts in clouds:
        for start in (0, len(pts) // 3):
            want = ref.farthest_point_sampling(pts, 300, start)
            assert np.array_equal(farthest_point_sampling(pts, 300, start), want)
    # the batched loop with padding (what the GPU runs), against the reference per item
    pts = torch.from_numpy(np.stack([clouds[2], clouds[2][::-1].copy()]))
    valid = torch.ones(pts.shape[:2], dtype=torch.bool)
    valid[1, 2000:] = False
    got = filters._fps_dense(pts, valid, 200, torch.tensor([5, 17]))
    assert np.array_equal(got[0].numpy(), ref.farthest_point_sampling(clouds[2], 200, 5))
    assert np.array_equal(got[1].numpy(), ref.farthest_point_sampling(clouds[2][::-1][:2000], 200, 17))
    # a CPU batch with holes in the validity mask: indices into the padded rows
    valid[1] = torch.from_numpy(rng.uniform(size=valid.shape[1]) < 0.7)
    start = int(valid[1].nonzero()[3])
    got = filters.farthest_point_sampling_torch(pts, valid, 150, [5, start])
    keep = valid[1].nonzero().squeeze(1).numpy()
    sub = clouds[2][::-1][keep]
    assert np.array_equal(got[1].numpy(), keep[ref.farthest_point_sampling(sub, 150, 3)])
    assert np.array_equal(got[0].numpy(), ref.farthest_point_sampling(clouds[2], 150, 5))


def test_sampling_matches_the_reference():
    pts = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    for n, method in [(64, "fps"), (64, "random"), (500, "fps"), (500, "random")]:
        want, want_info = ref.sample_fixed_count(PointCloud(pts), n, method, seed=3)
        got, info = sample_fixed_count(PointCloud(pts), n, method, seed=3)
        assert info == want_info and np.array_equal(got.points, want.points)


def _error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # the error itself is what is compared
        return type(exc), str(exc)
    return None


def test_errors_are_the_references_errors():
    """Same exception types and messages as the numpy pipeline."""
    frames = _synthetic_scene()
    seg = {5: "mug", 7: "block"}
    broken = dict(frames)
    broken["side"] = make_frame(frames["side"].camera, np.full((K.height, K.width), np.nan, np.float32))
    other = CameraModel("front", CameraIntrinsics(640, 480, 600, 600, 320, 240), frames["front"].camera.base_T_camera)
    cases = [
        (broken, {}, PerceptionConfig()),
        (frames, {"cameras": {"front": other}}, PerceptionConfig()),
        (frames, {}, PerceptionConfig(workspace_lower=[5, 5, 5], workspace_upper=[6, 6, 6])),
        (frames, {}, PerceptionConfig(workspace_lower=[1, 0, 0], workspace_upper=[0, 1, 1])),
        (frames, {}, PerceptionConfig(workspace_lower=None, workspace_upper=None, table_height=5.0)),
        (frames, {}, PerceptionConfig(keep_segments=["cup"])),
        (frames, {}, PerceptionConfig(keep_segments=["mug"], drop_segments=["mug"])),
        ({k: make_frame(f.camera, f.depth) for k, f in frames.items()}, {}, PerceptionConfig(keep_segments=["mug"])),
        (frames, {}, PerceptionConfig(n_points=0)),
        (frames, {}, PerceptionConfig(table="ransac", table_threshold=1e-9, workspace_lower=[0.45, -0.2, 0.01],
                                      workspace_upper=[0.47, -0.18, 0.3])),
    ]
    for f, kw, cfg in cases:
        want = _error(ref.perceive_cloud, f, config=cfg, seg_labels=seg, **kw)
        assert want is not None
        assert _error(perceive_cloud, f, config=cfg, seg_labels=seg, **kw) == want
    ones, gray = np.ones((48, 64), np.float32), np.zeros((48, 64), np.uint8)
    assert _error(backproject, ones, K, rgb=gray) == _error(ref.backproject, ones, K, rgb=gray) is not None
    zero = np.zeros((K.height, K.width), np.float32)
    assert _error(backproject, zero, K, camera_name="wrist") == _error(ref.backproject, zero, K, camera_name="wrist")


def test_perceive_returns_fixed_shape_observation_with_segment_selection():
    frames = _synthetic_scene()
    cfg = PerceptionConfig(device="numpy", workspace_lower=None, workspace_upper=None, table="ransac",
                           table_threshold=0.002, keep_segments=["mug"], n_points=128)
    obs, res = perceive_with_info(frames, config=cfg, seg_labels={5: "mug", 7: "block"}, goal="pick the mug")
    assert obs.points.shape == (128, 3) and obs.points.dtype == np.float32
    assert obs.colors.shape == (128, 3) and obs.colors.dtype == np.uint8
    assert obs.goal == "pick the mug" and obs.seg_labels[5] == "mug" and set(obs.frames) == {"front", "side"}
    assert set(np.unique(res.cloud.labels)) == {5}
    assert abs(res.info.plane.d) < 1e-3 and res.info.plane.normal[2] > 0.999
    with pytest.raises(Exception, match="unknown segment 'cup'"):
        perceive(frames, config=PerceptionConfig(device="numpy", keep_segments=["cup"]), seg_labels={5: "mug"})
    with pytest.raises(EmptyPointCloudError, match="workspace crop"):
        perceive(frames, config=PerceptionConfig(device="numpy", workspace_lower=[5, 5, 5], workspace_upper=[6, 6, 6]))


def test_resolve_device():
    assert resolve_device("numpy") == "cpu"  # older configs: the torch CPU path gives their clouds
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("torch") in ("cpu", "cuda")
    with pytest.raises(PerceptionError, match="unknown device .tpu."):
        resolve_device("tpu")


def test_read_only_frames_are_fine():
    """Frames from a bag or a cache may be read-only arrays: no copy warnings, same cloud."""
    import warnings

    frames = _synthetic_scene()
    frozen = {}
    for name, f in frames.items():
        arrays = [np.array(a) for a in (f.rgb, f.depth, f.segmentation)]
        for a in arrays:
            a.setflags(write=False)
        frozen[name] = CameraFrame(f.camera, *arrays)
    cfg = PerceptionConfig(device="cpu", n_points=64, workspace_lower=np.array([-1.0, -1, -0.1]),
                           workspace_upper=[2, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = perceive_cloud(frozen, config=cfg)
        cloud = frame_to_cloud(frozen["front"])
        voxel_downsample(cloud, 0.01)
    assert np.array_equal(got.cloud.points, perceive_cloud(frames, config=cfg).cloud.points)


def test_perceive_accepts_a_hydra_config_node():
    from omegaconf import OmegaConf

    node = OmegaConf.merge(OmegaConf.structured(PerceptionConfig),
                           OmegaConf.from_dotlist(["device=numpy", "n_points=32", "table=none",
                                                   "workspace_lower=[-1,-1,-1]", "workspace_upper=[2,2,2]"]))
    obs = perceive(_synthetic_scene(), config=node)
    assert obs.points.shape == (32, 3)

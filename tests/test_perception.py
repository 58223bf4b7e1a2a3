"""Perception building blocks on constructed data: back-projection, invalid depth, filters,
voxel/FPS sampling, and torch (CPU) against numpy."""

import numpy as np
import pytest

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.observation import CameraFrame
from robot_rewards.perception import (
    EmptyPointCloudError,
    ImageSizeMismatchError,
    InvalidDepthError,
    PerceptionConfig,
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
    voxel_downsample,
)

torch = pytest.importorskip("torch")

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
    for device in ("numpy", "cpu"):
        with pytest.raises(InvalidDepthError, match="front"):
            perceive({"front": frame}, config=PerceptionConfig(device=device))


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
def test_torch_cpu_matches_numpy(voxel, sampling):
    frames = _synthetic_scene()
    cfg = dict(workspace_lower=[-1, -1, -0.1], workspace_upper=[2, 2, 1], table="known",
               table_threshold=0.002, voxel_size=voxel, n_points=64, sampling=sampling, seed=5)
    ref = perceive_cloud(frames, config=PerceptionConfig(device="numpy", **cfg))
    got = perceive_cloud_batch([frames, frames], config=PerceptionConfig(device="cpu", **cfg))
    for g in got:
        assert g.info.counts == ref.info.counts
        assert g.info.padded == ref.info.padded
        np.testing.assert_allclose(g.cloud.points, ref.cloud.points, atol=2e-6)
        assert np.array_equal(g.cloud.colors, ref.cloud.colors)
        assert np.array_equal(g.cloud.labels, ref.cloud.labels)
    assert set(np.unique(ref.cloud.labels)) == {5, 7}  # table removed, objects kept


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
    assert resolve_device("numpy") == "numpy"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "numpy")
    assert resolve_device("torch") in ("cpu", "cuda")
    with pytest.raises(Exception, match="unknown perception device"):
        resolve_device("tpu")


def test_perceive_accepts_a_hydra_config_node():
    from omegaconf import OmegaConf

    node = OmegaConf.merge(OmegaConf.structured(PerceptionConfig),
                           OmegaConf.from_dotlist(["device=numpy", "n_points=32", "table=none",
                                                   "workspace_lower=[-1,-1,-1]", "workspace_upper=[2,2,2]"]))
    obs = perceive(_synthetic_scene(), config=node)
    assert obs.points.shape == (32, 3)

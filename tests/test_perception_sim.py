"""Point clouds from real PyBullet renders against the simulator's ground truth.

Truth comes from the physics engine, not from the renderer: object poses from
getBasePositionAndOrientation and surface points from ray casts (rayTestBatch) through the
same pixels, so the depth-buffer conversion, back-projection and extrinsic transform are all
checked end to end.
"""

from dataclasses import replace

import numpy as np
import perception_reference as ref
import pybullet as p
import pytest

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraModel
from robot_rewards.perception import (
    PerceptionConfig,
    frame_to_cloud,
    fuse,
    perceive_cloud,
    perceive_cloud_batch,
    perceive_with_info,
)
from robot_rewards.sim.camera import render
from robot_rewards.sim.world import World

BOXES = {
    # name: half extents, position (x, y), yaw, colour
    "red_cube": ((0.02, 0.02, 0.02), (0.50, 0.10), 0.3, (0.9, 0.1, 0.1, 1)),
    "blue_block": ((0.03, 0.02, 0.03), (0.60, -0.15), -0.6, (0.1, 0.2, 0.9, 1)),
    "green_slab": ((0.05, 0.015, 0.01), (0.40, -0.05), 1.1, (0.1, 0.8, 0.2, 1)),
    "yellow_tall": ((0.015, 0.015, 0.05), (0.45, 0.22), 0.0, (0.9, 0.9, 0.1, 1)),
}


@pytest.fixture(scope="module")
def scene():
    world = World()
    ids = {}
    for name, (half, (x, y), yaw, rgba) in BOXES.items():
        ids[name] = world.add_box(name, half, (x, y, half[2] + 0.0005), rgba, yaw=yaw)
    world.settle()
    front = world.render()
    side_cam = CameraModel("side", world.camera.intrinsics, transforms.look_at((0.35, -0.75, 0.55), (0.5, 0.0, 0.0)),
                           frame_id="side_camera_color_optical_frame")
    side = render(side_cam, world.client)
    truth = {}
    for name, body in ids.items():
        pos, quat = p.getBasePositionAndOrientation(body, physicsClientId=world.client)
        truth[name] = (body, transforms.make_transform(np.asarray(quat), pos), np.asarray(BOXES[name][0]))
    yield world, {"front": front, "side": side}, truth
    world.close()


def raycast_points(world, frame, mask):
    """Exact surface points (base frame) hit by the rays through the pixels of `mask`."""
    cam = frame.camera
    i = cam.intrinsics
    v, u = np.nonzero(mask)
    rays = np.stack([(u - i.cx) / i.fx, (v - i.cy) / i.fy, np.ones(len(u))], axis=1)
    origin = cam.base_T_camera[:3, 3]
    ends = origin + 3.0 * rays @ cam.base_T_camera[:3, :3].T
    hits = []
    for k in range(0, len(ends), 4000):
        chunk = ends[k:k + 4000]
        res = p.rayTestBatch([origin.tolist()] * len(chunk), chunk.tolist(), physicsClientId=world.client)
        hits += [r[3] for r in res]
    return np.asarray(hits)


def box_surface_distance(points, T, half):
    """Distance (m) of points to the surface of a box with pose T and half extents."""
    q = np.abs(transforms.apply(transforms.invert(T), points.astype(np.float64)))
    outside = np.linalg.norm(np.maximum(q - half, 0.0), axis=1)
    inside = np.min(half - q, axis=1)
    return np.where(np.all(q <= half, axis=1), inside, outside)


@pytest.mark.parametrize("camera", ["front", "side"])
def test_object_point_centroids_match_raycast_truth_within_3mm(scene, camera):
    world, frames, truth = scene
    frame = frames[camera]
    cloud = frame_to_cloud(frame)
    for name, (body, T, half) in truth.items():
        mask = frame.segmentation == body
        assert mask.sum() > 50, f"{name} barely visible from {camera}"
        pts = cloud.points[cloud.labels == body]
        gt = raycast_points(world, frame, mask & (frame.depth > 0))
        err = np.linalg.norm(pts.mean(axis=0) - gt.mean(axis=0))
        assert err < 0.003, f"{camera}/{name}: centroid error {err * 1000:.2f} mm"
        # and point by point: each lies on the true box surface
        assert np.percentile(box_surface_distance(pts, T, half), 99) < 0.002


@pytest.mark.parametrize("camera", ["front", "side"])
def test_top_face_centroids_match_true_object_positions_within_3mm(scene, camera):
    """The fully visible top face of each box is centred on the box's true position.

    Pixels sample a face more densely where it is nearer the camera, which pulls a plain
    centroid towards the camera by 1-2 mm on a 10 cm face. Each point is weighted by the
    surface area its pixel covers, z^2 cos(alpha) / cos(theta) (alpha: ray off the optical
    axis, theta: ray to face normal), which removes that sampling bias.
    """
    _, frames, truth = scene
    frame = frames[camera]
    cloud = frame_to_cloud(frame)
    T_cam = frame.camera.base_T_camera
    for name, (body, T, half) in truth.items():
        pts = cloud.points[cloud.labels == body].astype(np.float64)
        local = transforms.apply(transforms.invert(T), pts)
        # Points on the top face, not on the rim (side-face points within a hair of the top
        # edge would pull the centroid towards the camera).
        on_top = (np.abs(local[:, 2] - half[2]) < 0.0003) & np.all(np.abs(local[:, :2]) < half[:2] - 0.0005, axis=1)
        top = pts[on_top]
        assert len(top) > 20
        rays = top - T_cam[:3, 3]
        dist = np.linalg.norm(rays, axis=1)
        cos_alpha = rays @ T_cam[:3, 2] / dist
        cos_theta = np.abs(rays @ T[:3, 2]) / dist
        w = (dist * cos_alpha) ** 2 * cos_alpha / cos_theta
        centroid = (top * w[:, None]).sum(axis=0) / w.sum()
        expected = T[:3, 3] + T[:3, 2] * half[2]
        err = np.linalg.norm(centroid - expected)
        assert err < 0.003, f"{camera}/{name}: top-face centroid {err * 1000:.2f} mm from truth"


def test_two_camera_fusion_and_perceive_on_rendered_frames(scene):
    world, frames, truth = scene
    cfg = PerceptionConfig(device="cpu", voxel_size=0.003, n_points=1024, seed=1)
    obs, res = perceive_with_info(frames, config=cfg, seg_labels=world.seg_labels, goal="stack")
    assert obs.points.shape == (1024, 3) and not res.info.padded
    assert res.info.counts["backprojected"] == sum(len(frame_to_cloud(f)) for f in frames.values())
    # after table removal only the boxes remain, and every sampled point is on its box
    ids = {body: (T, half) for body, T, half in truth.values()}
    assert set(np.unique(res.cloud.labels)) == set(ids)
    for body, (T, half) in ids.items():
        pts = res.cloud.points[res.cloud.labels == body]
        # voxel means of a box edge sit inside the corner by up to ~half a voxel diagonal
        assert np.max(box_surface_distance(pts, T, half)) < 0.003
    # the fused cloud covers box sides that one camera alone cannot see
    fused = fuse([frame_to_cloud(f) for f in frames.values()])
    assert len(fused) > len(frame_to_cloud(frames["front"]))
    # the numpy reference gives the same observation, bit for bit
    want = ref.perceive_cloud(frames, config=cfg, seg_labels=world.seg_labels)
    assert want.info.counts == res.info.counts
    assert np.array_equal(want.cloud.points, res.cloud.points) and np.array_equal(want.cloud.labels, res.cloud.labels)


def _policy_config(**kw):
    from robot_rewards.policy.config import policy_perception

    return replace(policy_perception(), **kw)


@pytest.mark.parametrize("name, cfg, exact", [
    ("policy", _policy_config(), True),
    ("policy, flat marks", _policy_config(table_threshold=0.0008), True),
    ("ransac table", PerceptionConfig(table="ransac", n_points=1024, seed=2), True),
    ("no voxels, random", _policy_config(voxel_size=0.0, sampling="random"), True),
    ("table kept, 2048 points", PerceptionConfig(table="none", seed=3), False),
])
def test_torch_pipeline_matches_the_numpy_reference_on_rendered_frames(scene, name, cfg, exact):
    """What the policies were trained on: the torch clouds equal the numpy reference's (the
    same voxels, the same farthest-point picks from the same seed), one camera and two, alone
    and in a batch. With the table kept, a few voxel means of table points (z ~ 1e-7 m) may
    differ by one float32 ulp (~1e-14 m): numpy's BLAS fuses the multiply-adds of the float64
    extrinsic transform, torch does not. The picks are the same."""
    world, frames, _ = scene
    for f in (frames, {"front": frames["front"]}):
        want = ref.perceive_cloud(f, config=cfg, seg_labels=world.seg_labels)
        for got in (perceive_cloud(f, config=cfg, seg_labels=world.seg_labels),
                    perceive_cloud_batch([f, f], config=cfg, seg_labels=world.seg_labels)[1]):
            assert got.info.counts == want.info.counts, name
            if exact:
                assert np.array_equal(got.cloud.points, want.cloud.points), name
            else:
                np.testing.assert_array_max_ulp(got.cloud.points, want.cloud.points, maxulp=1)
            assert np.array_equal(got.cloud.colors, want.cloud.colors), name
            assert np.array_equal(got.cloud.labels, want.cloud.labels), name

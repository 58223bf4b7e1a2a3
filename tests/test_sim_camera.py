"""Depth-to-metres conversion and camera geometry, checked against known object positions."""

import numpy as np
import pybullet as p

from robot_rewards.core import transforms as tf
from robot_rewards.sim.camera import depth_buffer_to_metres


def backproject(frame):
    i = frame.camera.intrinsics
    v, u = np.mgrid[0 : i.height, 0 : i.width]
    z = frame.depth.astype(np.float64)
    pts = np.stack([(u - i.cx) / i.fx * z, (v - i.cy) / i.fy * z, z], axis=-1)
    return tf.apply(frame.camera.base_T_camera, pts)


def test_depth_buffer_formula():
    near, far = 0.1, 2.0
    z = np.array([0.1, 0.5, 1.0, 1.999])
    # The OpenGL depth buffer value of a point at distance z.
    d = (far / z * (z - near)) / (far - near)
    np.testing.assert_allclose(depth_buffer_to_metres(d, near, far), z, rtol=1e-5)
    assert depth_buffer_to_metres(np.array([1.0]), near, far)[0] == 0.0  # background is invalid


def test_table_and_blocks_back_project_to_their_true_positions(world):
    world.reset()
    truth = {"a": (0.45, -0.12), "b": (0.62, 0.15), "c": (0.40, 0.20)}
    for name, xy in truth.items():
        world.add_box(name, [0.02] * 3, [*xy, 0.02], (0.8, 0.2, 0.2, 1), mass=0.0)
    frame = world.render()
    pts = backproject(frame)
    valid = frame.depth > 0
    table = (frame.segmentation == world.table) & valid
    # The table top is the plane z = 0 of the base frame.
    assert table.sum() > 10000
    assert np.abs(pts[table][:, 2]).max() < 5e-4
    for name, xy in truth.items():
        mask = (frame.segmentation == world.objects[name]) & valid
        assert mask.sum() > 200
        obj = pts[mask]
        top = obj[obj[:, 2] > 0.0398]  # visible top face: a square centred over the block
        np.testing.assert_allclose(top[:, 2], 0.04, atol=5e-4)
        np.testing.assert_allclose(top[:, :2].mean(axis=0), xy, atol=1.5e-3)


def test_rgb_and_segmentation_agree_with_projection(world):
    world.reset()
    world.add_box("red", [0.02] * 3, [0.5, 0.0, 0.02], (1, 0, 0, 1), mass=0.0)
    frame = world.render()
    u, v = np.round(world.camera.project(np.array([[0.5, 0.0, 0.04]]))[0]).astype(int)
    assert frame.segmentation[v, u] == world.objects["red"]
    r, g, b = frame.rgb[v, u].astype(int)
    assert r > 150 and g < 60 and b < 60
    p.removeBody(world.objects["red"], physicsClientId=world.client)

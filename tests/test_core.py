import numpy as np
import pytest

from robot_rewards.core import transforms as tf
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.primitives import InvalidPrimitiveError, Primitive, Workspace


def test_quaternion_matrix_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        np.testing.assert_allclose(tf.matrix_to_quat(tf.quat_to_matrix(q)), q, atol=1e-12)


def test_invert_and_apply():
    T = tf.make_transform([0.1, 0.2, 0.3, 0.9], [1.0, -2.0, 0.5])
    pts = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(tf.apply(tf.invert(T), tf.apply(T, pts)), pts, atol=1e-12)
    np.testing.assert_allclose(tf.invert(T) @ T, np.eye(4), atol=1e-12)


def test_look_at_points_optical_axis_at_target():
    T = tf.look_at([1.0, 0.2, 0.8], [0.5, 0.0, 0.0])
    cam = CameraModel("c", CameraIntrinsics.from_fov(640, 480, 45.0), T)
    uv = cam.project(np.array([[0.5, 0.0, 0.0]]))[0]
    np.testing.assert_allclose(uv, [319.5, 239.5], atol=1e-9)


def test_intrinsics_scaled_keeps_pixel_centres():
    i = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)
    s = i.scaled(0.5)
    assert (s.width, s.height) == (320, 240)
    assert (s.fx, s.cx, s.cy) == (307.5, 159.5, 119.5)


def test_bad_camera_inputs():
    with pytest.raises(ValueError, match="positive"):
        CameraIntrinsics(0, 480, 600, 600, 0, 0)
    with pytest.raises(ValueError, match="orthonormal"):
        CameraModel("c", CameraIntrinsics.from_fov(64, 48, 45), np.diag([2.0, 1, 1, 1]))


def test_primitive_layout_and_checks():
    ws = Workspace()
    prim = Primitive.pick_place((0.5, 0.0, 0.02), (0.6, 0.1, 0.03), 0.4)
    np.testing.assert_allclose(prim["place"], [0.6, 0.1, 0.03])
    assert prim["yaw"] == pytest.approx(0.4)
    assert prim.check(ws) is None
    assert "non-finite" in Primitive.push((0.5, 0, 0.02), (np.nan, 0, 0.02)).check(ws)
    assert "outside the workspace" in Primitive.push((0.5, 0, 0.02), (1.5, 0, 0.02)).check(ws)
    with pytest.raises(InvalidPrimitiveError, match="takes 7 parameters"):
        Primitive("pick_place", np.zeros(6))
    with pytest.raises(InvalidPrimitiveError, match="unknown primitive"):
        Primitive("throw", np.zeros(3))


def test_primitive_bounds_follow_workspace():
    low, high = Primitive.push((0.5, 0, 0), (0.5, 0, 0)).spec.bounds(Workspace())
    np.testing.assert_allclose(low, [0.25, -0.35, 0.0] * 2)
    np.testing.assert_allclose(high, [0.75, 0.35, 0.30] * 2)

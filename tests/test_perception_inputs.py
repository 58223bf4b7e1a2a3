"""Perception on other people's sensors: clouds whose frame is not z-up (table=ransac's up axis
and tilt, and a warning when the removed plane looks wrong), 16-bit millimetre depth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.observation import CameraFrame
from robot_rewards.perception import InvalidDepthError, PerceptionConfig, PerceptionError, perceive_cloud
from robot_rewards.perception.pipeline import TableRemovalWarning

K = CameraIntrinsics(80, 60, 70.0, 70.0, 39.5, 29.5)
TABLE, BOX, FLOOR = 0.8, 0.7, 1.5  # optical depths (m) of a camera looking straight down


def _scene_depth(floor_columns: int = 6) -> np.ndarray:
    """Depth of a camera looking straight down: a table, a box on it (30x24 px) and a strip of
    floor beyond the table's edge."""
    depth = np.full((K.height, K.width), TABLE, np.float32)
    depth[18:42, 25:55] = BOX
    depth[:, :floor_columns] = FLOOR
    return depth


def _frame(depth, base_T_camera=None) -> dict:
    camera = CameraModel("cam", K, np.eye(4) if base_T_camera is None else base_T_camera)
    return {"cam": CameraFrame(camera, np.zeros((K.height, K.width, 3), np.uint8), depth)}


def _config(**kw) -> PerceptionConfig:
    base = dict(device="cpu", table="ransac", workspace_lower=None, workspace_upper=None, voxel_size=0.0,
                n_points=256, table_threshold=0.01)
    return PerceptionConfig(**{**base, **kw})


def test_ransac_up_axis_is_configurable_and_a_camera_frame_cloud_works_with_its_own():
    """The cloud is in the camera's optical frame (z forward, down at the table): up is -z."""
    frames = _frame(_scene_depth())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = perceive_cloud(frames, config=_config(table_up=[0, 0, -1]))
    assert np.allclose(result.info.plane.normal, (0, 0, -1), atol=1e-3)
    assert np.allclose(result.cloud.points[:, 2], BOX, atol=1e-4)  # only the box is kept
    assert result.info.counts["table_removed"] == 24 * 30 and not result.info.warnings


def test_a_wrong_up_axis_warns_instead_of_silently_keeping_the_floor():
    frames = _frame(_scene_depth())
    with pytest.warns(TableRemovalWarning, match=r"table_up=\[0.0, 0.0, 1.0\].*does not look like the table"):
        result = perceive_cloud(frames, config=_config())
    assert np.allclose(result.cloud.points[:, 2], FLOOR, atol=1e-4)  # what today's default keeps
    (note,) = result.info.warnings
    assert "the camera 0.80 m under it" in note
    # without the floor, nothing is left: the error says why
    with pytest.warns(TableRemovalWarning), pytest.raises(PerceptionError, match="table removal.*camera 0.80 m under"):
        perceive_cloud(_frame(_scene_depth(floor_columns=0)), config=_config())


def test_the_tilt_limit_is_configurable():
    """A table seen in a frame tilted 60 degrees about x: found only when the tilt limit allows."""
    c, s = np.cos(np.radians(60)), np.sin(np.radians(60))
    tilt = np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])
    frames = _frame(_scene_depth(0), tilt)
    true_up = tilt[:3, :3] @ [0, 0, -1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableRemovalWarning)
        try:  # within 30 degrees of -z there is no table: no plane, or a wrong one
            plane = perceive_cloud(frames, config=_config(table_up=[0, 0, -1])).info.plane
            assert np.degrees(np.arccos(abs(np.dot(plane.normal, true_up)))) > 25
        except PerceptionError as exc:
            assert "no plane within 30.0 deg" in str(exc) or "table removal" in str(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = perceive_cloud(frames, config=_config(table_up=[0, 0, -1], table_max_tilt_deg=70))
    assert result.info.counts["table_removed"] == 24 * 30
    assert np.allclose(result.info.plane.normal, true_up, atol=1e-3)
    with pytest.raises(PerceptionError, match="table_up must be a non-zero 3-vector"):
        perceive_cloud(frames, config=_config(table_up=[0, 0]))
    with pytest.raises(PerceptionError, match="table_max_tilt_deg must be in"):
        perceive_cloud(frames, config=_config(table_max_tilt_deg=0))


def test_the_default_known_table_is_unchanged_by_the_ransac_settings():
    frames = _frame(_scene_depth(), _translate(0, 0, TABLE) @ np.diag([1.0, -1.0, -1.0, 1.0]))
    cfg = dict(device="cpu", workspace_lower=None, workspace_upper=None, voxel_size=0.0, n_points=128)
    a = perceive_cloud(frames, config=PerceptionConfig(**cfg))
    b = perceive_cloud(frames, config=PerceptionConfig(**cfg, table_up=[0, 1, 0], table_max_tilt_deg=10))
    assert np.array_equal(a.cloud.points, b.cloud.points)


def _translate(x, y, z):
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def test_uint16_depth_is_millimetres_like_ros_16uc1():
    depth_m = _scene_depth()
    depth_mm = np.rint(depth_m * 1000).astype(np.uint16)
    cfg = _config(table_up=[0, 0, -1])
    a = perceive_cloud(_frame(depth_m), config=cfg)
    b = perceive_cloud(_frame(depth_mm), config=cfg)
    assert np.array_equal(a.cloud.points, b.cloud.points)


@pytest.mark.parametrize("scale, unit", [(1000.0, "millimetres"), (100.0, "centimetres")])
def test_float_depth_in_the_wrong_units_says_so(scale, unit):
    depth = _scene_depth() * np.float32(scale)
    with pytest.raises(InvalidDepthError, match=f"no valid depth.*look like {unit}") as err:
        perceive_cloud(_frame(depth), config=_config(table="none"))
    assert "\n" not in str(err.value)
    zeros = np.zeros_like(depth)
    with pytest.raises(InvalidDepthError) as err:  # nothing to judge: the plain message
        perceive_cloud(_frame(zeros), config=_config(table="none"))
    assert "look like" not in str(err.value)


def test_perceive_points_is_the_pipeline_after_back_projection():
    """Base-frame points (e.g. a lidar's) give the cloud the depth image of the same points gives."""
    from robot_rewards.perception import frame_to_cloud, perceive_points

    T = _translate(0, 0, TABLE) @ np.diag([1.0, -1.0, -1.0, 1.0])
    frames = _frame(_scene_depth(), T)
    for table in ("known", "ransac", "none"):
        cfg = PerceptionConfig(device="cpu", table=table, workspace_lower=[-1, -1, -0.05], workspace_upper=[1, 1, 1],
                               n_points=200, voxel_size=0.01, table_threshold=0.01)
        want = perceive_cloud(frames, config=cfg)
        cloud = frame_to_cloud(frames["cam"], min_depth=cfg.min_depth, max_depth=cfg.max_depth)
        got = perceive_points(cloud.points, cloud.colors, cfg, viewpoint=T[:3, 3])
        np.testing.assert_array_equal(got.cloud.points, want.cloud.points)
        assert got.info.counts["points"] == want.info.counts["backprojected"]
    with pytest.raises(PerceptionError, match="no finite points"):
        perceive_points(np.full((5, 3), np.nan), config=cfg)
    with pytest.raises(PerceptionError, match="need segmentation"):
        perceive_points(cloud.points, config=PerceptionConfig(keep_segments=["mug"]))

"""Property-based tests over what real data and careless hands feed the project: the calibration
YAML loaders (camera_info, transforms, robot poses, boards) and the PointCloud2 conversion.

Whatever the input, each loader either returns sound values or raises the project's own error
for that input (CalibrationFileError, PoseFileError, BoardError, MessageConversionError), with
a one-line message, quickly.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_rewards.calibration.boards import BoardError, load_board
from robot_rewards.calibration.camera_info import CalibrationFileError, load_camera_info, load_transform
from robot_rewards.calibration.errors import PoseFileError
from robot_rewards.calibration.handeye import load_robot_poses
from robot_rewards.ros import convert as rc
from robot_rewards.ros.convert import MessageConversionError

FAST = settings(max_examples=50, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
TYPES = rc.ROSBAGS_TYPES
_SCRATCH = tempfile.TemporaryDirectory(prefix="rr_real_data_")

# -- YAML documents --------------------------------------------------------------------------

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=14),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=20)

CAMERA_INFO = {
    "image_width": 640, "image_height": 480, "camera_name": "cam",
    "camera_matrix": {"rows": 3, "cols": 3, "data": [600.0, 0, 321, 0, 602.0, 238.5, 0, 0, 1]},
    "distortion_model": "plumb_bob",
    "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.01, -0.02, 0, 0, 0]},
    "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
    "projection_matrix": {"rows": 3, "cols": 4, "data": [600.0, 0, 321, 0, 0, 602.0, 238.5, 0, 0, 0, 1, 0]},
}
TRANSFORM = {"parent_frame": "base", "child_frame": "cam", "translation": {"x": 1.0, "y": 0.1, "z": 0.7},
             "rotation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}
POSES = {"base_frame": "b", "ee_frame": "e", "poses": [
    {"image": "a.png", "translation": {"x": 0.1, "y": 0.2, "z": 0.3}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}]}
BOARD = {"kind": "chessboard", "squares_x": 9, "squares_y": 7, "square_length": 0.025, "marker_length": 0.0,
         "margin": 0.02}

LOADERS = {
    "camera_info": (load_camera_info, CalibrationFileError, CAMERA_INFO),
    "transform": (load_transform, CalibrationFileError, TRANSFORM),
    "poses": (load_robot_poses, PoseFileError, POSES),
    "board": (load_board, BoardError, BOARD),
}


def _paths(doc) -> list:
    """Every (key path) of a nested document, leaves and containers."""
    out = [()]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += [(k, *p) for p in _paths(v)]
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += [(i, *p) for p in _paths(v)]
    return out


def _replace(doc, path, value):
    doc = yaml.safe_load(yaml.safe_dump(doc))
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _load(kind: str, text: str | bytes):
    load, error, _ = LOADERS[kind]
    path = Path(_SCRATCH.name) / f"{kind}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    try:
        return load(path)
    except error as exc:
        assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
        return None


def _check_loaded(kind: str, value) -> None:
    """A loader's result holds only finite numbers."""
    if value is None:
        return
    if kind == "camera_info":
        intr = value[1]
        assert all(math.isfinite(x) for x in (intr.fx, intr.fy, intr.cx, intr.cy, *intr.distortion))
        assert intr.fx > 0 and intr.fy > 0 and intr.width > 0 and intr.height > 0
    elif kind == "transform":
        assert np.isfinite(value[2]).all()
    elif kind == "poses":
        assert all(np.isfinite(T).all() for T in value.poses.values())
    else:
        assert all(math.isfinite(x) for x in (value.square_length, value.marker_length, value.margin))


@pytest.mark.parametrize("kind", sorted(LOADERS))
@FAST
@given(data=st.data())
def test_yaml_loaders_refuse_any_mutation_with_their_own_error(kind, data):
    """One field of a valid file replaced by anything (NaN, inf, strings, lists, mappings)."""
    base = LOADERS[kind][2]
    path = data.draw(st.sampled_from(_paths(base)))
    doc = _replace(base, path, data.draw(values))
    _check_loaded(kind, _load(kind, yaml.safe_dump(doc)))


@pytest.mark.parametrize("kind", sorted(LOADERS))
@FAST
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_yaml_loaders_on_arbitrary_bytes(kind, content):
    _check_loaded(kind, _load(kind, content))


@FAST
@given(data=st.lists(numbers, min_size=0, max_size=16), key=st.sampled_from(
    ["camera_matrix", "rectification_matrix", "projection_matrix", "distortion_coefficients"]))
def test_camera_info_matrices_of_any_size_and_content(data, key):
    doc = _replace(CAMERA_INFO, (key, "data"), data)
    loaded = _load("camera_info", yaml.safe_dump(doc))
    _check_loaded("camera_info", loaded)
    sizes = {"camera_matrix": (9,), "rectification_matrix": (9,), "projection_matrix": (12,),
             "distortion_coefficients": (0, 4, 5, 8, 12, 14)}
    if len(data) not in sizes[key] or not all(math.isfinite(x) for x in data):
        assert loaded is None


# -- PointCloud2 -----------------------------------------------------------------------------

DATATYPES = st.sampled_from(sorted(rc.POINTFIELD_DTYPES) + [0, 9, 255])


@st.composite
def clouds(draw):
    """PointCloud2 messages with any field layout, sizes and data length (mostly consistent)."""
    height = draw(st.integers(0, 4))
    width = draw(st.integers(0, 6))
    names = draw(st.lists(st.sampled_from(["x", "y", "z", "rgb", "intensity", "ring"]), max_size=6))
    fields = [TYPES.new("sensor_msgs/msg/PointField", name=n, offset=draw(st.integers(0, 40)),
                        datatype=draw(DATATYPES), count=draw(st.integers(0, 3))) for n in names]
    point_step = draw(st.integers(0, 48))
    row_step = draw(st.one_of(st.just(point_step * width), st.integers(0, 400)))
    size = draw(st.one_of(st.just(row_step * height), st.integers(0, 800)))
    data = np.frombuffer(draw(st.binary(min_size=size, max_size=size)), np.uint8).copy()
    return TYPES.new("sensor_msgs/msg/PointCloud2", header=rc.header_of("lidar", TYPES), height=height,
                     width=width, fields=fields, is_bigendian=draw(st.booleans()), point_step=point_step,
                     row_step=row_step, data=data, is_dense=draw(st.booleans()))


@FAST
@given(msg=clouds(), with_rgb=st.booleans(), drop_nan=st.booleans())
def test_any_pointcloud2_decodes_or_raises_message_conversion_error(msg, with_rgb, drop_nan):
    try:
        out = rc.msg_to_points(msg, with_rgb=with_rgb, drop_nan=drop_nan)
    except MessageConversionError as exc:
        assert "\n" not in str(exc)
        return
    xyz, rgb = out if with_rgb else (out, None)
    assert xyz.dtype == np.float32 and xyz.ndim == 2 and xyz.shape[1] == 3
    assert len(xyz) <= msg.height * msg.width
    if not drop_nan or msg.is_dense:
        assert len(xyz) == msg.height * msg.width
    else:
        assert np.isfinite(xyz).all()
    if rgb is not None:
        assert rgb.dtype == np.uint8 and rgb.shape == xyz.shape


finite_or_not = st.floats(width=32, allow_nan=True, allow_infinity=True)


@FAST
@given(points=st.lists(st.tuples(finite_or_not, finite_or_not, finite_or_not), max_size=40),
       colours=st.data())
def test_points_round_trip_and_drop_nan(points, colours):
    xyz = np.array(points, np.float32).reshape(-1, 3)
    rgb = np.array(colours.draw(st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=len(xyz),
                                         max_size=len(xyz))), np.uint8).reshape(-1, 3)
    msg = rc.points_to_msg(xyz, "base", TYPES, rgb=rgb)
    back, back_rgb = rc.msg_to_points(msg, with_rgb=True)
    np.testing.assert_array_equal(back, xyz)
    np.testing.assert_array_equal(back_rgb, rgb)
    keep = np.isfinite(xyz).all(axis=1)
    assert msg.is_dense == bool(keep.all())
    dropped, dropped_rgb = rc.msg_to_points(msg, with_rgb=True, drop_nan=True)
    np.testing.assert_array_equal(dropped, xyz[keep])
    np.testing.assert_array_equal(dropped_rgb, rgb[keep])


# -- corner accuracy on photo-like renders with known corners ----------------------------------


def test_the_default_corner_refinement_is_the_more_accurate_and_5_coefficients_are_available():
    """benchmarks/corner_accuracy.py, shortened: cornersubpix beats findChessboardCornersSB's own
    corners on JPEG-compressed, blurred renders, and the 5-coefficient model recovers k3."""
    from robot_rewards.calibration.accuracy import CAMERA, CONDITIONS, corner_accuracy

    results = corner_accuracy(n_views=6, conditions=CONDITIONS[:2])
    for condition, methods in results.items():
        best, sb = methods["cornersubpix"], methods["sb"]
        assert best.detected == sb.detected == 6, condition
        assert best.median < sb.median and best.median < 0.05, (condition, best.median, sb.median)
        assert best.calibration[2]["fx_error_percent"] < 0.3
    clean = results["clean"]["cornersubpix"].calibration
    assert clean[3]["distortion_error_sum"] < 0.05  # k1, k2, p1, p2 and k3 = -0.02 recovered
    assert clean[2]["distortion_error_sum"] >= abs(CAMERA.distortion[4])  # k3 held at 0

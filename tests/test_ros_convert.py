"""ROS message conversion, checked with the real `rosbags` types, CDR serialiser and rosbag2 MCAP.

rclpy cannot be installed here; its generated message classes are mirrored by a small test
double (keyword constructor with defaults, type-checked fields, `array.array` sequences).
"""

from __future__ import annotations

import array
import subprocess
import sys
import types as pytypes

import numpy as np
import pytest

from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.ros import convert as rc
from robot_rewards.ros.convert import MessageConversionError

TYPES = rc.ROSBAGS_TYPES
TS = rc.rosbags_typestore()


def cdr(msg) -> bytes:
    return bytes(TS.serialize_cdr(msg, msg.__msgtype__))


def cdr_trip(msg):
    """(CDR bytes, message decoded from them)."""
    raw = cdr(msg)
    return raw, TS.deserialize_cdr(raw, msg.__msgtype__)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


HEADER = ("camera_color_optical_frame", (1_700_000_000, 123_456_789))


# --- time and headers -------------------------------------------------------------------------


def test_stamp_seconds_round_trip():
    stamp = rc.sec_to_stamp(1.5, TYPES)
    assert (stamp.sec, stamp.nanosec) == (1, 500_000_000)
    negative = rc.sec_to_stamp(-0.25, TYPES)
    assert (negative.sec, negative.nanosec) == (-1, 750_000_000)
    assert rc.stamp_to_sec(negative) == -0.25
    assert rc.stamp_to_sec(rc.sec_to_stamp(12.000000001, TYPES)) == pytest.approx(
        12.000000001, abs=1e-12
    )
    # Epoch stamps keep every nanosecond through the integer path.
    epoch = rc.ns_to_stamp(1_700_000_000_123_456_789, TYPES)
    assert (epoch.sec, epoch.nanosec) == (1_700_000_000, 123_456_789)
    assert rc.stamp_to_ns(epoch) == 1_700_000_000_123_456_789
    # 0.9999999999 s rounds up to the next second, not to nanosec == 1e9.
    carry = rc.sec_to_stamp(0.9999999999, TYPES)
    assert (carry.sec, carry.nanosec) == (1, 0)
    with pytest.raises(MessageConversionError, match="finite"):
        rc.sec_to_stamp(float("nan"), TYPES)
    with pytest.raises(MessageConversionError, match="int32"):
        rc.sec_to_stamp(3e10, TYPES)


def test_header_forms():
    header = rc.header_of(HEADER, TYPES)
    assert header.frame_id == "camera_color_optical_frame"
    assert (header.stamp.sec, header.stamp.nanosec) == HEADER[1]
    assert rc.header_of("base", TYPES).frame_id == "base"
    assert rc.stamp_to_ns(rc.header_of(None, TYPES).stamp) == 0
    again = rc.header_of(header, TYPES)
    assert cdr(again) == cdr(header)
    with pytest.raises(MessageConversionError, match="header"):
        rc.header_of(42, TYPES)


# --- Image ------------------------------------------------------------------------------------


def random_image(rng, encoding: str, height=7, width=5) -> np.ndarray:
    base, channels = rc.IMAGE_ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if base == "f4":
        image = rng.normal(size=shape).astype(np.float32)
        image[0, 0] = np.nan  # NaN bits must survive too
        return image
    info = np.iinfo(np.dtype(base))
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.dtype(base))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "16UC1", "32FC1", "rgba8", "16SC1"])
def test_image_cdr_round_trip_is_byte_exact(rng, encoding):
    image = random_image(rng, encoding)
    msg = rc.image_to_msg(image, encoding, HEADER, TYPES)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (7, 5, encoding, 0)
    raw, decoded = cdr_trip(msg)
    back = rc.msg_to_image(decoded)
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back.view(np.uint8), image.view(np.uint8))
    again = rc.image_to_msg(back, decoded.encoding, decoded.header, TYPES)
    assert cdr(again) == raw
    assert back.flags.writeable and not np.shares_memory(back, decoded.data)


def test_image_row_padding_and_big_endian():
    values = np.array([[1, 258, 65535], [4, 5, 1000]], dtype=">u2")
    padded = np.zeros((2, 8), dtype=np.uint8)  # step 8 > 3 px * 2 bytes
    padded[:, :6] = values.view(np.uint8)
    padded[:, 6:] = 0xEE  # padding bytes must be ignored
    msg = TYPES.new(
        "sensor_msgs/msg/Image",
        header=rc.header_of("cam", TYPES),
        height=2,
        width=3,
        encoding="16UC1",
        is_bigendian=1,
        step=8,
        data=padded.reshape(-1),
    )
    image = rc.msg_to_image(cdr_trip(msg)[1])
    assert image.dtype == np.dtype("=u2")
    np.testing.assert_array_equal(image, [[1, 258, 65535], [4, 5, 1000]])
    depth = rc.msg_to_depth(msg)
    np.testing.assert_array_equal(
        depth, np.array([[1, 258, 65535], [4, 5, 1000]], np.float32) / 1000
    )


def test_msg_to_image_without_copy_is_a_view():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    msg = rc.image_to_msg(image, "mono8", None, TYPES)
    view = rc.msg_to_image(msg, copy=False)
    assert np.shares_memory(view, msg.data)
    assert not np.shares_memory(msg.data, image)  # the message never aliases the input


def test_msg_to_rgb_reorders_channels(rng):
    rgb = random_image(rng, "rgb8")
    bgr_msg = rc.image_to_msg(rgb[:, :, ::-1], "bgr8", None, TYPES)
    np.testing.assert_array_equal(rc.msg_to_rgb(bgr_msg), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(rc.msg_to_rgb(rc.image_to_msg(bgra, "bgra8", None, TYPES)), rgb)
    mono = rgb[:, :, 0]
    np.testing.assert_array_equal(
        rc.msg_to_rgb(rc.image_to_msg(mono, "mono8", None, TYPES)), np.stack([mono] * 3, -1)
    )
    with pytest.raises(MessageConversionError, match="not a colour encoding"):
        rc.msg_to_rgb(rc.image_to_msg(np.zeros((2, 2), np.uint16), "16UC1", None, TYPES))


def test_depth_millimetres_and_invalid_pixels():
    depth = np.array([[0.0, 0.5, 1.2345], [np.nan, -1.0, 65.535]], dtype=np.float32)
    msg = rc.depth_to_msg(depth, "cam", TYPES)
    assert msg.encoding == "16UC1"
    mm = rc.msg_to_image(msg)
    np.testing.assert_array_equal(
        mm, [[0, 500, 1234], [0, 0, 65535]]
    )  # 1.2345 m -> 1234 mm (float32)
    back = rc.msg_to_depth(cdr_trip(msg)[1])
    assert back.dtype == np.float32
    np.testing.assert_array_equal(
        back, np.array([[0, 500, 1234], [0, 0, 65535]], np.float32) / 1000
    )
    # millimetres -> metres -> millimetres is exact, so the message round trip is byte-exact
    assert cdr(rc.depth_to_msg(back, msg.header, TYPES)) == cdr(msg)
    with pytest.raises(MessageConversionError, match="65.535"):
        rc.depth_to_msg(np.full((2, 2), 800.0), "cam", TYPES)  # millimetres passed as metres


def test_depth_32fc1_uses_nan_for_invalid():
    depth = np.array([[0.0, 0.75], [np.inf, 2.0]], dtype=np.float32)
    msg = rc.depth_to_msg(depth, "cam", TYPES, encoding="32FC1")
    pixels = rc.msg_to_image(msg)
    assert np.isnan(pixels[0, 0]) and np.isnan(pixels[1, 0]) and pixels[0, 1] == np.float32(0.75)
    np.testing.assert_array_equal(rc.msg_to_depth(msg), [[0.0, 0.75], [0.0, 2.0]])


def test_image_bad_input_errors():
    with pytest.raises(MessageConversionError, match="unknown encoding 'yuv422'"):
        rc.image_to_msg(np.zeros((2, 2, 2), np.uint8), "yuv422", None, TYPES)
    with pytest.raises(
        MessageConversionError, match=r"'rgb8' needs an array of shape \(H, W, 3\), got \(2, 2\)"
    ):
        rc.image_to_msg(np.zeros((2, 2), np.uint8), "rgb8", None, TYPES)
    with pytest.raises(MessageConversionError, match="'16UC1' needs uint16 data, got float64"):
        rc.image_to_msg(np.zeros((2, 2)), "16UC1", None, TYPES)
    msg = rc.image_to_msg(np.zeros((4, 3, 3), np.uint8), "rgb8", None, TYPES)
    short = TYPES.new(**{**_fields(msg), "data": msg.data[:-1]})
    with pytest.raises(
        MessageConversionError, match=r"image.data: 35 bytes, expected step\*height = 9\*4 = 36"
    ):
        rc.msg_to_image(short)
    narrow = TYPES.new(**{**_fields(msg), "step": 8, "data": msg.data[:32]})
    with pytest.raises(MessageConversionError, match=r"image.step: 8 is less than .* = 9"):
        rc.msg_to_image(narrow)
    unknown = TYPES.new(**{**_fields(msg), "encoding": "bayer_rggb8"})
    with pytest.raises(MessageConversionError, match="unknown encoding 'bayer_rggb8'"):
        rc.msg_to_image(unknown)


def _fields(msg) -> dict:
    """The constructor arguments of a rosbags message, plus its type for MessageTypes.new."""
    names = [name for name, _ in TS.fielddefs[msg.__msgtype__][1]]
    return {"msgtype": msg.__msgtype__, **{name: getattr(msg, name) for name in names}}


# --- CameraInfo -------------------------------------------------------------------------------


INTRINSICS = CameraIntrinsics(
    640, 480, 615.25, 614.75, 319.5, 241.125, (0.1, -0.05, 0.001, 0.002, 0.01)
)


def test_camera_info_round_trip():
    msg = rc.camera_info_to_msg(INTRINSICS, HEADER, TYPES)
    np.testing.assert_array_equal(np.asarray(msg.p).reshape(3, 4)[:, :3], INTRINSICS.K)
    np.testing.assert_array_equal(np.asarray(msg.r), np.eye(3).ravel())
    raw, decoded = cdr_trip(msg)
    intrinsics, frame_id = rc.msg_to_camera_info(decoded)
    assert intrinsics == INTRINSICS  # exact: dataclass equality of every float
    assert frame_id == HEADER[0]
    assert cdr(rc.camera_info_to_msg(intrinsics, decoded.header, TYPES)) == raw


def test_camera_info_from_camera_model_uses_its_frame():
    model = CameraModel("front", INTRINSICS, frame_id="front_optical")
    assert rc.camera_info_to_msg(model, None, TYPES).header.frame_id == "front_optical"


def test_camera_info_bad_input():
    msg = rc.camera_info_to_msg(INTRINSICS, "cam", TYPES)
    zeros = TYPES.new(**{**_fields(msg), "k": np.zeros(9)})
    with pytest.raises(MessageConversionError, match="not calibrated"):
        rc.msg_to_camera_info(zeros)
    skew = msg.k.copy()
    skew[1] = 0.5
    with pytest.raises(MessageConversionError, match="skew"):
        rc.msg_to_camera_info(TYPES.new(**{**_fields(msg), "k": skew}))


def test_image_vs_camera_info_check():
    info = rc.camera_info_to_msg(INTRINSICS, "cam", TYPES)
    good = rc.image_to_msg(np.zeros((480, 640, 3), np.uint8), "rgb8", "cam", TYPES)
    rc.check_image_matches_camera_info(good, info)
    wrong = rc.image_to_msg(np.zeros((240, 320, 3), np.uint8), "rgb8", "cam", TYPES)
    with pytest.raises(MessageConversionError, match="image size 320x240 .* camera_info 640x480"):
        rc.check_image_matches_camera_info(wrong, info)
    binned = TYPES.new(**{**_fields(info), "binning_x": 2, "binning_y": 2})
    rc.check_image_matches_camera_info(wrong, binned)  # 2x2 binning halves the size
    other_frame = rc.image_to_msg(np.zeros((480, 640, 3), np.uint8), "rgb8", "other", TYPES)
    with pytest.raises(MessageConversionError, match="frame_id 'other' differs .* 'cam'"):
        rc.check_image_matches_camera_info(other_frame, info)
    rc.check_image_matches_camera_info(other_frame, info, check_frame=False)


# --- PointCloud2 ------------------------------------------------------------------------------


def test_xyz_cloud_round_trip(rng):
    xyz = rng.normal(size=(1000, 3)).astype(np.float32)
    msg = rc.points_to_msg(xyz, HEADER, TYPES)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (
        1,
        1000,
        12,
        12000,
        True,
    )
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
    ]
    raw, decoded = cdr_trip(msg)
    back = rc.msg_to_points(decoded)
    np.testing.assert_array_equal(back, xyz)
    assert cdr(rc.points_to_msg(back, decoded.header, TYPES)) == raw


def test_xyzrgb_organised_cloud_with_nans(rng):
    xyz = rng.normal(size=(6, 8, 3)).astype(np.float32)
    xyz[2, 3] = np.nan
    xyz[5, 0, 1] = np.nan
    rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    msg = rc.points_to_msg(xyz, HEADER, TYPES, rgb=rgb)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (
        6,
        8,
        16,
        128,
        False,
    )
    assert (
        msg.fields[3].name == "rgb" and msg.fields[3].datatype == 7
    )  # float32, per ROS convention
    raw, decoded = cdr_trip(msg)
    back_xyz, back_rgb = rc.msg_to_points(decoded, with_rgb=True, organized=True)
    np.testing.assert_array_equal(back_xyz, xyz)  # NaNs compare equal here
    np.testing.assert_array_equal(back_rgb, rgb)
    assert cdr(rc.points_to_msg(back_xyz, decoded.header, TYPES, rgb=back_rgb)) == raw
    # The packed float's bits are 0x00RRGGBB.
    packed = rc.pointcloud2_to_array(decoded)["rgb"].view("<u4")
    assert packed[0, 0] == (int(rgb[0, 0, 0]) << 16) | (int(rgb[0, 0, 1]) << 8) | int(rgb[0, 0, 2])
    flat_xyz, flat_rgb = rc.msg_to_points(decoded, with_rgb=True, drop_nan=True)
    keep = np.isfinite(xyz.reshape(-1, 3)).all(axis=1)
    assert flat_xyz.shape == (46, 3)
    np.testing.assert_array_equal(flat_xyz, xyz.reshape(-1, 3)[keep])
    np.testing.assert_array_equal(flat_rgb, rgb.reshape(-1, 3)[keep])
    assert rc.msg_to_points(decoded).shape == (48, 3)


def test_drop_nan_trusts_is_dense(rng, monkeypatch):
    """A dense cloud (no invalid points, by the flag's definition) is not scanned for NaNs; a
    cloud without the flag is, and loses exactly its non-finite points."""
    xyz = rng.normal(size=(500, 3)).astype(np.float32)
    dense = rc.points_to_msg(xyz, HEADER, TYPES)
    assert dense.is_dense
    scans = []
    real_isfinite = np.isfinite
    monkeypatch.setattr(np, "isfinite", lambda a, *args, **kw: scans.append(np.shape(a)) or real_isfinite(a, *args, **kw))
    np.testing.assert_array_equal(rc.msg_to_points(dense, drop_nan=True), xyz)
    assert not any(shape == xyz.shape for shape in scans)
    monkeypatch.undo()
    xyz[[3, 7], [0, 2]] = [np.nan, np.inf]
    sparse = rc.points_to_msg(xyz, HEADER, TYPES)
    assert not sparse.is_dense
    out = rc.msg_to_points(sparse, drop_nan=True)
    np.testing.assert_array_equal(out, np.delete(xyz, [3, 7], axis=0))


def _point_fields(spec):
    return [
        TYPES.new("sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=c)
        for n, o, d, c in spec
    ]


def _cloud(records: np.ndarray, spec, *, row_pad=0, bigendian=False):
    """A PointCloud2 from a structured (H, W) array, with `row_pad` junk bytes per row."""
    height, width = records.shape
    rows = records.view(np.uint8).reshape(height, width * records.dtype.itemsize)
    padded = np.concatenate([rows, np.full((height, row_pad), 0xAB, np.uint8)], axis=1)
    return TYPES.new(
        "sensor_msgs/msg/PointCloud2",
        header=rc.header_of("lidar", TYPES),
        height=height,
        width=width,
        fields=_point_fields(spec),
        is_bigendian=bigendian,
        point_step=records.dtype.itemsize,
        row_step=padded.shape[1],
        data=np.ascontiguousarray(padded).reshape(-1),
        is_dense=False,
    )


def test_non_standard_field_order_offsets_and_padding(rng):
    # Driver-style layout: colour first, z before y, float64 x, gaps, 32-byte points, row padding.
    dtype = np.dtype(
        {
            "names": ["rgba", "z", "intensity", "x", "y"],
            "formats": ["<u4", "<f4", "<u2", "<f8", "<f4"],
            "offsets": [0, 4, 10, 16, 24],
            "itemsize": 32,
        }
    )
    records = np.zeros((3, 5), dtype)
    xyz = rng.normal(size=(3, 5, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    records["x"], records["y"], records["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    records["rgba"] = (
        (0xFF << 24)
        | (rgb[..., 0].astype(np.uint32) << 16)
        | (rgb[..., 1].astype(np.uint32) << 8)
        | rgb[..., 2]
    )
    records["intensity"] = 7
    spec = [
        ("rgba", 0, 6, 1),
        ("z", 4, 7, 1),
        ("intensity", 10, 4, 1),
        ("x", 16, 8, 1),
        ("y", 24, 7, 1),
    ]
    msg = _cloud(records, spec, row_pad=12)
    assert msg.row_step == 5 * 32 + 12
    _, decoded = cdr_trip(msg)
    got_xyz, got_rgb = rc.msg_to_points(decoded, with_rgb=True, organized=True)
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, rgb)
    table = rc.pointcloud2_to_array(decoded)
    assert table.shape == (3, 5) and (table["intensity"] == 7).all()


def test_packed_xyz_after_other_fields_with_row_padding(rng):
    dtype = np.dtype(
        {
            "names": ["ring", "x", "y", "z", "rgb"],
            "formats": ["<u2", "<f4", "<f4", "<f4", "<f4"],
            "offsets": [0, 4, 8, 12, 20],
            "itemsize": 24,
        }
    )
    records = np.zeros((4, 6), dtype)
    xyz = rng.uniform(-3, 3, size=(4, 6, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    for i, name in enumerate("xyz"):
        records[name] = xyz[..., i]
    records["rgb"] = rc.pack_rgb(rgb)
    msg = _cloud(
        records,
        [("ring", 0, 4, 1), ("x", 4, 7, 1), ("y", 8, 7, 1), ("z", 12, 7, 1), ("rgb", 20, 7, 1)],
        row_pad=5,
    )
    got_xyz, got_rgb = rc.msg_to_points(cdr_trip(msg)[1], with_rgb=True)
    np.testing.assert_array_equal(got_xyz, xyz.reshape(-1, 3))
    np.testing.assert_array_equal(got_rgb, rgb.reshape(-1, 3))


def test_big_endian_cloud(rng):
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "rgb"],
            "formats": [">f4"] * 4,
            "offsets": [0, 4, 8, 16],
            "itemsize": 20,
        }
    )
    records = np.zeros((1, 50), dtype)
    xyz = rng.normal(size=(50, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(50, 3), dtype=np.uint8)
    for i, name in enumerate("xyz"):
        records[name][0] = xyz[:, i]
    records["rgb"][0] = rc.pack_rgb(rgb)  # value assignment: numpy byte-swaps into '>f4'
    msg = _cloud(
        records, [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 16, 7, 1)], bigendian=True
    )
    assert (
        msg.data[:4].tobytes() == np.array([xyz[0, 0]], ">f4").tobytes()
    )  # really big-endian bytes
    got_xyz, got_rgb = rc.msg_to_points(cdr_trip(msg)[1], with_rgb=True)
    assert got_xyz.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, rgb)
    # Non-packed big-endian layout goes through the per-field path.
    swapped = _cloud(records, [("y", 0, 7, 1), ("x", 4, 7, 1), ("z", 8, 7, 1)], bigendian=True)
    np.testing.assert_array_equal(rc.msg_to_points(swapped), xyz[:, [1, 0, 2]])


def test_uint32_rgb_field_is_accepted(rng):
    dtype = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4", "<f4", "<f4", "<u4"]})
    records = np.zeros((1, 10), dtype)
    rgb = rng.integers(0, 256, size=(10, 3), dtype=np.uint8)
    records["rgb"][0] = rc.pack_rgb(rgb).view(np.uint32)
    msg = _cloud(records, [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 6, 1)])
    np.testing.assert_array_equal(rc.msg_to_points(msg, with_rgb=True)[1], rgb)


def test_cloud_bad_input_errors(rng):
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<f4", "<f4"]})
    no_xyz = _cloud(np.zeros((1, 3), dtype), [("a", 0, 7, 1), ("b", 4, 7, 1)])
    with pytest.raises(MessageConversionError, match=r"missing x, y, z \(fields present: a, b\)"):
        rc.msg_to_points(no_xyz)
    msg = rc.points_to_msg(rng.normal(size=(10, 3)), "base", TYPES)
    with pytest.raises(MessageConversionError, match="no colour field"):
        rc.msg_to_points(msg, with_rgb=True)
    short = TYPES.new(**{**_fields(msg), "data": msg.data[:100]})
    with pytest.raises(
        MessageConversionError,
        match=r"pointcloud.data: 100 bytes, expected row_step\*height = 120\*1 = 120",
    ):
        rc.msg_to_points(short)
    small_row = TYPES.new(**{**_fields(msg), "row_step": 100, "data": msg.data[:100]})
    with pytest.raises(
        MessageConversionError, match=r"row_step: 100 is less than width\*point_step = 10\*12 = 120"
    ):
        rc.msg_to_points(small_row)
    overflow = TYPES.new(
        **{
            **_fields(msg),
            "fields": _point_fields([("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 10, 7, 1)]),
        }
    )
    with pytest.raises(
        MessageConversionError, match=r"fields\['z'\]: offset 10 \+ size 4 exceeds point_step 12"
    ):
        rc.msg_to_points(overflow)
    bad_type = TYPES.new(
        **{
            **_fields(msg),
            "fields": _point_fields([("x", 0, 9, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)]),
        }
    )
    with pytest.raises(MessageConversionError, match=r"fields\['x'\].datatype: unknown datatype 9"):
        rc.msg_to_points(bad_type)
    with pytest.raises(MessageConversionError, match="points must be numeric"):
        rc.points_to_msg(np.zeros((5, 2)), "base", TYPES)
    with pytest.raises(MessageConversionError, match=r"rgb shape \(4, 3\) must match"):
        rc.points_to_msg(np.zeros((5, 3)), "base", TYPES, rgb=np.zeros((4, 3), np.uint8))
    with pytest.raises(MessageConversionError, match="organized"):
        rc.msg_to_points(msg, drop_nan=True, organized=True)


def test_large_cloud_converts_without_python_loops(rng):
    """300k points both ways; exactness at scale (timing lives in the benchmark)."""
    xyz = rng.normal(size=(300_000, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(300_000, 3), dtype=np.uint8)
    got_xyz, got_rgb = rc.msg_to_points(
        rc.points_to_msg(xyz, "base", TYPES, rgb=rgb), with_rgb=True
    )
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, rgb)


# --- JointState, JointTrajectory ------------------------------------------------------------

PANDA = [f"panda_joint{i}" for i in range(1, 8)]


def test_joint_state_round_trip(rng):
    q, dq, tau = rng.normal(size=(3, 7))
    msg = rc.joint_state_to_msg(PANDA, q, HEADER, TYPES, velocity=dq, effort=tau)
    raw, decoded = cdr_trip(msg)
    state = rc.msg_to_joint_state(decoded)
    assert state.names == PANDA
    np.testing.assert_array_equal(state.position, q)
    np.testing.assert_array_equal(state.velocity, dq)
    np.testing.assert_array_equal(state.effort, tau)
    again = rc.joint_state_to_msg(
        state.names, state.position, decoded.header, TYPES, state.velocity, state.effort
    )
    assert cdr(again) == raw
    only_q = rc.msg_to_joint_state(rc.joint_state_to_msg(PANDA, q, "base", TYPES))
    assert only_q.velocity.shape == (0,) and only_q.effort.shape == (0,)


def test_joint_state_bad_input():
    with pytest.raises(
        MessageConversionError, match="joint_state.position: 6 values for 7 joint names"
    ):
        rc.joint_state_to_msg(PANDA, np.zeros(6), None, TYPES)
    with pytest.raises(
        MessageConversionError, match=r"joint_state.velocity: 3 values for 7 joint names \(or 0\)"
    ):
        rc.joint_state_to_msg(PANDA, np.zeros(7), None, TYPES, velocity=np.zeros(3))
    with pytest.raises(MessageConversionError, match="repeat"):
        rc.joint_state_to_msg(["a", "a"], np.zeros(2), None, TYPES)


def test_joint_trajectory_round_trip(rng):
    times = np.array([0.0, 0.25, 0.5, 1.1, 2.000000001, 12.75])
    positions = rng.normal(size=(6, 7))
    velocities = rng.normal(size=(6, 7))
    msg = rc.joint_trajectory_to_msg(PANDA, positions, times, HEADER, TYPES, velocities=velocities)
    assert (msg.points[5].time_from_start.sec, msg.points[5].time_from_start.nanosec) == (
        12,
        750_000_000,
    )
    assert (msg.points[4].time_from_start.sec, msg.points[4].time_from_start.nanosec) == (2, 1)
    raw, decoded = cdr_trip(msg)
    traj = rc.msg_to_joint_trajectory(decoded)
    assert traj.names == PANDA
    np.testing.assert_array_equal(traj.positions, positions)
    np.testing.assert_array_equal(traj.velocities, velocities)
    assert traj.accelerations is None and traj.effort is None
    np.testing.assert_allclose(traj.time_from_start, times, rtol=0, atol=1e-12)
    again = rc.joint_trajectory_to_msg(
        traj.names,
        traj.positions,
        traj.time_from_start,
        decoded.header,
        TYPES,
        velocities=traj.velocities,
    )
    assert cdr(again) == raw


def test_joint_trajectory_bad_input(rng):
    with pytest.raises(
        MessageConversionError,
        match=r"positions: expected shape \(points, joints\) = \(3, 7\), got \(3, 6\)",
    ):
        rc.joint_trajectory_to_msg(PANDA, np.zeros((3, 6)), [0, 1, 2], None, TYPES)
    with pytest.raises(MessageConversionError, match="must increase strictly"):
        rc.joint_trajectory_to_msg(PANDA, np.zeros((3, 7)), [0, 1, 1], None, TYPES)
    msg = rc.joint_trajectory_to_msg(
        PANDA, np.zeros((2, 7)), [0, 1], None, TYPES, velocities=np.zeros((2, 7))
    )
    msg.points[1].velocities = np.zeros(0)
    with pytest.raises(
        MessageConversionError, match=r"points\[1\].velocities: 0 values for 7 joint names"
    ):
        rc.msg_to_joint_trajectory(msg)


# --- TF ---------------------------------------------------------------------------------------


def random_transform(rng) -> np.ndarray:
    q = rng.normal(size=4)
    return transforms.make_transform(q / np.linalg.norm(q), rng.uniform(-1, 1, size=3))


def test_transform_round_trip(rng):
    T = random_transform(rng)
    msg = rc.transform_to_msg(T, "panda_link0", "camera_link", (1_700_000_000, 5), TYPES)
    assert (msg.header.frame_id, msg.child_frame_id) == ("panda_link0", "camera_link")
    raw, decoded = cdr_trip(msg)
    tf = rc.msg_to_transform(decoded)
    assert (tf.parent_frame, tf.child_frame, tf.stamp) == (
        "panda_link0",
        "camera_link",
        (1_700_000_000, 5),
    )
    np.testing.assert_array_equal(tf.translation, T[:3, 3])  # exact
    np.testing.assert_allclose(tf.matrix, T, atol=1e-14)  # through a quaternion: to rounding
    assert cdr(rc.stamped_transform_to_msg(tf, TYPES)) == raw
    with pytest.raises(MessageConversionError, match="not a proper rotation"):
        rc.transform_to_msg(np.diag([1.0, 1.0, -1.0, 1.0]), "a", "b", 0.0, TYPES)
    decoded.transform.rotation.w = 2.0
    with pytest.raises(
        MessageConversionError, match=r"'panda_link0'->'camera_link'.rotation: .* not unit length"
    ):
        rc.msg_to_transform(decoded)


def test_tf_message_round_trip(rng):
    items = [
        rc.StampedTransform.from_matrix(random_transform(rng), "world", f"link{i}", 3.5)
        for i in range(4)
    ]
    msg = rc.transforms_to_tf_msg(items, TYPES)
    raw, decoded = cdr_trip(msg)
    back = rc.tf_msg_to_transforms(decoded)
    assert [t.child_frame for t in back] == ["link0", "link1", "link2", "link3"]
    for a, b in zip(items, back):
        np.testing.assert_array_equal(a.rotation, b.rotation)
        np.testing.assert_array_equal(a.translation, b.translation)
        assert b.stamp == (3, 500_000_000) and b.stamp_sec == 3.5
    assert cdr(rc.transforms_to_tf_msg(back, TYPES)) == raw


# --- rosbag2 MCAP -----------------------------------------------------------------------------


def test_rosbag2_mcap_write_and_read(tmp_path, rng):
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    rgb = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    depth = (rng.integers(0, 4000, size=(48, 64)) / 1000).astype(np.float32)
    intrinsics = CameraIntrinsics.from_fov(64, 48, 60.0)
    xyz = rng.normal(size=(500, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    q = rng.normal(size=7)
    T = random_transform(rng)
    messages: dict[str, list] = {}  # topic -> messages, one per frame k
    for k in range(3):
        stamp = (1_700_000_000 + k, 1000 * k)
        header = ("camera_color_optical_frame", stamp)
        tf = rc.StampedTransform.from_matrix(T, "world", "panda_link0", stamp)
        frame = {
            "/camera/color/image_raw": rc.image_to_msg(rgb + k, "rgb8", header, TYPES),
            "/camera/depth/image_rect_raw": rc.depth_to_msg(depth, header, TYPES),
            "/camera/color/camera_info": rc.camera_info_to_msg(intrinsics, header, TYPES),
            "/camera/points": rc.points_to_msg(xyz + k, header, TYPES, rgb=colours),
            "/joint_states": rc.joint_state_to_msg(PANDA, q + k, ("", stamp), TYPES),
            "/tf": rc.transforms_to_tf_msg([tf], TYPES),
        }
        for topic, msg in frame.items():
            messages.setdefault(topic, []).append(msg)

    bag = tmp_path / "episode"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgs in messages.items():
            connection = writer.add_connection(topic, msgs[0].__msgtype__, typestore=TS)
            for k, msg in enumerate(msgs):
                stamp_ns = rc.stamp_to_ns((1_700_000_000 + k, 1000 * k))
                writer.write(connection, stamp_ns, cdr(msg))
    assert list(bag.glob("*.mcap"))

    read: dict[str, list] = {}
    with Reader(bag) as reader:
        assert {c.topic for c in reader.connections} == set(messages)
        for connection, timestamp, raw in reader.messages():
            read.setdefault(connection.topic, []).append(
                (timestamp, TS.deserialize_cdr(raw, connection.msgtype))
            )
    assert {topic: len(v) for topic, v in read.items()} == {topic: 3 for topic in messages}
    for k in range(3):
        timestamp, image = read["/camera/color/image_raw"][k]
        assert timestamp == (1_700_000_000 + k) * 1_000_000_000 + 1000 * k
        np.testing.assert_array_equal(rc.msg_to_image(image), rgb + k)
        np.testing.assert_allclose(
            rc.msg_to_depth(read["/camera/depth/image_rect_raw"][k][1]), depth, atol=1e-6
        )
        info_intrinsics, frame_id = rc.msg_to_camera_info(read["/camera/color/camera_info"][k][1])
        assert info_intrinsics == intrinsics and frame_id == "camera_color_optical_frame"
        rc.check_image_matches_camera_info(image, read["/camera/color/camera_info"][k][1])
        got_xyz, got_rgb = rc.msg_to_points(read["/camera/points"][k][1], with_rgb=True)
        np.testing.assert_array_equal(got_xyz, xyz + k)
        np.testing.assert_array_equal(got_rgb, colours)
        np.testing.assert_array_equal(
            rc.msg_to_joint_state(read["/joint_states"][k][1]).position, q + k
        )
        (tf,) = rc.tf_msg_to_transforms(read["/tf"][k][1])
        np.testing.assert_allclose(tf.matrix, T, atol=1e-14)
        for topic in messages:  # and every message survives the bag byte for byte
            assert cdr(read[topic][k][1]) == cdr(messages[topic][k])


# --- message type factories and the rclpy test double ---------------------------------------


def test_message_types_accepts_typestore_mapping_and_callable(rng):
    xyz = rng.normal(size=(4, 3)).astype(np.float32)
    reference = cdr(rc.points_to_msg(xyz, "base", TYPES))
    for msg_types in (TS, dict(TS.types), TS.types.__getitem__):
        assert cdr(rc.points_to_msg(xyz, "base", msg_types)) == reference
    with pytest.raises(MessageConversionError, match="'sensor_msgs/msg/Nope' is not available"):
        TYPES("sensor_msgs/msg/Nope")
    with pytest.raises(TypeError, match="msg_types must be"):
        rc.points_to_msg(xyz, "base", 5)


def test_importing_the_package_does_not_import_rclpy_or_rosbags():
    code = (
        "import sys, robot_rewards.ros, robot_rewards.ros.convert; "
        "assert 'rclpy' not in sys.modules and 'rosbags' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rclpy_types_reports_missing_ros(monkeypatch):
    monkeypatch.setitem(sys.modules, "builtin_interfaces", None)  # make the import fail
    monkeypatch.setitem(sys.modules, "builtin_interfaces.msg", None)
    with pytest.raises(ImportError, match="source your ROS 2 setup"):
        rc.rclpy_types()


# A mirror of what rosidl_generator_py generates, for the parts conversion relies on: keyword
# constructor with defaults, type-checked setters, array.array for primitive sequences, numpy
# for fixed-size arrays, lists of message instances.
_TYPECODES = {
    "uint8": "B",
    "int8": "b",
    "uint16": "H",
    "int16": "h",
    "uint32": "I",
    "int32": "i",
    "uint64": "Q",
    "int64": "q",
    "float32": "f",
    "float64": "d",
}


def _check_base(type_name: str, value, where: str):
    if type_name == "bool":
        assert isinstance(value, bool), f"{where} must be bool, got {type(value).__name__}"
    elif type_name == "string":
        assert isinstance(value, str), f"{where} must be str"
    elif type_name.startswith("float"):
        assert isinstance(value, float), f"{where} must be float, got {type(value).__name__}"
    else:
        assert isinstance(value, int), f"{where} must be int, got {type(value).__name__}"


def _fake_rclpy_class(msgtype: str, classes: dict):
    fields = TS.fielddefs[msgtype][1]

    def default(kind, detail):
        if kind == 1:
            return {"bool": False, "string": ""}.get(
                detail[0], 0.0 if detail[0].startswith("float") else 0
            )
        if kind == 2:
            return classes[detail]()
        sub_kind, sub_detail = detail[0]
        if kind == 3 and sub_kind == 1:
            return np.zeros(detail[1], dtype=sub_detail[0])
        if sub_kind == 1 and sub_detail[0] in _TYPECODES:
            return array.array(_TYPECODES[sub_detail[0]])
        return []

    def check(name, kind, detail, value):
        where = f"{msgtype}.{name}"
        if kind == 1:
            _check_base(detail[0], value, where)
        elif kind == 2:
            assert isinstance(value, classes[detail]), f"{where} must be {detail}"
        elif kind == 3 and detail[0][0] == 1:
            assert (
                isinstance(value, np.ndarray)
                and value.dtype == detail[0][1][0]
                and value.size == detail[1]
            ), where
        elif detail[0][0] == 1 and detail[0][1][0] in _TYPECODES:
            assert (
                isinstance(value, array.array) and value.typecode == _TYPECODES[detail[0][1][0]]
            ), f"{where}: a fast rclpy setter needs array.array('{_TYPECODES[detail[0][1][0]]}')"
        else:
            assert isinstance(value, list), f"{where} must be a list"
            for item in value:
                if detail[0][0] == 2:
                    assert isinstance(item, classes[detail[0][1]]), where
                else:
                    _check_base(detail[0][1][0], item, where)

    def __init__(self, **kwargs):
        unknown = set(kwargs) - {name for name, _ in fields}
        assert not unknown, f"Invalid arguments passed to constructor: {unknown}"
        for name, (kind, detail) in fields:
            value = kwargs.get(name, default(kind, detail))
            check(name, kind, detail, value)
            setattr(self, name, value)

    package, _, name = msgtype.split("/")
    return type(name, (), {"__init__": __init__, "__module__": f"{package}.msg"})


@pytest.fixture
def fake_rclpy_messages(monkeypatch):
    """Installs rclpy-like generated message modules (sensor_msgs.msg, ...) into sys.modules."""
    classes: dict[str, type] = {}
    # Dependencies before dependants, so nested defaults can be built.
    order = [
        "builtin_interfaces/msg/Time",
        "builtin_interfaces/msg/Duration",
        "std_msgs/msg/Header",
        "sensor_msgs/msg/RegionOfInterest",
        "sensor_msgs/msg/PointField",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
        "sensor_msgs/msg/PointCloud2",
        "sensor_msgs/msg/JointState",
        "trajectory_msgs/msg/JointTrajectoryPoint",
        "trajectory_msgs/msg/JointTrajectory",
        "geometry_msgs/msg/Vector3",
        "geometry_msgs/msg/Quaternion",
        "geometry_msgs/msg/Transform",
        "geometry_msgs/msg/TransformStamped",
        "tf2_msgs/msg/TFMessage",
    ]
    for msgtype in order:
        classes[msgtype] = _fake_rclpy_class(msgtype, classes)
    for msgtype, cls in classes.items():
        package = msgtype.split("/")[0]
        module = sys.modules.get(f"{package}.msg")
        if not isinstance(module, pytypes.ModuleType) or not getattr(module, "_fake", False):
            monkeypatch.setitem(sys.modules, package, pytypes.ModuleType(package))
            module = pytypes.ModuleType(f"{package}.msg")
            module._fake = True
            monkeypatch.setitem(sys.modules, f"{package}.msg", module)
        setattr(module, cls.__name__, cls)
    return classes


def test_rclpy_style_classes_build_and_read_back(fake_rclpy_messages, rng):
    ros = rc.rclpy_types()
    image = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    xyz = rng.normal(size=(20, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(20, 3), dtype=np.uint8)
    q = rng.normal(size=7)
    T = random_transform(rng)

    image_msg = rc.image_to_msg(image, "rgb8", HEADER, ros)
    assert type(image_msg).__module__ == "sensor_msgs.msg" and isinstance(
        image_msg.data, array.array
    )
    np.testing.assert_array_equal(rc.msg_to_image(image_msg), image)
    info_msg = rc.camera_info_to_msg(INTRINSICS, HEADER, ros)
    assert rc.msg_to_camera_info(info_msg) == (INTRINSICS, HEADER[0])
    cloud_msg = rc.points_to_msg(xyz, HEADER, ros, rgb=colours)
    got_xyz, got_rgb = rc.msg_to_points(cloud_msg, with_rgb=True)
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, colours)
    state = rc.msg_to_joint_state(rc.joint_state_to_msg(PANDA, q, HEADER, ros))
    np.testing.assert_array_equal(state.position, q)
    traj_msg = rc.joint_trajectory_to_msg(PANDA, np.stack([q, q + 1]), [0.5, 1.0], HEADER, ros)
    np.testing.assert_array_equal(
        rc.msg_to_joint_trajectory(traj_msg).positions, np.stack([q, q + 1])
    )
    tf_msg = rc.transforms_to_tf_msg(
        [rc.StampedTransform.from_matrix(T, "world", "hand", 2.0)], ros
    )
    np.testing.assert_allclose(rc.tf_msg_to_transforms(tf_msg)[0].matrix, T, atol=1e-14)

    # rclpy message -> numpy -> rosbags message gives the same CDR bytes as building it directly;
    # the header of an rclpy message is accepted by the rosbags constructors (it is rebuilt).
    assert cdr(rc.image_to_msg(rc.msg_to_image(image_msg), "rgb8", image_msg.header, TYPES)) == cdr(
        rc.image_to_msg(image, "rgb8", HEADER, TYPES)
    )
    assert cdr(rc.points_to_msg(got_xyz, cloud_msg.header, TYPES, rgb=got_rgb)) == cdr(
        rc.points_to_msg(xyz, HEADER, TYPES, rgb=colours)
    )


@pytest.mark.ros
def test_real_rclpy_messages_round_trip(rng):
    """Runs where ROS 2 is sourced: the same conversions with the generated rclpy classes."""
    pytest.importorskip("rclpy")
    ros = rc.rclpy_types()
    image = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    xyz = rng.normal(size=(20, 3)).astype(np.float32)
    colours = rng.integers(0, 256, size=(20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        rc.msg_to_image(rc.image_to_msg(image, "rgb8", HEADER, ros)), image
    )
    assert rc.msg_to_camera_info(rc.camera_info_to_msg(INTRINSICS, HEADER, ros))[0] == INTRINSICS
    got_xyz, got_rgb = rc.msg_to_points(
        rc.points_to_msg(xyz, HEADER, ros, rgb=colours), with_rgb=True
    )
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, colours)
    q = rng.normal(size=7)
    np.testing.assert_array_equal(
        rc.msg_to_joint_state(rc.joint_state_to_msg(PANDA, q, HEADER, ros)).position, q
    )
    traj = rc.joint_trajectory_to_msg(PANDA, np.stack([q, q + 1]), [0.5, 1.0], HEADER, ros)
    np.testing.assert_array_equal(rc.msg_to_joint_trajectory(traj).positions, np.stack([q, q + 1]))
    T = random_transform(rng)
    tf_msg = rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(T, "w", "h", 2.0)], ros)
    np.testing.assert_allclose(rc.tf_msg_to_transforms(tf_msg)[0].matrix, T, atol=1e-14)


def test_benchmark_smoke(tmp_path):
    """The benchmark runs end to end at a tiny size and writes metrics.json (no timing asserted)."""
    import json

    from robot_rewards.bench.ros_convert import run_ros_convert_bench

    metrics = run_ros_convert_bench(
        tmp_path, n_points=2000, repeats=2, naive_points=500, naive_repeats=1
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert set(saved["cases"]) == {"pointcloud2_xyz", "pointcloud2_xyzrgb", "image_rgb8_640x480"}
    for case in saved["cases"].values():
        assert case["to_msg_ms"] > 0 and case["from_msg_ms"] > 0 and case["speedup_to_msg"] > 0
    assert saved["typestore"] in ("ros2_jazzy", "ros2_humble")


def _cloud_with(**changes):
    """A 10-point xyz cloud (point_step 12, row_step 120) with some fields replaced."""
    msg = rc.points_to_msg(np.zeros((10, 3)), "base", TYPES)
    return TYPES.new(**{**_fields(msg), **changes})


_NO_DATA = np.zeros(0, np.uint8)


@pytest.mark.parametrize("changes, match", [
    # point_step beyond what a numpy record can describe (was a plain ValueError from numpy)
    ({"point_step": 2**31, "row_step": 0, "width": 0, "data": _NO_DATA},
     r"pointcloud.point_step: 2147483648 is outside \[1, 2147483647\]"),
    ({"point_step": 2**31, "row_step": 2**31, "width": 1, "height": 0, "data": _NO_DATA},
     r"pointcloud.point_step: 2147483648 is outside"),
    ({"point_step": 0}, r"pointcloud.point_step: 0 is outside \[1, "),
    # sizes outside the message's uint32 fields (negative ones gave numpy's "negative dimensions")
    ({"height": -1, "row_step": 0, "width": 0, "data": _NO_DATA}, r"pointcloud.height: -1 is outside \[0, 4294967295\]"),
    ({"width": -1, "height": 0, "data": _NO_DATA}, r"pointcloud.width: -1 is outside"),
    ({"height": 2**40, "width": 0, "row_step": 0, "data": _NO_DATA}, r"pointcloud.height: 1099511627776 is outside"),
    ({"row_step": 2**62, "height": 0, "data": _NO_DATA}, r"pointcloud.row_step: 4611686018427387904 is outside"),
    # sizes inconsistent with each other or with the data
    ({"row_step": 119}, r"row_step: 119 is less than width\*point_step = 10\*12 = 120"),
    ({"height": 2}, r"pointcloud.data: 120 bytes, expected row_step\*height = 120\*2 = 240"),
    ({"width": 2**28, "row_step": 12 * 2**28}, r"pointcloud.data: 120 bytes, expected row_step\*height"),
    # fields and data of the wrong kind
    ({"fields": _point_fields([("x", 2**70, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)])},
     r"fields\['x'\].offset: 1180591620717411303424 is outside"),
    ({"fields": _point_fields([("x", 0, 7, 2**40), ("y", 4, 7, 1), ("z", 8, 7, 1)])},
     r"fields\['x'\].count: 1099511627776 is outside"),
    ({"data": [1000] * 120}, r"pointcloud.data: expected bytes 0..255"),
    ({"data": "abc"}, r"pointcloud.data: expected bytes 0..255"),
])
def test_cloud_absurd_sizes_raise_conversion_errors(changes, match):
    with pytest.raises(MessageConversionError, match=match) as info:
        rc.msg_to_points(_cloud_with(**changes))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field, value, match", [
    ("point_step", 12.5, r"pointcloud.point_step: expected an integer, got float"),
    ("height", None, r"pointcloud.height: expected an integer, got NoneType"),
    ("width", True, r"pointcloud.width: expected an integer, got bool"),
])
def test_cloud_size_fields_of_the_wrong_type(field, value, match):
    msg = _cloud_with()
    # rosbags' dataclasses do not check types; a duck-typed message can carry anything.
    fake = type("Cloud", (), {**_fields(msg), field: value})()
    with pytest.raises(MessageConversionError, match=match):
        rc.msg_to_points(fake)
    fields = [type("Field", (), {"name": ["x"], "offset": 0, "datatype": 7, "count": 1})()]
    with pytest.raises(MessageConversionError, match="a field name is a list, not a string"):
        rc.msg_to_points(type("Cloud", (), {**_fields(msg), "fields": fields})())


@pytest.mark.parametrize("changes, match", [
    ({"width": -1}, r"image: height 48 and width -1 must not be negative"),
    ({"height": 2**31}, r"image.data: \d+ bytes, expected step\*height"),
    ({"step": 2**40, "width": 2**62}, r"image.step: 1099511627776 is less than"),
])
def test_image_absurd_sizes_raise_conversion_errors(changes, match):
    msg = rc.depth_to_msg(np.ones((48, 64), np.float32), "cam", TYPES)
    with pytest.raises(MessageConversionError, match=match):
        rc.msg_to_depth(TYPES.new(**{**_fields(msg), **changes}))

"""numpy <-> sensor_msgs/PointCloud2.

The record layout is always read from the message (fields, offsets, datatypes, point_step,
row_step, is_bigendian), never assumed: clouds from drivers often have padding, extra fields
(intensity, ring, normals) or a different field order. Decoding is a strided numpy view over
the byte buffer plus a few vectorised copies, so no Python loop ever runs per point.
"""

from __future__ import annotations

import numpy as np

from robot_rewards.ros.convert_common import (
    MessageConversionError,
    as_message_types,
    header_of,
    uint8_buffer,
)

# sensor_msgs/PointField datatype constants -> numpy base types.
POINTFIELD_DTYPES: dict[int, str] = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    8: "f8",
}
_FLOAT32 = 7
_COLOUR_FIELDS = ("rgb", "rgba")
_UINT32_MAX = (1 << 32) - 1  # height, width, row_step, offset, count are uint32 in the message
# numpy keeps a record's size in a C int, so a larger point_step cannot be described at all.
MAX_POINT_STEP = (1 << 31) - 1


def _size(value, what: str, high: int = _UINT32_MAX, low: int = 0) -> int:
    """An integer message field in [low, high], else MessageConversionError naming it (a float,
    None or bool here would otherwise be truncated or raise TypeError deep inside numpy)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise MessageConversionError(f"{what}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if not low <= value <= high:
        raise MessageConversionError(f"{what}: {value} is outside [{low}, {high}]")
    return value


def pointcloud2_dtype(fields, point_step: int, is_bigendian: bool = False) -> np.dtype:
    """The structured numpy dtype of one point, from PointField entries and point_step.

    Fields may come in any order, overlap and leave padding; `count > 1` gives a sub-array.
    """
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for field in fields:
        name = field.name
        if not isinstance(name, str):
            raise MessageConversionError(
                f"pointcloud.fields: a field name is a {type(name).__name__}, not a string"
            )
        offset = _size(field.offset, f"pointcloud.fields['{name}'].offset")
        datatype = _size(field.datatype, f"pointcloud.fields['{name}'].datatype", 255)
        # some drivers write count=0 for scalars
        count = max(_size(field.count, f"pointcloud.fields['{name}'].count"), 1)
        if datatype not in POINTFIELD_DTYPES:
            raise MessageConversionError(
                f"pointcloud.fields['{name}'].datatype: unknown datatype {datatype} "
                f"(expected one of {sorted(POINTFIELD_DTYPES)})"
            )
        if name in names:
            raise MessageConversionError(f"pointcloud.fields: field '{name}' appears twice")
        base = np.dtype(order + POINTFIELD_DTYPES[datatype])
        size = base.itemsize * count
        if offset < 0 or offset + size > point_step:
            raise MessageConversionError(
                f"pointcloud.fields['{name}']: offset {offset} + size {size} exceeds "
                f"point_step {point_step}"
            )
        names.append(name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )


def _checked_layout(msg) -> tuple[int, int, int, int, np.ndarray]:
    """(height, width, point_step, row_step, data) after checking the sizes agree."""
    height, width = _size(msg.height, "pointcloud.height"), _size(msg.width, "pointcloud.width")
    row_step = _size(msg.row_step, "pointcloud.row_step")
    point_step = _size(msg.point_step, "pointcloud.point_step", MAX_POINT_STEP, 1)
    if row_step < width * point_step:
        raise MessageConversionError(
            f"pointcloud.row_step: {row_step} is less than width*point_step = "
            f"{width}*{point_step} = {width * point_step}"
        )
    data = uint8_buffer(msg.data, "pointcloud")
    if data.size != row_step * height:
        raise MessageConversionError(
            f"pointcloud.data: {data.size} bytes, expected row_step*height = "
            f"{row_step}*{height} = {row_step * height}"
        )
    return height, width, point_step, row_step, data


def _records(msg) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(structured (H, W) view, data bytes, row_step, point_step) of a checked PointCloud2."""
    height, width, point_step, row_step, data = _checked_layout(msg)
    dtype = pointcloud2_dtype(msg.fields, point_step, bool(msg.is_bigendian))
    if data.size == 0:
        return np.zeros((height, width), dtype), data, row_step, point_step
    # Strides skip row padding; no bytes are copied.
    records = np.ndarray((height, width), dtype, buffer=data, strides=(row_step, point_step))
    return records, data, row_step, point_step


def pointcloud2_to_array(msg) -> np.ndarray:
    """All fields of a PointCloud2 as a structured (height, width) array, in message byte order.

    A zero-copy, possibly read-only view of msg.data (row padding is skipped by strides).
    """
    return _records(msg)[0]


def _xyz(records: np.ndarray, data: np.ndarray, row_step: int, point_step: int) -> np.ndarray:
    """(H, W, 3) native float32 xyz: one memcpy-like pass for tightly packed float32 xyz clouds,
    else one strided copy per coordinate (numpy is slow on length-3 inner loops)."""
    fields = records.dtype.fields
    missing = [n for n in "xyz" if n not in fields]
    if missing:
        available = ", ".join(records.dtype.names) or "none"
        raise MessageConversionError(
            f"pointcloud.fields: missing {', '.join(missing)} (fields present: {available})"
        )
    (dx, ox), (dy, oy), (dz, oz) = (fields[n][:2] for n in "xyz")
    height, width = records.shape
    packed = dx == dy == dz and dx.kind == "f" and dx.itemsize == 4 and (ox, oy, oz) == (0, 4, 8)
    if packed and point_step == 12 and row_step == 12 * width and data.size:
        return np.frombuffer(data, dx).reshape(height, width, 3).astype(np.float32)
    xyz = np.empty((height, width, 3), dtype=np.float32)
    for i, name in enumerate("xyz"):
        if fields[name][0].shape:
            raise MessageConversionError(f"pointcloud.fields['{name}']: count must be 1")
        xyz[..., i] = records[name]  # any numeric datatype and byte order, cast to float32
    return xyz


def _rgb(msg, records: np.ndarray, data: np.ndarray, row_step: int, point_step: int) -> np.ndarray:
    """(H, W, 3) uint8 colours from a packed 'rgb'/'rgba' field (float32 or uint32 bits)."""
    fields = records.dtype.fields
    name = next((n for n in _COLOUR_FIELDS if n in fields), None)
    if name is None:
        raise MessageConversionError(
            f"pointcloud.fields: no colour field 'rgb' or 'rgba' (fields present: "
            f"{', '.join(records.dtype.names)})"
        )
    dtype = fields[name][0]
    if dtype.itemsize != 4 or dtype.shape:
        raise MessageConversionError(
            f"pointcloud.fields['{name}']: expected a 4-byte packed colour (FLOAT32 or UINT32), "
            f"got {dtype}"
        )
    # ROS/PCL pack 0x00RRGGBB (0xAARRGGBB for rgba) into the 4 bytes, often typed float32:
    # the colour is the bits, never the float value. Read R, G, B as bytes straight from the
    # buffer: little-endian stores B, G, R, A (so R sits at +2 and we step backwards),
    # big-endian stores A, R, G, B.
    if data.size == 0:
        return np.zeros(records.shape + (3,), np.uint8)
    offset = int(next(f for f in msg.fields if f.name == name).offset)
    start, step = (offset + 1, 1) if msg.is_bigendian else (offset + 2, -1)
    rgb = np.empty(records.shape + (3,), np.uint8)
    for channel in range(3):  # one long strided copy per channel beats a length-3 inner loop
        rgb[..., channel] = np.ndarray(
            records.shape,
            np.uint8,
            buffer=data,
            offset=start + channel * step,
            strides=(row_step, point_step),
        )
    return rgb


def msg_to_points(msg, *, with_rgb: bool = False, drop_nan: bool = False, organized: bool = False):
    """xyz float32 (and with_rgb, colours uint8) of a PointCloud2.

    Shapes are (N, 3) with N = height * width, or (height, width, 3) with organized=True.
    drop_nan removes points with a non-finite coordinate (flat output only); a cloud whose
    is_dense flag is set has none by its definition in sensor_msgs, so it is not scanned.
    Returns xyz, or (xyz, rgb) with with_rgb.
    """
    if organized and drop_nan:
        raise MessageConversionError(
            "msg_to_points: drop_nan=True cannot keep an organized (H, W) grid"
        )
    records, data, row_step, point_step = _records(msg)
    xyz = _xyz(records, data, row_step, point_step)
    rgb = _rgb(msg, records, data, row_step, point_step) if with_rgb else None
    if not organized:
        xyz = xyz.reshape(-1, 3)
        rgb = None if rgb is None else rgb.reshape(-1, 3)
    if drop_nan and not bool(msg.is_dense):
        finite = np.isfinite(xyz)
        keep = finite[:, 0] & finite[:, 1] & finite[:, 2]  # not .all(axis=1): slow on rows of 3
        if not keep.all():
            xyz = xyz[keep]
            rgb = None if rgb is None else rgb[keep]
    return (xyz, rgb) if with_rgb else xyz


def pack_rgb(rgb) -> np.ndarray:
    """(..., 3) uint8 colours -> (...) float32 holding 0x00RRGGBB bits (the ROS 'rgb' field)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise MessageConversionError(f"pointcloud rgb: expected uint8 colours, got {rgb.dtype}")
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    return packed.view(np.float32)


def _all_finite(xyz: np.ndarray) -> bool:
    """Whether every coordinate is finite, column by column when the rows are strided."""
    if xyz.flags.c_contiguous:
        return bool(np.isfinite(xyz).all())
    return all(bool(np.isfinite(xyz[:, i]).all()) for i in range(xyz.shape[1]))


def points_to_msg(xyz, header, msg_types, rgb=None):
    """A PointCloud2 of (N, 3) points (unorganised, height 1) or (H, W, 3) (organised).

    Fields are float32 x, y, z at offsets 0, 4, 8 (point_step 12), plus a float32 'rgb' at 12
    (point_step 16) when `rgb` ((N, 3) / (H, W, 3) uint8) is given; little-endian, no row
    padding. is_dense is True when every coordinate is finite.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim not in (2, 3) or xyz.shape[-1] != 3 or xyz.dtype.kind not in "fiu":
        raise MessageConversionError(
            f"pointcloud: points must be numeric (N, 3) or (H, W, 3), got {xyz.shape} {xyz.dtype}"
        )
    height, width = (1, xyz.shape[0]) if xyz.ndim == 2 else xyz.shape[:2]
    columns = 3
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != xyz.shape:
            raise MessageConversionError(
                f"pointcloud: rgb shape {rgb.shape} must match the points' shape {xyz.shape}"
            )
        if rgb.dtype != np.uint8:
            raise MessageConversionError(f"pointcloud: rgb must be uint8, got {rgb.dtype}")
        columns = 4
    # One (H*W, columns) little-endian float32 table; its bytes are the message data.
    table = np.empty((height * width, columns), dtype="<f4")
    flat_xyz = xyz.reshape(-1, 3)
    if columns == 3:
        table[:] = flat_xyz  # same layout: one contiguous pass
    else:
        for i in range(3):  # per column: numpy is slow on (N, 3) -> (N, 4) length-3 inner loops
            table[:, i] = flat_xyz[:, i]
    if rgb is not None:
        # Write the little-endian bytes of 0x00RRGGBB (B, G, R, 0) straight into the table.
        colour_bytes = table.view(np.uint8)[:, 12:16]
        flat_rgb = rgb.reshape(-1, 3)
        for channel in range(3):  # per channel: long strided copies, not a length-3 inner loop
            colour_bytes[:, 2 - channel] = flat_rgb[:, channel]
        colour_bytes[:, 3] = 0
    types = as_message_types(msg_types)
    names = ("x", "y", "z", "rgb")[:columns]
    fields = [
        types.new("sensor_msgs/msg/PointField", name=n, offset=4 * i, datatype=_FLOAT32, count=1)
        for i, n in enumerate(names)
    ]
    point_step = 4 * columns
    return types.new(
        "sensor_msgs/msg/PointCloud2",
        header=header_of(header, types),
        height=int(height),
        width=int(width),
        fields=fields,
        is_bigendian=False,
        point_step=point_step,
        row_step=int(point_step * width),
        data=types.sequence(table.view(np.uint8).reshape(-1), np.uint8),
        is_dense=_all_finite(table[:, :3]),
    )

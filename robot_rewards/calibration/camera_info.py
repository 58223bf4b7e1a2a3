"""Read and write calibration files in the forms ROS users have.

- Intrinsics: the camera_info YAML written by ROS `camera_calibration` (and read by
  `camera_info_manager`).
- Extrinsics: a transform YAML with parent/child frame names, translation and (x, y, z, w)
  quaternion, the same fields a `geometry_msgs/TransformStamped` carries.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from robot_rewards.calibration.yaml_io import finite_list, finite_number, read_yaml_mapping, whole_number
from robot_rewards.core import transforms
from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.paths import resolve


class CalibrationFileError(ValueError):
    """A calibration file that is missing fields or holds inconsistent values."""


def _matrix(doc: dict, key: str, rows: int, cols: int, path) -> np.ndarray:
    """The `rows` x `cols` matrix stored as {rows, cols, data} under `key`: finite values, the
    declared shape (when given) and the expected one."""
    entry = doc.get(key)
    if not isinstance(entry, dict) or "data" not in entry:
        raise CalibrationFileError(f"{path}: missing '{key}' with a 'data' list")
    data = finite_list(entry["data"], path, f"{key}.data", CalibrationFileError)
    if len(data) != rows * cols:
        raise CalibrationFileError(
            f"{path}: '{key}' must be {rows}x{cols} ({rows * cols} values), has {len(data)} values"
        )
    for name, want in (("rows", rows), ("cols", cols)):
        if name in entry and whole_number(entry[name], path, f"{key}.{name}", CalibrationFileError) != want:
            raise CalibrationFileError(f"{path}: '{key}' must be {rows}x{cols}, its {name} says {entry[name]}")
    return np.asarray(data, dtype=np.float64).reshape(rows, cols)


# Distortion coefficient counts OpenCV accepts (plumb_bob has 5, rational_polynomial 8).
_DISTORTION_SIZES = (0, 4, 5, 8, 12, 14)


def load_camera_info(path: str | os.PathLike) -> tuple[str, CameraIntrinsics]:
    """Camera name and intrinsics from a ROS camera_info YAML file.

    Refused (CalibrationFileError naming the file and field): a file that is not YAML, a
    missing or non-positive image size, NaN/inf or non-numbers in any matrix, a camera matrix,
    rectification (3x3) or projection (3x4) matrix of the wrong size, a distortion vector of a
    length OpenCV does not know.
    """
    path = Path(path)
    doc = read_yaml_mapping(path, CalibrationFileError, "camera_info")
    for key in ("image_width", "image_height"):
        if key not in doc:
            raise CalibrationFileError(f"{path}: missing '{key}'")
    width = whole_number(doc["image_width"], path, "image_width", CalibrationFileError, 1)
    height = whole_number(doc["image_height"], path, "image_height", CalibrationFileError, 1)
    K = _matrix(doc, "camera_matrix", 3, 3, path)
    if "rectification_matrix" in doc:
        _matrix(doc, "rectification_matrix", 3, 3, path)
    if "projection_matrix" in doc:
        _matrix(doc, "projection_matrix", 3, 4, path)
    dist_entry = doc.get("distortion_coefficients", {"data": [0.0] * 5})
    if not isinstance(dist_entry, dict) or "data" not in dist_entry:
        raise CalibrationFileError(f"{path}: 'distortion_coefficients' needs a 'data' list")
    dist = finite_list(dist_entry["data"], path, "distortion_coefficients.data", CalibrationFileError)
    if len(dist) not in _DISTORTION_SIZES:
        raise CalibrationFileError(
            f"{path}: distortion_coefficients has {len(dist)} values; expected one of {_DISTORTION_SIZES}"
        )
    model = doc.get("distortion_model", "plumb_bob")
    if not isinstance(model, str):
        raise CalibrationFileError(f"{path}: distortion_model must be a string, got {model!r}")
    try:
        intrinsics = CameraIntrinsics(
            width=width, height=height, fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]),
            cy=float(K[1, 2]), distortion=tuple(dist), distortion_model=model,
        )
    except ValueError as exc:  # non-positive focal lengths
        raise CalibrationFileError(f"{path}: camera_matrix: {exc}") from None
    return str(doc.get("camera_name", path.stem)), intrinsics


def camera_info_dict(name: str, intrinsics: CameraIntrinsics) -> dict:
    """The camera_info YAML document for `intrinsics` (rectified: R = I, P = [K | 0])."""
    K = intrinsics.K
    P = np.hstack([K, np.zeros((3, 1))])
    return {
        "image_width": intrinsics.width,
        "image_height": intrinsics.height,
        "camera_name": name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": K.ravel().tolist()},
        "distortion_model": intrinsics.distortion_model,
        "distortion_coefficients": {
            "rows": 1,
            "cols": len(intrinsics.distortion),
            "data": list(intrinsics.distortion),
        },
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
        "projection_matrix": {"rows": 3, "cols": 4, "data": P.ravel().tolist()},
    }


def save_camera_info(path: str | os.PathLike, name: str, intrinsics: CameraIntrinsics) -> None:
    """Write a ROS camera_info YAML file (atomically: a failed write leaves the old file)."""
    _write_yaml(Path(path), camera_info_dict(name, intrinsics))


def load_transform(path: str | os.PathLike) -> tuple[str, str, np.ndarray]:
    """(parent_frame, child_frame, parent_T_child) from a transform YAML file.

    Refused (CalibrationFileError naming the file and field): a file that is not YAML, missing
    fields, NaN/inf or non-numbers, a quaternion that is not unit length.
    """
    path = Path(path)
    doc = read_yaml_mapping(path, CalibrationFileError, "transform")
    translation, quat = pose_fields(doc, path, "", CalibrationFileError)
    try:
        parent, child = str(doc["parent_frame"]), str(doc["child_frame"])
    except KeyError as exc:
        raise CalibrationFileError(
            f"{path}: needs parent_frame, child_frame, translation {{x,y,z}}, rotation {{x,y,z,w}}"
        ) from exc
    return parent, child, transforms.make_transform(quat, translation)


def pose_fields(entry, path, where: str, error: type[Exception]) -> tuple[list[float], np.ndarray]:
    """(translation [x, y, z], unit quaternion [x, y, z, w]) of a mapping with `translation`
    {x,y,z} and `rotation` {x,y,z,w}: finite numbers, a unit quaternion, else `error` naming
    the file, `where` (e.g. "pose 3: ") and the field."""
    if not isinstance(entry, dict):
        raise error(f"{path}: {where}expected a mapping with translation and rotation")
    values = {}
    for key, axes in (("translation", "xyz"), ("rotation", "xyzw")):
        part = entry.get(key)
        if not isinstance(part, dict) or any(a not in part for a in axes):
            raise error(f"{path}: {where}needs {key} {{{','.join(axes)}}}")
        values[key] = [finite_number(part[a], path, f"{where}{key}.{a}", error) for a in axes]
    quat = np.array(values["rotation"])
    with np.errstate(over="ignore"):  # a 1e200 entry: the norm is inf, and refused below
        norm = np.linalg.norm(quat)
    if not np.isclose(norm, 1.0, atol=1e-3):
        raise error(f"{path}: {where}rotation quaternion is not unit length ({quat.tolist()})")
    return values["translation"], quat


def load_base_transform(path: str | os.PathLike, base_frame: str, setting: str = "extrinsics_file") -> np.ndarray:
    """base_T_camera from a hand-eye result YAML (paths resolved like every data file), refused
    with a ValueError naming `setting` when it is relative to another frame than `base_frame`."""
    parent, _, T = load_transform(resolve(path))
    if parent != base_frame:
        raise ValueError(f"{setting} {path} is relative to '{parent}', not the base frame '{base_frame}'")
    return T


def transform_dict(parent: str, child: str, T: np.ndarray, **extra) -> dict:
    """The transform YAML document for `parent_T_child`; `extra` keys are stored alongside."""
    q = transforms.matrix_to_quat(np.asarray(T)[:3, :3])
    t = np.asarray(T)[:3, 3]
    doc = {
        "parent_frame": parent,
        "child_frame": child,
        "translation": {k: float(v) for k, v in zip("xyz", t)},
        "rotation": {k: float(v) for k, v in zip("xyzw", q)},
    }
    doc.update(extra)
    return doc


def save_transform(path: str | os.PathLike, parent: str, child: str, T: np.ndarray, **extra) -> None:
    """Write a transform YAML file (atomically)."""
    _write_yaml(Path(path), transform_dict(parent, child, T, **extra))


def load_camera(intrinsics_path, extrinsics_path, name: str | None = None) -> CameraModel:
    """A CameraModel from a camera_info YAML and a base-to-camera transform YAML."""
    camera_name, intrinsics = load_camera_info(intrinsics_path)
    parent, child, T = load_transform(extrinsics_path)
    return CameraModel(name or camera_name, intrinsics, T, frame_id=child, base_frame=parent)


def _write_yaml(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))

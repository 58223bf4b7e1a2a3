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

from robot_rewards.core import transforms
from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.paths import resolve


class CalibrationFileError(ValueError):
    """A calibration file that is missing fields or holds inconsistent values."""


def _matrix(doc: dict, key: str, rows: int, cols: int, path) -> np.ndarray:
    try:
        entry = doc[key]
        data = np.asarray(entry["data"], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise CalibrationFileError(f"{path}: missing '{key}' with a 'data' list") from exc
    if data.size != rows * cols:
        raise CalibrationFileError(f"{path}: '{key}' needs {rows * cols} values, has {data.size}")
    return data.reshape(rows, cols)


def load_camera_info(path: str | os.PathLike) -> tuple[str, CameraIntrinsics]:
    """Camera name and intrinsics from a ROS camera_info YAML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera_info file not found: {path}")
    doc = yaml.safe_load(path.read_text()) or {}
    for key in ("image_width", "image_height"):
        if key not in doc:
            raise CalibrationFileError(f"{path}: missing '{key}'")
    K = _matrix(doc, "camera_matrix", 3, 3, path)
    dist = doc.get("distortion_coefficients", {}).get("data", [0.0] * 5)
    intrinsics = CameraIntrinsics(
        width=int(doc["image_width"]),
        height=int(doc["image_height"]),
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        distortion=tuple(float(d) for d in dist),
        distortion_model=str(doc.get("distortion_model", "plumb_bob")),
    )
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
    """(parent_frame, child_frame, parent_T_child) from a transform YAML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transform file not found: {path}")
    doc = yaml.safe_load(path.read_text()) or {}
    try:
        t = doc["translation"]
        q = doc["rotation"]
        translation = [float(t[k]) for k in "xyz"]
        quat = np.array([float(q[k]) for k in "xyzw"])
        parent, child = str(doc["parent_frame"]), str(doc["child_frame"])
    except (KeyError, TypeError) as exc:
        raise CalibrationFileError(
            f"{path}: needs parent_frame, child_frame, translation {{x,y,z}}, rotation {{x,y,z,w}}"
        ) from exc
    if not np.isclose(np.linalg.norm(quat), 1.0, atol=1e-3):
        raise CalibrationFileError(f"{path}: rotation quaternion is not unit length ({quat})")
    return parent, child, transforms.make_transform(quat, translation)


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

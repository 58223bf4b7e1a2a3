"""Hand-eye calibration (cv2.calibrateHandEye) for a fixed camera or a wrist camera.

Inputs are robot poses base_T_ee (from forward kinematics / tf) and board poses
camera_T_board (from board detections and the camera intrinsics), one pair per view.

- eye_to_hand: the camera is fixed and the board rides on the gripper. Result: base_T_camera.
- eye_in_hand: the camera rides on the gripper and the board is fixed. Result: ee_T_camera.

OpenCV solves AX = XB for the eye-in-hand case; the eye-to-hand case is the same problem with
the robot poses inverted (ee_T_base instead of base_T_ee), which then returns base_T_camera.
The robot motions are checked first: pure translations, or rotations about a single axis,
leave the transform undetermined and raise DegenerateMotionError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
import yaml

from robot_rewards.calibration.boards import Detection
from robot_rewards.calibration.camera_info import pose_fields, save_transform, transform_dict
from robot_rewards.calibration.errors import (
    DegenerateMotionError,
    NotEnoughViewsError,
    PoseFileError,
)
from robot_rewards.calibration.yaml_io import read_yaml_mapping
from robot_rewards.core import transforms
from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.camera import CameraIntrinsics

HANDEYE_METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
SETUPS = ("eye_to_hand", "eye_in_hand")
# Frame names where nothing names them (REP 105 base, ROS-Industrial flange): calibration does
# not know the arm, so the commands pass the arm description's frames (robots.description).
BASE_FRAME = "base_link"
EE_FRAME = "tool0"


def _method(method: str) -> int:
    key = str(method).lower()
    if key not in HANDEYE_METHODS:
        raise ValueError(f"unknown hand-eye method '{method}' (use one of {sorted(HANDEYE_METHODS)})")
    return HANDEYE_METHODS[key]


# --------------------------------------------------------------------------------------------
# Board poses
# --------------------------------------------------------------------------------------------


def estimate_board_pose(detection: Detection, intrinsics: CameraIntrinsics) -> tuple[np.ndarray, float]:
    """camera_T_board (4x4) of a detection and its RMS reprojection error in pixels.

    IPPE (made for planar targets) gives the initial pose, Levenberg-Marquardt refines it.
    """
    obj = detection.object_points.astype(np.float64)
    img = detection.image_points.astype(np.float64).reshape(-1, 1, 2)
    K = intrinsics.K
    dist = np.asarray(intrinsics.distortion, dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise NotEnoughViewsError("solvePnP failed on a board detection")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img.reshape(-1, 2)) ** 2, axis=1))))
    return transforms.make_transform(cv2.Rodrigues(rvec)[0], tvec.ravel()), err


# --------------------------------------------------------------------------------------------
# Motion checks
# --------------------------------------------------------------------------------------------


def _rotvec(R: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(R, dtype=np.float64))[0].ravel()


def motion_diversity(gripper_poses: Sequence[np.ndarray], min_angle_deg: float = 2.0) -> dict:
    """How much the poses (as passed to OpenCV) rotate relative to each other.

    Returns the largest relative rotation (deg) and the largest angle (deg) between the axes
    of relative rotations bigger than `min_angle_deg` (0 when they all share one axis).
    """
    Rs = [np.asarray(T)[:3, :3] for T in gripper_poses]
    axes, max_angle = [], 0.0
    for i in range(len(Rs)):
        for j in range(i + 1, len(Rs)):
            v = _rotvec(Rs[i].T @ Rs[j])
            a = np.degrees(np.linalg.norm(v))
            max_angle = max(max_angle, a)
            if a > min_angle_deg:
                axes.append(v / np.linalg.norm(v))
    max_axis = 0.0
    if len(axes) >= 2:
        A = np.asarray(axes)
        cos = np.clip(np.abs(A @ A.T), 0.0, 1.0)  # an axis and its opposite are the same axis
        max_axis = float(np.degrees(np.arccos(cos.min())))
    return {"max_rotation_deg": float(max_angle), "max_axis_angle_deg": max_axis}


def check_motions(gripper_poses: Sequence[np.ndarray], min_rotation_deg: float = 5.0,
                  min_axis_angle_deg: float = 10.0) -> dict:
    """Raise DegenerateMotionError unless the poses rotate enough about >= 2 distinct axes."""
    d = motion_diversity(gripper_poses)
    if d["max_rotation_deg"] < min_rotation_deg:
        raise DegenerateMotionError(
            f"the robot poses differ by at most {d['max_rotation_deg']:.2f} deg of rotation "
            f"(need > {min_rotation_deg} deg): pure translations cannot determine the hand-eye "
            "rotation; rotate the gripper about at least two different axes between views"
        )
    if d["max_axis_angle_deg"] < min_axis_angle_deg:
        raise DegenerateMotionError(
            f"all robot rotations are about (nearly) one axis (axes within "
            f"{d['max_axis_angle_deg']:.2f} deg of each other, need > {min_axis_angle_deg} deg): "
            "the translation along that axis is undetermined; rotate about a second axis too"
        )
    return d


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


@dataclass
class HandEyeResult:
    """The hand-eye transform (`parent_T_child`) and how consistent the data are with it.

    eye_to_hand: parent = base frame, child = camera frame, transform = base_T_camera,
    target = ee_T_board. eye_in_hand: parent = ee frame, transform = ee_T_camera,
    target = base_T_board. Residuals: spread (RMS) of the target pose implied by each view.
    """

    setup: str
    method: str
    transform: np.ndarray
    parent_frame: str
    child_frame: str
    target: np.ndarray
    residual_translation_mm: float
    residual_rotation_deg: float
    n_poses: int
    motion: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        q = transforms.matrix_to_quat(self.transform[:3, :3])
        return {
            "setup": self.setup,
            "method": self.method,
            "parent_frame": self.parent_frame,
            "child_frame": self.child_frame,
            "translation": self.transform[:3, 3].tolist(),
            "rotation_xyzw": q.tolist(),
            "residual_translation_mm": self.residual_translation_mm,
            "residual_rotation_deg": self.residual_rotation_deg,
            "n_poses": self.n_poses,
            **{f"motion_{k}": v for k, v in self.motion.items()},
        }

    def to_dict(self) -> dict:
        """The transform YAML document (translation + quaternion + frames, and the fit quality)."""
        return transform_dict(
            self.parent_frame, self.child_frame, self.transform,
            calibration={
                "setup": self.setup, "method": self.method, "n_poses": self.n_poses,
                "residual_translation_mm": round(self.residual_translation_mm, 4),
                "residual_rotation_deg": round(self.residual_rotation_deg, 5),
            },
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the transform YAML (same format as calibration/*_extrinsics.yaml)."""
        doc = self.to_dict()
        extra = {k: v for k, v in doc.items() if k not in ("parent_frame", "child_frame", "translation", "rotation")}
        save_transform(path, self.parent_frame, self.child_frame, self.transform, **extra)


def _mean_pose(Ts: Sequence[np.ndarray]) -> np.ndarray:
    """Chordal L2 mean of rigid transforms (rotation by SVD projection, translation by mean)."""
    M = sum(np.asarray(T)[:3, :3] for T in Ts)
    U, _, Vt = np.linalg.svd(M)
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    return transforms.make_transform(R, np.mean([np.asarray(T)[:3, 3] for T in Ts], axis=0))


def calibrate_handeye(
    robot_poses: Sequence[np.ndarray],
    board_poses: Sequence[np.ndarray],
    setup: str = "eye_to_hand",
    method: str = "park",
    base_frame: str = BASE_FRAME,
    ee_frame: str = EE_FRAME,
    camera_frame: str = "camera_color_optical_frame",
    min_poses: int = 3,
    min_rotation_deg: float = 5.0,
    min_axis_angle_deg: float = 10.0,
) -> HandEyeResult:
    """Hand-eye transform from paired robot poses (base_T_ee) and board poses (camera_T_board).

    `method` is one of tsai, park, horaud, andreff, daniilidis (passed to OpenCV by keyword).
    Raises NotEnoughViewsError (fewer than `min_poses` pairs, or unequal counts) and
    DegenerateMotionError (see `check_motions`).
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown hand-eye setup '{setup}' (use {SETUPS[0]} or {SETUPS[1]})")
    flag = _method(method)
    if len(robot_poses) != len(board_poses):
        raise NotEnoughViewsError(f"{len(robot_poses)} robot poses but {len(board_poses)} board poses")
    if len(robot_poses) < min_poses:
        raise NotEnoughViewsError(f"hand-eye calibration needs at least {min_poses} poses, got {len(robot_poses)}")
    robot = [np.asarray(T, dtype=np.float64) for T in robot_poses]
    board = [np.asarray(T, dtype=np.float64) for T in board_poses]
    # eye-to-hand is eye-in-hand with the roles of base and gripper swapped.
    gripper = robot if setup == "eye_in_hand" else [transforms.invert(T) for T in robot]
    motion = check_motions(gripper, min_rotation_deg, min_axis_angle_deg)
    R, t = cv2.calibrateHandEye(
        [T[:3, :3] for T in gripper], [T[:3, 3].reshape(3, 1) for T in gripper],
        [T[:3, :3] for T in board], [T[:3, 3].reshape(3, 1) for T in board],
        method=flag,
    )
    X = transforms.make_transform(R, t.ravel())
    if not np.all(np.isfinite(X)):
        raise DegenerateMotionError(f"hand-eye method '{method}' returned a non-finite transform")
    # What each view says about the other unknown (board on the gripper, or board in the world).
    if setup == "eye_to_hand":
        implied = [transforms.invert(Tr) @ X @ Tb for Tr, Tb in zip(robot, board)]
        parent = base_frame
    else:
        implied = [Tr @ X @ Tb for Tr, Tb in zip(robot, board)]
        parent = ee_frame
    mean = _mean_pose(implied)
    dt = [np.linalg.norm(T[:3, 3] - mean[:3, 3]) for T in implied]
    dr = [transforms.rotation_angle_deg(T[:3, :3], mean[:3, :3]) for T in implied]
    return HandEyeResult(
        setup=setup, method=str(method).lower(), transform=X, parent_frame=parent,
        child_frame=camera_frame, target=mean,
        residual_translation_mm=float(np.sqrt(np.mean(np.square(dt))) * 1000.0),
        residual_rotation_deg=float(np.sqrt(np.mean(np.square(dr)))),
        n_poses=len(robot), motion=motion,
    )


def calibrate_handeye_all(robot_poses, board_poses, setup: str = "eye_to_hand", **kwargs) -> dict[str, HandEyeResult]:
    """`calibrate_handeye` with every OpenCV method: {method: result}."""
    return {m: calibrate_handeye(robot_poses, board_poses, setup, method=m, **kwargs) for m in HANDEYE_METHODS}


def pose_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(translation error in mm, rotation error in degrees) between two poses."""
    return (
        float(np.linalg.norm(np.asarray(T_est)[:3, 3] - np.asarray(T_true)[:3, 3]) * 1000.0),
        transforms.rotation_angle_deg(np.asarray(T_est)[:3, :3], np.asarray(T_true)[:3, :3]),
    )


# --------------------------------------------------------------------------------------------
# Robot pose files
# --------------------------------------------------------------------------------------------


@dataclass
class RobotPoses:
    """base_T_ee per image name, with the frame names they were recorded in."""

    poses: dict[str, np.ndarray]
    base_frame: str = BASE_FRAME
    ee_frame: str = EE_FRAME


def save_robot_poses(path: str | os.PathLike, poses: RobotPoses) -> None:
    """Write a robot-pose YAML: frames and one {image, translation, rotation} entry per view."""
    entries = []
    for name, T in poses.poses.items():
        d = transform_dict(poses.base_frame, poses.ee_frame, T)
        entries.append({"image": name, "translation": d["translation"], "rotation": d["rotation"]})
    doc = {"base_frame": poses.base_frame, "ee_frame": poses.ee_frame, "poses": entries}
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def load_robot_poses(path: str | os.PathLike, base_frame: str = BASE_FRAME, ee_frame: str = EE_FRAME) -> RobotPoses:
    """Read a robot-pose YAML written by `save_robot_poses` (or by hand / from tf); `base_frame`
    and `ee_frame` name the frames where the file does not."""
    path = Path(path)
    doc = read_yaml_mapping(path, PoseFileError, "robot pose")
    if not isinstance(doc.get("poses"), list) or not doc["poses"]:
        raise PoseFileError(f"{path}: needs a non-empty 'poses' list")
    poses = {}
    for k, e in enumerate(doc["poses"]):
        if not (isinstance(e, dict) and "image" in e and _has_axes(e.get("translation"), "xyz")
                and _has_axes(e.get("rotation"), "xyzw")):
            raise PoseFileError(
                f"{path}: pose {k} needs image, translation {{x,y,z}} and rotation {{x,y,z,w}}"
            )
        name = str(e["image"])
        t, q = pose_fields(e, path, f"pose {k} ({name}): ", PoseFileError)
        if name in poses:
            raise PoseFileError(f"{path}: image {name} has two poses")
        poses[name] = transforms.make_transform(q, t)
    return RobotPoses(poses, str(doc.get("base_frame", base_frame)), str(doc.get("ee_frame", ee_frame)))


def _has_axes(part, axes: str) -> bool:
    return isinstance(part, dict) and all(a in part for a in axes)


def pair_views(detections: Mapping[str, Detection], robot: RobotPoses, intrinsics: CameraIntrinsics,
               max_reprojection_px: float = 2.0):
    """Match board detections to robot poses by image name and estimate the board poses.

    Returns (names, robot poses, board poses, {name: why rejected}). Views whose PnP
    reprojection error exceeds `max_reprojection_px` are rejected. Images without a pose are
    a PoseFileError (the pairing would silently shift otherwise).
    """
    missing = sorted(set(detections) - set(robot.poses))
    if missing:
        raise PoseFileError(f"no robot pose for image(s): {', '.join(missing)}")
    names, Tr, Tb, rejected = [], [], [], {}
    for name in sorted(detections):
        T, err = estimate_board_pose(detections[name], intrinsics)
        if err > max_reprojection_px:
            rejected[name] = f"board pose reprojection error {err:.2f} px"
            continue
        names.append(name)
        Tr.append(robot.poses[name])
        Tb.append(T)
    return names, Tr, Tb, rejected

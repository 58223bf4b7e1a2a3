"""The calibration commands behind `robot-rewards calibrate {intrinsics,handeye,sim}`.

Each command computes everything first and writes its files (camera_info YAML, hand-eye
YAML, metrics.json, ...) only when it succeeded: a failing run leaves `output_dir` as it was.
Each prints a readable table and returns its metrics dict.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping

import cv2
import numpy as np
import yaml

from robot_rewards.calibration.boards import SIM_BOARD, BoardSpec, board_from_any
from robot_rewards.calibration.camera_info import camera_info_dict, load_camera_info, transform_dict
from robot_rewards.calibration.errors import BoardNotFoundError, NotEnoughViewsError
from robot_rewards.calibration.handeye import (
    HANDEYE_METHODS,
    HandEyeResult,
    RobotPoses,
    calibrate_handeye,
    load_robot_poses,
    pair_views,
    pose_error,
    save_robot_poses,
)
from robot_rewards.calibration.intrinsics import (
    IntrinsicsResult,
    calibrate_intrinsics,
    check_image_sizes,
    detect_all,
    load_images,
)
from robot_rewards.core.camera import CameraIntrinsics
from robot_rewards.core.reporting import format_table
from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.sim import calibration_rig as sim_rig
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.world import World

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------------


def report(text: str) -> None:
    """Print `text` and write it to the run's log file (hydra's `<command>.log`), where one is
    configured: the log then holds what the run printed, without a second copy on the console."""
    print(text)
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, text, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def remove_failed_run_dir(output_dir: str | os.PathLike, job_name: str) -> bool:
    """Remove `output_dir` when it holds nothing but what hydra put there for this run (`.hydra/`
    and `<job_name>.log`): a failed run leaves no folder behind. Returns whether it was removed."""
    out = Path(output_dir)
    if not out.is_dir():
        return False
    entries = {p.name for p in out.iterdir()}
    if not entries <= {".hydra", f"{job_name}.log"}:
        return False
    shutil.rmtree(out, ignore_errors=True)
    return not out.exists()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _yaml_text(doc: dict) -> str:
    return yaml.safe_dump(_jsonable(doc), sort_keys=False, default_flow_style=None)


def commit_outputs(output_dir: str | os.PathLike, files: Mapping[str, Callable[[Path], None]]) -> list[Path]:
    """Write every file into a scratch folder first, then move them into `output_dir`.

    `files` maps a relative path to a writer taking the scratch path. If any writer fails,
    nothing reaches `output_dir`.
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".calib_", dir=output_dir.parent))
    try:
        for rel, writer in files.items():
            target = scratch / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            writer(target)
        written = []
        output_dir.mkdir(parents=True, exist_ok=True)
        for rel in files:
            dest = output_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / rel, dest)
            written.append(dest)
        return written
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _text_writer(text: str):
    return lambda path: path.write_text(text)


def _image_writer(bgr: np.ndarray):
    def write(path: Path):
        if not cv2.imwrite(str(path), bgr):
            raise OSError(f"could not write image {path}")

    return write


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def intrinsics_table(result: IntrinsicsResult, truth: CameraIntrinsics | None = None) -> str:
    i = result.intrinsics
    rows = []
    for key in ("fx", "fy", "cx", "cy"):
        row = [key, getattr(i, key), result.std_intrinsics.get(key, float("nan"))]
        if truth is not None:
            t = getattr(truth, key)
            row += [t, 100.0 * abs(getattr(i, key) - t) / abs(t)]
        rows.append(row)
    headers = ["param", "value", "std"] + (["true", "error %"] if truth is not None else [])
    lines = [format_table(headers, rows)]
    lines.append(f"distortion: {', '.join(f'{d:.4g}' for d in i.distortion)}")
    lines.append(f"RMS reprojection error: {result.rms:.4f} px over {len(result.per_view_errors)} views")
    views = [[n, e, result.n_corners[n]] for n, e in result.per_view_errors.items()]
    lines.append(format_table(["view", "error px", "corners"], views))
    if result.rejected:
        lines.append("rejected views:")
        lines += [f"  {n}: {why}" for n, why in result.rejected.items()]
    return "\n".join(lines)


def handeye_table(results: Mapping[str, HandEyeResult], truth: np.ndarray | None = None) -> str:
    rows = []
    for m, r in results.items():
        t = r.transform[:3, 3]
        row = [m, f"{t[0]:.4f} {t[1]:.4f} {t[2]:.4f}", r.residual_translation_mm, r.residual_rotation_deg]
        if truth is not None:
            row += list(pose_error(r.transform, truth))
        rows.append(row)
    headers = ["method", "translation m", "resid mm", "resid deg"] + (["error mm", "error deg"] if truth is not None else [])
    return format_table(headers, rows)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def run_intrinsics(
    images_dir: str | os.PathLike,
    board: BoardSpec | str | os.PathLike,
    output_dir: str | os.PathLike,
    camera_name: str = "camera",
    min_views: int = 8,
    max_view_error: float = 1.0,
    radial_coeffs: int = 2,
    tangential: bool = True,
    strict: bool = False,
    quiet: bool = False,
    corner_refinement: str = "cornersubpix",
) -> dict:
    """Calibrate intrinsics from the images in `images_dir`; write
    `<output_dir>/<camera_name>.yaml` (ROS camera_info) and `metrics.json`.

    `board`: a BoardSpec, a board YAML path, or a shipped board name (calibration/boards/).
    `radial_coeffs=3` gives the 5-coefficient model; `corner_refinement`: see BoardSpec.detect.
    """
    board = board_from_any(board)
    images = load_images(images_dir)
    result = calibrate_intrinsics(images, board, min_views=min_views, max_view_error=max_view_error,
                                  radial_coeffs=radial_coeffs, tangential=tangential, strict=strict,
                                  corner_refinement=corner_refinement)
    metrics = {
        "command": "calibrate intrinsics",
        "images_dir": str(images_dir),
        "board": asdict(board),
        "camera_name": camera_name,
        "corner_refinement": corner_refinement,
        "radial_coeffs": radial_coeffs,
        **result.metrics(),
    }
    commit_outputs(output_dir, {
        f"{camera_name}.yaml": _text_writer(_yaml_text(camera_info_dict(camera_name, result.intrinsics))),
        "metrics.json": _text_writer(json.dumps(_jsonable(metrics), indent=2)),
    })
    if not quiet:
        report(f"intrinsics of '{camera_name}' from {images_dir} ({board.name})\n{intrinsics_table(result)}\n"
               f"wrote {Path(output_dir) / (camera_name + '.yaml')}")
    return metrics


def _handeye_from_images(images, robot: RobotPoses, board: BoardSpec, intrinsics: CameraIntrinsics,
                         setup: str, methods, camera_frame: str, min_poses: int):
    check_image_sizes(images, (intrinsics.width, intrinsics.height))
    detections, missing = detect_all(images, board)
    if not detections:
        raise BoardNotFoundError(missing, f"{board.kind} {board.squares_x}x{board.squares_y}")
    names, Tr, Tb, rejected = pair_views(detections, robot, intrinsics)
    rejected.update({n: "board not found" for n in missing})
    results = {
        m: calibrate_handeye(Tr, Tb, setup, method=m, base_frame=robot.base_frame, ee_frame=robot.ee_frame,
                             camera_frame=camera_frame, min_poses=min_poses)
        for m in methods
    }
    return results, names, rejected


def run_handeye(
    images_dir: str | os.PathLike,
    poses: str | os.PathLike,
    board: BoardSpec | str | os.PathLike,
    intrinsics: str | os.PathLike,
    output_dir: str | os.PathLike,
    setup: str = "eye_to_hand",
    method: str = "park",
    camera_frame: str | None = None,
    compare_methods: bool = True,
    min_poses: int = 3,
    quiet: bool = False,
    arm: str = DEFAULT_ARM,
) -> dict:
    """Hand-eye calibration from images, a robot-pose YAML (base_T_ee per image name) and a
    camera_info YAML; writes `<output_dir>/handeye_<setup>.yaml` (translation + quaternion +
    frames, the result of `method`) and `metrics.json` (every method when `compare_methods`).
    Poses files that name no frames are in `arm`'s base and hand frames.
    """
    if method.lower() not in HANDEYE_METHODS:
        raise ValueError(f"unknown hand-eye method '{method}' (use one of {sorted(HANDEYE_METHODS)})")
    board = board_from_any(board)
    cam_name, intr = load_camera_info(intrinsics)
    images = load_images(images_dir)
    frames = get_arm(arm)
    robot = load_robot_poses(poses, frames.base_frame, frames.hand_link)
    camera_frame = camera_frame or f"{cam_name}_color_optical_frame"
    methods = list(HANDEYE_METHODS) if compare_methods else [method.lower()]
    if method.lower() not in methods:
        methods.append(method.lower())
    results, names, rejected = _handeye_from_images(images, robot, board, intr, setup, methods, camera_frame, min_poses)
    chosen = results[method.lower()]
    metrics = {
        "command": "calibrate handeye",
        "setup": setup,
        "method": method.lower(),
        "images_dir": str(images_dir),
        "views_used": names,
        "rejected": rejected,
        "result": chosen.metrics(),
        "methods": {m: r.metrics() for m, r in results.items()},
    }
    out_name = f"handeye_{setup}.yaml"
    commit_outputs(output_dir, {
        out_name: _text_writer(_yaml_text(chosen.to_dict())),
        "metrics.json": _text_writer(json.dumps(_jsonable(metrics), indent=2)),
    })
    if not quiet:
        lines = [f"hand-eye ({setup}) from {len(names)} views; result: {method}", handeye_table(results)]
        if rejected:
            lines.append("rejected views:")
            lines += [f"  {n}: {why}" for n, why in rejected.items()]
        lines.append(f"wrote {Path(output_dir) / out_name}")
        report("\n".join(lines))
    return metrics


def run_sim_calibration(
    output_dir: str | os.PathLike,
    seed: int = 0,
    n_poses: int = 20,
    method: str = "park",
    eye_in_hand: bool = True,
    supersample: int = 2,
    board: BoardSpec | str | os.PathLike | None = None,
    radial_coeffs: int = 2,
    tangential: bool = True,
    save_images: bool = True,
    quiet: bool = False,
) -> dict:
    """Render a ChArUco board in PyBullet, move it with the arm through `n_poses` poses in
    front of the fixed front camera (eye-to-hand), and optionally view it with a wrist camera
    (eye-in-hand); calibrate intrinsics and hand-eye (every method) and compare with the truth.

    Writes, per camera, the views (`<cam>/images/*.png`, `<cam>/robot_poses.yaml`: the same
    inputs `run_intrinsics`/`run_handeye` take), the calibrated camera_info and hand-eye
    YAMLs, the true ones (`*_truth.yaml`), and `metrics.json` with the errors.
    """
    board = SIM_BOARD if board is None else board_from_any(board)
    if n_poses < 4:
        raise NotEnoughViewsError(f"the simulated calibration needs at least 4 poses (12+ for the "
                                  f"accuracy targets), got n_poses={n_poses}")
    if method.lower() not in HANDEYE_METHODS:
        raise ValueError(f"unknown hand-eye method '{method}' (use one of {sorted(HANDEYE_METHODS)})")
    t0 = time.perf_counter()
    cfg = sim_rig.SimRigConfig(n_poses=n_poses, seed=seed, board=board, supersample=supersample)
    rng = np.random.default_rng(seed)
    world = World(SimConfig())
    arm = world.arm.description
    scratch = sim_rig.make_scratch_dir()
    sets = {}
    try:
        board_body = sim_rig.SimBoard(world.client, board, scratch.name)
        front = world.camera
        sets[front.name] = ("eye_to_hand", front.intrinsics, sim_rig.collect_eye_to_hand(world, board_body, cfg, rng),
                            front.base_T_camera, front.frame_id, front.base_frame)
        if eye_in_hand:
            sets["wrist"] = ("eye_in_hand", front.intrinsics,
                             sim_rig.collect_eye_in_hand(world, board_body, cfg, rng, front.intrinsics),
                             sim_rig.WRIST_EE_T_CAMERA, "wrist_camera_color_optical_frame", arm.ee_link)
    finally:
        world.close()
        scratch.cleanup()
    t_render = time.perf_counter() - t0

    files: dict[str, Callable[[Path], None]] = {}
    metrics: dict = {"command": "calibrate sim", "seed": seed, "n_poses": n_poses, "method": method.lower(),
                     "board": asdict(board), "supersample": supersample, "cameras": {}}
    reports = []
    ee_frame = arm.ee_link  # the point between the fingertips
    for cam_name, (setup, truth_intr, views, truth_T, frame_id, _truth_parent) in sets.items():
        images = {v.name: np.ascontiguousarray(v.rgb[..., ::-1]) for v in views}
        robot = RobotPoses({v.name: v.base_T_ee for v in views}, base_frame=arm.base_frame, ee_frame=ee_frame)
        intr_result = calibrate_intrinsics(images, board, min_views=min(8, n_poses),
                                           radial_coeffs=radial_coeffs, tangential=tangential)
        calibrated = intr_result.intrinsics
        he, used, rejected = _handeye_from_images(images, robot, board, calibrated, setup, list(HANDEYE_METHODS),
                                                  frame_id, 3)
        # The same with the true intrinsics isolates the hand-eye step from intrinsics errors.
        he_true_k, _, _ = _handeye_from_images(images, robot, board, truth_intr, setup, list(HANDEYE_METHODS),
                                               frame_id, 3)
        intr_err = {k: 100.0 * abs(getattr(calibrated, k) - getattr(truth_intr, k)) / getattr(truth_intr, k)
                    for k in ("fx", "fy", "cx", "cy")}
        he_err = {m: dict(zip(("translation_mm", "rotation_deg"), pose_error(r.transform, truth_T))) for m, r in he.items()}
        he_err_true_k = {m: dict(zip(("translation_mm", "rotation_deg"), pose_error(r.transform, truth_T)))
                         for m, r in he_true_k.items()}
        metrics["cameras"][cam_name] = {
            "setup": setup,
            "n_views": len(views),
            "intrinsics": intr_result.metrics(),
            "intrinsics_error_percent": intr_err,
            "rms_px": intr_result.rms,
            "handeye": {m: r.metrics() for m, r in he.items()},
            "handeye_error": he_err,
            "handeye_error_true_intrinsics": he_err_true_k,
            "handeye_rejected": rejected,
        }
        if save_images:
            for name, img in images.items():
                files[f"{cam_name}/images/{name}"] = _image_writer(img)
        poses_doc = robot

        def write_poses(path, poses_doc=poses_doc):
            save_robot_poses(path, poses_doc)

        files[f"{cam_name}/robot_poses.yaml"] = write_poses
        files[f"{cam_name}/camera_info.yaml"] = _text_writer(_yaml_text(camera_info_dict(cam_name, calibrated)))
        files[f"{cam_name}/camera_info_truth.yaml"] = _text_writer(_yaml_text(camera_info_dict(cam_name, truth_intr)))
        files[f"{cam_name}/handeye_{setup}.yaml"] = _text_writer(_yaml_text(he[method.lower()].to_dict()))
        parent = arm.base_frame if setup == "eye_to_hand" else ee_frame
        files[f"{cam_name}/handeye_{setup}_truth.yaml"] = _text_writer(_yaml_text(transform_dict(parent, frame_id, truth_T)))
        reports.append(
            f"\n== {cam_name} camera ({setup}), {len(views)} views ==\n"
            + intrinsics_table(intr_result, truth_intr)
            + "\n\nhand-eye with the calibrated intrinsics (errors vs ground truth):\n"
            + handeye_table(he, truth_T)
            + "\n\nhand-eye with the true intrinsics:\n"
            + handeye_table(he_true_k, truth_T)
        )
    metrics["seconds"] = {"render_and_move": t_render, "total": time.perf_counter() - t0}
    files["metrics.json"] = _text_writer(json.dumps(_jsonable(metrics), indent=2))
    commit_outputs(output_dir, files)
    if not quiet:
        report("\n".join([f"simulated calibration (seed {seed}, {n_poses} poses, board {board.name})", *reports,
                          f"\nwrote {output_dir} in {metrics['seconds']['total']:.1f} s"]))
    return metrics


# -- CLI adapters: the command configs are the keyword arguments above ----------------------
def _cleaning_up(cfg, job_name: str, run):
    """`run()`, removing the output folder hydra made for it when it fails."""
    try:
        return run()
    except BaseException:
        remove_failed_run_dir(cfg.output_dir, job_name)
        raise


def intrinsics_command(cfg) -> dict:
    """`robot-rewards calibrate intrinsics` (CalibrateIntrinsicsConfig)."""
    return _cleaning_up(cfg, "calibrate-intrinsics", lambda: run_intrinsics(
        cfg.images, cfg.board, cfg.output_dir, cfg.camera_name, cfg.min_views, cfg.max_view_error,
        cfg.radial_coeffs, cfg.tangential, cfg.strict, corner_refinement=cfg.corner_refinement))


def handeye_command(cfg) -> dict:
    """`robot-rewards calibrate handeye` (CalibrateHandeyeConfig)."""
    return _cleaning_up(cfg, "calibrate-handeye", lambda: run_handeye(
        cfg.images, cfg.poses, cfg.board, cfg.intrinsics, cfg.output_dir, cfg.setup, cfg.method,
        cfg.camera_frame, cfg.compare_methods, cfg.min_poses))


def sim_command(cfg) -> dict:
    """`robot-rewards calibrate sim` (CalibrateSimConfig)."""
    return _cleaning_up(cfg, "calibrate-sim", lambda: run_sim_calibration(
        cfg.output_dir, cfg.seed, cfg.n_poses, cfg.method, cfg.eye_in_hand, cfg.supersample, cfg.board,
        cfg.radial_coeffs, cfg.tangential, cfg.save_images))

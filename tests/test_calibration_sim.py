"""Calibration against the simulator's ground truth: the ChArUco texture in PyBullet, and the
full `calibrate sim` run (intrinsics and hand-eye for a fixed and a wrist camera)."""

import json

import cv2
import numpy as np
import pytest

from robot_rewards.calibration.boards import SIM_BOARD
from robot_rewards.calibration.camera_info import load_camera_info, load_transform
from robot_rewards.calibration.handeye import HANDEYE_METHODS, estimate_board_pose, pose_error
from robot_rewards.core import transforms
from robot_rewards.sim.calibration_rig import SimBoard, make_scratch_dir, render_rgb
from robot_rewards.sim.world import World


def test_board_texture_renders_where_the_true_board_pose_projects_it():
    """The UV mapping of the board mesh: detected corners vs projected true corners."""
    world = World()
    scratch = make_scratch_dir()
    try:
        board = SimBoard(world.client, SIM_BOARD, scratch.name)
        cam = world.camera
        Tc = cam.base_T_camera
        for k, (tilt, roll, depth) in enumerate([(25, 10, 0.6), (-35, -20, 0.7), (40, 150, 0.8)]):
            centre = transforms.apply(Tc, np.array([0.03 * k - 0.03, 0.02, depth]))
            R = transforms.look_at(Tc[:3, 3], centre)[:3, :3]
            R = R @ cv2.Rodrigues(np.radians([tilt, tilt / 2, 0.0]))[0] @ cv2.Rodrigues(np.radians([0, 0, roll]))[0]
            base_T_board = transforms.make_transform(R, centre - R @ SIM_BOARD.centre())
            board.set_pose(base_T_board)
            det = SIM_BOARD.detect(render_rgb(cam, world.client, supersample=2))
            assert det is not None and len(det) >= 30
            truth_uv = cam.project(transforms.apply(base_T_board, det.object_points.astype(np.float64)))
            err = np.linalg.norm(truth_uv - det.image_points, axis=1)
            assert err.mean() < 0.25 and err.max() < 1.0, (k, err.mean(), err.max())
            # ids index the right corners (a flipped or mirrored texture would fail here)
            assert np.abs(np.mean(truth_uv - det.image_points, axis=0)).max() < 0.1
            T, rms = estimate_board_pose(det, cam.intrinsics)
            t_mm, r_deg = pose_error(T, transforms.invert(Tc) @ base_T_board)
            assert t_mm < 3.0 and r_deg < 0.5 and rms < 0.3
    finally:
        world.close()
        scratch.cleanup()


@pytest.mark.slow
def test_calibrate_sim_recovers_intrinsics_and_handeye(tmp_path):
    """Acceptance numbers: intrinsics within 1 % and RMS < 0.5 px; hand-eye within 5 mm and
    0.5 deg of the true camera pose, for every OpenCV method, eye-to-hand and eye-in-hand."""
    from robot_rewards.commands.calibrate import run_sim_calibration

    out = tmp_path / "sim"
    metrics = run_sim_calibration(out, seed=0, n_poses=20, quiet=True)
    assert set(metrics["cameras"]) == {"front", "wrist"}
    for name, cam in metrics["cameras"].items():
        assert cam["n_views"] == 20 and cam["intrinsics"]["n_views_used"] >= 18
        for key, err in cam["intrinsics_error_percent"].items():
            assert err < 1.0, f"{name} {key}: {err:.3f} %"
        assert cam["rms_px"] < 0.5
        assert set(cam["handeye_error"]) == set(HANDEYE_METHODS)
        for method, e in cam["handeye_error"].items():
            assert e["translation_mm"] < 5.0 and e["rotation_deg"] < 0.5, (name, method, e)
    # the files a user gets, in ROS formats, agree with the metrics
    _, intr = load_camera_info(out / "front" / "camera_info.yaml")
    assert intr.fx == pytest.approx(metrics["cameras"]["front"]["intrinsics"]["fx"])
    parent, child, T = load_transform(out / "front" / "handeye_eye_to_hand.yaml")
    _, _, truth = load_transform(out / "front" / "handeye_eye_to_hand_truth.yaml")
    assert parent == "panda_link0" and child.endswith("optical_frame")
    assert pose_error(T, truth)[0] < 5.0
    parent, _, _ = load_transform(out / "wrist" / "handeye_eye_in_hand.yaml")
    assert parent == "panda_grasptarget"
    assert len(list((out / "front" / "images").glob("*.png"))) == 20
    assert json.loads((out / "metrics.json").read_text())["seed"] == 0

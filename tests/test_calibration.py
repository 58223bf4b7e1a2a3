"""Calibration: board files, intrinsics on generated photographic-style image sets (chessboard
and ChArUco), hand-eye with every OpenCV method, ROS-format YAML round trips, and errors on
bad input (nothing written on failure)."""

import json

import cv2
import numpy as np
import pytest
import yaml

from robot_rewards.calibration.boards import SIM_BOARD, BoardError, BoardSpec, load_board, save_board
from robot_rewards.calibration.camera_info import load_camera_info, load_transform, save_camera_info
from robot_rewards.calibration.errors import (
    BoardNotFoundError,
    DegenerateMotionError,
    ImageLoadError,
    ImageSizeError,
    NotEnoughViewsError,
    PoseFileError,
)
from robot_rewards.calibration.handeye import (
    BASE_FRAME,
    EE_FRAME,
    HANDEYE_METHODS,
    RobotPoses,
    calibrate_handeye,
    calibrate_handeye_all,
    load_robot_poses,
    pose_error,
    save_robot_poses,
)
from robot_rewards.calibration.intrinsics import calibrate_intrinsics
from robot_rewards.commands.calibrate import run_handeye, run_intrinsics
from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics

TRUE_K = CameraIntrinsics(640, 480, 800.0, 805.0, 331.0, 236.5)
CHESS = BoardSpec(kind="chessboard", squares_x=9, squares_y=7, square_length=0.025, marker_length=0.0,
                  margin=0.02, name="chess")
CHARUCO = BoardSpec(kind="charuco", squares_x=7, squares_y=5, square_length=0.04, marker_length=0.03,
                    margin=0.02, name="charuco")


def rot(axis, deg):
    axis = np.asarray(axis, float)
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(deg))[0]


def photo_of_board(board: BoardSpec, K: CameraIntrinsics, cam_T_board, rng, px_per_square=48):
    """A photographic-style image of `board` seen from `cam_T_board`: perspective warp of the
    printed board, lens blur, uneven lighting, a textured background and sensor noise."""
    tex = board.render(px_per_square).astype(np.float32)
    s = board.square_length / px_per_square
    margin = round(board.margin / board.square_length * px_per_square) * s
    # texture pixel (i, j) centre -> board-frame metres -> image pixels
    S = np.array([[s, 0, s / 2 - margin], [0, s, s / 2 - margin], [0, 0, 1]])
    Rt = np.column_stack([cam_T_board[:3, 0], cam_T_board[:3, 1], cam_T_board[:3, 3]])
    H = K.K @ Rt @ S
    bg = cv2.GaussianBlur(rng.uniform(40, 200, size=(K.height // 8, K.width // 8)).astype(np.float32), (0, 0), 2)
    bg = cv2.resize(bg, (K.width, K.height), interpolation=cv2.INTER_CUBIC)
    img = cv2.warpPerspective(tex, H, (K.width, K.height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    img = np.where(img < 0, bg, img)
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    light = 0.75 + 0.25 * np.cos((u - rng.uniform(0, K.width)) / K.width * 2.0) * np.cos((v - K.cy) / K.height)
    img = cv2.GaussianBlur(img * light, (0, 0), 0.7) + rng.normal(0, 2.0, size=img.shape)
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def random_view(board, rng, distance=(0.45, 0.8), tilt=(10, 40)):
    """camera_T_board with the board in front of the camera, tilted, rolled, off centre."""
    R = rot([0, 0, 1], rng.uniform(-25, 25))
    phi = rng.uniform(0, 2 * np.pi)
    R = rot([np.cos(phi), np.sin(phi), 0], rng.uniform(*tilt)) @ R
    centre = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.07, 0.07), rng.uniform(*distance)])
    return transforms.make_transform(R, centre - R @ board.centre())


def image_set(board, n, seed, K=TRUE_K):
    rng = np.random.default_rng(seed)
    images, poses = {}, {}
    while len(images) < n:
        T = random_view(board, rng)
        corners = transforms.apply(T, board.corner_points().astype(float))
        uv = corners[:, :2] / corners[:, 2:] * [K.fx, K.fy] + [K.cx, K.cy]
        if uv.min() < 10 or uv[:, 0].max() > K.width - 10 or uv[:, 1].max() > K.height - 10:
            continue
        name = f"img_{len(images):02d}.png"
        images[name] = photo_of_board(board, K, T, rng)
        poses[name] = T
    return images, poses


# -- boards ---------------------------------------------------------------------------------


def test_board_yaml_round_trip_and_validation(tmp_path):
    save_board(tmp_path / "b.yaml", SIM_BOARD)
    assert load_board(tmp_path / "b.yaml") == SIM_BOARD
    (tmp_path / "bad.yaml").write_text("kind: charuco\nsquares: 5\n")
    with pytest.raises(BoardError, match="unknown board field.*squares"):
        load_board(tmp_path / "bad.yaml")
    with pytest.raises(BoardError, match="marker_length"):
        BoardSpec(kind="charuco", square_length=0.03, marker_length=0.04)
    with pytest.raises(BoardError, match="has 50 markers"):
        BoardSpec(kind="charuco", squares_x=12, squares_y=10, dictionary="DICT_4X4_50")


def test_shipped_board_files_match_the_sim_board():
    from robot_rewards.core.paths import data_file
    from robot_rewards.sim.calibration_rig import TEXTURE_PX_PER_SQUARE

    assert load_board(data_file("calibration", "boards", "charuco_9x6_35mm.yaml")) == SIM_BOARD
    png = cv2.imread(str(data_file("sim", "textures", "charuco_9x6_35mm.png")), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(png, SIM_BOARD.render(TEXTURE_PX_PER_SQUARE))
    det = SIM_BOARD.detect(png)
    assert det is not None and len(det) == SIM_BOARD.n_corners


# -- intrinsics -----------------------------------------------------------------------------


@pytest.mark.parametrize("board", [CHESS, CHARUCO], ids=["chessboard", "charuco"])
def test_intrinsics_from_a_photographic_image_set(board):
    images, _ = image_set(board, 14, seed=1)
    res = calibrate_intrinsics(images, board, min_views=8)
    i = res.intrinsics
    for key in ("fx", "fy", "cx", "cy"):
        assert abs(getattr(i, key) - getattr(TRUE_K, key)) / getattr(TRUE_K, key) < 0.01, key
    assert res.rms < 0.5
    assert set(res.per_view_errors) | set(res.rejected) == set(images)
    assert max(res.per_view_errors.values()) < 1.0


def test_bad_views_are_rejected_and_missing_boards_listed():
    images, _ = image_set(CHARUCO, 12, seed=2)
    blank = np.full((480, 640, 3), 128, np.uint8)
    images["empty_wall.png"] = blank
    # a view whose corners are displaced by a small affine warp: its reprojection error stands out
    warped = cv2.warpAffine(images["img_05.png"], np.array([[1.02, 0.0, -6], [0.0, 0.99, 2]]), (640, 480))
    images["img_05.png"] = warped
    res = calibrate_intrinsics(images, CHARUCO, min_views=8, max_view_error=0.5)
    assert res.rejected["empty_wall.png"] == "board not found"
    assert "img_05.png" in res.rejected and "reprojection error" in res.rejected["img_05.png"]
    assert abs(res.intrinsics.fx - TRUE_K.fx) / TRUE_K.fx < 0.01
    with pytest.raises(BoardNotFoundError, match="empty_wall.png"):
        calibrate_intrinsics(images, CHARUCO, strict=True)


def test_intrinsics_bad_input_errors():
    blank = {f"wall_{k}.png": np.full((480, 640, 3), 100, np.uint8) for k in range(3)}
    with pytest.raises(BoardNotFoundError, match="3 image\\(s\\): wall_0.png, wall_1.png, wall_2.png"):
        calibrate_intrinsics(blank, CHARUCO)
    images, _ = image_set(CHARUCO, 4, seed=3)
    with pytest.raises(NotEnoughViewsError, match="4 usable view\\(s\\), need at least 8"):
        calibrate_intrinsics(images, CHARUCO, min_views=8)
    images["small.png"] = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(ImageSizeError, match="320x240: small.png"):
        calibrate_intrinsics(images, CHARUCO)


def test_run_intrinsics_writes_ros_camera_info_and_nothing_on_failure(tmp_path, capsys):
    images, _ = image_set(CHARUCO, 10, seed=4)
    src = tmp_path / "imgs"
    src.mkdir()
    for name, img in images.items():
        cv2.imwrite(str(src / name), img)
    board_file = tmp_path / "board.yaml"
    save_board(board_file, CHARUCO)
    out = tmp_path / "out"
    metrics = run_intrinsics(src, board_file, out, camera_name="front", min_views=8)
    assert "RMS reprojection error" in capsys.readouterr().out
    name, intr = load_camera_info(out / "front.yaml")
    assert name == "front" and abs(intr.fx - TRUE_K.fx) / TRUE_K.fx < 0.01
    assert json.loads((out / "metrics.json").read_text())["rms_px"] == pytest.approx(metrics["rms_px"])
    # failure: too few views -> nothing written, old outputs untouched
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(NotEnoughViewsError):
        run_intrinsics(src, board_file, out, camera_name="front", min_views=50)
    with pytest.raises(ImageLoadError, match="image folder not found"):
        run_intrinsics(tmp_path / "nope", board_file, tmp_path / "out2")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "out2").exists()
    assert not any(p.name.startswith(".calib_") for p in tmp_path.iterdir())


# -- ROS formats ----------------------------------------------------------------------------

ROS_CAMERA_INFO = """image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [612.9, 0.0, 318.2, 0.0, 613.1, 241.7, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.081, -0.162, 0.0012, -0.0007, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [620.1, 0.0, 318.0, 0.0, 0.0, 621.0, 241.5, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_ros_camera_info_round_trip(tmp_path):
    (tmp_path / "ros.yaml").write_text(ROS_CAMERA_INFO)
    name, intr = load_camera_info(tmp_path / "ros.yaml")
    assert name == "narrow_stereo" and intr.fx == 612.9 and intr.cy == 241.7
    assert intr.distortion == (0.081, -0.162, 0.0012, -0.0007, 0.0)
    save_camera_info(tmp_path / "again.yaml", name, intr)
    doc = yaml.safe_load((tmp_path / "again.yaml").read_text())
    assert set(doc) == set(yaml.safe_load(ROS_CAMERA_INFO))
    assert load_camera_info(tmp_path / "again.yaml") == (name, intr)


def test_handeye_result_and_robot_pose_files_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    poses = {f"v{k}.png": transforms.make_transform(rot(rng.normal(size=3), rng.uniform(5, 60)), rng.normal(size=3))
             for k in range(4)}
    save_robot_poses(tmp_path / "poses.yaml", RobotPoses(poses, "base", "tool"))
    loaded = load_robot_poses(tmp_path / "poses.yaml")
    assert loaded.base_frame == "base" and loaded.ee_frame == "tool"
    for k in poses:
        np.testing.assert_allclose(loaded.poses[k], poses[k], atol=1e-12)
    (tmp_path / "bad.yaml").write_text("poses:\n  - image: a.png\n    translation: {x: 0, y: 0}\n")
    with pytest.raises(PoseFileError, match="pose 0 needs image, translation"):
        load_robot_poses(tmp_path / "bad.yaml")

    robot, board, X = _handeye_data("eye_to_hand", 8, seed=6)
    result = calibrate_handeye(robot, board, "eye_to_hand", method="tsai", base_frame="panda_link0",
                               camera_frame="front_camera_color_optical_frame")
    result.save(tmp_path / "handeye.yaml")
    parent, child, T = load_transform(tmp_path / "handeye.yaml")
    assert (parent, child) == ("panda_link0", "front_camera_color_optical_frame")
    np.testing.assert_allclose(T, X, atol=1e-6)
    doc = yaml.safe_load((tmp_path / "handeye.yaml").read_text())
    assert doc["calibration"]["method"] == "tsai" and doc["calibration"]["setup"] == "eye_to_hand"


# -- hand-eye -------------------------------------------------------------------------------


def _handeye_data(setup, n, seed, noise_px=0.0):
    """Exact (robot poses, board poses, truth) for a setup, with rotations about many axes."""
    rng = np.random.default_rng(seed)
    if setup == "eye_to_hand":
        X = transforms.make_transform(rot([1, 2, 0.5], 130), [1.1, 0.1, 0.7])  # base_T_camera
        Y = transforms.make_transform(rot([0, 1, 0], 45), [0.01, 0.0, 0.03])  # ee_T_board
    else:
        X = transforms.make_transform(rot([0, 0, 1], 90), [0.07, 0.0, -0.08])  # ee_T_camera
        Y = transforms.make_transform(rot([1, 0, 0], 180), [0.4, -0.1, 0.0])  # base_T_board
    robot, board = [], []
    for _ in range(n):
        Tr = transforms.make_transform(rot(rng.normal(size=3), rng.uniform(10, 40)) @ rot([1, 0, 0], 180),
                                       [rng.uniform(0.3, 0.6), rng.uniform(-0.2, 0.2), rng.uniform(0.2, 0.5)])
        if setup == "eye_to_hand":
            Tb = transforms.invert(X) @ Tr @ Y
        else:
            Tb = transforms.invert(Tr @ X) @ Y
        robot.append(Tr)
        board.append(Tb)
    return robot, board, X


@pytest.mark.parametrize("setup", ["eye_to_hand", "eye_in_hand"])
def test_every_handeye_method_recovers_the_exact_transform(setup):
    robot, board, X = _handeye_data(setup, 10, seed=7)
    results = calibrate_handeye_all(robot, board, setup)
    assert set(results) == set(HANDEYE_METHODS)
    for method, r in results.items():
        t_mm, r_deg = pose_error(r.transform, X)
        assert t_mm < 0.01 and r_deg < 1e-3, method
        assert r.residual_translation_mm < 0.01
    # without frame names, the library's neutral ones (the commands pass the arm's)
    assert results["park"].parent_frame == (BASE_FRAME if setup == "eye_to_hand" else EE_FRAME)


def test_degenerate_handeye_input_errors():
    robot, board, _ = _handeye_data("eye_to_hand", 6, seed=8)
    R0 = robot[0][:3, :3]
    pure_translation = [transforms.make_transform(R0, T[:3, 3]) for T in robot]
    with pytest.raises(DegenerateMotionError, match="pure translations"):
        calibrate_handeye(pure_translation, board, "eye_to_hand")
    one_axis = [transforms.make_transform(R0 @ rot([0, 0, 1], 15 * k), robot[k][:3, 3]) for k in range(6)]
    with pytest.raises(DegenerateMotionError, match="one axis"):
        calibrate_handeye(one_axis, board, "eye_in_hand")
    with pytest.raises(NotEnoughViewsError, match="at least 3 poses, got 2"):
        calibrate_handeye(robot[:2], board[:2])
    with pytest.raises(NotEnoughViewsError, match="6 robot poses but 5 board poses"):
        calibrate_handeye(robot, board[:5])
    with pytest.raises(ValueError, match="unknown hand-eye method 'magic'"):
        calibrate_handeye(robot, board, method="magic")


def test_run_handeye_from_image_files(tmp_path):
    """Eye-to-hand end to end through files: photos of a gripper-held board + robot poses."""
    X = transforms.make_transform(rot([1, 2, 0.5], 130), [1.1, 0.1, 0.7])  # base_T_camera (truth)
    Y = transforms.make_transform(rot([0, 1, 0], 45), [0.01, 0.0, 0.03])  # ee_T_board
    src = tmp_path / "imgs"
    src.mkdir()
    images, views = image_set(CHARUCO, 12, seed=9)
    poses = {}
    for name, Tb in views.items():
        cv2.imwrite(str(src / name), images[name])
        poses[name] = X @ Tb @ transforms.invert(Y)  # the gripper pose that shows the board so
    save_robot_poses(tmp_path / "poses.yaml", RobotPoses(poses, "panda_link0", "panda_hand"))
    save_camera_info(tmp_path / "front.yaml", "front", TRUE_K)
    save_board(tmp_path / "board.yaml", CHARUCO)
    out = tmp_path / "out"
    metrics = run_handeye(src, tmp_path / "poses.yaml", tmp_path / "board.yaml", tmp_path / "front.yaml", out,
                          setup="eye_to_hand", method="daniilidis", quiet=True)
    parent, child, T = load_transform(out / "handeye_eye_to_hand.yaml")
    assert parent == "panda_link0" and child == "front_color_optical_frame"
    t_mm, r_deg = pose_error(T, X)
    assert t_mm < 5.0 and r_deg < 0.5
    assert set(metrics["methods"]) == set(HANDEYE_METHODS)
    # images that do not match the intrinsics' size, and images without poses: clear errors
    save_camera_info(tmp_path / "small.yaml", "front", CameraIntrinsics(320, 240, 400, 400, 160, 120))
    with pytest.raises(ImageSizeError, match="640x480 but the intrinsics are 320x240"):
        run_handeye(src, tmp_path / "poses.yaml", tmp_path / "board.yaml", tmp_path / "small.yaml", tmp_path / "o2")
    del poses[sorted(poses)[0]]
    save_robot_poses(tmp_path / "fewer.yaml", RobotPoses(poses))
    with pytest.raises(PoseFileError, match="no robot pose for image\\(s\\): img_00.png"):
        run_handeye(src, tmp_path / "fewer.yaml", tmp_path / "board.yaml", tmp_path / "front.yaml", tmp_path / "o3")
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()

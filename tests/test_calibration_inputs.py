"""Calibration on bad input: YAML files with NaN/inf, non-YAML files, wrong matrix sizes, boards
larger than declared, misspelt board names; failed `calibrate` runs leave no output folder and
successful ones log what they printed."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robot_rewards.calibration.boards import BoardError, BoardSpec, board_from_any, load_board, save_board
from robot_rewards.calibration.camera_info import CalibrationFileError, load_camera_info, load_transform
from robot_rewards.calibration.errors import BoardSizeError, PoseFileError
from robot_rewards.calibration.handeye import load_robot_poses
from robot_rewards.calibration.intrinsics import calibrate_intrinsics
from robot_rewards.calibration.synthetic import random_view, render_board, view_fits
from robot_rewards.core.camera import CameraIntrinsics

K = CameraIntrinsics(640, 480, 600.0, 602.0, 321.0, 238.5)
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


def _write(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_good_files_load(tmp_path):
    name, intr = load_camera_info(_write(tmp_path / "c.yaml", CAMERA_INFO))
    assert name == "cam" and intr.fx == 600.0 and intr.distortion[1] == -0.02
    parent, child, T = load_transform(_write(tmp_path / "t.yaml", TRANSFORM))
    assert (parent, child) == ("base", "cam") and T[0, 3] == 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where, field", [
    (("camera_matrix", "data", 0), "camera_matrix.data[0]"),
    (("distortion_coefficients", "data", 2), "distortion_coefficients.data[2]"),
    (("projection_matrix", "data", 5), "projection_matrix.data[5]"),
    (("rectification_matrix", "data", 8), "rectification_matrix.data[8]"),
])
def test_nan_or_inf_in_camera_info_is_refused_naming_file_and_field(tmp_path, bad, where, field):
    doc = yaml.safe_load(yaml.safe_dump(CAMERA_INFO))
    doc[where[0]][where[1]][where[2]] = bad
    path = _write(tmp_path / "cam.yaml", doc)
    with pytest.raises(CalibrationFileError) as err:
        load_camera_info(path)
    text = _one_line(err)
    assert str(path) in text and field in text and ("nan" in text or "inf" in text)


@pytest.mark.parametrize("part, axis", [("translation", "y"), ("rotation", "w")])
def test_nan_in_a_transform_is_refused_naming_file_and_field(tmp_path, part, axis):
    doc = yaml.safe_load(yaml.safe_dump(TRANSFORM))
    doc[part][axis] = float("nan")
    path = _write(tmp_path / "t.yaml", doc)
    with pytest.raises(CalibrationFileError) as err:
        load_transform(path)
    assert str(path) in _one_line(err) and f"{part}.{axis} is nan" in str(err.value)


def test_nan_in_robot_poses_and_boards_is_refused(tmp_path):
    poses = {"poses": [{"image": "a.png", "translation": {"x": 0, "y": float("inf"), "z": 0},
                        "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}]}
    with pytest.raises(PoseFileError, match=r"pose 0 \(a.png\): translation.y is inf"):
        load_robot_poses(_write(tmp_path / "p.yaml", poses))
    board = {"kind": "chessboard", "squares_x": 9, "squares_y": 7, "square_length": float("nan")}
    with pytest.raises(BoardError, match="square_length must be a finite number"):
        load_board(_write(tmp_path / "b.yaml", board))
    with pytest.raises(BoardError, match="squares_x must be an integer"):
        load_board(_write(tmp_path / "b2.yaml", {**board, "square_length": 0.02, "squares_x": "nine"}))


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",  # an image given as the YAML
    b"image_width: 640\ncamera_matrix: {rows: 3, data: [1, 2\n",  # broken flow mapping
    b"\t- tab: [indented\n",
    b"- just\n- a list\n",
])
def test_non_yaml_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    for load, error in ((load_camera_info, CalibrationFileError), (load_transform, CalibrationFileError),
                        (load_robot_poses, PoseFileError), (load_board, BoardError)):
        with pytest.raises(error) as err:
            load(path)
        assert str(path) in _one_line(err)


@pytest.mark.parametrize("key, data, message", [
    ("projection_matrix", list(range(9)), "'projection_matrix' must be 3x4 (12 values), has 9"),
    ("rectification_matrix", [1, 0, 0, 0, 1, 0], "'rectification_matrix' must be 3x3 (9 values), has 6"),
    ("camera_matrix", [600.0, 0, 321, 0, 602.0, 238.5, 0, 0, 1, 0], "'camera_matrix' must be 3x3"),
])
def test_matrices_of_the_wrong_size_are_refused(tmp_path, key, data, message):
    doc = yaml.safe_load(yaml.safe_dump(CAMERA_INFO))
    doc[key]["data"] = data
    with pytest.raises(CalibrationFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_camera_info(_write(tmp_path / "c.yaml", doc))
    doc = yaml.safe_load(yaml.safe_dump(CAMERA_INFO))
    doc["projection_matrix"]["rows"] = 4
    with pytest.raises(CalibrationFileError, match="its rows says 4"):
        load_camera_info(_write(tmp_path / "c.yaml", doc))


def test_a_misspelt_board_name_lists_the_shipped_boards():
    with pytest.raises(BoardError) as err:
        board_from_any("charuco_9x6_35")
    text = _one_line(err)
    assert "unknown board 'charuco_9x6_35'" in text
    assert "charuco_9x6_35mm" in text and "chessboard_9x7_25mm" in text


# -- a board larger than declared ------------------------------------------------------------

PRINTED = BoardSpec(kind="chessboard", squares_x=10, squares_y=7, square_length=0.025, marker_length=0.0,
                    margin=0.01, name="printed_9x6")
DECLARED = BoardSpec(kind="chessboard", squares_x=9, squares_y=7, square_length=0.025, marker_length=0.0,
                     margin=0.01, name="declared_8x6")


def _photos(board, n, seed):
    rng = np.random.default_rng(seed)
    images = {}
    while len(images) < n:
        T = random_view(board, rng)
        if view_fits(board, K, T, border=40):
            images[f"img_{len(images):02d}.png"] = render_board(board, K, T, rng)
    return images


def test_a_board_larger_than_declared_is_refused():
    images = _photos(PRINTED, 12, seed=3)
    found = {n: DECLARED.detect(img) for n, img in images.items()}
    sub_grids = {n: d for n, d in found.items() if d is not None}
    assert sub_grids, "the detector found no 8x6 sub-grid to refuse"
    assert all(d.extends for d in sub_grids.values())
    with pytest.raises(BoardSizeError) as err:
        calibrate_intrinsics(images, DECLARED, min_views=1)
    text = _one_line(err)
    assert "larger than declared" in text and "8x6 inner corners of 'declared_8x6'" in text
    # the right declaration: no image says the board continues
    assert not any(PRINTED.detect(img).extends for img in images.values())


# -- the calibrate command: no folder after a failure, a log after a success -----------------


def test_failed_calibrate_runs_leave_no_folder_and_a_success_logs(tmp_path, capsys):
    import cv2

    from robot_rewards.cli import main

    images = tmp_path / "images"
    images.mkdir()
    for name, img in _photos(PRINTED, 9, seed=5).items():
        cv2.imwrite(str(images / name), img)
    board = tmp_path / "printed.yaml"
    save_board(board, PRINTED)
    for bad in ([f"board={tmp_path / 'nope.yaml'}"], ["board=chesboard_9x7_25mm"], [f"board={board}", "min_views=50"]):
        out = tmp_path / "failed"
        with pytest.raises(SystemExit):
            main(["calibrate", "intrinsics", f"images={images}", f"output_dir={out}", *bad])
        assert not out.exists(), bad
    err = capsys.readouterr().err
    assert "shipped boards: charuco_9x6_35mm, chessboard_9x7_25mm" in err
    out = tmp_path / "ok"
    main(["calibrate", "intrinsics", f"images={images}", f"board={board}", "camera_name=cam", f"output_dir={out}"])
    log = (out / "calibrate-intrinsics.log").read_text()
    assert "RMS reprojection error" in log and "wrote" in log
    assert (out / "cam.yaml").is_file()


def test_a_non_yaml_intrinsics_file_is_one_line_from_the_cli(tmp_path, capsys):
    from robot_rewards.cli import main

    bad = tmp_path / "camera.yaml"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    out = tmp_path / "handeye"
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", "handeye", f"images={tmp_path}", f"poses={tmp_path / 'p.yaml'}", f"intrinsics={bad}",
              f"output_dir={out}"])
    assert exit_.value.code == 1 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CalibrationFileError" in err[0] and "not a YAML file" in err[0]

"""Simulated calibration data: a textured ChArUco board in PyBullet, moved by the arm.

- eye-to-hand: the board is mounted in front of the gripper and shown to the fixed front
  camera in `n_poses` varied poses (tilts about both board axes, in-plane rolls, distances).
- eye-in-hand: a wrist camera rides on the gripper and looks at the board lying on the table
  from varied directions.

The board is a visual-only mesh (sim/textures/calibration_board.obj, a unit slab whose front
face carries the whole texture) scaled to the board's size. Its pose is set from the gripper
pose the arm actually reached (not the commanded one), so the ground truth is exact: the
board is rigidly attached by construction, without a soft constraint.

Mesh frame = board frame (OpenCV: x right, y down the printed image, z into the board)
shifted to the board centre; the textured face is the mesh's z = 0 plane, facing -z. This
mapping was checked by rendering: detected corners land within a fraction of a pixel of
where the true board pose projects them (tests/test_calibration_sim.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pybullet as p

from robot_rewards.calibration.boards import SIM_BOARD, BoardSpec
from robot_rewards.core import transforms
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.paths import data_file
from robot_rewards.sim.camera import render

TEXTURE_PX_PER_SQUARE = 140  # the sim board's 15 mm margin is then exactly 60 px
BOARD_THICKNESS = 0.004
MESH_NAME = "calibration_board.obj"

# A unit slab: front face z = 0 (normal -z) carries the texture (OBJ v = 1 is the image top);
# the other faces sample texel (0.001, 0.999), i.e. the board's white margin.
_MESH_OBJ = """# Unit calibration board for robot_rewards (scaled by meshScale = [width, height, thickness]).
# Front face: z = 0, facing -z, texture u along +x, image rows along +y.
v -0.5 -0.5 0
v 0.5 -0.5 0
v 0.5 0.5 0
v -0.5 0.5 0
v -0.5 -0.5 1
v 0.5 -0.5 1
v 0.5 0.5 1
v -0.5 0.5 1
vt 0 1
vt 1 1
vt 1 0
vt 0 0
vt 0.001 0.999
vn 0 0 -1
vn 0 0 1
vn 0 -1 0
vn 1 0 0
vn 0 1 0
vn -1 0 0
f 1/1/1 4/4/1 3/3/1
f 1/1/1 3/3/1 2/2/1
f 5/5/2 6/5/2 7/5/2
f 5/5/2 7/5/2 8/5/2
f 1/5/3 2/5/3 6/5/3
f 1/5/3 6/5/3 5/5/3
f 2/5/4 3/5/4 7/5/4
f 2/5/4 7/5/4 6/5/4
f 3/5/5 4/5/5 8/5/5
f 3/5/5 8/5/5 7/5/5
f 4/5/6 1/5/6 5/5/6
f 4/5/6 5/5/6 8/5/6
"""


def texture_name(board: BoardSpec) -> str:
    return f"{board.name}.png"


def write_board_assets(board: BoardSpec, directory: str | Path) -> tuple[Path, Path]:
    """Write the board texture PNG and the unit board mesh into `directory`; (png, obj) paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / texture_name(board)
    cv2.imwrite(str(png), board.render(TEXTURE_PX_PER_SQUARE))
    obj = directory / MESH_NAME
    obj.write_text(_MESH_OBJ)
    return png, obj


def board_assets(board: BoardSpec, scratch: str | Path) -> tuple[Path, Path]:
    """Texture and mesh of `board`: the shipped ones in sim/textures/ when they match it,
    otherwise freshly generated under `scratch`."""
    try:
        png = data_file("sim", "textures", texture_name(board))
        obj = data_file("sim", "textures", MESH_NAME)
        expected = board.render(TEXTURE_PX_PER_SQUARE)
        shipped = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        if shipped is not None and shipped.shape == expected.shape and np.array_equal(shipped, expected):
            return png, obj
    except FileNotFoundError:
        pass
    return write_board_assets(board, scratch)


class SimBoard:
    """A visual-only, textured board body in a PyBullet client, posed by its board frame."""

    def __init__(self, client: int, board: BoardSpec, scratch: str | Path):
        self.client = client
        self.board = board
        png, obj = board_assets(board, scratch)
        # Size the slab from the texture's pixels (margins are whole pixels), so squares in the
        # texture keep exactly square_length whatever rounding the margin needed.
        tex_h, tex_w = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE).shape
        w = tex_w / TEXTURE_PX_PER_SQUARE * board.square_length
        h = tex_h / TEXTURE_PX_PER_SQUARE * board.square_length
        vis = p.createVisualShape(p.GEOM_MESH, fileName=str(obj), meshScale=[w, h, BOARD_THICKNESS],
                                  physicsClientId=client)
        # No collision shape: the board never pushes the arm or the table around.
        self.body = p.createMultiBody(0, -1, vis, [0, 0, -1], physicsClientId=client)
        tex = p.loadTexture(str(png), physicsClientId=client)
        p.changeVisualShape(self.body, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
        # board frame -> mesh frame: the mesh is centred on the squares.
        self.board_T_mesh = transforms.make_transform(translation=board.centre())

    def set_pose(self, base_T_board: np.ndarray) -> None:
        T = np.asarray(base_T_board) @ self.board_T_mesh
        p.resetBasePositionAndOrientation(self.body, T[:3, 3].tolist(),
                                          transforms.matrix_to_quat(T[:3, :3]).tolist(),
                                          physicsClientId=self.client)


@dataclass
class SimRigConfig:
    """How the simulated calibration data are generated (angles in degrees, lengths in metres)."""

    n_poses: int = 20
    seed: int = 0
    board: BoardSpec = field(default_factory=lambda: SIM_BOARD)
    # eye-to-hand: board centre depth along the front camera's axis; tilt from facing it.
    distance_range: tuple[float, float] = (0.5, 0.85)
    tilt_range: tuple[float, float] = (20.0, 45.0)
    max_roll: float = 30.0
    # The board face is tilted on the gripper so the arm can show it to an elevated camera
    # without pointing its gripper up (reachability doubles); the offset clears the fingers.
    mount_tilt: float = 45.0
    mount_offset: float = 0.02
    # eye-in-hand: distance from the wrist camera to the board and view tilt from vertical.
    wrist_distance_range: tuple[float, float] = (0.38, 0.55)
    wrist_max_tilt: float = 35.0
    board_on_table: tuple[float, float, float] = (0.5, 0.0, 0.0)  # centre (x, y, yaw deg)
    max_attempts_per_pose: int = 20
    supersample: int = 2  # render at 2x and area-average (anti-aliasing, see render_rgb)


def ee_T_board(board: BoardSpec, mount_tilt_deg: float, offset: float) -> np.ndarray:
    """Where the board sits on the gripper: its centre `offset` beyond the fingertip point, its
    face towards the gripper's approach axis (z) tilted by `mount_tilt_deg` about the gripper's y."""
    R_mount = cv2.Rodrigues(np.array([0.0, np.radians(mount_tilt_deg), 0.0]))[0] @ np.diag([1.0, -1.0, -1.0])
    centre_on_ee = np.array([0.0, 0.0, offset])
    return transforms.make_transform(R_mount, centre_on_ee - R_mount @ board.centre())


# A wrist camera in the style of a hand-mounted RealSense: 7 cm off the gripper axis on the
# hand, 8 cm behind the fingertip point, looking along the approach axis, toed-in by 10 deg.
WRIST_EE_T_CAMERA = transforms.make_transform(
    cv2.Rodrigues(np.array([0.0, np.radians(-10.0), np.radians(0.0)]))[0]
    @ cv2.Rodrigues(np.array([0.0, 0.0, np.pi / 2]))[0],
    [0.07, 0.0, -0.08],
)


def _rot(axis, deg) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(deg))[0]


def board_corners_in_view(camera: CameraModel, base_T_board: np.ndarray, board: BoardSpec,
                          margin_px: float = 5.0, min_fraction: float = 1.0) -> bool:
    """True if at least `min_fraction` of the board's corners project inside the image (with a
    margin) in front of the camera, and the board faces the camera (<= 70 deg obliquity)."""
    pts = transforms.apply(base_T_board, board.corner_points().astype(np.float64))
    cam = transforms.apply(transforms.invert(camera.base_T_camera), pts)
    if np.any(cam[:, 2] <= 0.05):
        return False
    # The printed face looks along -z of the board frame; it must point at the camera.
    facing = -np.asarray(base_T_board)[:3, 2]
    to_camera = camera.base_T_camera[:3, 3] - pts.mean(axis=0)
    if facing @ to_camera < np.cos(np.radians(70.0)) * np.linalg.norm(to_camera):
        return False
    uv = camera.project(pts)
    i = camera.intrinsics
    inside = (uv[:, 0] >= margin_px) & (uv[:, 0] <= i.width - 1 - margin_px) & \
             (uv[:, 1] >= margin_px) & (uv[:, 1] <= i.height - 1 - margin_px)
    return inside.mean() >= min_fraction


@dataclass(eq=False)
class SimView:
    """One rendered calibration view with its exact ground truth."""

    name: str
    rgb: np.ndarray
    base_T_ee: np.ndarray
    base_T_board: np.ndarray
    base_T_camera: np.ndarray


def render_rgb(camera: CameraModel, client: int, supersample: int = 1) -> np.ndarray:
    """RGB image from `camera`, optionally rendered at `supersample` times the resolution and
    area-averaged down, like a real sensor integrating light over each pixel.

    The tiny renderer does not anti-alias: board edges are staircases whose corners jitter by
    ~0.25 px. Averaging 2x2 sub-pixels brings the corner noise down to ~0.1 px. The high-res
    camera maps low-res pixel centre u to 2u + 0.5 (the middle of its 2x2 block).
    """
    if supersample <= 1:
        return render(camera, client).rgb
    i, s = camera.intrinsics, int(supersample)
    hi = CameraIntrinsics(i.width * s, i.height * s, i.fx * s, i.fy * s,
                          i.cx * s + (s - 1) / 2.0, i.cy * s + (s - 1) / 2.0)
    rgb = render(CameraModel(camera.name, hi, camera.base_T_camera), client).rgb
    return cv2.resize(rgb, (i.width, i.height), interpolation=cv2.INTER_AREA)


def _present_board(world, board_body: SimBoard, base_T_ee_target: np.ndarray, ee_T_b: np.ndarray) -> np.ndarray | None:
    """Move the arm to a gripper pose, then fix the board to the pose actually reached."""
    if not world.arm.move_ee(base_T_ee_target[:3, 3], transforms.matrix_to_quat(base_T_ee_target[:3, :3])):
        return None
    reached = world.arm.ee_pose()
    board_body.set_pose(reached @ ee_T_b)
    return reached


def collect_eye_to_hand(world, board_body: SimBoard, cfg: SimRigConfig, rng: np.random.Generator,
                        camera_name: str | None = None) -> list[SimView]:
    """`cfg.n_poses` views of the gripper-mounted board from a fixed world camera."""
    camera = world.cameras[camera_name] if camera_name else world.camera
    Tc = camera.base_T_camera
    board = cfg.board
    ee_T_b = ee_T_board(board, cfg.mount_tilt, cfg.mount_offset)
    views: list[SimView] = []
    attempts = 0
    while len(views) < cfg.n_poses:
        attempts += 1
        if attempts > cfg.n_poses * cfg.max_attempts_per_pose:
            raise RuntimeError(
                f"sim rig: only {len(views)} of {cfg.n_poses} board poses were reachable and "
                f"visible after {attempts - 1} attempts"
            )
        # Board centre anywhere in the image (views must cover the image corners, or the
        # distortion terms trade off against the principal point).
        depth = rng.uniform(*cfg.distance_range)
        u = rng.uniform(0, camera.intrinsics.width - 1)
        v = rng.uniform(0, camera.intrinsics.height - 1)
        ray = np.array([(u - camera.intrinsics.cx) / camera.intrinsics.fx,
                        (v - camera.intrinsics.cy) / camera.intrinsics.fy, 1.0])
        centre = transforms.apply(Tc, ray * depth)
        # Facing the camera: board z along the viewing ray; then a tilt about a random in-plane
        # axis (so successive views rotate about different axes) and a roll about the normal.
        facing = transforms.look_at(Tc[:3, 3], centre, up=(0.0, 0.0, 1.0))[:3, :3]
        phi = rng.uniform(0, 2 * np.pi)
        tilt = _rot([np.cos(phi), np.sin(phi), 0.0], rng.uniform(*cfg.tilt_range))
        roll = _rot([0, 0, 1], rng.uniform(-cfg.max_roll, cfg.max_roll))
        R = facing @ tilt @ roll
        base_T_board = transforms.make_transform(R, centre - R @ board.centre())
        if not board_corners_in_view(camera, base_T_board, board, min_fraction=1.0):
            continue
        target = base_T_board @ transforms.invert(ee_T_b)
        reached = _present_board(world, board_body, target, ee_T_b)
        if reached is None:
            continue
        actual = reached @ ee_T_b
        if not board_corners_in_view(camera, actual, board, min_fraction=1.0):
            continue
        rgb = render_rgb(camera, world.client, cfg.supersample)
        views.append(SimView(f"view_{len(views):03d}.png", rgb, reached, actual, Tc.copy()))
    return views


def collect_eye_in_hand(world, board_body: SimBoard, cfg: SimRigConfig, rng: np.random.Generator,
                        intrinsics: CameraIntrinsics, ee_T_camera: np.ndarray = WRIST_EE_T_CAMERA) -> list[SimView]:
    """`cfg.n_poses` views of the board lying on the table from a gripper-mounted camera."""
    board = cfg.board
    x, y, yaw = cfg.board_on_table
    # Face up: board z (into the board) points down; the face sits 1 mm above the table.
    R_b = _rot([0, 0, 1], yaw) @ np.diag([1.0, -1.0, -1.0])
    base_T_board = transforms.make_transform(R_b, np.array([x, y, 0.001]) - R_b @ board.centre())
    board_body.set_pose(base_T_board)
    centre = base_T_board @ np.r_[board.centre(), 1.0]
    views: list[SimView] = []
    attempts = 0
    while len(views) < cfg.n_poses:
        attempts += 1
        if attempts > cfg.n_poses * cfg.max_attempts_per_pose:
            raise RuntimeError(
                f"sim rig: only {len(views)} of {cfg.n_poses} wrist-camera poses were reachable "
                f"and saw the board after {attempts - 1} attempts"
            )
        tilt = np.radians(rng.uniform(0.0, cfg.wrist_max_tilt))
        azimuth = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)])
        eye = centre[:3] + rng.uniform(*cfg.wrist_distance_range) * direction
        look = centre[:3] + np.r_[rng.uniform(-0.03, 0.03, size=2), 0.0]
        # Image "up" varies (roll about the optical axis) for rotation diversity.
        up_angle = rng.uniform(-np.pi, np.pi)
        up = np.array([np.cos(up_angle), np.sin(up_angle), 0.3])
        try:
            base_T_cam = transforms.look_at(eye, look, up=up)
        except ValueError:
            continue
        cam = CameraModel("wrist", intrinsics, base_T_cam)
        if not board_corners_in_view(cam, base_T_board, board, min_fraction=0.8):
            continue
        target = base_T_cam @ transforms.invert(ee_T_camera)
        if not world.arm.move_ee(target[:3, 3], transforms.matrix_to_quat(target[:3, :3])):
            continue
        reached = world.arm.ee_pose()
        actual_cam = CameraModel("wrist", intrinsics, reached @ ee_T_camera, frame_id="wrist_camera_color_optical_frame")
        if not board_corners_in_view(actual_cam, base_T_board, board, min_fraction=0.8):
            continue
        rgb = render_rgb(actual_cam, world.client, cfg.supersample)
        views.append(SimView(f"view_{len(views):03d}.png", rgb, reached, base_T_board.copy(), actual_cam.base_T_camera))
    return views


def make_scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="robot_rewards_board_")

"""Calibration targets: ChArUco boards and plain chessboards.

A board is described by a small YAML file (calibration/boards/*.yaml) and gives:
- its OpenCV object (`cv2.aruco.CharucoBoard`) and the 3-D positions of its corners in the
  board frame (OpenCV convention: origin at the outer top-left corner of the squares, x to the
  right, y down the printed image, z into the board, i.e. away from a viewer);
- detection in an image (current API: `cv2.aruco.CharucoDetector`; `findChessboardCornersSB`
  for chessboards) returning matched image/object points;
- a rendered image of the board (for printing, and for the simulator's texture).

A plain chessboard is symmetric, so its pose is ambiguous by a half turn when the corner
counts are both odd or both even; use ChArUco for hand-eye calibration.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from robot_rewards.calibration.grid_check import grid_extensions
from robot_rewards.calibration.yaml_io import read_yaml_mapping
from robot_rewards.core.paths import data_file


class BoardError(ValueError):
    """An invalid board definition."""


BOARD_KINDS = ("charuco", "chessboard")


@dataclass(frozen=True)
class BoardSpec:
    """A calibration board. Lengths in metres.

    squares_x, squares_y: number of squares along x (columns) and y (rows); a chessboard has
    (squares_x - 1) x (squares_y - 1) inner corners. marker_length and dictionary are for
    ChArUco only. margin: white border around the squares (part of the physical board and of
    the rendered image).
    """

    kind: str = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_length: float = 0.04
    marker_length: float = 0.03
    dictionary: str = "DICT_4X4_50"
    legacy_pattern: bool = False
    margin: float = 0.02
    name: str = "board"

    def __post_init__(self):
        for name in ("squares_x", "squares_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise BoardError(f"{name} must be an integer, got {value!r}")
        for name in ("square_length", "marker_length", "margin"):
            value = getattr(self, name)
            real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not (real and math.isfinite(value)):
                raise BoardError(f"{name} must be a finite number, got {value!r}")
        if self.kind not in BOARD_KINDS:
            raise BoardError(f"board kind must be one of {BOARD_KINDS}, got '{self.kind}'")
        if self.squares_x < 2 or self.squares_y < 2:
            raise BoardError(f"a board needs at least 2x2 squares, got {self.squares_x}x{self.squares_y}")
        if self.square_length <= 0:
            raise BoardError(f"square_length must be positive, got {self.square_length}")
        if self.margin < 0:
            raise BoardError(f"margin must be >= 0, got {self.margin}")
        if self.kind == "charuco":
            if not 0 < self.marker_length < self.square_length:
                raise BoardError(
                    f"marker_length must be in (0, square_length={self.square_length}), got {self.marker_length}"
                )
            if not hasattr(cv2.aruco, self.dictionary):
                raise BoardError(f"unknown ArUco dictionary '{self.dictionary}'")
            n_markers = (self.squares_x * self.squares_y) // 2
            dict_size = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
            if n_markers > dict_size:
                raise BoardError(f"{self.dictionary} has {dict_size} markers; the board needs {n_markers}")

    # -- geometry ------------------------------------------------------------------------
    @property
    def inner_corners(self) -> tuple[int, int]:
        """(columns, rows) of inner chessboard corners."""
        return self.squares_x - 1, self.squares_y - 1

    @property
    def n_corners(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def size(self) -> tuple[float, float]:
        """Physical (width, height) in metres including the margin."""
        return (
            self.squares_x * self.square_length + 2 * self.margin,
            self.squares_y * self.square_length + 2 * self.margin,
        )

    def corner_points(self) -> np.ndarray:
        """(n_corners, 3) float32 inner-corner positions in the board frame, in detection-id
        order (row-major: x fastest), first corner at (square, square, 0)."""
        nx, ny = self.inner_corners
        L = self.square_length
        xs, ys = np.meshgrid(np.arange(1, nx + 1) * L, np.arange(1, ny + 1) * L)
        return np.stack([xs.ravel(), ys.ravel(), np.zeros(nx * ny)], axis=1).astype(np.float32)

    def centre(self) -> np.ndarray:
        """Centre of the squares area in the board frame (also the centre of the physical board)."""
        return np.array([self.squares_x * self.square_length / 2, self.squares_y * self.square_length / 2, 0.0])

    # -- OpenCV objects ------------------------------------------------------------------
    def cv_dictionary(self):
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def charuco_board(self):
        """The cv2.aruco.CharucoBoard (ChArUco boards only)."""
        if self.kind != "charuco":
            raise BoardError(f"board '{self.name}' is a {self.kind}, not a ChArUco board")
        board = cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_length, self.marker_length, self.cv_dictionary()
        )
        board.setLegacyPattern(bool(self.legacy_pattern))
        return board

    # -- rendering -----------------------------------------------------------------------
    def render(self, px_per_square: int = 120) -> np.ndarray:
        """Grayscale uint8 image of the whole physical board (margin included), exactly
        `px_per_square` pixels per square. The margin is rounded to whole pixels: pick
        `px_per_square` so that margin / square_length * px_per_square is an integer when the
        image must map exactly onto `size`."""
        margin_px = int(round(self.margin / self.square_length * px_per_square))
        w = self.squares_x * px_per_square
        h = self.squares_y * px_per_square
        if self.kind == "charuco":
            inner = self.charuco_board().generateImage((w, h), marginSize=0, borderBits=1)
        else:
            rows, cols = np.indices((self.squares_y, self.squares_x))
            squares = np.where((rows + cols) % 2 == 0, 0, 255).astype(np.uint8)
            inner = np.kron(squares, np.ones((px_per_square, px_per_square), np.uint8))
        return cv2.copyMakeBorder(inner, margin_px, margin_px, margin_px, margin_px,
                                  cv2.BORDER_CONSTANT, value=255)

    # -- detection -----------------------------------------------------------------------
    def detect(self, image: np.ndarray, min_corners: int = 6,
               corner_refinement: str = "cornersubpix") -> Detection | None:
        """Corners of the board in an image (BGR/RGB or grayscale), or None if not found.

        ChArUco: markers, then interpolated and sub-pixel refined chessboard corners; a view
        with fewer than `min_corners` corners, or all of them on one line, counts as not
        found (it cannot constrain a pose). Chessboard: all inner corners or nothing, found by
        `findChessboardCornersSB` (or `findChessboardCorners` where it fails) and placed by
        `corner_refinement`: "cornersubpix" (default, the more accurate on realistic renders,
        see benchmarks/corner_accuracy.py) or "sb" (findChessboardCornersSB's own sub-pixel
        corners).
        """
        if corner_refinement not in CORNER_REFINEMENTS:
            raise BoardError(f"corner_refinement must be one of {CORNER_REFINEMENTS}, got '{corner_refinement}'")
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if gray.dtype != np.uint8:
            raise BoardError(f"images must be 8-bit, got {gray.dtype}")
        if self.kind == "charuco":
            board = self.charuco_board()
            detector = cv2.aruco.CharucoDetector(board)
            corners, ids, _, _ = detector.detectBoard(gray)
            if ids is None or len(ids) < max(min_corners, 4):
                return None
            if board.checkCharucoCornersCollinear(ids):
                return None
            obj, img = board.matchImagePoints(corners, ids)
            return Detection(img.reshape(-1, 2).astype(np.float32), obj.reshape(-1, 3).astype(np.float32),
                             ids.reshape(-1).astype(np.int32))
        pattern = self.inner_corners
        found, corners = cv2.findChessboardCornersSB(
            gray, pattern, flags=cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY
        )
        if found and corner_refinement == "cornersubpix":
            corners = refine_corners(gray, corners, pattern)
        if not found:
            found, corners = cv2.findChessboardCorners(
                gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
            )
            if not found:
                return None
            corners = refine_corners(gray, corners, pattern)
        ids = np.arange(self.n_corners, dtype=np.int32)
        image_points = corners.reshape(-1, 2).astype(np.float32)
        return Detection(image_points, self.corner_points(), ids,
                         tuple(grid_extensions(gray, image_points, pattern)))


CORNER_REFINEMENTS = ("cornersubpix", "sb")


def refine_corners(gray: np.ndarray, corners: np.ndarray, pattern: tuple[int, int]) -> np.ndarray:
    """Chessboard corners (nx*ny, 1, 2) refined by cv2.cornerSubPix with a half-window of half
    the shortest distance between neighbouring corners (as ROS camera_calibration sizes it):
    as large as it can be without reaching the next corner, whatever the board's size in the
    image."""
    nx, ny = pattern
    pts = np.asarray(corners, np.float32).reshape(ny, nx, 2)
    gaps = [np.linalg.norm(np.diff(pts, axis=a), axis=-1).ravel() for a in (0, 1)]
    shortest = float(np.concatenate(gaps).min()) if sum(g.size for g in gaps) else 4.0
    half = max(2, int(np.ceil(0.5 * shortest)))
    return cv2.cornerSubPix(gray, pts.reshape(-1, 1, 2).copy(), (half, half), (-1, -1),
                            (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3))


@dataclass(eq=False)
class Detection:
    """Matched board corners in one image: image_points (N, 2), object_points (N, 3) in the
    board frame, ids (N,) corner ids; extends: the sides of the grid (left/right/top/bottom)
    where the printed chessboard carries on, i.e. the board is larger than declared."""

    image_points: np.ndarray
    object_points: np.ndarray
    ids: np.ndarray
    extends: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


# -- YAML I/O ---------------------------------------------------------------------------------


def load_board(path: str | os.PathLike) -> BoardSpec:
    """A BoardSpec from a board YAML file (fields of BoardSpec; unknown keys are an error)."""
    path = Path(path)
    doc = read_yaml_mapping(path, BoardError, "board")
    known = set(BoardSpec.__dataclass_fields__)
    unknown = sorted(set(doc) - known)
    if unknown:
        raise BoardError(f"{path}: unknown board field(s) {unknown}; known: {sorted(known)}")
    doc.setdefault("name", path.stem)
    try:
        return BoardSpec(**doc)
    except (TypeError, BoardError) as exc:
        raise BoardError(f"{path}: {exc}") from None


def save_board(path: str | os.PathLike, board: BoardSpec) -> None:
    """Write a board YAML file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(asdict(board), sort_keys=False))


def board_from_any(board) -> BoardSpec:
    """A BoardSpec from a BoardSpec, a YAML path, or a shipped board name (calibration/boards/<name>.yaml)."""
    if isinstance(board, BoardSpec):
        return board
    p = Path(board)
    if p.is_file():
        return load_board(p)

    if p.parent != Path("."):
        raise FileNotFoundError(f"board file not found: {board} (shipped boards: {', '.join(shipped_boards())})")
    stem = p.stem if p.suffix in (".yaml", ".yml") else p.name
    try:
        path = data_file("calibration", "boards", f"{stem}.yaml")
    except FileNotFoundError:
        raise BoardError(
            f"unknown board '{board}': not a board file and not a shipped board; shipped boards: "
            f"{', '.join(shipped_boards())}"
        ) from None
    return load_board(path)


def shipped_boards() -> list[str]:
    """Names of the boards shipped in calibration/boards/ (what `board=` accepts besides a path)."""
    try:
        folder = data_file("calibration", "boards")
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


# The board the simulator shows (calibration/boards/charuco_9x6_35mm.yaml): 40 corners on a
# 345 x 240 mm board; the markers stay >= 4 px per bit at the sim cameras' working distances.
SIM_BOARD = BoardSpec(
    kind="charuco", squares_x=9, squares_y=6, square_length=0.035, marker_length=0.026,
    dictionary="DICT_4X4_50", margin=0.015, name="charuco_9x6_35mm",
)

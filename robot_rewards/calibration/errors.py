"""Exceptions raised by calibration: each names the images, poses or files at fault."""

from __future__ import annotations


class CalibrationError(ValueError):
    """Calibration could not produce a trustworthy result from the given data."""


class ImageLoadError(CalibrationError):
    """A missing image folder, an empty one, or an unreadable image file."""


class BoardNotFoundError(CalibrationError):
    """The board was not detected in some (or all) images; `images` lists their names."""

    def __init__(self, images, detail: str = ""):
        self.images = list(images)
        names = ", ".join(self.images)
        super().__init__(
            f"calibration board not found in {len(self.images)} image(s): {names}"
            + (f" ({detail})" if detail else "")
        )


class NotEnoughViewsError(CalibrationError):
    """Fewer usable views (or robot poses) than the calibration needs."""


class ImageSizeError(CalibrationError):
    """Images of different sizes in one set, or images that do not match the intrinsics."""


class DegenerateMotionError(CalibrationError):
    """Robot motions that cannot determine a hand-eye transform (e.g. pure translations)."""


class PoseFileError(CalibrationError):
    """A robot-pose file with missing fields or images without poses."""


class BoardSizeError(CalibrationError):
    """The printed board has more corners than the board file declares (a sub-grid was found)."""

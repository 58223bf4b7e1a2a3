"""The console's optional OpenCV window: shows the overlay, turns keys into input lines and
records clicks (two clicks give the pixels of a demonstration)."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from robot_rewards.console import overlay

WINDOW_NAME = "robot-rewards console"


class Window:
    """An open OpenCV window (`Window.open` decides whether there is one)."""

    def __init__(self):
        self.cv2 = cv2
        cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE)
        cv2.setMouseCallback(WINDOW_NAME, self._on_mouse)
        self.scale = 1.0
        self.clicks: list[tuple[float, float]] = []  # camera pixels
        self.new_clicks: list[tuple[float, float]] = []

    @staticmethod
    def open(mode: str) -> Window | None:
        """A window for window=on, or for auto where a display exists; None otherwise."""
        if mode == "off":
            return None
        has_display = sys.platform in ("darwin", "win32") or bool(
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if mode == "auto" and not has_display:
            return None
        try:
            return Window()
        except Exception as exc:  # cv2.error: no GUI backend (opencv-python-headless)
            if mode == "on":
                raise ValueError(f"window=on but OpenCV cannot open a window ({' '.join(str(exc).split())}); "
                                 "install opencv-python "
                                 "(not -headless) and run with a display, or use window=off") from None
            return None

    def _on_mouse(self, event, x, y, flags, param) -> None:
        if event == self.cv2.EVENT_LBUTTONDOWN:
            uv = tuple(float(c) for c in overlay.from_display((x, y), self.scale))
            self.clicks = (self.clicks + [uv])[-2:]
            self.new_clicks.append(uv)

    def show(self, rgb: np.ndarray, scale: float) -> None:
        """Show an overlay drawn at `scale` (clicks are mapped back to camera pixels)."""
        self.scale = scale
        self.cv2.imshow(WINDOW_NAME, self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2BGR))
        self.cv2.waitKey(1)

    def poll(self, wait_ms: int) -> str | None:
        """A key typed in the window as an input line (Enter -> ""), or None."""
        key = self.cv2.waitKey(wait_ms)
        if key < 0:
            return None
        key &= 0xFF
        if key in (10, 13):
            return ""
        if key == 27:  # Esc: same as q
            return "q"
        return chr(key) if 32 <= key < 127 else None

    def close(self) -> None:
        """Close the window (never raises: the session is over anyway)."""
        try:
            self.cv2.destroyWindow(WINDOW_NAME)
            self.cv2.waitKey(1)
        except Exception:
            pass

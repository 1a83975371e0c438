"""The colour vocabulary shared by the generator, the patch statistics and the descriptions.

`PALETTE` maps a colour name to a prototype sRGB value; `name_of` names any RGB colour by its nearest
prototype in CIE Lab (OpenCV's conversion), so a part painted from a prototype (plus moderate jitter) is
named back with that prototype's name.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PALETTE", "NAMES", "PROTOTYPES_LAB", "name_of", "lab"]

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 130, 20),
    "yellow": (245, 215, 40),
    "green": (40, 150, 50),
    "teal": (20, 150, 150),
    "blue": (35, 75, 205),
    "purple": (125, 45, 165),
    "pink": (240, 140, 190),
    "brown": (120, 70, 30),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
}
NAMES: tuple[str, ...] = tuple(PALETTE)


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0..255 -> CIE Lab (..., 3) float32."""
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    flat = arr.reshape(-1, 1, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(arr.shape)


#: the palette prototypes in CIE Lab, in `NAMES` order
PROTOTYPES_LAB = lab(np.array(list(PALETTE.values()), dtype=np.float32))


def name_of(rgb) -> str:
    """Name of the palette colour nearest (in Lab) to `rgb` (0..255)."""
    d = np.linalg.norm(PROTOTYPES_LAB - lab(np.asarray(rgb, dtype=np.float32).reshape(1, 3)), axis=1)
    return NAMES[int(np.argmin(d))]

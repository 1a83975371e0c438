"""Local look around a keypoint: colour, brightness and edge energy of the patch inside its part.

The patch is the (2r+1) x (2r+1) window centred on the keypoint's pixel, clipped to the image and
restricted to the pixels of the keypoint's part (it always holds the keypoint's own pixel).

* mean colour: mean sRGB of the patch pixels, 0..1;
* dominant colour: every patch pixel is named with `colours.name_of`, and the most frequent name wins
  (equal counts: the earlier name in `colours.NAMES`), so a striped patch is named by its main stripe
  rather than by the blend of its stripes;
* brightness: mean BT.601 luma (0.299 R + 0.587 G + 0.114 B, as OpenCV's RGB2GRAY), 0..1;
* edge energy: mean 3x3 Sobel gradient magnitude of the grey image in 0..1, divided by its largest
  possible value sqrt(20) (reached at a corner of a black/white step), so it lies in 0..1.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from talking_points.pipeline.data import colours

__all__ = ["SOBEL_MAX", "edge_magnitude", "dominant_colour", "patch_stats"]

#: the largest 3x3 Sobel gradient magnitude of an image with values in [0, 1]
SOBEL_MAX = math.sqrt(20.0)

_LUMA = np.array([0.299, 0.587, 0.114])


def edge_magnitude(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 Sobel gradient magnitude of an (H, W, 3) uint8 RGB image's grey version, in 0..1.

    Computed from OpenCV's integer Sobel responses with a correctly rounded float64 square root, so the
    values are bit-identical in every run: OpenCV's float32 Sobel and `cv2.magnitude` take SIMD or scalar
    paths depending on the buffers' alignment, which changed about 1 keypoint in 400 by ~1e-8 between runs
    of the same commit."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3).astype(np.float64)
    gy = cv2.Sobel(grey, cv2.CV_16S, 0, 1, ksize=3).astype(np.float64)
    magnitude = np.sqrt(gx * gx + gy * gy) / (255.0 * SOBEL_MAX)
    return np.clip(magnitude, 0.0, 1.0).astype(np.float32)


def dominant_colour(pixels: np.ndarray) -> str:
    """The most frequent `colours.name_of` of (N, 3) uint8 RGB pixels (ties: `colours.NAMES` order)."""
    votes = np.bincount(colours.name_indices(pixels.reshape(-1, 3)), minlength=len(colours.NAMES))
    return colours.NAMES[int(np.argmax(votes))]  # argmax: the first of equal counts, i.e. `NAMES` order


def patch_stats(
    rgb: np.ndarray, edges: np.ndarray, part_mask: np.ndarray, col: int, row: int, radius: int
) -> dict[str, float | str]:
    """Patch columns (patch_r/g/b, patch_colour, patch_brightness, patch_edge_energy) at pixel (col, row).

    `edges` is `edge_magnitude(rgb)`; `part_mask` the (H, W) mask of the keypoint's part, which must hold
    (col, row).
    """
    h, w = part_mask.shape
    if not part_mask[row, col]:
        raise ValueError(f"pixel ({col}, {row}) is not in the part mask")
    r0, r1 = max(row - radius, 0), min(row + radius + 1, h)
    c0, c1 = max(col - radius, 0), min(col + radius + 1, w)
    inside = part_mask[r0:r1, c0:c1]
    pixels = rgb[r0:r1, c0:c1][inside]
    mean = pixels.astype(np.float64).mean(axis=0) / 255.0
    return {
        "patch_r": float(mean[0]),
        "patch_g": float(mean[1]),
        "patch_b": float(mean[2]),
        "patch_colour": dominant_colour(pixels),
        "patch_brightness": float(mean @ _LUMA),
        "patch_edge_energy": float(edges[r0:r1, c0:c1][inside].astype(np.float64).mean()),
    }

"""The two pictures the VLM passes look at: the full image with the point marked, and a Gaussian-masked
crop centred on the point.

Sizes are fractions of the image's shorter side (with a floor in pixels), so the marker and the crop look
the same to a VLM that resizes every image to a few hundred pixels, whatever the source resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.keypoints.mine import read_image
from talking_points.pipeline.synthesis.model_config import CropConfig, MarkerConfig, MarkerShape

__all__ = ["image_path", "check_image", "read_image", "mark_point", "gaussian_crop", "gaussian_weights"]


def image_path(file: str, root: str | os.PathLike | None) -> Path:
    """The keypoints table's `file`, resolved against `root` (default: the working directory) when relative."""
    path = Path(file)
    return path if path.is_absolute() else Path(root if root is not None else Path.cwd()) / path


def check_image(path: Path, width: int, height: int) -> None:
    """Raise `BadInput` naming `path` when the file is missing, unreadable, or not `width` x `height`
    (reads the header only)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise BadInput(str(path), "missing image file")
    try:
        with Image.open(path) as im:
            size = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInput(str(path), "unreadable image", str(exc)) from None
    if size != (width, height):
        raise BadInput(str(path), "image size disagrees with keypoints table",
                       f"file is {size[0]}x{size[1]}, table says {width}x{height}")


def _shorter(image: np.ndarray) -> int:
    return int(min(image.shape[:2]))


def mark_point(image: np.ndarray, x: float, y: float, marker: MarkerConfig) -> np.ndarray:
    """A copy of `image` (H, W, 3 RGB uint8) with the point (x, y), in pixels, marked."""
    out = np.ascontiguousarray(image.copy())
    radius = max(marker.min_radius_px, int(round(marker.radius * _shorter(image))))
    thickness = max(1, int(round(marker.thickness * radius)))
    centre = (int(np.floor(x)), int(np.floor(y)))
    colour = tuple(int(c) for c in marker.colour)
    if marker.shape is MarkerShape.circle:
        cv2.circle(out, centre, radius, colour, thickness, lineType=cv2.LINE_AA)
    elif marker.shape is MarkerShape.cross:
        cv2.drawMarker(out, centre, colour, cv2.MARKER_CROSS, 2 * radius, thickness, line_type=cv2.LINE_AA)
    else:
        raise ValueError(f"unknown marker shape {marker.shape!r}")
    return out


def gaussian_weights(side: int, sigma_px: float) -> np.ndarray:
    """(side, side) float32 weights, 1 at the centre, falling off as a Gaussian of `sigma_px`."""
    g = cv2.getGaussianKernel(side, sigma_px, cv2.CV_32F)[:, 0]
    g = g / g.max()
    return np.outer(g, g)


def gaussian_crop(image: np.ndarray, x: float, y: float, crop: CropConfig) -> np.ndarray:
    """A square crop of `image` centred on (x, y) whose pixels fade to `crop.fill` away from the centre.

    Parts of the crop outside the image repeat the border pixels (then fade like the rest)."""
    side = max(crop.min_size_px, int(round(crop.size * _shorter(image))))
    # getRectSubPix puts pixel (col, row)'s centre at (col, row); the table puts it at (col + 0.5, row + 0.5)
    patch = cv2.getRectSubPix(image, (side, side), (float(x) - 0.5, float(y) - 0.5))
    w = gaussian_weights(side, crop.sigma * side)[..., None]
    out = patch.astype(np.float32) * w + float(crop.fill) * (1.0 - w)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

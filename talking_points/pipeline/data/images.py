"""The one image reader of the project: mining, training, pretraining, inference, the demo and every picture
read an image file through `read_rgb`, so all of them see the same pixels.

EXIF orientation is IGNORED: the pixels come back as stored in the file, never rotated or flipped. Every
annotation the project reads is in the stored pixel grid (COCO / AP-10K widths, heights and keypoints,
Pascal-Part masks, ADE20K and PartImageNet masks are arrays of the raw pixels), and so are the mined
keypoints; a reader that applied the orientation tag (`cv2.IMREAD_COLOR` alone, `PIL.ImageOps.exif_transpose`)
would hand the models a JPEG rotated against its own points.
"""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from talking_points.pipeline.data.errors import BadInput

__all__ = ["MISSING_IMAGE_FILE", "CORRUPT_IMAGE", "UNREADABLE_IMAGE", "read_rgb"]

MISSING_IMAGE_FILE = "missing image file"
CORRUPT_IMAGE = "corrupt image"  # Pillow knows the format but the data stops or breaks before the end
UNREADABLE_IMAGE = "unreadable image"  # OpenCV cannot decode the file at all

_DECODE = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def _check_complete(data: np.ndarray, path: str) -> None:
    """BadInput(path, CORRUPT_IMAGE) unless Pillow decodes the file's bytes to the end.

    `cv2.imread` decodes a truncated JPEG with only a warning on stderr, padding the missing rows with
    grey, and `cv2.imdecode` only says that it failed. Pillow (with its default
    `ImageFile.LOAD_TRUNCATED_IMAGES = False`) says why. A format Pillow does not know is left to OpenCV.
    """
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            im.load()
    except UnidentifiedImageError:
        return
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(path, CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}") from None


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file exactly as stored: EXIF orientation ignored (see the
    module doc), grey and RGBA files as 3-channel RGB.

    The file must decode completely. BadInput naming the file, with the reason MISSING_IMAGE_FILE (no such
    file), CORRUPT_IMAGE (truncated or corrupt, see `_check_complete`) or UNREADABLE_IMAGE (empty, or a
    file OpenCV cannot decode).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BadInput(path, MISSING_IMAGE_FILE)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise BadInput(path, UNREADABLE_IMAGE, str(exc)) from None
    if not data.size:
        raise BadInput(path, UNREADABLE_IMAGE, "empty file")
    _check_complete(data, path)
    try:
        bgr = cv2.imdecode(data, _DECODE)
    except cv2.error as exc:
        raise BadInput(path, UNREADABLE_IMAGE, str(exc).strip()) from None
    if bgr is None:
        raise BadInput(path, UNREADABLE_IMAGE, "OpenCV could not decode it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

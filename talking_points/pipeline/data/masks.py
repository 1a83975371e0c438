"""Binary masks <-> COCO run-length encodings, and the boxes and areas derived from them."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

__all__ = ["encode", "decode", "bbox", "area"]


def encode(mask: np.ndarray) -> str:
    """Encode a 2-D boolean/0-1 mask as the ASCII `counts` string of a COCO RLE."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return rle["counts"].decode("ascii")


def decode(counts: str, height: int, width: int) -> np.ndarray:
    """Decode a `counts` string (as written by `encode`) into a (height, width) boolean mask."""
    rle = {"size": [int(height), int(width)], "counts": counts.encode("ascii")}
    return coco_mask.decode(rle).astype(bool)


def bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel box [x0, x1) x [y0, y1) of the true pixels; raises ValueError on an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("empty mask has no bounding box")
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def area(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))

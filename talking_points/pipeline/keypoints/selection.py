"""Which detected keypoints are kept: on a part, away from its border, strongest first, spread out.

* A keypoint belongs to the part whose mask holds the pixel containing it (`sift.pixel_of`). Where part
  masks overlap, the smaller part (fewer pixels) wins, then the one listed first; pixels in no part are
  background and their keypoints are dropped.
* Border distance (`border_distance`) is OpenCV's exact Euclidean distance transform of the part mask:
  the distance from the pixel's centre to the nearest pixel centre outside the part, where everything
  outside the image counts as outside the part. A part pixel with a non-part 4-neighbour has distance 1.
* `select` ranks by SIFT response (ties: smaller y, then smaller x, then larger size) and keeps greedily
  up to `top_k`, skipping a keypoint whose part already has one (`one_per_part`), that lies closer than
  `min_separation_px` to a kept one, or that sits exactly on a kept one (SIFT repeats a point once per
  dominant orientation).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from talking_points.pipeline.keypoints.sift import Candidates

__all__ = ["part_labels", "border_distance", "select"]

BACKGROUND = -1


def part_labels(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 map of the index in `masks` of the part owning each pixel; -1 for background."""
    labels = np.full(shape, BACKGROUND, dtype=np.int32)
    areas = [int(np.count_nonzero(m)) for m in masks]
    # paint the largest first so smaller parts overwrite it; equal areas: the earlier one is painted last
    for k in sorted(range(len(masks)), key=lambda i: (-areas[i], -i)):
        labels[masks[k]] = k
    return labels


def border_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32: for each pixel of `mask`, the distance to the nearest pixel centre outside it; 0 outside.

    The image border counts as outside: the mask is padded with one ring of background before the transform.
    Computed on the mask's bounding box (plus the ring), which gives the same values as the whole image.
    OpenCV's exact transform returns float32 square roots of integer squared distances whose last bit
    depends on its code path (SIMD or not, by alignment); they are recomputed as correctly rounded roots of
    those integers, so the values are bit-identical in every run.
    """
    out = np.zeros(mask.shape, dtype=np.float32)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.pad(mask[r0:r1, c0:c1].astype(np.uint8), 1)
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    squared = np.rint(dist[1:-1, 1:-1].astype(np.float64) ** 2)
    out[r0:r1, c0:c1] = np.sqrt(squared)
    return out


def select(
    cands: Candidates,
    part: np.ndarray,
    top_k: int,
    one_per_part: bool,
    min_separation_px: float,
) -> np.ndarray:
    """Indices into `cands` of the kept keypoints, strongest first. `part[i]` is candidate i's part index."""
    order = np.lexsort((-cands.size, cands.x, cands.y, -cands.response))
    kept: list[int] = []
    used_parts: set[int] = set()
    for i in order:
        if len(kept) == top_k:
            break
        if one_per_part and int(part[i]) in used_parts:
            continue
        if kept:
            d = np.hypot(cands.x[kept] - cands.x[i], cands.y[kept] - cands.y[i])
            if np.any(d == 0) or np.any(d < min_separation_px):
                continue
        kept.append(int(i))
        used_parts.add(int(part[i]))
    return np.array(kept, dtype=np.int64)

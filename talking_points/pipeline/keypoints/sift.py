"""SIFT keypoint detection on a grey image, returned in the tables' pixel convention.

OpenCV puts the centre of pixel (col, row) at the integer point (col, row); the tables put it at
(col + 0.5, row + 0.5) (see `talking_points.pipeline.data.schema`). `detect` converts, so every x, y
leaving this module is in the tables' convention, and `pixel_of` maps such a point back to the pixel
that contains it.

OpenCV's default upscaling of the first octave maps pixel index x of the doubled image to x / 2, which
puts every keypoint 0.25 px right of and below the structure it found (a blob centred on pixel (50, 40)
comes back at (50.25, 40.25)); `SiftConfig.precise_upscale` (on by default) turns on OpenCV's
`enable_precise_upscale`, which removes that bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talking_points.pipeline.keypoints.config import SiftConfig

__all__ = ["Candidates", "CV_TO_TABLE", "detect", "pixel_of"]

#: added to an OpenCV keypoint coordinate to get the tables' coordinate
CV_TO_TABLE = 0.5


@dataclass(frozen=True)
class Candidates:
    """Detected keypoints as parallel float64 arrays; x, y in the tables' convention (pixel centre at +0.5)."""

    x: np.ndarray
    y: np.ndarray
    size: np.ndarray
    response: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)

    def take(self, index: np.ndarray) -> "Candidates":
        """The candidates at `index` (an integer or boolean array), in that order."""
        return Candidates(self.x[index], self.y[index], self.size[index], self.response[index])


def detect(grey: np.ndarray, cfg: SiftConfig) -> Candidates:
    """SIFT keypoints of a (H, W) uint8 image, with `cfg`'s detector parameters."""
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {grey.dtype} {grey.shape}")
    sift = cv2.SIFT_create(
        nfeatures=cfg.n_features,
        nOctaveLayers=cfg.n_octave_layers,
        contrastThreshold=cfg.contrast_threshold,
        edgeThreshold=cfg.edge_threshold,
        sigma=cfg.sigma,
        enable_precise_upscale=cfg.precise_upscale,
    )
    kps = sift.detect(grey, None)
    if not kps:
        empty = np.zeros(0, dtype=np.float64)
        return Candidates(empty, empty, empty, empty)
    pts = np.array([k.pt for k in kps], dtype=np.float64) + CV_TO_TABLE
    return Candidates(
        x=pts[:, 0],
        y=pts[:, 1],
        size=np.array([k.size for k in kps], dtype=np.float64),
        response=np.array([k.response for k in kps], dtype=np.float64),
    )


def pixel_of(x: np.ndarray, y: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(col, row) of the pixels containing the points (x, y) in the tables' convention, clipped to the image."""
    col = np.clip(np.floor(np.asarray(x)).astype(np.int64), 0, width - 1)
    row = np.clip(np.floor(np.asarray(y)).astype(np.int64), 0, height - 1)
    return col, row

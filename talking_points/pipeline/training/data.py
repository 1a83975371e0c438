"""Datasets over the samples tables: images decoded and resized once, rows as dicts."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from talking_points.pipeline.data.errors import BadInput

__all__ = ["load_image", "ImagesBySize", "PointSamples", "stack"]


def load_image(file: str, size: tuple[int, int]) -> np.ndarray:
    """(3, H, W) uint8 RGB of `file` resized to size = (H, W); BadInput naming the file if unreadable."""
    bgr = cv2.imread(file, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInput(file, "unreadable image")
    h, w = size
    rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


class ImagesBySize:
    """The images of a list of files, decoded once per input size asked for: a descriptor and a localizer built
    on different bases take different (H, W), and each must get its own. Lives as long as the object."""

    def __init__(self, files: list[str]):
        self.files = list(files)
        self._by_size: dict[tuple[int, int], np.ndarray] = {}

    def at(self, size: tuple[int, int]) -> np.ndarray:
        """(N, 3, H, W) uint8 of every file at size = (H, W)."""
        size = (int(size[0]), int(size[1]))
        if size not in self._by_size:
            self._by_size[size] = np.stack([load_image(f, size) for f in self.files])
        return self._by_size[size]


class PointSamples(Dataset):
    """Rows of a samples table: image (uint8, base size), normalised point, text columns, ids.

    Images are decoded once per distinct file at construction (a 192x144 PNG resized to 128x96 is 37 KB),
    so epochs do not re-read the disk; the cache lives and dies with the dataset object.
    """

    def __init__(self, samples: pd.DataFrame, image_size: tuple[int, int], text_columns: tuple[str, ...] = ("description",)):
        if samples.empty:
            raise ValueError("no samples to train on")
        self.rows = samples.reset_index(drop=True)
        for c in ("file", "x_norm", "y_norm", *text_columns):
            if c not in self.rows:
                raise KeyError(f"samples table lacks column {c!r}")
        self.text_columns = text_columns
        files = self.rows["file"].astype(str)
        uniq = pd.unique(files)
        self._index = {f: i for i, f in enumerate(uniq)}
        self._images = np.stack([load_image(f, image_size) for f in uniq])
        self._img_of_row = files.map(self._index).to_numpy()
        self._points = np.array(self.rows[["x_norm", "y_norm"]].to_numpy(np.float32))  # writable copy

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        item = {
            "index": i,
            "image": torch.from_numpy(self._images[self._img_of_row[i]]),
            "point": torch.from_numpy(self._points[i]),
        }
        for c in self.text_columns:
            item[c] = str(self.rows.at[i, c])
        return item


def stack(items: list[dict]) -> dict:
    """Default part of every collate: tensors stacked, strings listed."""
    out: dict = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out

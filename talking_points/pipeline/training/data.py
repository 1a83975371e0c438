"""Datasets over the samples tables: images decoded and resized once, rows as dicts."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from talking_points.pipeline.data.images import read_rgb
from talking_points.pipeline.models.feature_store import FeatureStore

__all__ = ["load_image", "resize_rgb", "ImagesBySize", "PointSamples", "stack"]


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(3, H, W) uint8 of an (h, w, 3) RGB image at size = (H, W): area resampling, as every model input."""
    h, w = size
    out = cv2.resize(np.ascontiguousarray(rgb[..., :3]), (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def load_image(file: str, size: tuple[int, int]) -> np.ndarray:
    """(3, H, W) uint8 RGB of `file` resized to size = (H, W): the stored pixels, EXIF orientation ignored
    (`data.images.read_rgb`, the reader mining used); BadInput naming the file if missing or unreadable."""
    return resize_rgb(read_rgb(file), size)


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
    """Rows of a samples table: image (uint8, base size), normalised point, text columns, integer label columns
    (tensors: the targets of an auxiliary loss), ids.

    Images are decoded once per distinct file at construction (a 192x144 PNG is 83 KB), so epochs do not
    re-read the disk; the cache lives and dies with the dataset object. With a frozen vision tower,
    `cache_vision` also computes the tower's features once per image, and every row then carries them
    (`vision_maps`, `vision_category`, `vision_part`) so that no training step runs the tower.
    """

    def __init__(self, samples: pd.DataFrame, image_size: tuple[int, int],
                 text_columns: tuple[str, ...] = ("description",), label_columns: tuple[str, ...] = ()):
        if samples.empty:
            raise ValueError("no samples to train on")
        self.rows = samples.reset_index(drop=True)
        for c in ("file", "x_norm", "y_norm", *text_columns, *label_columns):
            if c not in self.rows:
                raise KeyError(f"samples table lacks column {c!r}")
        self.text_columns = text_columns
        self._labels = {c: torch.tensor(self.rows[c].to_numpy(np.int64)) for c in label_columns}
        files = self.rows["file"].astype(str)
        uniq = pd.unique(files)
        self._index = {f: i for i, f in enumerate(uniq)}
        self._images = np.stack([load_image(f, image_size) for f in uniq])
        self._img_of_row = files.map(self._index).to_numpy()
        self._points = np.array(self.rows[["x_norm", "y_norm"]].to_numpy(np.float32))  # writable copy
        self._maps: list[torch.Tensor] | None = None
        self._category: torch.Tensor | None = None
        self._part: torch.Tensor | None = None

    @property
    def n_images(self) -> int:
        return len(self._images)

    def cache_vision(self, model, store: FeatureStore | None = None, progress: str | None = None,
                     dtype: torch.dtype = torch.float16) -> None:
        """Compute the frozen tower's features of every distinct image once (`model.vision_features`, kept as
        `dtype` on the CPU), from `store` where it holds them (`models.feature_store`; None: computed here)."""
        feats = (store or FeatureStore(None)).features(model, self._images, dtype=dtype, progress=progress)
        self._maps, self._category, self._part = list(feats.maps), feats.category_logits, feats.part_logits

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        img = self._img_of_row[i]
        item = {
            "index": i,
            "image": torch.from_numpy(self._images[img]),
            "point": torch.from_numpy(self._points[i]),
        }
        if self._maps is not None:
            item["vision_maps"] = tuple(m[img] for m in self._maps)
            if self._category is not None:
                item["vision_category"] = self._category[img]
            if self._part is not None:
                item["vision_part"] = self._part[img]
        for c in self.text_columns:
            item[c] = str(self.rows.at[i, c])
        for c, labels in self._labels.items():
            item[c] = labels[i]
        return item


def stack(items: list[dict]) -> dict:
    """Default part of every collate: tensors stacked (tuples of tensors element-wise), strings listed."""
    out: dict = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if isinstance(vals[0], torch.Tensor):
            out[k] = torch.stack(vals)
        elif isinstance(vals[0], tuple) and vals[0] and isinstance(vals[0][0], torch.Tensor):
            out[k] = tuple(torch.stack(level) for level in zip(*vals))
        else:
            out[k] = vals
    return out

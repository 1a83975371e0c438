"""Datasets over the samples tables: images decoded and resized once, rows as dicts."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from talking_points.pipeline.data.images import read_rgb
from talking_points.pipeline.progress import track

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
    """Rows of a samples table: image (uint8, base size), normalised point, text columns, ids.

    Images are decoded once per distinct file at construction (a 192x144 PNG is 83 KB), so epochs do not
    re-read the disk; the cache lives and dies with the dataset object. With a frozen vision tower,
    `cache_vision` also computes the tower's features once per image, and every row then carries them
    (`vision_maps`, `vision_category`, `vision_part`) so that no training step runs the tower.
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
        self._maps: list[torch.Tensor] | None = None
        self._category: torch.Tensor | None = None
        self._part: torch.Tensor | None = None

    @property
    def n_images(self) -> int:
        return len(self._images)

    @torch.no_grad()
    def cache_vision(self, encode: Callable[[torch.Tensor], object], batch_size: int = 64,
                     dtype: torch.dtype = torch.float16, device: torch.device | str = "cpu",
                     progress: str | None = None) -> None:
        """Run `encode` (uint8 images (B, 3, H, W) -> `VisionFeatures`, e.g. a frozen model's
        `vision_features`) once over every distinct image and keep the result (as `dtype`, on the CPU)."""
        maps: list[list[torch.Tensor]] = []
        cats: list[torch.Tensor] = []
        parts: list[torch.Tensor] = []
        starts = range(0, self.n_images, batch_size)
        for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
            feats = encode(torch.from_numpy(self._images[s : s + batch_size]).to(device))
            maps.append([m.to("cpu", dtype) for m in feats.maps])
            if feats.category_logits is not None:
                cats.append(feats.category_logits.to("cpu", dtype))
            if feats.part_logits is not None:
                parts.append(feats.part_logits.to("cpu", dtype))
        self._maps = [torch.cat(level) for level in zip(*maps)]
        self._category = torch.cat(cats) if cats else None
        self._part = torch.cat(parts) if parts else None

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

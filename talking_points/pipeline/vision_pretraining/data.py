"""Images and their dense label maps, for training the tower and for measuring it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from talking_points.pipeline.progress import track
from talking_points.pipeline.training.data import load_image
from talking_points.pipeline.vision_pretraining.labels import LabelSet, label_maps

__all__ = ["DenseImages", "dense_images"]


@dataclass
class DenseImages(Dataset):
    """N images (N, 3, H, W) uint8 with their category and part maps (N, H, W) uint8, at the tower's size."""

    image_ids: list[str]
    images: np.ndarray
    categories: np.ndarray
    parts: np.ndarray

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.from_numpy(self.images[i]), "category": torch.from_numpy(self.categories[i]),
                "part": torch.from_numpy(self.parts[i])}


def dense_images(images: pd.DataFrame, objects: pd.DataFrame, parts: pd.DataFrame, labels: LabelSet,
                 size: tuple[int, int], progress: str | None = None) -> DenseImages:
    """Decode every image of `images` (rows of the ingested images tables, `file` resolved) at `size` = (H, W)
    and paint its label maps from its object and part rows."""
    obj_by = {k: g for k, g in objects.groupby("image_id", sort=False)}
    part_by = {k: g for k, g in parts.groupby("image_id", sort=False)}
    empty_o, empty_p = objects.iloc[:0], parts.iloc[:0]
    ims, cats, prts = [], [], []
    rows = images.to_dict(orient="records")
    for row in track(rows, progress, unit="image") if progress else rows:
        ims.append(load_image(str(row["file"]), size))
        c, p = label_maps(int(row["width"]), int(row["height"]), obj_by.get(row["image_id"], empty_o),
                          part_by.get(row["image_id"], empty_p), labels, size)
        cats.append(c)
        prts.append(p)
    h, w = size
    stack = lambda xs, shape: np.stack(xs) if xs else np.zeros((0, *shape), np.uint8)  # noqa: E731
    return DenseImages(list(images["image_id"]), stack(ims, (3, h, w)), stack(cats, (h, w)), stack(prts, (h, w)))

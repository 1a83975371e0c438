"""Images and their dense label maps, for training the tower and for measuring it."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.images import read_rgb
from talking_points.pipeline.parallel import process_pool
from talking_points.pipeline.progress import track
from talking_points.pipeline.vision_pretraining.labels import MAPS, LabelSet, label_maps

__all__ = ["DenseImages", "dense_images"]


@dataclass
class DenseImages(Dataset):
    """N images (N, 3, H, W) uint8 with their label maps `MAPS` (each (N, H, W) uint8) at the tower's size."""

    image_ids: list[str]
    images: np.ndarray
    maps: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.from_numpy(self.images[i]), **{k: torch.from_numpy(v[i]) for k, v in self.maps.items()}}


def _dense_one(row: dict, objects: pd.DataFrame, parts: pd.DataFrame, labels: LabelSet, size: tuple[int, int]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One image at `size` (3, H, W) and its label maps, painted from its pixels and its object and part rows."""
    rgb = read_rgb(str(row["file"]))  # as stored, EXIF orientation ignored: the masks' pixel grid
    if rgb.shape[:2] != (int(row["height"]), int(row["width"])):
        raise BadInput(row["file"], "mask size disagrees with image",
                       f"image is {rgb.shape[1]}x{rgb.shape[0]}, the images table says {row['width']}x{row['height']}")
    labelled = label_maps(rgb, objects, parts, labels, size)
    h, w = size
    image = np.ascontiguousarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA).transpose(2, 0, 1))
    return image, {k: labelled[k] for k in MAPS}


def dense_images(images: pd.DataFrame, objects: pd.DataFrame, parts: pd.DataFrame, labels: LabelSet,
                 size: tuple[int, int], progress: str | None = None, workers: int = 1) -> DenseImages:
    """Decode every image of `images` (rows of the ingested images tables, `file` resolved) at `size` = (H, W)
    and paint its label maps from its pixels and its object and part rows; `workers` > 1 spreads the images
    over that many processes (the same arrays, in the same order)."""
    obj_by = {k: g for k, g in objects.groupby("image_id", sort=False)}
    part_by = {k: g for k, g in parts.groupby("image_id", sort=False)}
    empty_o, empty_p = objects.iloc[:0], parts.iloc[:0]
    rows = images.to_dict(orient="records")
    args = ([obj_by.get(r["image_id"], empty_o) for r in rows], [part_by.get(r["image_id"], empty_p) for r in rows],
            [labels] * len(rows), [tuple(size)] * len(rows))
    with process_pool(workers) if workers > 1 and len(rows) > 1 else nullcontext() as pool:
        done = pool.map(_dense_one, rows, *args, chunksize=32) if pool else map(_dense_one, rows, *args)
        painted = list(track(done, progress, total=len(rows), unit="image") if progress else done)
    h, w = size
    stack = lambda xs, shape: np.stack(xs) if xs else np.zeros((0, *shape), np.uint8)  # noqa: E731
    return DenseImages(list(images["image_id"]), stack([im for im, _ in painted], (3, h, w)),
                       {k: stack([m[k] for _, m in painted], (h, w)) for k in MAPS})

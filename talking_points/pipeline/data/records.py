"""In-memory annotation records that every dataset adapter produces, and their conversion to table rows.

An adapter turns one sample of its native format into an `ImageRecord` (image + instance masks + part
masks). `record_rows` checks the record (mask sizes, empty masks) and returns the rows of the images /
objects / parts tables; problems become `BadInput` with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talking_points.pipeline.data import masks
from talking_points.pipeline.data.errors import BadInput, SkipLog

__all__ = ["PartRecord", "ObjectRecord", "ImageRecord", "record_rows"]


@dataclass
class PartRecord:
    name: str
    mask: np.ndarray  # (H, W) bool
    colour: str | None = None
    texture: str | None = None


@dataclass
class ObjectRecord:
    category: str
    mask: np.ndarray  # (H, W) bool, visible pixels of the instance
    parts: list[PartRecord] = field(default_factory=list)


@dataclass
class ImageRecord:
    """One annotated image. Real adapters set `file`; generators set `pixels` (H, W, 3 uint8 RGB)."""

    stem: str
    width: int
    height: int
    objects: list[ObjectRecord]
    file: Path | None = None
    pixels: np.ndarray | None = None
    origin: str = ""  # the annotation file this came from, for error messages


def _check_mask(mask: np.ndarray, rec: ImageRecord, what: str) -> np.ndarray:
    where = rec.origin or rec.stem
    if mask.ndim != 2:
        raise BadInput(where, "mask not 2-D", f"{what} has shape {mask.shape}")
    if mask.shape != (rec.height, rec.width):
        raise BadInput(
            where,
            "mask size disagrees with image",
            f"{what} mask is {mask.shape[1]}x{mask.shape[0]}, image is {rec.width}x{rec.height}",
        )
    return mask.astype(bool, copy=False)


def record_rows(rec: ImageRecord, source: str, file: str, skips: SkipLog) -> tuple[dict, list[dict], list[dict]]:
    """Rows (image, objects, parts) for one record.

    A mask whose size disagrees with the image makes the whole image bad (raises `BadInput`); an empty
    object or part is skipped on its own and counted in `skips` (or raised under the strict policy).
    """
    image_id = f"{source}/{rec.stem}"
    where = rec.origin or rec.stem
    image_row = {"image_id": image_id, "source": source, "file": file, "width": rec.width, "height": rec.height}
    objects, parts = [], []
    for k, obj in enumerate(rec.objects):
        omask = _check_mask(obj.mask, rec, f"object {k} ({obj.category})")
        if not omask.any():
            skips.handle(BadInput(where, "empty object", f"object {k} ({obj.category}) has no pixels"))
            continue
        object_id = f"{image_id}#o{k}"
        x0, y0, x1, y1 = masks.bbox(omask)
        objects.append(
            {
                "object_id": object_id,
                "image_id": image_id,
                "category": obj.category,
                "bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x1, "bbox_y1": y1,
                "area": masks.area(omask),
                "mask_rle": masks.encode(omask),
            }
        )
        for j, part in enumerate(obj.parts):
            pmask = _check_mask(part.mask, rec, f"part {part.name!r} of object {k}")
            if not pmask.any():
                skips.handle(BadInput(where, "empty part", f"part {part.name!r} of object {k} has no pixels"))
                continue
            x0, y0, x1, y1 = masks.bbox(pmask)
            parts.append(
                {
                    "part_id": f"{object_id}p{j}",
                    "object_id": object_id,
                    "image_id": image_id,
                    "part": part.name,
                    "bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x1, "bbox_y1": y1,
                    "area": masks.area(pmask),
                    "mask_rle": masks.encode(pmask),
                    "colour": part.colour,
                    "texture": part.texture,
                }
            )
    return image_row, objects, parts

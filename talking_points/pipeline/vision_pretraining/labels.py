"""Dense labels from the ingested tables: the object category and the part name of every pixel.

Part classes are part names shared across categories ("legs" of a dog, a chair and a person are one class):
the category map says whose legs they are, and shapes that recur across categories are learnt once.

Class 0 is background in both maps. A pixel of an object that no part covers gets `IGNORE` in the part map
(real datasets annotate only some parts). Objects are painted in table order and parts after their object, so
where visible masks overlap (real data), the later row wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from talking_points.pipeline.data import masks

__all__ = ["IGNORE", "LabelSet", "label_maps"]

IGNORE = 255


@dataclass(frozen=True)
class LabelSet:
    """The classes of the dense heads, in a fixed order (index 0 is background, so class i is names[i - 1])."""

    categories: tuple[str, ...]
    parts: tuple[str, ...]

    @classmethod
    def from_tables(cls, objects: pd.DataFrame, parts: pd.DataFrame) -> "LabelSet":
        """Every category and part name of the given (training) objects and parts, sorted."""
        cats, names = sorted(objects["category"].unique()), sorted(parts["part"].unique())
        if len(cats) + 1 > IGNORE or len(names) + 1 > IGNORE:
            raise ValueError(f"at most {IGNORE - 1} categories and parts fit the uint8 label maps")
        return cls(categories=tuple(cats), parts=tuple(names))

    def category_index(self, name: str) -> int:
        """Class of a category (IGNORE for one the heads were not trained on)."""
        return self.categories.index(name) + 1 if name in self.categories else IGNORE

    def part_index(self, name: str) -> int:
        return self.parts.index(name) + 1 if name in self.parts else IGNORE

    def to_dict(self) -> dict:
        return {"categories": list(self.categories), "parts": list(self.parts)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelSet":
        return cls(categories=tuple(d["categories"]), parts=tuple(d["parts"]))


def label_maps(width: int, height: int, objects: pd.DataFrame, parts: pd.DataFrame, labels: LabelSet,
               size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(category, part name) uint8 maps of one image from its object and part rows, at `size` = (H, W) (nearest
    neighbour) or the image's own size. Categories or parts outside `labels` (unseen in training) are IGNORE."""
    cat = np.zeros((height, width), np.uint8)
    part = np.zeros((height, width), np.uint8)
    for row in objects.itertuples(index=False):
        m = masks.decode(row.mask_rle, height, width)
        cat[m] = labels.category_index(row.category)
        part[m] = IGNORE  # until a part covers it
    for row in parts.itertuples(index=False):
        part[masks.decode(row.mask_rle, height, width)] = labels.part_index(row.part)
    if size is not None and (size[0], size[1]) != (height, width):
        cat = cv2.resize(cat, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        part = cv2.resize(part, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return cat, part

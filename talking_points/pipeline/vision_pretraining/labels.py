"""Dense labels of one image: what every pixel shows, for the tower's heads.

From the ingested tables: the object category and the part name (class 0 = background in both; part
classes are names shared across categories: the "leg" of a dog, a chair and a person is one class, the category
map says whose they are) and the part's annotated texture (generated data only). From the pixels themselves:
the colour name each pixel gets (`colours.name_of`, as the mined patch colour) and its brightness
(BT.601 luma, as the patch brightness). Together they are what a description's four levels need to know.

A pixel of an object that no part covers gets `IGNORE` in the part map (real datasets annotate only some
parts), and so do textures outside annotated parts. Objects are painted in table order and parts after their
object, so where visible masks overlap (real data), the later row wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from talking_points.pipeline.data import colours, masks

__all__ = ["IGNORE", "MAPS", "LabelSet", "label_maps", "colour_map"]

IGNORE = 255
MAPS = ("category", "part", "colour", "luma", "texture")  # the label maps of an image, in this order


def _names(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna() if str(v).strip()})


@dataclass(frozen=True)
class LabelSet:
    """The classes of the dense heads, in a fixed order (category / part class i is names[i - 1], 0 being
    background; colour and texture class i is names[i])."""

    categories: tuple[str, ...]
    parts: tuple[str, ...]
    textures: tuple[str, ...] = ()
    colours: tuple[str, ...] = colours.NAMES

    @classmethod
    def from_tables(cls, objects: pd.DataFrame, parts: pd.DataFrame) -> "LabelSet":
        """Every category, part name and part texture of the given (training) objects and parts, sorted."""
        cats, names = _names(objects["category"]), _names(parts["part"])
        textures = _names(parts["texture"]) if "texture" in parts else []
        if max(len(cats) + 1, len(names) + 1, len(textures)) > IGNORE:
            raise ValueError(f"at most {IGNORE - 1} categories, parts and textures fit the uint8 label maps")
        return cls(categories=tuple(cats), parts=tuple(names), textures=tuple(textures))

    def category_index(self, name: str) -> int:
        """Class of a category (IGNORE for one the heads were not trained on)."""
        return self.categories.index(name) + 1 if name in self.categories else IGNORE

    def part_index(self, name: str) -> int:
        return self.parts.index(name) + 1 if name in self.parts else IGNORE

    def texture_index(self, name) -> int:
        return self.textures.index(name) if isinstance(name, str) and name in self.textures else IGNORE

    def colour_index(self, name) -> int:
        return self.colours.index(name) if isinstance(name, str) and name in self.colours else IGNORE


def colour_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 index into `colours.NAMES` of every pixel of an (H, W, 3) uint8 RGB image (nearest
    colour prototype in Lab: `colours.name_indices`, exactly `colours.name_of` per pixel)."""
    return colours.name_indices(rgb).astype(np.uint8)


def label_maps(rgb: np.ndarray, objects: pd.DataFrame, parts: pd.DataFrame, labels: LabelSet,
               size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The uint8 maps `MAPS` of one image (its (H, W, 3) RGB pixels and its object and part rows), at
    `size` = (H, W) (nearest neighbour; colours and luma from the resized image) or the image's own size.
    Categories, parts or textures outside `labels` (unseen in training) are IGNORE."""
    height, width = rgb.shape[:2]
    cat = np.zeros((height, width), np.uint8)
    part = np.zeros((height, width), np.uint8)
    texture = np.full((height, width), IGNORE, np.uint8)
    for row in objects.itertuples(index=False):
        m = masks.decode(row.mask_rle, height, width)
        cat[m] = labels.category_index(row.category)
        part[m] = IGNORE  # until a part covers it
    for row in parts.itertuples(index=False):
        m = masks.decode(row.mask_rle, height, width)
        part[m] = labels.part_index(row.part)
        texture[m] = labels.texture_index(getattr(row, "texture", None))
    out = {"category": cat, "part": part, "texture": texture}
    if size is not None and (size[0], size[1]) != (height, width):
        out = {k: cv2.resize(v, (size[1], size[0]), interpolation=cv2.INTER_NEAREST) for k, v in out.items()}
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    out["colour"] = colour_map(rgb)
    out["luma"] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return {k: out[k] for k in MAPS}

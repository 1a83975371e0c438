"""Dense labels of one image: what every pixel shows, for the tower's heads.

From the ingested tables: the object category and the part name (class 0 = background in both; part
classes are names shared across categories: "legs" of a dog, a chair and a person are one class, the category
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
from talking_points.pipeline.keypoints.geometry import object_columns

__all__ = ["IGNORE", "INSTANCE_CLASSES", "INSTANCE_MAPS", "MAPS", "POSITION_MAPS", "POSITION_SCALE", "LabelSet",
           "colour_map", "instance_maps", "label_maps", "position_maps"]

IGNORE = 255
MAPS = ("category", "part", "colour", "luma", "texture", "part_x", "part_y", "part_cx", "part_cy", "n_same",
        "order_lr", "order_tb")
#: the instance maps (class k - 1 for k = 1 .. INSTANCE_CLASSES, the last class also for more; IGNORE outside
#: objects): how many objects of its category the image holds (n_same) and where its object ranks among them from
#: the left (order_lr) and from the top (order_tb), as a description's level 1 names the instance
#: (keypoints.geometry.object_columns)
INSTANCE_MAPS = ("n_same", "order_lr", "order_tb")
INSTANCE_CLASSES = 4
#: the position maps (0..POSITION_SCALE, IGNORE outside parts): where a pixel lies in its part's box (part_x,
#: part_y) and where its part's centre lies in its object's box (part_cx, part_cy), as a description's levels 3
#: and 2 say it (keypoints.geometry.point_columns / part_columns); x grows rightwards, y downwards
POSITION_MAPS = ("part_x", "part_y", "part_cx", "part_cy")
POSITION_SCALE = 254


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


def _unit_map(v: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(v, 0.0, 1.0) * POSITION_SCALE).astype(np.uint8)


def position_maps(objects: pd.DataFrame, parts: pd.DataFrame, height: int, width: int) -> dict[str, np.ndarray]:
    """`POSITION_MAPS` of one image from its object and part rows: for every pixel of a part, its pixel centre's
    position in the part's box and the part box's centre in its object's box (boxes of the masks, as ingest
    computes them; 0..1 scaled to 0..POSITION_SCALE); IGNORE elsewhere. Later parts overwrite earlier ones, as
    in `label_maps`."""
    out = {k: np.full((height, width), IGNORE, np.uint8) for k in POSITION_MAPS}
    boxes = {}
    for row in objects.itertuples(index=False):
        m = masks.decode(row.mask_rle, height, width)
        if m.any():
            boxes[row.object_id] = masks.bbox(m)
    xs = np.arange(width, dtype=np.float64) + 0.5
    ys = np.arange(height, dtype=np.float64) + 0.5
    for row in parts.itertuples(index=False):
        m = masks.decode(row.mask_rle, height, width)
        if not m.any():
            continue
        x0, y0, x1, y1 = masks.bbox(m)
        fx = _unit_map((xs - x0) / max(x1 - x0, 1e-6))
        fy = _unit_map((ys - y0) / max(y1 - y0, 1e-6))
        out["part_x"][m] = np.broadcast_to(fx[None, :], (height, width))[m]
        out["part_y"][m] = np.broadcast_to(fy[:, None], (height, width))[m]
        box = boxes.get(row.object_id)
        if box is not None:
            ox0, oy0, ox1, oy1 = box
            out["part_cx"][m] = _unit_map(np.array(((x0 + x1) / 2 - ox0) / max(ox1 - ox0, 1e-6)))
            out["part_cy"][m] = _unit_map(np.array(((y0 + y1) / 2 - oy0) / max(oy1 - oy0, 1e-6)))
    return out


def instance_maps(objects: pd.DataFrame, height: int, width: int) -> dict[str, np.ndarray]:
    """`INSTANCE_MAPS` of one image from its object rows (category, mask, pixel box, area), ranked exactly as
    mining ranks them (`keypoints.geometry.object_columns`); later objects overwrite earlier ones."""
    out = {k: np.full((height, width), IGNORE, np.uint8) for k in INSTANCE_MAPS}
    if objects.empty:
        return out
    rows, decoded = [], []
    for row in objects.to_dict(orient="records"):
        m = masks.decode(row["mask_rle"], height, width)
        if m.any():  # the box and area of the mask, as ingest computes them
            x0, y0, x1, y1 = masks.bbox(m)
            rows.append({**row, "bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x1, "bbox_y1": y1, "area": masks.area(m)})
            decoded.append(m)
    facts = object_columns(rows, width, height, edge_margin=0.0)
    for row, m in zip(rows, decoded):
        for k in INSTANCE_MAPS:
            out[k][m] = min(int(facts[row["object_id"]][k]), INSTANCE_CLASSES) - 1
    return out


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
    out = {"category": cat, "part": part, "texture": texture, **position_maps(objects, parts, height, width),
           **instance_maps(objects, height, width)}
    if size is not None and (size[0], size[1]) != (height, width):
        out = {k: cv2.resize(v, (size[1], size[0]), interpolation=cv2.INTER_NEAREST) for k, v in out.items()}
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    out["colour"] = colour_map(rgb)
    out["luma"] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return {k: out[k] for k in MAPS}

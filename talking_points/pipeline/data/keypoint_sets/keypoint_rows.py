"""Pose samples (`coco_keypoints.POSE_SAMPLES`) -> rows of the KEYPOINTS table, so that synthesis and the
models consume AP-10K / Animal-Pose keypoints like mined ones.

The geometry and look columns come from the same functions mining uses (`keypoints.geometry`,
`keypoints.patch`). What the pose datasets lack is replaced as follows (approximations, by design):

* Object box: the annotation's box, clipped to the image and grown to hold the pixels of the animal's own
  labelled keypoints. Object area: that box's area (AP-10K and Animal-Pose store the box area anyway).
  Objects of an image: its animals with at least one labelled keypoint.
* Part box (there are no part masks): the box around the labelled keypoints (visibility 1 or 2) of that
  part of that animal, padded on every side by `part_pad` times the longer side of the animal's box, then
  clipped to the animal's box. A one-keypoint part (neck, tail root) is a square around its point. Part
  area: that box's area; "border distance": the distance from the point to the part box's border.
* Patch statistics: the patch around the point restricted to the part box (instead of the part mask).
* `response` and `sift_size` are 0 (no SIFT detection); `part_colour` / `part_texture` are null.

`image_rows` is the pure function for one image's samples and pixels; `pose_keypoint_rows` reads the
images and runs it over a whole samples table.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from talking_points.pipeline.config import Section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.errors import BadInput, OnError, SkipLog
from talking_points.pipeline.data.keypoint_sets.layouts import LAYOUTS, PartGranularity
from talking_points.pipeline.keypoints import geometry, patch
from talking_points.pipeline.keypoints.mine import read_image
from talking_points.pipeline.progress import track

__all__ = ["PoseRowsConfig", "animal_boxes", "part_boxes", "part_index", "image_rows", "pose_keypoint_rows"]


class PoseRowsConfig(Section):
    """How pose samples become KEYPOINTS rows."""


    part_pad: float = Field(0.08, gt=0, le=1, description="padding around a part's keypoints, as a fraction "
                            "of the longer side of the animal's box")
    min_visibility: int = Field(2, ge=1, le=2, description="keypoints with a lower visibility get no row "
                                "(2: visible only; 1: also labelled-but-occluded ones)")
    patch_radius: int = Field(4, ge=1, description="half-size in pixels of the patch for the local "
                              "statistics")
    edge_margin: float = Field(0.05, ge=0, le=0.5, description="an object box this close (normalised) to an "
                               "image edge is 'near' that edge")


Box = tuple[float, float, float, float]


def animal_boxes(samples: pd.DataFrame, width: int, height: int) -> dict[Hashable, Box]:
    """Object box of every animal (object_id) of one image's samples: the annotated box clipped to the
    image, grown to hold its keypoints' pixels."""
    boxes = {}
    for object_id, rows in samples.groupby("object_id", sort=False):
        first = rows.iloc[0]
        cols, rws = np.floor(rows["x"].to_numpy()), np.floor(rows["y"].to_numpy())
        x0 = min(max(float(first["bbox_x0"]), 0.0), float(cols.min()))
        y0 = min(max(float(first["bbox_y0"]), 0.0), float(rws.min()))
        x1 = max(min(float(first["bbox_x1"]), float(width)), float(cols.max()) + 1.0)
        y1 = max(min(float(first["bbox_y1"]), float(height)), float(rws.max()) + 1.0)
        boxes[object_id] = (x0, y0, x1, y1)
    return boxes


def part_boxes(animal: pd.DataFrame, box: Box, pad_fraction: float) -> dict[str, Box]:
    """Box of every part (by name) of one animal's samples, from its keypoints (see the module doc)."""
    pad = pad_fraction * max(box[2] - box[0], box[3] - box[1])
    out = {}
    for part, rows in animal.groupby("part", sort=False):
        xs, ys = rows["x"].to_numpy(dtype=np.float64), rows["y"].to_numpy(dtype=np.float64)
        out[str(part)] = (
            max(float(xs.min()) - pad, box[0]),
            max(float(ys.min()) - pad, box[1]),
            min(float(xs.max()) + pad, box[2]),
            min(float(ys.max()) + pad, box[3]),
        )
    return out


def _box_row(box: Box, **extra) -> dict:
    x0, y0, x1, y1 = box
    return {"bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x1, "bbox_y1": y1, "area": (x1 - x0) * (y1 - y0),
            **extra}


def _box_mask(box: Box, height: int, width: int) -> np.ndarray:
    """The pixels whose area meets the box."""
    mask = np.zeros((height, width), dtype=bool)
    c0, r0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
    c1, r1 = min(math.ceil(box[2]), width), min(math.ceil(box[3]), height)
    mask[r0:r1, c0:c1] = True
    return mask


def part_index(layout: str, part: str) -> int:
    """Index of `part` among its layout's parts (`KeypointLayout.parts`): the j of part_id '...p<j>'."""
    for granularity in PartGranularity:
        parts = LAYOUTS[layout].parts(granularity)
        if part in parts:
            return parts.index(part)
    raise ValueError(f"{part!r} is not a part of layout {layout!r}")


def image_rows(samples: pd.DataFrame, rgb: np.ndarray, cfg: PoseRowsConfig) -> list[dict]:
    """KEYPOINTS rows (dicts with every `schema.KEYPOINTS` column) of one image's pose samples.

    `samples` are the image's rows of a `POSE_SAMPLES` table, `rgb` its (H, W, 3) uint8 pixels. Rows come
    animal by animal, each in the samples' order; kp_id, part and the identity columns are the samples'.
    """
    if samples["image_id"].nunique() != 1:
        raise ValueError(f"image_rows takes one image's samples, got {samples['image_id'].unique()[:3]}")
    first = samples.iloc[0]
    width, height = int(first["width"]), int(first["height"])
    if rgb.shape[:2] != (height, width):
        raise BadInput(first["file"], "mask size disagrees with image",
                       f"image is {rgb.shape[1]}x{rgb.shape[0]}, samples say {width}x{height}")
    obj_boxes = animal_boxes(samples, width, height)
    category = samples.groupby("object_id", sort=False)["category"].first()
    objects = [_box_row(box, object_id=oid, category=str(category[oid])) for oid, box in obj_boxes.items()]
    obj_cols = geometry.object_columns(objects, width, height, cfg.edge_margin)
    edges = patch.edge_magnitude(rgb)
    rows = []
    for obj, (oid, animal) in zip(objects, samples.groupby("object_id", sort=False)):
        boxes = part_boxes(animal, obj_boxes[oid], cfg.part_pad)
        masks = {name: _box_mask(box, height, width) for name, box in boxes.items()}
        for s in animal.itertuples(index=False):
            if s.visibility < cfg.min_visibility:
                continue
            box = boxes[s.part]
            prow = _box_row(box)
            x, y = float(s.x), float(s.y)
            rows.append(
                {
                    "kp_id": s.kp_id,
                    "image_id": s.image_id,
                    "source": s.source,
                    "file": s.file,
                    "width": width,
                    "height": height,
                    "object_id": s.object_id,
                    "category": s.category,
                    "part_id": f"{s.object_id}p{part_index(s.layout, s.part)}",
                    "part": s.part,
                    "response": 0.0,
                    "sift_size": 0.0,
                    "border_dist": min(x - box[0], box[2] - x, y - box[1], box[3] - y),
                    **geometry.point_columns(x, y, prow, width, height),
                    **obj_cols[oid],
                    **geometry.part_columns(prow, obj, len(boxes), width, height),
                    **geometry.LONE_PART,  # one box per part name: a coarse 'legs' is the group of legs
                    **patch.patch_stats(rgb, edges, masks[s.part], math.floor(x), math.floor(y),
                                        cfg.patch_radius),
                    "part_colour": None,
                    "part_texture": None,
                }
            )
    return rows


def pose_keypoint_rows(
    samples: pd.DataFrame,
    cfg: PoseRowsConfig,
    root: str | Path | None = None,
    on_error: OnError = OnError.skip,
) -> tuple[pd.DataFrame, SkipLog]:
    """KEYPOINTS rows of every image of a `POSE_SAMPLES` table (images in table order).

    Relative image files are resolved against `root` (default: the working directory). A missing,
    unreadable, truncated ('corrupt image') or wrongly sized image is `BadInput`, handled by `on_error`
    (skip: the image is left out).
    """
    root = Path.cwd() if root is None else Path(root)
    skips = SkipLog(policy=on_error)
    rows: list[dict] = []
    groups = samples.groupby("image_id", sort=False)
    for _, image in track(groups, "pose keypoints", total=groups.ngroups, unit="img"):
        first = image.iloc[0]
        file = Path(first["file"])
        path = file if file.is_absolute() else root / file
        try:
            rgb = read_image(str(path), int(first["width"]), int(first["height"]))
            rows.extend(image_rows(image, rgb, cfg))
        except BadInput as err:
            skips.handle(err)
    return pd.DataFrame(rows, columns=schema.KEYPOINTS.names), skips

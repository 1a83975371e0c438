"""The tables every stage reads and writes, as pyarrow schemas.

One row per image / object instance / part instance after ingestion, one row per mined keypoint after
mining, one row per description after synthesis. Every table is validated against its schema on write and
on read (`talking_points.pipeline.data.tables`), so a stage never silently consumes a malformed table.

Conventions
-----------
* Pixel coordinates: x to the right, y down, origin at the top-left corner of the top-left pixel; a pixel
  (col, row) has its centre at (col + 0.5, row + 0.5).
* Pixel boxes are ``[x0, x1) x [y0, y1)``: x0 = leftmost masked column, x1 = rightmost masked column + 1.
* "Normalised" coordinates divide x by the image width and y by the image height, so both lie in [0, 1]
  whatever the aspect ratio (the paper's PCK is computed in this space).
* Masks are COCO run-length encodings (``pycocotools.mask.encode``), stored as the ASCII ``counts``
  string; their size is the image's (height, width). No pickles anywhere.
* Ids are strings: ``image_id = "<source>/<stem>"``, ``object_id = "<image_id>#o<k>"``,
  ``part_id = "<object_id>p<k>"``, ``kp_id = "<image_id>#k<k>"``.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "IMAGES",
    "OBJECTS",
    "PARTS",
    "KEYPOINTS",
    "DESCRIPTIONS",
    "SAMPLES",
    "SCHEMAS",
    "H_POSITIONS",
    "V_POSITIONS",
    "EDGES",
]

H_POSITIONS = ("left", "center", "right")
V_POSITIONS = ("top", "middle", "bottom")
EDGES = ("none", "left", "right", "top", "bottom")


def _f(name: str, type_: pa.DataType, nullable: bool = False, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc} if doc else None)


def _box(prefix: str, what: str, unit: str) -> list[pa.Field]:
    return [
        _f(f"{prefix}x0", pa.float32(), doc=f"{what} box left ({unit})"),
        _f(f"{prefix}y0", pa.float32(), doc=f"{what} box top ({unit})"),
        _f(f"{prefix}x1", pa.float32(), doc=f"{what} box right, exclusive ({unit})"),
        _f(f"{prefix}y1", pa.float32(), doc=f"{what} box bottom, exclusive ({unit})"),
    ]


IMAGES = pa.schema(
    [
        _f("image_id", pa.string(), doc="'<source>/<stem>', unique across all sources"),
        _f("source", pa.string(), doc="name of the ingest source (the params key)"),
        _f("file", pa.string(), doc="path of the image file (absolute, or relative to the repo root)"),
        _f("width", pa.int32()),
        _f("height", pa.int32()),
    ]
)

OBJECTS = pa.schema(
    [
        _f("object_id", pa.string()),
        _f("image_id", pa.string()),
        _f("category", pa.string(), doc="human-readable object class, e.g. 'dog', 'potted plant'"),
        *_box("bbox_", "object", "pixels"),
        _f("area", pa.int64(), doc="mask area in pixels"),
        _f("mask_rle", pa.string(), doc="COCO RLE counts of the visible instance mask"),
    ]
)

PARTS = pa.schema(
    [
        _f("part_id", pa.string()),
        _f("object_id", pa.string()),
        _f("image_id", pa.string()),
        _f("part", pa.string(), doc="human-readable part name, e.g. 'head', 'left front leg'"),
        *_box("bbox_", "part", "pixels"),
        _f("area", pa.int64(), doc="mask area in pixels"),
        _f("mask_rle", pa.string(), doc="COCO RLE counts of the visible part mask"),
        _f("colour", pa.string(), nullable=True, doc="annotated base colour name (generated data only)"),
        _f("texture", pa.string(), nullable=True, doc="annotated texture: solid/striped/dotted/... (generated only)"),
    ]
)

KEYPOINTS = pa.schema(
    [
        # identity
        _f("kp_id", pa.string()),
        _f("image_id", pa.string()),
        _f("source", pa.string()),
        _f("file", pa.string()),
        _f("width", pa.int32()),
        _f("height", pa.int32()),
        _f("object_id", pa.string()),
        _f("category", pa.string()),
        _f("part_id", pa.string()),
        _f("part", pa.string()),
        # the point
        _f("x", pa.float32(), doc="pixels"),
        _f("y", pa.float32(), doc="pixels"),
        _f("x_norm", pa.float32(), doc="x / width"),
        _f("y_norm", pa.float32(), doc="y / height"),
        _f("response", pa.float32(), doc="SIFT response"),
        _f("sift_size", pa.float32(), doc="SIFT keypoint diameter in pixels"),
        _f("border_dist", pa.float32(), doc="distance in pixels from the point to the part's border"),
        # the object in the scene
        *_box("obj_", "object", "normalised"),
        _f("obj_cx", pa.float32(), doc="object box centre, normalised"),
        _f("obj_cy", pa.float32(), doc="object box centre, normalised"),
        _f("obj_area_frac", pa.float32(), doc="object mask area / image area"),
        _f("obj_h_pos", pa.string(), doc="left|center|right third of the image holding the box centre"),
        _f("obj_v_pos", pa.string(), doc="top|middle|bottom third of the image holding the box centre"),
        _f("obj_edge", pa.string(), doc="image edge the box nearly touches (none|left|right|top|bottom)"),
        _f("n_objects", pa.int32(), doc="annotated objects in the image"),
        _f("n_same", pa.int32(), doc="instances of this category in the image (including this one)"),
        _f("order_lr", pa.int32(), doc="1-based rank among same-category instances, left to right (box centre)"),
        _f("order_tb", pa.int32(), doc="1-based rank among same-category instances, top to bottom (box centre)"),
        _f("order_size", pa.int32(), doc="1-based rank among same-category instances, largest first (mask area)"),
        _f("order_sep_lr", pa.float32(), nullable=True, doc="left-right distance to the nearest same-category "
           "instance's box centre over the mean box width (null: the only one)"),
        _f("order_sep_tb", pa.float32(), nullable=True, doc="the same, top-bottom, over the mean box height"),
        _f("order_sep_size", pa.float32(), nullable=True, doc="|ln(area ratio)| to the nearest-sized same-category "
           "instance"),
        # the part in the object
        *_box("part_", "part", "normalised"),
        _f("part_cx_in_obj", pa.float32(), doc="part box centre relative to the object box (0..1)"),
        _f("part_cy_in_obj", pa.float32(), doc="part box centre relative to the object box (0..1)"),
        _f("part_h_in_obj", pa.string(), doc="left|center|right third of the object box"),
        _f("part_v_in_obj", pa.string(), doc="top|middle|bottom third of the object box"),
        _f("part_area_frac", pa.float32(), doc="part mask area / object mask area"),
        _f("n_parts", pa.int32(), doc="annotated parts of this object"),
        _f("n_same_part", pa.int32(), doc="parts of this object with this part's name (including it): wheels"),
        _f("part_order_lr", pa.int32(), doc="1-based rank among the object's same-named parts, left to right"),
        _f("part_order_tb", pa.int32(), doc="1-based rank among the object's same-named parts, top to bottom"),
        _f("part_order_size", pa.int32(), doc="1-based rank among the object's same-named parts, largest first"),
        _f("part_order_sep_lr", pa.float32(), nullable=True, doc="as order_sep_lr, among the same-named parts"),
        _f("part_order_sep_tb", pa.float32(), nullable=True, doc="as order_sep_tb, among the same-named parts"),
        _f("part_order_sep_size", pa.float32(), nullable=True, doc="as order_sep_size, among the same-named parts"),
        # the point in the part
        _f("kp_in_part_x", pa.float32(), doc="point relative to the part box (0..1)"),
        _f("kp_in_part_y", pa.float32(), doc="point relative to the part box (0..1)"),
        _f("kp_h_in_part", pa.string(), doc="left|center|right third of the part box"),
        _f("kp_v_in_part", pa.string(), doc="top|middle|bottom third of the part box"),
        # the local look
        _f("patch_r", pa.float32(), doc="mean red of the patch around the point, 0..1"),
        _f("patch_g", pa.float32()),
        _f("patch_b", pa.float32()),
        _f("patch_colour", pa.string(), doc="name of the patch's dominant colour"),
        _f("patch_brightness", pa.float32(), doc="mean luma of the patch, 0..1"),
        _f("patch_edge_energy", pa.float32(), doc="mean gradient magnitude of the patch, 0..1"),
        _f("part_colour", pa.string(), nullable=True, doc="annotated part colour (generated data only)"),
        _f("part_texture", pa.string(), nullable=True, doc="annotated part texture (generated data only)"),
    ]
)

DESCRIPTIONS = pa.schema(
    [
        _f("kp_id", pa.string()),
        _f("description", pa.string(), doc="the final coarse-to-fine description"),
        _f("template", pa.string(), doc="KptLLM-style name-only phrasing, e.g. 'the head of the dog'"),
        _f("level_object", pa.string(), doc="level 1: the object in the scene"),
        _f("level_part", pa.string(), doc="level 2: the part in the object"),
        _f("level_point", pa.string(), doc="level 3: the point in the part"),
        _f("level_local", pa.string(), doc="level 4: the local look"),
        _f("pass_object", pa.string(), doc="raw output of the object-context pass"),
        _f("pass_local", pa.string(), doc="raw output of the local-detail pass"),
        _f("pass_generate", pa.string(), doc="raw output of the generation pass"),
        _f("pass_refine", pa.string(), doc="raw output of the refinement pass"),
        _f("backend", pa.string(), doc="synthesis backend that wrote the row"),
        _f("model", pa.string(), doc="model ids used by the backend ('' for grounded)"),
        _f("prompt_version", pa.string()),
        _f("sampling", pa.string(), doc="sampling parameters as JSON"),
        _f("valid", pa.bool_(), doc="passed the faithfulness check against the annotations"),
    ]
)

#: what the split stage writes: every keypoint column, every description column, and the split.
SAMPLES = pa.schema(
    list(KEYPOINTS) + [f for f in DESCRIPTIONS if f.name != "kp_id"] + [_f("split", pa.string())]
)

SCHEMAS: dict[str, pa.Schema] = {
    "images": IMAGES,
    "objects": OBJECTS,
    "parts": PARTS,
    "keypoints": KEYPOINTS,
    "descriptions": DESCRIPTIONS,
    "samples": SAMPLES,
}

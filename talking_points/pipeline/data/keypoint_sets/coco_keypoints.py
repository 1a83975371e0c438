"""COCO-keypoint annotation files (AP-10K, Animal-Pose) -> a table of (image, keypoint) samples.

`read_coco_keypoints(annotations, images, source)` reads one json with pycocotools and returns one row per
labelled keypoint of every animal (`POSE_SAMPLES` columns). Conventions:

* Keypoints are stored as [x, y, v] * K; v = 0: not labelled (x, y meaningless; no row), 1: labelled but
  occluded, 2: visible. The datasets give pixel indices, so the tables' coordinate is index + 0.5 (the
  pixel centre, `talking_points.pipeline.data.schema`). A labelled keypoint whose pixel lies outside the
  image makes its annotation bad.
* `bbox` [x, y, w, h] becomes the box [x, x + w) x [y, y + h); `area` is copied (both datasets store
  the box area there).
* The layout (AP-10K or Animal-Pose, `layouts`) is recognised per category from its `keypoints` list;
  the species is `categories[].name`, the family `categories[].supercategory`.
* `image_id = "<source>/<file name without extension>"`; the animals of an image are numbered k = 0, 1,
  ... in the json's order of its non-crowd annotations (bad ones included, so the ids of the good ones do
  not depend on what was skipped): `object_id = "<image_id>#o<k>"`, and keypoint j of animal k has
  `kp_id = "<image_id>#k<k * K + j>"`. Crowd annotations (`iscrowd` 1) are ignored.

Bad input (a malformed row, an unknown image or category, a missing / corrupt / wrongly sized image, a
file name outside the images folder) becomes `BadInput` naming the file and the annotation id, handled by
the `on_error` policy: under `skip` the annotation (or, for an image problem, every annotation of that
image) is left out and counted.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
from pycocotools.coco import COCO

from talking_points.pipeline.data.adapters.common import (
    MALFORMED_JSON,
    MALFORMED_ROW,
    SIZE_MISMATCH,
    UNKNOWN_LABEL,
    id_order,
    image_size,
    inside_root,
    read_json,
)
from talking_points.pipeline.data.errors import BadInput, OnError, SkipLog
from talking_points.pipeline.data.keypoint_sets.layouts import KeypointLayout, PartGranularity, layout_of
from talking_points.pipeline.data.tables import validate

__all__ = [
    "POSE_SAMPLES",
    "OUTSIDE_IMAGE",
    "UNKNOWN_LAYOUT",
    "PoseSamples",
    "read_coco_keypoints",
]

OUTSIDE_IMAGE = "keypoint outside image"
UNKNOWN_LAYOUT = "unknown keypoint layout"
DUPLICATE_IMAGE = "duplicate image"


def _f(name: str, type_: pa.DataType, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=False, metadata={"doc": doc} if doc else None)


#: one row per labelled keypoint of one animal
POSE_SAMPLES = pa.schema(
    [
        _f("kp_id", pa.string(), "'<image_id>#k<k * K + j>' for keypoint j of animal k"),
        _f("image_id", pa.string(), "'<source>/<stem>'"),
        _f("source", pa.string()),
        _f("file", pa.string(), "image path: the images folder joined with the json's file_name"),
        _f("width", pa.int32()),
        _f("height", pa.int32()),
        _f("object_id", pa.string(), "'<image_id>#o<k>', animals numbered in the json's order"),
        _f("ann_id", pa.int64(), "the json's annotation id"),
        _f("category", pa.string(), "species, categories[].name"),
        _f("family", pa.string(), "categories[].supercategory, e.g. 'Bovidae'"),
        _f("layout", pa.string(), "keypoint layout: ap10k | animal_pose"),
        _f("keypoint", pa.string(), "keypoint name as the dataset spells it, e.g. 'left_front_paw'"),
        _f("keypoint_index", pa.int32(), "0-based index in the layout"),
        _f("part", pa.string(), "part the keypoint lies on (layouts.PartGranularity)"),
        _f("x", pa.float32(), "pixels, centre convention (dataset index + 0.5)"),
        _f("y", pa.float32(), "pixels, centre convention (dataset index + 0.5)"),
        _f("visibility", pa.int8(), "1 labelled but occluded, 2 visible"),
        _f("bbox_x0", pa.float32(), "animal box left (pixels)"),
        _f("bbox_y0", pa.float32(), "animal box top (pixels)"),
        _f("bbox_x1", pa.float32(), "animal box right, exclusive (pixels)"),
        _f("bbox_y1", pa.float32(), "animal box bottom, exclusive (pixels)"),
        _f("area", pa.float32(), "the annotation's area"),
        _f("num_keypoints", pa.int32(), "labelled keypoints of the animal"),
    ]
)


@dataclass
class PoseSamples:
    table: pd.DataFrame  # POSE_SAMPLES columns
    skips: SkipLog
    layouts: dict[str, int]  # layout name -> animals read with it


def _id(value: Any) -> bool:
    """Usable as a json id: an integer or a string."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _known(value: Any, ids: Container) -> bool:
    return _id(value) and value in ids


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Category:
    name: str
    family: str
    layout: KeypointLayout | None
    names: tuple[str, ...]


def _categories(data: Mapping, where: Path) -> dict[Any, _Category]:
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise BadInput(where, MALFORMED_JSON, "no 'categories' list")
    out = {}
    for c in cats:
        if not isinstance(c, dict) or not _id(c.get("id")) or not isinstance(c.get("name"), str):
            raise BadInput(where, MALFORMED_JSON, f"category without id/name: {str(c)[:120]}")
        names = c.get("keypoints")
        names = tuple(str(n) for n in names) if isinstance(names, list) else ()
        out[c["id"]] = _Category(c["name"], str(c.get("supercategory", "")), layout_of(names), names)
    return out


def _images(data: Mapping, where: Path, skips: SkipLog) -> list[dict]:
    images = data.get("images")
    if not isinstance(images, list):
        raise BadInput(where, MALFORMED_JSON, "no 'images' list")
    good = []
    for k, im in enumerate(images):
        ok = (
            isinstance(im, dict)
            and _id(im.get("id"))
            and isinstance(im.get("file_name"), str)
            and im["file_name"]
            and isinstance(im.get("width"), int)
            and isinstance(im.get("height"), int)
            and im["width"] > 0
            and im["height"] > 0
        )
        if ok:
            good.append(im)
        else:
            ident = im.get("id", f"#{k}") if isinstance(im, dict) else f"#{k}"
            skips.handle(BadInput(f"{where} [image {ident}]", MALFORMED_ROW,
                                  "an image needs id, file_name and positive integer width/height"))
    return good


def _annotation_problem(ann: Any, image_ids: set, cats: Mapping[Any, _Category]) -> tuple[str, str] | None:
    """(reason, detail) of a malformed annotation row, or None."""
    if not isinstance(ann, dict) or not isinstance(ann.get("id"), int):
        return MALFORMED_ROW, "an annotation needs an integer id"
    if not _known(ann.get("image_id"), image_ids):
        return MALFORMED_ROW, f"image_id {ann.get('image_id')!r} is not among the (good) images"
    if not _known(ann.get("category_id"), cats):
        return UNKNOWN_LABEL, f"category_id {ann.get('category_id')!r} is not in categories"
    cat = cats[ann["category_id"]]
    if cat.layout is None:
        return UNKNOWN_LAYOUT, f"category {cat.name!r} has keypoints {list(cat.names)[:6]}..."
    kps = ann.get("keypoints")
    n = len(cat.layout.keypoints)
    if not isinstance(kps, list) or len(kps) != 3 * n or not all(_number(v) for v in kps):
        return MALFORMED_ROW, f"keypoints must be {3 * n} numbers ([x, y, v] * {n})"
    if any(v not in (0, 1, 2) for v in kps[2::3]):
        return MALFORMED_ROW, "keypoint visibility must be 0, 1 or 2"
    box = ann.get("bbox")
    box_ok = isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)
    if not (box_ok and box[2] > 0 and box[3] > 0):
        return MALFORMED_ROW, f"bbox must be [x, y, w, h] with w, h > 0, got {box!r}"
    if not _number(ann.get("area", 0.0)):
        return MALFORMED_ROW, f"area must be a number, got {ann.get('area')!r}"
    return None


def _coco(data: Mapping, images: list[dict], annotations: list[dict]) -> COCO:
    """A pycocotools index over the checked rows (its progress prints are swallowed)."""
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations, "categories": list(data["categories"])}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _animal_rows(ann: dict, k: int, cat: _Category, base: dict, granularity: PartGranularity,
                 where: str) -> list[dict]:
    """Rows of the labelled keypoints of animal `k` (annotation `ann`) of one image (`base` columns)."""
    layout = cat.layout
    assert layout is not None
    width, height = base["width"], base["height"]
    kps = ann["keypoints"]
    x, y, w, h = (float(v) for v in ann["bbox"])
    n_labelled = sum(1 for v in kps[2::3] if v > 0)
    rows = []
    for j, name in enumerate(layout.keypoints):
        kx, ky, v = kps[3 * j : 3 * j + 3]
        if v == 0:
            continue
        if not (0 <= kx < width and 0 <= ky < height):
            raise BadInput(where, OUTSIDE_IMAGE, f"{name} at ({kx}, {ky}), image is {width}x{height}")
        rows.append(
            {
                **base,
                "kp_id": f"{base['image_id']}#k{k * len(layout.keypoints) + j}",
                "object_id": f"{base['image_id']}#o{k}",
                "ann_id": ann["id"],
                "category": cat.name,
                "family": cat.family,
                "layout": layout.name,
                "keypoint": name,
                "keypoint_index": j,
                "part": layout.part_of(name, granularity),
                "x": float(kx) + 0.5,
                "y": float(ky) + 0.5,
                "visibility": int(v),
                "bbox_x0": x, "bbox_y0": y, "bbox_x1": x + w, "bbox_y1": y + h,
                "area": float(ann.get("area", w * h)),
                "num_keypoints": n_labelled,
            }
        )
    return rows


def read_coco_keypoints(
    annotations: str | Path,
    images: str | Path,
    source: str,
    on_error: OnError = OnError.skip,
    granularity: PartGranularity = PartGranularity.coarse,
    check_images: bool = True,
) -> PoseSamples:
    """Every labelled keypoint of `annotations` (a COCO-keypoint json) as a row of `POSE_SAMPLES`.

    `images` is the folder the json's file names are relative to. With `check_images`, each image is
    decoded once and its size compared with the json's. A broken json (not JSON, no images/categories
    list) raises `BadInput` whatever the policy; see the module doc for row-level problems.
    """
    path = Path(annotations)
    image_dir = Path(images)
    skips = SkipLog(policy=on_error)
    data = read_json(path)
    if not isinstance(data, dict):
        raise BadInput(path, MALFORMED_JSON, "top level is not an object")
    cats = _categories(data, path)
    good_images = _images(data, path, skips)
    image_ids = {im["id"] for im in good_images}
    raw = data.get("annotations")
    if not isinstance(raw, list):
        raise BadInput(path, MALFORMED_JSON, "no 'annotations' list")
    checked: list[dict] = []
    number: dict[int, int] = {}  # annotation id -> k, its place among its image's animals
    per_image: dict[Any, int] = {}
    for pos, ann in enumerate(raw):
        if isinstance(ann, dict) and ann.get("iscrowd", 0) == 1:
            continue
        ident = ann.get("id", f"#{pos}") if isinstance(ann, dict) else f"#{pos}"
        k = None
        if isinstance(ann, dict) and _known(ann.get("image_id"), image_ids):
            k = per_image.get(ann["image_id"], 0)
            per_image[ann["image_id"]] = k + 1
        problem = _annotation_problem(ann, image_ids, cats)
        if problem is None and ann["id"] in number:
            problem = MALFORMED_ROW, "duplicate annotation id"
        if problem is not None:
            skips.handle(BadInput(f"{path} [annotation {ident}]", *problem))
            continue
        number[ann["id"]] = k
        checked.append(ann)
    coco = _coco(data, good_images, checked)

    rows: list[dict] = []
    seen_stems: dict[str, Any] = {}
    used_layouts: dict[str, int] = {}
    for img_id in sorted(coco.getImgIds(), key=id_order):
        image = coco.loadImgs([img_id])[0]
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[img_id])), key=lambda a: number[a["id"]])
        if not anns:
            continue
        stem = str(PurePosixPath(image["file_name"]).with_suffix(""))
        where_img = f"{path} [image {img_id}: {image['file_name']}]"
        try:
            file = inside_root(image_dir, image["file_name"], where_img)
            if stem in seen_stems:
                raise BadInput(where_img, DUPLICATE_IMAGE, f"image {seen_stems[stem]} has the same file stem")
            seen_stems[stem] = img_id
            if check_images:
                size = image_size(file)
                if size != (image["width"], image["height"]):
                    said = f"{image['width']}x{image['height']}"
                    raise BadInput(file, SIZE_MISMATCH, f"file is {size[0]}x{size[1]}, json says {said}")
        except BadInput as err:  # the image is bad: name the annotations lost with it
            skips.handle(BadInput(err.where, err.reason, f"{err.detail}; annotations {[a['id'] for a in anns]}"))
            continue
        base = {"image_id": f"{source}/{stem}", "source": source, "file": str(file),
                "width": int(image["width"]), "height": int(image["height"])}
        for ann in anns:
            cat = cats[ann["category_id"]]
            assert cat.layout is not None
            try:
                rows.extend(_animal_rows(ann, number[ann["id"]], cat, base, granularity,
                                         f"{path} [annotation {ann['id']}]"))
            except BadInput as err:
                skips.handle(err)
                continue
            used_layouts[cat.layout.name] = used_layouts.get(cat.layout.name, 0) + 1
    table = validate(pd.DataFrame(rows, columns=POSE_SAMPLES.names), POSE_SAMPLES, str(path)).to_pandas()
    return PoseSamples(table=table, skips=skips, layouts=used_layouts)

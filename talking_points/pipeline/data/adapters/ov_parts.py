"""Adapter for the OV-PARTS benchmarks (Wei et al., NeurIPS 2023): Pascal-Part-116 and ADE20K-Part-234.

Layout (as in the OV-PARTS README; `root` is the extracted dataset folder, `split` its sub-folder):

    Pascal-Part-116/                         ADE20K-Part-234/
      images/<split>/<stem>.jpg                images/<split>/<stem>.jpg
      annotations_detectron2_part/<split>/     annotations_detectron2_part/<split>/<stem>.png
        <stem>.png  (uint8, 255 = ignore)        (uint16, 65535 = ignore)
      annotations_detectron2_obj/<split>/      ade20k_instance_<train|val>.json  (COCO-style object
        <stem>.png  (uint8, 255 = ignore)        instances: segmentation, category_id, part_category_id)

A part label names object and part at once ("dog's head"); `ovparts_*.txt` hold the label tables.

Instances. ADE20K-Part-234 gives object instances in the json; an object's parts are the pixels of its
mask carrying a part label of its class. Pascal-Part-116 has no instance ids at all, so objects are
*approximated*: the pixels of one object class (its part labels, plus its object label when the
`annotations_detectron2_obj` map is present) are split into connected components (8-connectivity, gaps up
to `instance_gap` pixels bridged), and each component is one object. Two touching instances of the same
class therefore become one object, and an instance cut in two by an occluder becomes two.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.data.adapters.base import Adapter
from talking_points.pipeline.data.adapters.common import (
    MALFORMED_JSON,
    MALFORMED_ROW,
    MISSING_ANNOTATION,
    SIZE_MISMATCH,
    UNKNOWN_LABEL,
    VOC_CLASSES,
    ImageExt,
    IndexedSourceConfig,
    check_size,
    first_synonym,
    id_order,
    image_size,
    inside_root,
    name_table,
    read_json,
    read_label_map,
    require_dir,
    require_file,
    require_tracked,
    segmentation_mask,
    split_owned_name,
)
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord

__all__ = [
    "ADAPTER",
    "ADE20K_OBJECTS_44",
    "ADE20K_PART_234",
    "ADE_IGNORE",
    "PASCAL_IGNORE",
    "PASCAL_PART_116",
    "OvPartsConfig",
    "OvPartsVariant",
    "list_samples",
    "load_sample",
]

PASCAL_PART_116 = "ovparts_pascal_part_116.txt"  # name tables shipped next to this module
ADE20K_PART_234 = "ovparts_ade20k_part_234.txt"
ADE20K_OBJECTS_44 = "ovparts_ade20k_objects_44.txt"
PASCAL_IGNORE = 255
ADE_IGNORE = 65535
PART_DIR = "annotations_detectron2_part"
OBJECT_DIR = "annotations_detectron2_obj"


class OvPartsVariant(str, Enum):
    pascal_part_116 = "pascal_part_116"
    ade20k_part_234 = "ade20k_part_234"


class OvPartsConfig(IndexedSourceConfig):
    """One split of an OV-PARTS benchmark."""

    adapter: Literal["ov_parts"] = "ov_parts"
    variant: OvPartsVariant
    root: Path = Field(description="the extracted dataset folder (Pascal-Part-116/ or ADE20K-Part-234/)")
    split: str | None = Field(None, description="sub-folder of images/ and annotations_detectron2_part/; "
                              "default 'val' (Pascal-Part-116) or 'validation' (ADE20K-Part-234)")
    instances: Path | None = Field(None, description="ADE20K-Part-234 instance json, relative to root; "
                                   "default ade20k_instance_<train|val>.json after the split")
    image_ext: ImageExt = Field(".jpg", description="extension of the image files, with the dot")
    instance_gap: int = Field(0, ge=0, le=64, description="Pascal-Part-116: gap in pixels bridged when "
                              "grouping same-class pixels into object instances")
    objects_without_parts: bool = Field(True, description="keep objects that carry no part label")

    @field_validator("split")
    @classmethod
    def _split(cls, split: str | None) -> str | None:
        if split is not None and (not re.fullmatch(r"[A-Za-z0-9_.-]+", split) or set(split) == {"."}):
            raise ValueError(f"split must be a folder name such as 'val' or 'validation', got {split!r}")
        return split


    @model_validator(mode="after")
    def _variant_fields(self) -> OvPartsConfig:
        if self.variant is OvPartsVariant.pascal_part_116:
            if self.instances is not None:
                raise ValueError("'instances' is an ADE20K-Part-234 field; Pascal-Part-116 has no instances")
        elif self.variant is OvPartsVariant.ade20k_part_234:
            if self.instance_gap:
                raise ValueError("'instance_gap' is a Pascal-Part-116 field; ADE20K-Part-234 has instances")
        else:
            raise ValueError(f"unknown variant {self.variant!r}")
        return self

    @property
    def split_name(self) -> str:
        if self.split is not None:
            return self.split
        if self.variant is OvPartsVariant.pascal_part_116:
            return "val"
        if self.variant is OvPartsVariant.ade20k_part_234:
            return "validation"
        raise ValueError(f"unknown variant {self.variant!r}")

    @property
    def image_dir(self) -> Path:
        return self.root / "images" / self.split_name

    @property
    def part_dir(self) -> Path:
        return self.root / PART_DIR / self.split_name

    @property
    def object_dir(self) -> Path:
        return self.root / OBJECT_DIR / self.split_name

    @property
    def instance_json(self) -> Path:
        if self.instances is not None:
            return self.path(self.instances)
        short = {"training": "train", "validation": "val"}.get(self.split_name, self.split_name)
        return self.root / f"ade20k_instance_{short}.json"


def list_samples(cfg: OvPartsConfig) -> list[str]:
    """Stems of the part label PNGs of the split, sorted."""
    hint = (f"set 'root' to the extracted {cfg.variant.value} folder and 'split' to a sub-folder of "
            f"{PART_DIR}/ (see the OV-PARTS README)")
    folder = require_dir(cfg.part_dir, "the part label PNGs", hint)
    require_dir(cfg.image_dir, "the images", hint)
    tracked = [cfg.part_dir, cfg.image_dir, cfg.object_dir]
    if cfg.variant is OvPartsVariant.ade20k_part_234:
        require_file(cfg.instance_json, "the ADE20K-Part-234 instance json",
                     "set 'instances' to the ade20k_instance_<split>.json of the download, relative to 'root'")
        tracked.append(cfg.instance_json)
    for path in tracked:
        require_tracked(cfg.root, path, "root")
    return sorted(p.stem for p in folder.glob("*.png") if p.is_file())


def load_sample(cfg: OvPartsConfig, key: str) -> ImageRecord:
    """One image with its objects and part masks."""
    if cfg.variant is OvPartsVariant.pascal_part_116:
        return _load_pascal(cfg, key)
    if cfg.variant is OvPartsVariant.ade20k_part_234:
        return _load_ade(cfg, key)
    raise ValueError(f"unknown variant {cfg.variant!r}")


def _labels(path: Path, width: int, height: int, n_classes: int, ignore: int) -> np.ndarray:
    """A semantic label PNG, checked for size and for labels outside the class table."""
    labels = read_label_map(path)
    if labels.ndim != 2:
        raise BadInput(path, UNKNOWN_LABEL, f"expected a single-channel label map, got shape {labels.shape}")
    check_size(labels, width, height, "label map", path)
    values = np.unique(labels)
    bad = values[(values != ignore) & (values >= n_classes)]
    if bad.size:
        raise BadInput(path, UNKNOWN_LABEL, f"labels {bad[:5].tolist()} outside the {n_classes}-class table")
    return labels


def _parts_by_owner(table: tuple[str, ...]) -> dict[str, list[tuple[int, str]]]:
    """{object name: [(label, part name)]} of an OV-PARTS label table."""
    owned: dict[str, list[tuple[int, str]]] = {}
    for label, name in enumerate(table):
        owner, part = split_owned_name(name)
        owned.setdefault(owner, []).append((label, part))
    return owned


def _components(region: np.ndarray, gap: int) -> tuple[int, np.ndarray]:
    """(n, labels) of the 8-connected components of `region`, bridging gaps up to `gap` pixels."""
    grown = region.astype(np.uint8)
    if gap:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
        grown = cv2.dilate(grown, kernel)
    n, comp = cv2.connectedComponents(grown, connectivity=8)
    comp[~region] = 0
    return n, comp


def _load_pascal(cfg: OvPartsConfig, key: str) -> ImageRecord:
    png = cfg.part_dir / f"{key}.png"
    image = cfg.image_dir / f"{key}{cfg.image_ext}"
    width, height = image_size(image)
    table = name_table(PASCAL_PART_116)
    labels = _labels(png, width, height, len(table), PASCAL_IGNORE)
    obj_png = cfg.object_dir / f"{key}.png"
    obj_labels = None
    if obj_png.is_file():
        obj_labels = _labels(obj_png, width, height, len(VOC_CLASSES), PASCAL_IGNORE)
    owned = _parts_by_owner(table)
    objects = []
    for class_index, voc_class in enumerate(VOC_CLASSES):
        class_parts = owned.get(voc_class, [])
        region = np.isin(labels, [label for label, _ in class_parts])
        if obj_labels is not None:
            region |= obj_labels == class_index
        if not region.any():
            continue
        n, comp = _components(region, cfg.instance_gap)
        for k in range(1, n):
            omask = comp == k
            if not omask.any():
                continue
            parts = [PartRecord(name=part, mask=pmask) for label, part in class_parts
                     if (pmask := omask & (labels == label)).any()]
            if parts or cfg.objects_without_parts:
                objects.append(ObjectRecord(category=VOC_CLASSES[voc_class], mask=omask, parts=parts))
    return ImageRecord(stem=key, width=width, height=height, objects=objects, file=image, origin=str(png))


def _ade_index(cfg: IndexedSourceConfig) -> dict[str, Any]:
    """{'images': {stem: (image row, [annotation rows])}, 'categories': {id: name}} of the instance json."""
    assert isinstance(cfg, OvPartsConfig)
    path = cfg.instance_json
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise BadInput(path, MALFORMED_JSON, "expected a COCO-style object with 'images' and 'annotations'")
    by_id: dict[Any, tuple[dict, list[dict]]] = {}
    images: dict[str, tuple[dict, list[dict]]] = {}
    for row in data["images"]:
        if isinstance(row, dict) and isinstance(row.get("file_name"), str) and "id" in row:
            entry = (row, [])
            by_id[row["id"]] = entry
            images[Path(row["file_name"]).stem] = entry
    for ann in data["annotations"]:
        if isinstance(ann, dict) and ann.get("image_id") in by_id:
            by_id[ann["image_id"]][1].append(ann)
    categories = {c["id"]: first_synonym(str(c["name"])) for c in data.get("categories") or []
                  if isinstance(c, dict) and "id" in c and "name" in c}
    return {"images": images, "categories": categories}


def _ade_object(ann: Any, categories: dict, objects_44: tuple[str, ...],
                where: str) -> tuple[str, Any, set[int] | None]:
    """(class name, segmentation, allowed part labels or None) of one annotation row."""
    if not isinstance(ann, dict) or "segmentation" not in ann or not isinstance(ann.get("category_id"), int):
        raise BadInput(where, MALFORMED_ROW, "an annotation needs an integer 'category_id', a 'segmentation'")
    cid = ann["category_id"]
    if categories:
        name = categories.get(cid)
    else:
        name = objects_44[cid] if 0 <= cid < len(objects_44) else None
    if name is None:
        raise BadInput(where, MALFORMED_ROW, f"category_id {cid} is not a known object class")
    allowed = ann.get("part_category_id")
    if allowed is not None and not (isinstance(allowed, list) and all(isinstance(v, int) for v in allowed)):
        raise BadInput(where, MALFORMED_ROW, "part_category_id must be a list of integers")
    return name, ann["segmentation"], None if allowed is None else set(allowed)


def _load_ade(cfg: OvPartsConfig, key: str) -> ImageRecord:
    png = cfg.part_dir / f"{key}.png"
    index = cfg.index(_ade_index)
    json_path = cfg.instance_json
    if key not in index["images"]:
        raise BadInput(png, MISSING_ANNOTATION, f"no image row for {key!r} in {json_path}")
    row, anns = index["images"][key]
    image = inside_root(cfg.image_dir, row["file_name"], f"{json_path}: image row {key!r}")
    width, height = image_size(image)
    if (row.get("width"), row.get("height")) != (width, height):
        raise BadInput(json_path, SIZE_MISMATCH, f"image row {key!r} says "
                       f"{row.get('width')}x{row.get('height')}, {image} is {width}x{height}")
    table = name_table(ADE20K_PART_234)
    labels = _labels(png, width, height, len(table), ADE_IGNORE)
    owned = _parts_by_owner(table)
    objects_44 = name_table(ADE20K_OBJECTS_44)
    objects = []
    for ann in sorted(anns, key=lambda a: id_order(a.get("id"))):
        where = f"{json_path}: annotation id {ann.get('id')!r} of {key!r}"
        name, segm, allowed = _ade_object(ann, index["categories"], objects_44, where)
        omask = segmentation_mask(segm, height, width, where)
        parts = [PartRecord(name=part, mask=pmask) for label, part in owned.get(name, [])
                 if (allowed is None or label in allowed) and (pmask := omask & (labels == label)).any()]
        if parts or cfg.objects_without_parts:
            objects.append(ObjectRecord(category=name, mask=omask, parts=parts))
    return ImageRecord(stem=key, width=width, height=height, objects=objects, file=image, origin=str(png))


ADAPTER = Adapter(name="ov_parts", config=OvPartsConfig, list_samples=list_samples, load_sample=load_sample)

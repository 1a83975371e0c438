"""Adapter for PartImageNet (He et al., ECCV 2022): COCO-style part annotations of ImageNet images.

The json has `images` (id, file_name, width, height), `annotations` (one row per part instance:
image_id, category_id, segmentation as polygons or RLE) and `categories` (40 part classes, ids from 0,
named '<Super-category> <Part>', e.g. 'Quadruped Head', 'Car Side Mirror'). A PartImageNet image shows one
annotated object, so each image gives one object whose mask is the union of its parts.

Names. The part name is the category name without its super-category, in lower case ('head', 'side
mirror'; the dataset's 'Tier' is spelled 'tire'). The object class comes from the WordNet synset that
starts the file name (n02085620_10074.JPEG -> n02085620 -> 'Chihuahua') through the ImageNet-1k table
shipped next to this module (PartImageNet's 158 classes are ImageNet-1k classes); a synset missing from
the table falls back to the parts' super-category in lower case ('quadruped'), then to the synset id.

Images are looked up as `<images>/<file_name>`, then `<images>/<synset>/<file_name>` (the ImageNet
folder layout).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from talking_points.pipeline.data.adapters.base import Adapter
from talking_points.pipeline.data.adapters.common import (
    MALFORMED_JSON,
    MALFORMED_ROW,
    MISSING_ANNOTATION,
    SIZE_MISMATCH,
    IndexedSourceConfig,
    id_order,
    image_size,
    inside_root,
    read_json,
    require_dir,
    require_file,
    require_tracked,
    segmentation_mask,
)
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord

__all__ = [
    "ADAPTER",
    "IMAGENET_SYNSETS",
    "PART_WORD_FIXES",
    "PartImageNetConfig",
    "list_samples",
    "load_sample",
    "part_name",
    "synset_names",
]

log = logging.getLogger(__name__)

IMAGENET_SYNSETS = "imagenet_1k_synsets.txt"  # '<synset> <first lemma>' per line, next to this module
PART_WORD_FIXES = {"tier": "tire"}  # misspellings in PartImageNet's category names
_SYNSET = re.compile(r"^(n\d{8})_")


class PartImageNetConfig(IndexedSourceConfig):
    """One PartImageNet split: its json and its image folder."""

    adapter: Literal["partimagenet"] = "partimagenet"
    root: Path = Field(description="the extracted PartImageNet folder (json and images); a dep of ingest")
    annotations: Path = Field(description="COCO json of the split, relative to root (e.g. train.json)")
    images: Path = Field(description="image folder of the split, relative to root (flat, or with one "
                         "sub-folder per synset)")

    @property
    def annotation_json(self) -> Path:
        return self.path(self.annotations)

    @property
    def image_dir(self) -> Path:
        return self.path(self.images)


def synset_names() -> dict[str, str]:
    """{synset id: readable class name} of the ImageNet-1k classes."""
    text = resources.files(__package__).joinpath(IMAGENET_SYNSETS).read_text(encoding="utf-8")
    pairs = (line.split(" ", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {synset: name.strip() for synset, name in pairs}


def part_name(category: str, supercategory: str) -> str:
    """'Quadruped Head' (super-category 'Quadruped') -> 'head'; 'Car Tier' -> 'tire'."""
    name = category.strip()
    if supercategory and name.lower().startswith(supercategory.lower() + " "):
        name = name[len(supercategory) + 1:]
    return " ".join(PART_WORD_FIXES.get(word, word) for word in name.lower().split())


def _index(cfg: IndexedSourceConfig) -> dict[str, Any]:
    """{'images': {key: (image row, [annotation rows])}, 'categories': {id: (name, supercategory)}}."""
    assert isinstance(cfg, PartImageNetConfig)
    path = cfg.annotation_json
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise BadInput(path, MALFORMED_JSON, "expected a COCO object: 'images', 'annotations', 'categories'")
    images: dict[str, tuple[dict, list[dict]]] = {}
    for k, row in enumerate(data["images"]):
        if not isinstance(row, dict) or "id" not in row:
            raise BadInput(path, MALFORMED_JSON, f"images[{k}] has no 'id'")
        images[str(row["id"])] = (row, [])
    orphans = 0
    for ann in data["annotations"]:
        entry = images.get(str(ann.get("image_id"))) if isinstance(ann, dict) else None
        if entry is None:
            orphans += 1
        else:
            entry[1].append(ann)
    if orphans:
        log.warning("%s: %d annotation rows name no image of the json; they are ignored", path, orphans)
    categories = {}
    for c in data["categories"]:
        if not (isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str)):
            raise BadInput(path, MALFORMED_JSON, f"category {c!r} needs an integer 'id' and a 'name'")
        categories[c["id"]] = (c["name"], str(c.get("supercategory") or ""))
    return {"images": images, "categories": categories}


def list_samples(cfg: PartImageNetConfig) -> list[str]:
    """Image ids (as strings) of the images with at least one part annotation, in id order."""
    require_file(cfg.annotation_json, "the PartImageNet json",
                 "set 'annotations' to the split's COCO json, relative to 'root'")
    require_dir(cfg.image_dir, "the PartImageNet images", "set 'images' to the split's image folder, "
                "relative to 'root'")
    require_tracked(cfg.root, cfg.annotation_json, "annotations")
    require_tracked(cfg.root, cfg.image_dir, "images")
    images = cfg.index(_index)["images"]
    keys = [k for k, (_, anns) in images.items() if anns]
    if len(keys) < len(images):
        log.info("%s: %d images without part annotations are not listed", cfg.annotation_json,
                 len(images) - len(keys))
    return sorted(keys, key=id_order)


def _image_path(cfg: PartImageNetConfig, file_name: str, where: str) -> Path:
    flat = inside_root(cfg.image_dir, file_name, where)
    if flat.is_file():
        return flat
    m = _SYNSET.match(Path(file_name).name)
    if m:
        nested = cfg.image_dir / m.group(1) / Path(file_name).name
        if nested.is_file():
            return nested
    return flat  # missing: image_size names it


def _category(file_name: str, supercategories: list[str]) -> str:
    m = _SYNSET.match(Path(file_name).name)
    synset = m.group(1) if m else None
    if synset is not None:
        name = synset_names().get(synset)
        if name is not None:
            return name
    if supercategories:
        return Counter(supercategories).most_common(1)[0][0].lower()
    return synset or "object"


def load_sample(cfg: PartImageNetConfig, key: str) -> ImageRecord:
    """One image: one object (the union of its parts) with its part masks."""
    index = cfg.index(_index)
    path = cfg.annotation_json
    if key not in index["images"]:
        raise BadInput(path, MISSING_ANNOTATION, f"no image with id {key} in the json")
    row, anns = index["images"][key]
    where = f"{path}: image id {key}"
    file_name, w, h = row.get("file_name"), row.get("width"), row.get("height")
    if not (isinstance(file_name, str) and file_name and isinstance(w, int) and isinstance(h, int)):
        raise BadInput(where, MALFORMED_ROW, "an image row needs 'file_name', integer 'width' and 'height'")
    image = _image_path(cfg, file_name, where)
    width, height = image_size(image)
    if (w, h) != (width, height):
        raise BadInput(where, SIZE_MISMATCH, f"the json says {w}x{h}, {image} is {width}x{height}")
    parts, supers = [], []
    for ann in sorted(anns, key=lambda a: id_order(a.get("id"))):
        at = f"{path}: annotation id {ann.get('id')!r} (image id {key})"
        cid = ann.get("category_id")
        if cid not in index["categories"] or "segmentation" not in ann:
            raise BadInput(at, MALFORMED_ROW, f"needs a 'segmentation', a known 'category_id' (got {cid!r})")
        name, supercategory = index["categories"][cid]
        mask = segmentation_mask(ann["segmentation"], height, width, at)
        supers.append(supercategory)
        if not mask.any():  # only polygons of 1-2 points (they occur): no area, as detectron2 drops them
            continue
        parts.append(PartRecord(name=part_name(name, supercategory), mask=mask))
    omask = np.logical_or.reduce([p.mask for p in parts]) if parts else np.zeros((height, width), bool)
    obj = ObjectRecord(category=_category(file_name, [s for s in supers if s]), mask=omask, parts=parts)
    return ImageRecord(stem=Path(file_name).stem, width=width, height=height, objects=[obj], file=image,
                       origin=str(path))


ADAPTER = Adapter(name="partimagenet", config=PartImageNetConfig, list_samples=list_samples,
                  load_sample=load_sample)

"""Readers shared by the real-dataset adapters: images, label maps, JSON, COCO segmentations, name tables.

Every reader turns a missing or broken file into `BadInput(file, reason, detail)`, with `reason` one of the
constants below, so that the skip log groups problems by a small, stable set of reasons. Nothing read from a
dataset is ever executed: images and PNGs go through Pillow, JSON through `json`, masks through pycocotools.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as coco_mask
from pydantic import AfterValidator, PrivateAttr

from talking_points.pipeline.data.adapters.base import SourceConfigBase
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.images import CORRUPT_IMAGE

__all__ = [
    "CORRUPT_IMAGE",
    "MALFORMED_JSON",
    "MALFORMED_ROW",
    "MISSING_ANNOTATION",
    "MISSING_IMAGE",
    "OUTSIDE_ROOT",
    "SIZE_MISMATCH",
    "UNKNOWN_LABEL",
    "UNREADABLE_ANNOTATION",
    "VOC_CLASSES",
    "ImageExt",
    "IndexedSourceConfig",
    "check_size",
    "first_synonym",
    "id_order",
    "image_size",
    "inside_root",
    "name_table",
    "read_json",
    "read_label_map",
    "require_dir",
    "require_file",
    "require_tracked",
    "segmentation_mask",
    "split_owned_name",
]

# --- the reasons a sample is skipped (the keys of the skip log) -------------------------------------------
MISSING_IMAGE = "missing image"
# CORRUPT_IMAGE ("corrupt image") comes from data.images, the image reader, which skips for the same reason
MISSING_ANNOTATION = "missing annotation"
UNREADABLE_ANNOTATION = "unreadable annotation"
MALFORMED_JSON = "malformed json"
MALFORMED_ROW = "malformed json row"
SIZE_MISMATCH = "mask size disagrees with image"  # the same reason records.record_rows uses
UNKNOWN_LABEL = "unknown label"
OUTSIDE_ROOT = "path outside dataset root"

#: The 20 PASCAL VOC classes, in VOC order (class index k+1), mapped to readable English.
VOC_CLASSES: dict[str, str] = {
    "aeroplane": "aeroplane",
    "bicycle": "bicycle",
    "bird": "bird",
    "boat": "boat",
    "bottle": "bottle",
    "bus": "bus",
    "car": "car",
    "cat": "cat",
    "chair": "chair",
    "cow": "cow",
    "diningtable": "dining table",
    "dog": "dog",
    "horse": "horse",
    "motorbike": "motorbike",
    "person": "person",
    "pottedplant": "potted plant",
    "sheep": "sheep",
    "sofa": "sofa",
    "train": "train",
    "tvmonitor": "tv monitor",
}

T = TypeVar("T")


class IndexedSourceConfig(SourceConfigBase):
    """A source whose samples share one big annotation file (a COCO json).

    `index(build)` parses that file once per config object and keeps the result on the object (not in a
    module-level cache), so `load_sample` does not re-read a large json for every image. The parsed index
    is dropped when the config is pickled to a worker process, which parses it again on first use.
    """

    _index: Any = PrivateAttr(default=None)

    def index(self, build: Callable[[IndexedSourceConfig], T]) -> T:
        if self._index is None:
            self._index = build(self)
        return self._index

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["__pydantic_private__"] = {k: None for k in (state.get("__pydantic_private__") or {})}
        return state


def _image_extension(ext: str) -> str:
    if not re.fullmatch(r"\.[A-Za-z0-9]+", ext):
        raise ValueError(f"an image extension must look like '.jpg' (with the dot), got {ext!r}")
    return ext


#: A config field holding an image file extension such as '.jpg'.
ImageExt = Annotated[str, AfterValidator(_image_extension)]


def require_dir(path: Path, what: str, hint: str) -> Path:
    """`path` if it is a directory; otherwise BadInput naming it, `what` it should hold and how to fix it."""
    if not path.is_dir():
        raise BadInput(path, "missing directory", f"expected {what} here; {hint}")
    return path


def require_tracked(root: Path, path: Path, key: str) -> Path:
    """`path` (a folder or file under `root` that a source reads) if DVC sees it through the `root` dep;
    BadInput(OUTSIDE_ROOT) if a directory symlink lies between `root` and `path` (or is `path`): DVC does not
    follow directory symlinks inside a dep folder, so changes behind one would never rerun the ingest.
    `root` itself may be a symlink (DVC follows it), and so may a file."""
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    here = root
    for part in rel.parts:
        if part in (".", ""):
            continue
        here = here / part
        if here.is_symlink() and here.is_dir():
            raise BadInput(path, OUTSIDE_ROOT,
                           f"{here} is a symlink to a folder; DVC does not hash what lies behind a folder "
                           f"symlink inside the dep {root}, so changes there would not rerun the ingest. "
                           f"Move the folder into {root} (or point root at a folder that holds it) and "
                           f"set '{key}' relative to root")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    """`path` if it is a file; otherwise BadInput naming it, `what` it should be and how to fix it."""
    if not path.is_file():
        raise BadInput(path, "missing file", f"expected {what} here; {hint}")
    return path


def inside_root(root: Path, name: Any, where: str | Path) -> Path:
    """`root / name` for a file name read from a dataset file (a json's `file_name`); BadInput(where,
    OUTSIDE_ROOT) when the name is absolute or climbs out of `root` with '..', so that a dataset never
    makes us open a file elsewhere ('../../../etc/passwd').

    The check is on the name alone: the dataset's own symlinks (an image folder linked from elsewhere)
    are not followed and stay allowed.
    """
    if not isinstance(name, str) or not name:
        raise BadInput(where, MALFORMED_ROW, f"a file name must be a non-empty string, got {name!r}")
    rel = Path(name)
    if rel.is_absolute() or rel.drive or ".." in rel.parts:
        raise BadInput(where, OUTSIDE_ROOT,
                       f"file name {name!r} must be a path relative to {root} without '..'")
    return root / rel


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, decoded fully so that a truncated or corrupt file fails here."""
    if not path.is_file():
        raise BadInput(path, MISSING_IMAGE, "no such file")
    try:
        with Image.open(path) as im:
            im.load()
            return int(im.width), int(im.height)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise BadInput(path, CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}") from None


def read_label_map(path: Path) -> np.ndarray:
    """Pixel values of a PNG label map: palette indices ('P'), uint8 ('L'), uint16 (16-bit), (H, W, 3) RGB."""
    if not path.is_file():
        raise BadInput(path, MISSING_ANNOTATION, "no such file")
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise BadInput(path, UNREADABLE_ANNOTATION, f"{type(exc).__name__}: {exc}") from None


def check_size(array: np.ndarray, width: int, height: int, what: str, where: str | Path) -> np.ndarray:
    """`array` if its first two axes are (height, width); otherwise BadInput(where, SIZE_MISMATCH)."""
    if array.shape[:2] != (height, width):
        got = f"{array.shape[1]}x{array.shape[0]}" if array.ndim >= 2 else f"shape {array.shape}"
        raise BadInput(where, SIZE_MISMATCH, f"{what} is {got}, image is {width}x{height}")
    return array


def read_json(path: Path) -> Any:
    """Parsed JSON of `path`; BadInput if the file is missing or not valid JSON."""
    if not path.is_file():
        raise BadInput(path, MISSING_ANNOTATION, "no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(path, MALFORMED_JSON, str(exc)) from None


def segmentation_mask(segm: Any, height: int, width: int, where: str) -> np.ndarray:
    """(height, width) bool mask of a COCO `segmentation`: polygons, uncompressed RLE or compressed RLE.

    Polygons of one or two points (2 or 4 numbers: no area) are dropped, as detectron2's `load_coco_json`
    does; PartImageNet's json has such polygons (facebookresearch/VLPart tools/partimagenet_format_json.py
    pads them). If every polygon is degenerate the mask is empty (the caller's empty-part rule applies)."""
    if isinstance(segm, list):
        polys = []
        for poly in segm:
            if (
                not isinstance(poly, list)
                or not poly
                or len(poly) % 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly)
            ):
                raise BadInput(where, MALFORMED_ROW, "a polygon must be a flat list of (x, y) pairs")
            if len(poly) >= 6:
                polys.append([float(v) for v in poly])
        if not segm:
            raise BadInput(where, MALFORMED_ROW, "segmentation has no polygon")
        if not polys:
            return np.zeros((height, width), bool)
        rle = coco_mask.merge(coco_mask.frPyObjects(polys, height, width))
    elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
        size = segm["size"]
        if not (isinstance(size, list) and len(size) == 2):
            raise BadInput(where, MALFORMED_ROW, f"RLE size must be [height, width], got {size!r}")
        if [int(size[0]), int(size[1])] != [height, width]:
            raise BadInput(where, SIZE_MISMATCH, f"RLE is {size[1]}x{size[0]}, image is {width}x{height}")
        counts = segm["counts"]
        if isinstance(counts, list):
            rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        elif isinstance(counts, str):
            rle = {"size": [height, width], "counts": counts.encode("ascii")}
        else:
            raise BadInput(where, MALFORMED_ROW,
                           f"RLE counts must be a list or a string, got {type(counts).__name__}")
    else:
        raise BadInput(where, MALFORMED_ROW, f"unsupported segmentation of type {type(segm).__name__}")
    try:
        return coco_mask.decode(rle).astype(bool)
    except (ValueError, TypeError) as exc:  # e.g. an RLE whose runs do not add up to the image size
        raise BadInput(where, MALFORMED_ROW, f"undecodable segmentation: {exc}") from None


def id_order(value: Any) -> tuple[int, int, str]:
    """Sort key for json ids that are usually integers: 2 before 10, and non-integers after them by text."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def first_synonym(name: str) -> str:
    """'car, auto, automobile' -> 'car' (WordNet-style synonym lists, as in ADE20K and ImageNet)."""
    return name.split(",")[0].strip()


def name_table(filename: str) -> tuple[str, ...]:
    """Names of a table shipped next to the adapters: one name per line, '#' lines are comments; the k-th
    name (0-based) has id k."""
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def split_owned_name(label: str) -> tuple[str, str]:
    """OV-PARTS labels name the object and the part in one string: "dog's head" -> ("dog", "head")."""
    owner, sep, part = label.partition("'s ")
    if not sep or not owner or not part:
        raise ValueError(f"label {label!r} is not of the form \"<object>'s <part>\"")
    return owner, part

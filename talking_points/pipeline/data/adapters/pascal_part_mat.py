"""Adapter for the original Pascal-Part release (Chen et al., CVPR 2014): `Annotations_Part/*.mat` + VOC.

Each .mat holds a struct `anno` with `imname` and `objects`; every object has `class`, `class_ind`, `mask`
(the instance silhouette) and `parts`, a list of (`part_name`, `mask`). Part names are short codes
('lfleg', 'bliplate', 'wheel_2'); `PART_CODES` maps every code of every VOC class to readable English.
Objects without parts (boat, chair, dining table and sofa are annotated with silhouettes only; other
objects may lack parts too) are kept, with no parts, unless `objects_without_parts` is false.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io
from pydantic import Field

from talking_points.pipeline.data.adapters.base import Adapter, SourceConfigBase
from talking_points.pipeline.data.adapters.common import (
    MISSING_ANNOTATION,
    UNREADABLE_ANNOTATION,
    VOC_CLASSES,
    ImageExt,
    image_size,
    inside_root,
    require_dir,
    require_tracked,
)
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord

__all__ = [
    "ADAPTER",
    "CLASS_NUMBERED_PARTS",
    "CLASS_PARTS",
    "PART_CODES",
    "PascalPartMatConfig",
    "list_samples",
    "load_sample",
    "part_name",
]

#: Every Pascal-Part part code -> readable English. Codes follow the dataset's own part index
#: (pascal_part/part2ind.m, also in twuilliam/pascal-part-py part2ind.py): l/r = left/right (of the object
#: itself), f/b = front/back, u/l after the side = upper/lower, 'pa' = paw, 'ho' = hoof, 'liplate' = licence
#: plate, a leading 'h'/'c' on a train side = the head car / a coach.
PART_CODES: dict[str, str] = {
    # heads and faces
    "head": "head", "leye": "left eye", "reye": "right eye", "lear": "left ear", "rear": "right ear",
    "lebrow": "left eyebrow", "rebrow": "right eyebrow", "nose": "nose", "mouth": "mouth", "hair": "hair",
    "muzzle": "muzzle", "beak": "beak", "lhorn": "left horn", "rhorn": "right horn",
    # bodies
    "torso": "torso", "neck": "neck", "tail": "tail", "body": "body",
    # birds and planes
    "lwing": "left wing", "rwing": "right wing", "lleg": "left leg", "rleg": "right leg",
    "lfoot": "left foot", "rfoot": "right foot", "stern": "stern",
    # four-legged animals
    "lfleg": "left front leg", "rfleg": "right front leg",
    "lbleg": "left back leg", "rbleg": "right back leg",
    "lfpa": "left front paw", "rfpa": "right front paw", "lbpa": "left back paw", "rbpa": "right back paw",
    "lfuleg": "left front upper leg", "lflleg": "left front lower leg",
    "rfuleg": "right front upper leg", "rflleg": "right front lower leg",
    "lbuleg": "left back upper leg", "lblleg": "left back lower leg",
    "rbuleg": "right back upper leg", "rblleg": "right back lower leg",
    "lfho": "left front hoof", "rfho": "right front hoof",
    "lbho": "left back hoof", "rbho": "right back hoof",
    # people
    "llarm": "left lower arm", "luarm": "left upper arm", "lhand": "left hand",
    "rlarm": "right lower arm", "ruarm": "right upper arm", "rhand": "right hand",
    "llleg": "left lower leg", "luleg": "left upper leg",
    "rlleg": "right lower leg", "ruleg": "right upper leg",
    # two-wheelers
    "fwheel": "front wheel", "bwheel": "back wheel", "saddle": "saddle", "handlebar": "handlebar",
    "chainwheel": "chainwheel",
    # cars and buses
    "frontside": "front side", "leftside": "left side", "rightside": "right side", "backside": "back side",
    "roofside": "roof", "leftmirror": "left mirror", "rightmirror": "right mirror",
    "fliplate": "front license plate", "bliplate": "back license plate",
    # trains
    "hfrontside": "head car front side", "hleftside": "head car left side",
    "hrightside": "head car right side",
    "hbackside": "head car back side", "hroofside": "head car roof",
    "cfrontside": "coach front side", "cleftside": "coach left side", "crightside": "coach right side",
    "cbackside": "coach back side", "croofside": "coach roof",
    # numbered parts ('wheel_3' is the third wheel; the number only tells instances apart)
    "engine": "engine", "wheel": "wheel", "headlight": "headlight", "door": "door", "window": "window",
    "coach": "coach",
    # other objects
    "cap": "cap", "pot": "pot", "plant": "plant", "screen": "screen",
}

_CAT = ("head", "leye", "reye", "lear", "rear", "nose", "torso", "neck",
        "lfleg", "lfpa", "rfleg", "rfpa", "lbleg", "lbpa", "rbleg", "rbpa", "tail")
_COW = ("head", "leye", "reye", "lear", "rear", "muzzle", "lhorn", "rhorn", "torso", "neck",
        "lfuleg", "lflleg", "rfuleg", "rflleg", "lbuleg", "lblleg", "rbuleg", "rblleg", "tail")
_VEHICLE = ("frontside", "leftside", "rightside", "backside", "roofside", "leftmirror", "rightmirror",
            "fliplate", "bliplate")

#: The un-numbered part codes each VOC class may carry (empty: silhouette only).
CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "aeroplane": ("body", "stern", "lwing", "rwing", "tail"),
    "bicycle": ("fwheel", "bwheel", "saddle", "handlebar", "chainwheel"),
    "bird": ("head", "leye", "reye", "beak", "torso", "neck", "lwing", "rwing", "lleg", "lfoot", "rleg",
             "rfoot", "tail"),
    "boat": (),
    "bottle": ("cap", "body"),
    "bus": _VEHICLE,
    "car": _VEHICLE,
    "cat": _CAT,
    "chair": (),
    "cow": _COW,
    "diningtable": (),
    "dog": (*_CAT, "muzzle"),
    "horse": (*(c for c in _COW if c not in ("lhorn", "rhorn")), "lfho", "rfho", "lbho", "rbho"),
    "motorbike": ("fwheel", "bwheel", "handlebar", "saddle"),
    "person": ("head", "leye", "reye", "lear", "rear", "lebrow", "rebrow", "nose", "mouth", "hair",
               "torso", "neck", "llarm", "luarm", "lhand", "rlarm", "ruarm", "rhand",
               "llleg", "luleg", "lfoot", "rlleg", "ruleg", "rfoot"),
    "pottedplant": ("pot", "plant"),
    "sheep": _COW,
    "sofa": (),
    "train": ("head", "hfrontside", "hleftside", "hrightside", "hbackside", "hroofside"),
    "tvmonitor": ("screen",),
}

#: The numbered part codes ('<code>_<n>') each VOC class may carry.
CLASS_NUMBERED_PARTS: dict[str, tuple[str, ...]] = {
    "aeroplane": ("engine", "wheel"),
    "bicycle": ("headlight",),
    "bus": ("door", "wheel", "headlight", "window"),
    "car": ("door", "wheel", "headlight", "window"),
    "motorbike": ("headlight",),
    "train": ("headlight", "coach", "cfrontside", "cleftside", "crightside", "cbackside", "croofside"),
}

_NUMBERED = re.compile(r"^([a-z]+)_(\d+)$")


def part_name(voc_class: str, code: str) -> str | None:
    """Readable name of part `code` of an object of `voc_class`; None if the class has no such part."""
    if code in CLASS_PARTS.get(voc_class, ()):
        return PART_CODES[code]
    m = _NUMBERED.match(code)
    if m and m.group(1) in CLASS_NUMBERED_PARTS.get(voc_class, ()):
        return PART_CODES[m.group(1)]
    return None


class PascalPartMatConfig(SourceConfigBase):
    """Pascal-Part as released: a folder of `<image>.mat` part annotations and the VOC JPEG folder, both
    under `root` (real folders, not symlinks: DVC tracks `root`)."""

    adapter: Literal["pascal_part_mat"] = "pascal_part_mat"
    root: Path = Field(description="folder holding the .mat folder and the VOC JPEG folder; a dep of ingest")
    annotations: Path = Field(Path("Annotations_Part"),
                              description="folder of Pascal-Part .mat files, relative to root")
    images: Path = Field(Path("JPEGImages"), description="folder of the VOC 2010 JPEGs, relative to root")
    image_ext: ImageExt = Field(".jpg", description="extension of the image files, with the dot")
    objects_without_parts: bool = Field(True, description="keep objects annotated with a silhouette only")

    @property
    def annotation_dir(self) -> Path:
        return self.path(self.annotations)

    @property
    def image_dir(self) -> Path:
        return self.path(self.images)


def list_samples(cfg: PascalPartMatConfig) -> list[str]:
    """Stems of the .mat files, sorted."""
    folder = require_dir(cfg.annotation_dir, "Pascal-Part .mat files", "set 'annotations' to the "
                         "Annotations_Part folder of the Pascal-Part download, relative to 'root'")
    require_dir(cfg.image_dir, "the VOC JPEG images", "set 'images' to the VOC2010 JPEGImages folder, "
                "relative to 'root'")
    require_tracked(cfg.root, folder, "annotations")
    require_tracked(cfg.root, cfg.image_dir, "images")
    return sorted(p.stem for p in folder.glob("*.mat") if p.is_file())


def _text(value: np.ndarray) -> str:
    """A MATLAB char array as loaded by scipy ((1,) array of str) -> str."""
    flat = np.asarray(value).reshape(-1)
    if flat.size != 1 or not isinstance(flat[0], str):
        raise ValueError(f"expected a string, got {value!r}")
    return flat[0]


def _mask(value: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected a 2-D numeric mask, got {arr.dtype} {arr.shape}")
    return arr.astype(bool)


def _read_objects(mat: Path) -> tuple[str, list[tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]]]:
    """(imname, [(class, mask, [(part code, mask)])]) of one .mat file."""
    try:
        data = scipy.io.loadmat(mat)
        anno = data["anno"].reshape(-1)[0]
        imname = _text(anno["imname"])
        objects = []
        for k, obj in enumerate(np.asarray(anno["objects"]).reshape(-1)):
            cls = _text(obj["class"])
            parts = [(_text(p["part_name"]), _mask(p["mask"], f"object {k} part"))
                     for p in np.asarray(obj["parts"]).reshape(-1)]
            objects.append((cls, _mask(obj["mask"], f"object {k}"), parts))
    except (OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError) as exc:
        raise BadInput(mat, UNREADABLE_ANNOTATION,
                       f"not a Pascal-Part annotation: {type(exc).__name__}: {exc}") from None
    return imname, objects


def load_sample(cfg: PascalPartMatConfig, key: str) -> ImageRecord:
    """One image with its object silhouettes and part masks."""
    mat = cfg.annotation_dir / f"{key}.mat"
    if not mat.is_file():
        raise BadInput(mat, MISSING_ANNOTATION, "no such file")
    imname, raw = _read_objects(mat)
    image = inside_root(cfg.image_dir, f"{imname}{cfg.image_ext}", mat)
    width, height = image_size(image)
    objects = []
    for k, (cls, omask, raw_parts) in enumerate(raw):
        if cls not in VOC_CLASSES:
            raise BadInput(mat, "unknown class", f"object {k} has class {cls!r}, not a VOC class")
        parts = []
        for code, pmask in raw_parts:
            name = part_name(cls, code)
            if name is None:
                raise BadInput(mat, "unknown part code", f"object {k} ({cls}) has part {code!r}")
            parts.append(PartRecord(name=name, mask=pmask))
        if parts or cfg.objects_without_parts:
            objects.append(ObjectRecord(category=VOC_CLASSES[cls], mask=omask, parts=parts))
    return ImageRecord(stem=key, width=width, height=height, objects=objects, file=image, origin=str(mat))


ADAPTER = Adapter(name="pascal_part_mat", config=PascalPartMatConfig, list_samples=list_samples,
                  load_sample=load_sample)

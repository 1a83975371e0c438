"""Small dataset fixtures in the OV-PARTS and PartImageNet layouts, built from the real Pascal-Part samples.

No public sample of OV-PARTS (Pascal-Part-116, ADE20K-Part-234) or PartImageNet exists, so the tests
convert the real Pascal-Part .mat files into those layouts, writing files the way the datasets do
(semantic part PNGs with their ignore value, COCO jsons with polygons and RLE), into a folder the test
gives (a tmp_path). Each builder returns the truth it encoded, read from the .mat files with scipy
directly (not through the adapter under test), so a test can check that names and masks round-trip.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import scipy.io
from PIL import Image
from pycocotools import mask as coco_mask

from talking_points.pipeline.data.adapters.common import name_table
from talking_points.pipeline.data.adapters.ov_parts import ADE20K_OBJECTS_44, ADE20K_PART_234, PASCAL_PART_116

__all__ = [
    "ADE234_OBJECT",
    "PARTIMAGENET_CATEGORIES",
    "PARTIMAGENET_FROM_VOC",
    "BuiltObject",
    "MatObject",
    "MatSample",
    "ade234_part",
    "build_ov_parts_ade",
    "build_ov_parts_pascal",
    "build_partimagenet",
    "ovparts_116_part",
    "read_mat",
    "read_mats",
]

VOC_ORDER = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
             "tvmonitor")


@dataclass
class MatObject:
    voc_class: str
    mask: np.ndarray
    parts: list[tuple[str, np.ndarray]]  # (part code, mask)


@dataclass
class MatSample:
    stem: str
    image: Path
    width: int
    height: int
    objects: list[MatObject]


@dataclass
class BuiltObject:
    """One object as written into a built fixture: class name, mask and {part name: mask}."""

    category: str
    mask: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    mat_parts: set[str] = field(default_factory=set)  # part names the .mat codes map to
    polygon_parts: set[str] = field(default_factory=set)  # written as polygons: exact up to rasterising


def _s(value) -> str:
    return str(np.asarray(value).reshape(-1)[0])


def read_mat(mat: Path, image_dir: Path) -> MatSample:
    """The objects and parts of one Pascal-Part .mat, read with scipy."""
    anno = scipy.io.loadmat(mat)["anno"][0, 0]
    objects = []
    for obj in anno["objects"].reshape(-1):
        parts = [(_s(p["part_name"]), p["mask"].astype(bool)) for p in obj["parts"].reshape(-1)]
        objects.append(MatObject(_s(obj["class"]), obj["mask"].astype(bool), parts))
    image = image_dir / f"{_s(anno['imname'])}.jpg"
    with Image.open(image) as im:
        width, height = im.size
    return MatSample(mat.stem, image, width, height, objects)


def read_mats(mat_dir: Path) -> list[MatSample]:
    return [read_mat(p, mat_dir) for p in sorted(mat_dir.glob("*.mat"))]


def _base(code: str) -> str:
    head, _, number = code.rpartition("_")
    return head if head and number.isdigit() else code


def _same(names: str, value: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), value)


# --- OV-PARTS Pascal-Part-116: the .mat codes merged into the 116 coarse classes ---------------------------
_OV116 = {
    **_same("leye reye", "eye"), **_same("lear rear", "ear"), **_same("lebrow rebrow", "eyebrow"),
    **_same("lhorn rhorn", "horn"), **_same("lwing rwing", "wing"), **_same("lfoot rfoot", "foot"),
    **_same("lleg rleg lfleg rfleg lbleg rbleg llleg luleg rlleg ruleg", "leg"),
    **_same("lfuleg lflleg rfuleg rflleg lbuleg lblleg rbuleg rblleg", "leg"),
    **_same("lfpa rfpa lbpa rbpa", "paw"), **_same("lfho rfho lbho rbho", "hoof"),
    **_same("llarm rlarm", "lower arm"), **_same("luarm ruarm", "upper arm"), **_same("lhand rhand", "hand"),
    **_same("fwheel bwheel", "wheel"), **_same("frontside hfrontside cfrontside", "front"),
    **_same("leftside rightside hleftside hrightside cleftside crightside", "side"),
    **_same("backside hbackside cbackside", "back"), **_same("roofside hroofside croofside", "roof"),
    **_same("leftmirror rightmirror", "mirror"), **_same("fliplate bliplate", "license plate"),
}


def ovparts_116_part(voc_class: str, code: str) -> str:
    """The Pascal-Part-116 part name of a .mat part code (OV-PARTS merges left/right, front/back, ...)."""
    base = _base(code)
    return _OV116.get(base, base)


# --- OV-PARTS ADE20K-Part-234: the .mat classes and codes that have an ADE20K-Part-234 counterpart -------
ADE234_OBJECT = {"person": "person", "car": "car", "bus": "bus", "aeroplane": "airplane"}
_ADE_VEHICLE = {"door": "door", "headlight": "headlight", "wheel": "wheel", "window": "window",
                **_same("fliplate bliplate", "license plate"), **_same("leftmirror rightmirror", "mirror")}
_ADE234 = {
    "person": {**_same("head leye reye lear rear lebrow rebrow nose mouth hair", "head"), "torso": "torso",
               "neck": "neck", **_same("llarm luarm rlarm ruarm", "arm"), **_same("lhand rhand", "hand"),
               **_same("llleg luleg rlleg ruleg", "leg"), **_same("lfoot rfoot", "foot")},
    "car": _ADE_VEHICLE,
    "bus": _ADE_VEHICLE,
    "aeroplane": {**_same("body stern", "fuselage"), **_same("lwing rwing", "wing"), "tail": "stabilizer",
                  "engine": "turbine engine", "wheel": "landing gear"},
}


def ade234_part(voc_class: str, code: str) -> str | None:
    """The ADE20K-Part-234 part name of a .mat part code, or None (no counterpart: left unlabelled)."""
    return _ADE234.get(voc_class, {}).get(_base(code))


# --- PartImageNet -------------------------------------------------------------------------------------------
_PIN_SUPER = (
    ("Quadruped", ("Head", "Body", "Foot", "Tail")), ("Biped", ("Head", "Body", "Hand", "Foot", "Tail")),
    ("Fish", ("Head", "Body", "Fin", "Tail")), ("Bird", ("Head", "Body", "Wing", "Foot", "Tail")),
    ("Snake", ("Head", "Body")), ("Reptile", ("Head", "Body", "Foot", "Tail")),
    ("Car", ("Body", "Tier", "Side Mirror")), ("Bicycle", ("Body", "Head", "Seat", "Tier")),
    ("Boat", ("Body", "Sail")), ("Aeroplane", ("Head", "Body", "Engine", "Wing", "Tail")),
    ("Bottle", ("Mouth", "Body")),
)
#: The 40 PartImageNet part categories as in its jsons: ids from 0, '<Super-category> <Part>'.
PARTIMAGENET_CATEGORIES = [{"id": i, "name": f"{sup} {part}", "supercategory": sup}
                           for i, (sup, part) in enumerate((s, p) for s, ps in _PIN_SUPER for p in ps)]
_QUAD = {**_same("head leye reye lear rear nose muzzle", "Head"), **_same("torso neck", "Body"),
         **_same("lfleg rfleg lbleg rbleg lfpa rfpa lbpa rbpa", "Foot"), "tail": "Tail"}
_CAR = {**_same("frontside leftside rightside backside roofside door window headlight fliplate bliplate",
                "Body"), "wheel": "Tier", **_same("leftmirror rightmirror", "Side Mirror")}
_BIRD = {**_same("head leye reye beak", "Head"), **_same("torso neck", "Body"),
         **_same("lwing rwing", "Wing"), **_same("lleg rleg lfoot rfoot", "Foot"), "tail": "Tail"}
_PLANE = {**_same("body stern", "Body"), **_same("lwing rwing", "Wing"), "engine": "Engine", "tail": "Tail"}
#: VOC class -> (ImageNet synset used for the file name, super-category, {.mat code: part}).
PARTIMAGENET_FROM_VOC: dict[str, tuple[str, str, dict[str, str]]] = {
    "dog": ("n02085620", "Quadruped", _QUAD),
    "cat": ("n02123045", "Quadruped", _QUAD),
    "bird": ("n01530575", "Bird", _BIRD),
    "aeroplane": ("n02690373", "Aeroplane", _PLANE),
    "car": ("n02814533", "Car", _CAR),
    "bus": ("n04146614", "Car", _CAR),
    "bottle": ("n04591713", "Bottle", {"body": "Body", "cap": "Mouth"}),
}


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours through the boundary pixels' centres (COCO puts pixel (c, r)'s centre at +0.5)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [(c.reshape(-1).astype(float) + 0.5).tolist() for c in contours if len(c) >= 3]


def _rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _by_area(parts: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Largest part first, so a part drawn inside another (a licence plate on a back side) stays visible."""
    return sorted(parts, key=lambda cm: -int(cm[1].sum()))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def build_ov_parts_pascal(mat_dir: Path, root: Path, split: str = "val",
                          object_maps: bool = True) -> list[MatSample]:
    """Pascal-Part-116 layout under `root` (images/, annotations_detectron2_part/ and, if `object_maps`,
    annotations_detectron2_obj/); returns the .mat truth."""
    names = name_table(PASCAL_PART_116)
    samples = read_mats(mat_dir)
    for s in samples:
        _copy(s.image, root / "images" / split / f"{s.stem}.jpg")
        parts = np.full((s.height, s.width), 255, np.uint8)
        objs = np.full((s.height, s.width), 255, np.uint8)
        for o in s.objects:
            objs[o.mask] = VOC_ORDER.index(o.voc_class)
            for code, m in _by_area(o.parts):
                parts[m] = names.index(f"{o.voc_class}'s {ovparts_116_part(o.voc_class, code)}")
        _save(parts, root / "annotations_detectron2_part" / split / f"{s.stem}.png")
        if object_maps:
            _save(objs, root / "annotations_detectron2_obj" / split / f"{s.stem}.png")
    return samples


def build_ov_parts_ade(mat_dir: Path, root: Path, split: str = "validation",
                       categories: bool = True) -> dict[str, list[BuiltObject]]:
    """ADE20K-Part-234 layout under `root` from the .mat objects that have an ADE counterpart.

    Object masks go into ade20k_instance_<train|val>.json (RLE, polygons for the first image); part labels
    into a uint16 PNG (65535 = ignore). Returns {stem: [BuiltObject]}: the object masks written, and as
    parts the pixels of each part label of the object's class inside its mask (what the PNG says).
    """
    part_names, object_names = name_table(ADE20K_PART_234), name_table(ADE20K_OBJECTS_44)
    images, annotations, truth = [], [], {}
    for s in read_mats(mat_dir):
        objects = [o for o in s.objects if o.voc_class in ADE234_OBJECT]
        if not objects:
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": f"{s.stem}.jpg", "width": s.width, "height": s.height})
        _copy(s.image, root / "images" / split / f"{s.stem}.jpg")
        labels = np.full((s.height, s.width), 65535, np.uint16)
        built = []
        for o in objects:
            b = BuiltObject(ADE234_OBJECT[o.voc_class], o.mask.copy())
            for code, m in _by_area(o.parts):
                part = ade234_part(o.voc_class, code)
                if part is not None:
                    labels[m] = part_names.index(f"{b.category}'s {part}")
                    b.mat_parts.add(part)
            built.append(b)
        for b in built:  # the part labels of the object's class inside its mask, as the PNG says
            for label, full in enumerate(part_names):
                owner, _, part = full.partition("'s ")
                if owner == b.category and (m := (labels == label) & b.mask).any():
                    b.parts[part] = m
        for b in built:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0,
                "segmentation": _polygons(b.mask) if image_id == 1 else _rle(b.mask),
                "category_id": object_names.index(b.category),
                "part_category_id": sorted(part_names.index(f"{b.category}'s {p}") for p in b.parts),
            })
        _save(labels, root / "annotations_detectron2_part" / split / f"{s.stem}.png")
        truth[s.stem] = built
    data = {"images": images, "annotations": annotations}
    if categories:
        data["categories"] = [{"id": i, "name": n} for i, n in enumerate(object_names)]
    short = {"training": "train", "validation": "val"}.get(split, split)
    (root / f"ade20k_instance_{short}.json").write_text(json.dumps(data))
    return truth


def build_partimagenet(mat_dir: Path, root: Path, split: str = "train") -> dict[str, BuiltObject]:
    """PartImageNet layout under `root`: images/<split>/<synset>/<file>.JPEG and annotations/<split>.json.

    One object per image: the first .mat object with parts whose class has a PartImageNet super-category.
    Parts of one PartImageNet category are merged into one annotation row (polygons for even category
    ids, RLE for odd ones). Returns {file stem: BuiltObject} whose category is the synset id.
    """
    by_name = {c["name"]: c["id"] for c in PARTIMAGENET_CATEGORIES}
    images, annotations, truth = [], [], {}
    for s in read_mats(mat_dir):
        pick = next((o for o in s.objects if o.voc_class in PARTIMAGENET_FROM_VOC and o.parts), None)
        if pick is None:
            continue
        synset, sup, codes = PARTIMAGENET_FROM_VOC[pick.voc_class]
        file_name = f"{synset}_{s.stem}.JPEG"
        _copy(s.image, root / "images" / split / synset / file_name)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": file_name, "width": s.width, "height": s.height})
        merged: dict[str, np.ndarray] = {}
        for code, m in pick.parts:
            part = codes.get(_base(code))
            if part is not None:
                merged[part] = merged.get(part, np.zeros_like(m)) | m
        b = BuiltObject(synset, np.zeros((s.height, s.width), bool))
        for part, m in sorted(merged.items()):
            cid = by_name[f"{sup} {part}"]
            segm = _polygons(m) if cid % 2 == 0 else _rle(m)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cid,
                                "segmentation": segm, "iscrowd": 0})
            b.parts[part] = m
            b.mask |= m
            if cid % 2 == 0:
                b.polygon_parts.add(part)
        truth[Path(file_name).stem] = b
    path = root / "annotations" / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": PARTIMAGENET_CATEGORIES}))
    return truth

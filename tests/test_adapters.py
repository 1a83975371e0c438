"""The real-dataset adapters on real samples (Pascal-Part .mat, full ADE20K) and on fixtures built from them
in the OV-PARTS and PartImageNet layouts: names, counts, masks, table schemas, and bad input."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixture_builders import (
    ade234_part,
    build_ov_parts_ade,
    build_ov_parts_pascal,
    build_partimagenet,
    ovparts_116_part,
)
from PIL import Image
from pydantic import ValidationError

from talking_points.pipeline.data import masks, schema
from talking_points.pipeline.data.adapters import ade20k_full, ov_parts, partimagenet, pascal_part_mat
from talking_points.pipeline.data.adapters.common import (
    CORRUPT_IMAGE,
    MALFORMED_ROW,
    MISSING_IMAGE,
    OUTSIDE_ROOT,
    SIZE_MISMATCH,
    UNKNOWN_LABEL,
    UNREADABLE_ANNOTATION,
    name_table,
    segmentation_mask,
    split_owned_name,
)
from talking_points.pipeline.data.adapters.registry import ADAPTERS
from talking_points.pipeline.data.errors import BadInput, OnError
from talking_points.pipeline.data.ingest import DUPLICATE_IMAGE_ID, IngestResult, ingest_source
from talking_points.pipeline.data.ingest_config import IngestConfig
from talking_points.pipeline.data.tables import validate

ADE_NAME = "ADE_train_00016964"
READABLE = r"^[A-Za-z][a-z'-]*( [a-z'-]+)*$"  # words and spaces: no codes like 'lfleg' or 'wheel_1'


# --------------------------------------------------------------------------- helpers


def ingest(cfg, on_error: OnError = OnError.skip, workers: int = 1) -> IngestResult:
    return ingest_source("src", cfg, image_dir=None, on_error=on_error, workers=workers)


def check_tables(res: IngestResult) -> None:
    validate(res.images, schema.IMAGES, "images")
    validate(res.objects, schema.OBJECTS, "objects")
    validate(res.parts, schema.PARTS, "parts")


def decoded(res: IngestResult) -> dict[str, tuple[np.ndarray, list[tuple[str, np.ndarray]], str]]:
    """{object_id: (object mask, [(part name, part mask)], category)} of an ingest result."""
    size = {r.image_id: (r.height, r.width) for r in res.images.itertuples()}
    out = {}
    for o in res.objects.itertuples():
        h, w = size[o.image_id]
        out[o.object_id] = (masks.decode(o.mask_rle, h, w), [], o.category)
    for p in res.parts.itertuples():
        h, w = size[p.image_id]
        out[p.object_id][1].append((p.part, masks.decode(p.mask_rle, h, w)))
    return out


def assert_parts_inside_objects(res: IngestResult, tolerance: float = 0.0) -> None:
    for oid, (omask, parts, _) in decoded(res).items():
        for name, pmask in parts:
            outside = np.count_nonzero(pmask & ~omask) / np.count_nonzero(pmask)
            assert outside <= tolerance, f"{oid} part {name!r}: {outside:.1%} outside its object"


def union(masks_: object) -> np.ndarray:
    return np.logical_or.reduce(list(masks_))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


def link_dir(src: Path, dst: Path, names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.symlink(src / n, dst / n)


def truncate(path: Path, keep: float = 0.3) -> None:
    data = path.read_bytes()
    path.unlink()  # may be a symlink to a read-only real sample: replace it, never write through it
    path.write_bytes(data[: int(len(data) * keep)])


def shrink(path: Path) -> None:
    with Image.open(path) as im:
        small = im.resize((im.width // 2, im.height // 2), Image.NEAREST)
    path.unlink()
    small.save(path)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pascal_dir(real_fixtures: Path) -> Path:
    return real_fixtures / "pascal_part_mat"


@pytest.fixture(scope="module")
def ade_dir(real_fixtures: Path) -> Path:
    return real_fixtures / "ade20k_full"


@pytest.fixture(scope="module")
def pascal_cfg(pascal_dir: Path) -> pascal_part_mat.PascalPartMatConfig:
    return pascal_part_mat.PascalPartMatConfig(root=pascal_dir, annotations=".", images=".")


@pytest.fixture(scope="module")
def pp116(pascal_dir: Path, tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("pp116")
    return root, build_ov_parts_pascal(pascal_dir, root)


@pytest.fixture(scope="module")
def ade234(pascal_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ade234")
    return root, build_ov_parts_ade(pascal_dir, root)


@pytest.fixture(scope="module")
def pin(pascal_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pin")
    return root, build_partimagenet(pascal_dir, root)


def pin_cfg(root: Path) -> partimagenet.PartImageNetConfig:
    return partimagenet.PartImageNetConfig(root=root, annotations="annotations/train.json", images="images/train")


# --------------------------------------------------------------------------- registry and configs


def test_adapters_are_registered_and_selectable_from_params(tmp_path: Path) -> None:
    for name in ("pascal_part_mat", "ov_parts", "partimagenet", "ade20k_full"):
        assert ADAPTERS[name].name == name
    cfg = IngestConfig.model_validate({"sources": {
        "pascal": {"adapter": "pascal_part_mat", "root": "d/pascal_part"},
        "ovp": {"adapter": "ov_parts", "variant": "pascal_part_116", "root": "d/Pascal-Part-116"},
        "pin": {"adapter": "partimagenet", "root": "d/PartImageNet", "annotations": "train.json",
                "images": "train"},
        "ade": {"adapter": "ade20k_full", "root": "d/ADE"},
    }})
    assert isinstance(cfg.sources["ovp"], ov_parts.OvPartsConfig)
    assert cfg.sources["ovp"].split_name == "val" and cfg.sources["ade"].objects_without_parts is False
    assert cfg.sources["pascal"].annotation_dir == Path("d/pascal_part/Annotations_Part")
    assert cfg.sources["pascal"].image_dir == Path("d/pascal_part/JPEGImages")
    assert cfg.sources["pin"].annotation_json == Path("d/PartImageNet/train.json")


def test_config_errors_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"instances.*ADE20K-Part-234 field"):
        ov_parts.OvPartsConfig(variant="pascal_part_116", root=tmp_path, instances=tmp_path / "x.json")
    with pytest.raises(ValidationError, match="image_ext"):
        pascal_part_mat.PascalPartMatConfig(root=tmp_path, image_ext="jpg")
    with pytest.raises(ValidationError, match="split"):
        ov_parts.OvPartsConfig(variant="ade20k_part_234", root=tmp_path, split="../val")
    with pytest.raises(ValidationError, match=r"objects_without_part\b"):
        ade20k_full.Ade20kFullConfig(root=tmp_path, objects_without_part=True)
    missing = pascal_part_mat.PascalPartMatConfig(root=tmp_path, annotations="no", images=".")
    with pytest.raises(BadInput, match="Annotations_Part") as err:
        pascal_part_mat.list_samples(missing)
    assert err.value.reason == "missing directory" and err.value.where == str(tmp_path / "no")
    with pytest.raises(BadInput, match="split"):
        ov_parts.list_samples(ov_parts.OvPartsConfig(variant="ade20k_part_234", root=tmp_path))


# --------------------------------------------------------------------------- Pascal-Part (.mat)

#: per image: (category, number of parts) of every object, from the .mat files (see fixtures/SOURCES.md)
PASCAL_EXPECTED = {
    "2008_000939": [("person", 7), ("car", 8)],
    "2008_003497": [("dog", 12), ("dog", 13)],
    "2008_006462": [("cat", 9)],
    "2009_001103": [("person", 4), ("person", 18), ("tv monitor", 0)] + [("bottle", 2)] * 3,
    "2010_000145": [("boat", 0)],
    "2010_002065": [("aeroplane", 12)],
    "2010_003057": [("car", 6), ("car", 7), ("car", 9), ("car", 4), ("bus", 9)],
    "2010_005511": [("bird", 7), ("bird", 7), ("bird", 6)],
}


def test_pascal_part_mat_ingests_the_real_samples(pascal_cfg) -> None:
    res = ingest(pascal_cfg)
    check_tables(res)
    assert res.skips.total == 0
    assert sorted(res.images["image_id"]) == [f"src/{k}" for k in sorted(PASCAL_EXPECTED)]
    n_parts = res.parts.groupby("object_id").size()
    got: dict[str, list] = {}
    for o in res.objects.itertuples():
        got.setdefault(o.image_id.split("/")[1], []).append((o.category, int(n_parts.get(o.object_id, 0))))
    assert got == PASCAL_EXPECTED
    row = res.images.set_index("image_id").loc["src/2008_003497"]
    assert (row.width, row.height) == (500, 318) and row.file.endswith("2008_003497.jpg")
    assert_parts_inside_objects(res)
    assert res.parts["part"].str.match(READABLE).all()


def test_pascal_part_names_are_readable(pascal_cfg) -> None:
    rec = pascal_part_mat.load_sample(pascal_cfg, "2008_003497")
    dog0 = [p.name for p in rec.objects[0].parts]
    assert dog0 == ["head", "left ear", "right ear", "torso", "left front leg", "left front paw",
                    "right front leg", "right front paw", "left back leg", "right back leg", "right back paw",
                    "tail"]
    car = [p.name for p in pascal_part_mat.load_sample(pascal_cfg, "2008_000939").objects[1].parts]
    assert car == ["back license plate", "back side", "right side", "door", "wheel", "wheel", "window",
                   "window"]
    plane = Counter(p.name for p in pascal_part_mat.load_sample(pascal_cfg, "2010_002065").objects[0].parts)
    assert plane == {"body": 1, "left wing": 1, "right wing": 1, "engine": 2, "wheel": 5, "stern": 1,
                     "tail": 1}
    assert rec.origin.endswith("2008_003497.mat") and rec.file.name == "2008_003497.jpg"


def test_pascal_part_code_table_covers_every_class() -> None:
    assert set(pascal_part_mat.CLASS_PARTS) == set(pascal_part_mat.VOC_CLASSES)
    for cls, codes in pascal_part_mat.CLASS_PARTS.items():
        for code in codes + pascal_part_mat.CLASS_NUMBERED_PARTS.get(cls, ()):
            assert code in pascal_part_mat.PART_CODES, (cls, code)
    import re

    assert all(re.match(READABLE, n) for n in pascal_part_mat.PART_CODES.values())
    name = pascal_part_mat.part_name
    assert name("dog", "lfleg") == "left front leg" and name("cat", "lear") == "left ear"
    assert name("bicycle", "fwheel") == "front wheel" and name("motorbike", "bwheel") == "back wheel"
    assert name("train", "hfrontside") == "head car front side"
    assert name("train", "cbackside_2") == "coach back side"
    assert name("horse", "rbho") == "right back hoof" and name("cow", "lblleg") == "left back lower leg"
    assert name("car", "wheel_3") == "wheel" and name("bus", "fliplate") == "front license plate"
    assert name("dog", "wheel_1") is None and name("horse", "lhorn") is None and name("boat", "head") is None


def test_pascal_objects_without_parts_can_be_dropped(pascal_dir: Path) -> None:
    cfg = pascal_part_mat.PascalPartMatConfig(root=pascal_dir, annotations=".", images=".",
                                              objects_without_parts=False)
    cats = [o.category for o in pascal_part_mat.load_sample(cfg, "2009_001103").objects]
    assert cats == ["person", "person", "bottle", "bottle", "bottle"]
    assert pascal_part_mat.load_sample(cfg, "2010_000145").objects == []


# --------------------------------------------------------------------------- OV-PARTS Pascal-Part-116


def _clean(obj, others) -> bool:
    """One 8-connected piece, and no other object of the image within one pixel of it."""
    n, _ = cv2.connectedComponents(obj.mask.astype(np.uint8), connectivity=8)
    grown = cv2.dilate(obj.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return n == 2 and not any((grown & o.mask).any() for o in others if o is not obj)


def test_ov_parts_pascal_116_round_trips_the_mat_truth(pp116) -> None:
    root, truth = pp116
    cfg = ov_parts.OvPartsConfig(variant="pascal_part_116", root=root)
    res = ingest(cfg)
    check_tables(res)
    assert res.skips.total == 0 and len(res.images) == len(truth) == 8
    assert_parts_inside_objects(res)
    got = decoded(res)
    n_clean = 0
    for sample in truth:
        mine = {k: v for k, v in got.items() if k.startswith(f"src/{sample.stem}#")}
        want_cats = {pascal_part_mat.VOC_CLASSES[o.voc_class] for o in sample.objects}
        assert {cat for _, _, cat in mine.values()} == want_cats, sample.stem
        for obj in sample.objects:
            if not _clean(obj, sample.objects):
                continue
            n_clean += 1
            match = [v for v in mine.values() if iou(v[0], obj.mask) == 1.0]
            assert len(match) == 1, f"{sample.stem} {obj.voc_class}: no object with exactly its silhouette"
            _, parts, cat = match[0]
            assert cat == pascal_part_mat.VOC_CLASSES[obj.voc_class]
            coarse = {ovparts_116_part(obj.voc_class, c) for c, _ in obj.parts}
            assert sorted(name for name, _ in parts) == sorted(coarse)
            for name, pmask in parts:  # every pixel of a part came from a .mat part of that name
                source = union(m for c, m in obj.parts if ovparts_116_part(obj.voc_class, c) == name)
                assert not (pmask & ~source).any(), (sample.stem, name)
            if obj.parts:  # and no labelled pixel of the object was lost
                assert (union(m for _, m in parts) == union(m for _, m in obj.parts)).all()
    assert n_clean == 6  # both dogs, the cat, the boat, the plane and one bird


def test_ov_parts_pascal_116_merges_touching_instances(pp116) -> None:
    """The documented approximation: same-class instances that touch become one object."""
    root, _ = pp116
    rec = ov_parts.load_sample(ov_parts.OvPartsConfig(variant="pascal_part_116", root=root), "2010_003057")
    assert [o.category for o in rec.objects].count("car") == 1  # four touching cars in the .mat
    dogs = ov_parts.load_sample(ov_parts.OvPartsConfig(variant="pascal_part_116", root=root), "2008_003497")
    assert [(o.category, len(o.parts)) for o in dogs.objects] == [("dog", 10), ("dog", 6)]


def test_ov_parts_pascal_116_without_object_maps(pascal_dir: Path, tmp_path: Path) -> None:
    build_ov_parts_pascal(pascal_dir, tmp_path, object_maps=False)
    cfg = ov_parts.OvPartsConfig(variant="pascal_part_116", root=tmp_path)
    cats = {o.category for k in ov_parts.list_samples(cfg) for o in ov_parts.load_sample(cfg, k).objects}
    assert "boat" not in cats and "tv monitor" not in cats and {"dog", "cat", "bird", "person"} <= cats
    dogs = ov_parts.load_sample(cfg, "2008_003497").objects
    assert [o.category for o in dogs] == ["dog", "dog"]


def test_ov_parts_name_tables() -> None:
    from talking_points.pipeline.data.adapters.common import name_table

    t116, t234 = name_table(ov_parts.PASCAL_PART_116), name_table(ov_parts.ADE20K_PART_234)
    assert len(t116) == len(set(t116)) == 116 and len(t234) == len(set(t234)) == 234
    assert t116[0] == "aeroplane's body" and t116[-1] == "tvmonitor's screen" and t234[0] == "person's arm"
    assert {split_owned_name(n)[0] for n in t234} == set(name_table(ov_parts.ADE20K_OBJECTS_44))
    assert split_owned_name("chest of drawers's apron") == ("chest of drawers", "apron")


# --------------------------------------------------------------------------- OV-PARTS ADE20K-Part-234


@pytest.mark.parametrize("categories", [True, False], ids=["json-categories", "name-table"])
def test_ov_parts_ade_234_round_trips(pascal_dir: Path, tmp_path: Path, categories: bool) -> None:
    truth = build_ov_parts_ade(pascal_dir, tmp_path, categories=categories)
    cfg = ov_parts.OvPartsConfig(variant="ade20k_part_234", root=tmp_path)
    assert ov_parts.list_samples(cfg) == sorted(truth)
    assert sorted(truth) == ["2008_000939", "2009_001103", "2010_002065", "2010_003057"]
    res = ingest(cfg)
    check_tables(res)
    assert res.skips.total == 0
    assert_parts_inside_objects(res)
    got = decoded(res)
    first = min(truth)  # its objects are written as polygons, the others as RLE
    for stem, built in truth.items():
        mine = [v for k, v in sorted(got.items(), key=lambda kv: int(kv[0].split("#o")[1]))
                if k.startswith(f"src/{stem}#")]
        assert [cat for _, _, cat in mine] == [b.category for b in built]
        for (omask, parts, _), b in zip(mine, built, strict=True):
            assert sorted(name for name, _ in parts) == sorted(b.parts) == sorted(b.mat_parts)
            floor = 0.9 if stem == first else 1.0  # polygons are exact only up to rasterisation
            assert iou(omask, b.mask) >= floor
            for name, pmask in parts:
                assert iou(pmask, b.parts[name]) >= floor - 0.05, (stem, name)


def test_ov_parts_ade_234_part_names_come_from_the_mat_codes(ade234) -> None:
    _, truth = ade234
    plane = truth["2010_002065"][0]
    assert plane.category == "airplane"
    assert set(plane.parts) == {"fuselage", "wing", "stabilizer", "turbine engine", "landing gear"}
    assert ade234_part("car", "bliplate") == "license plate" and ade234_part("car", "backside") is None


# --------------------------------------------------------------------------- PartImageNet

PIN_EXPECTED = {  # file stem -> (object class from the synset, part names)
    "n02814533_2008_000939": ("beach wagon", {"body", "tire"}),
    "n02085620_2008_003497": ("Chihuahua", {"head", "body", "foot", "tail"}),
    "n02123045_2008_006462": ("tabby", {"head", "body", "foot"}),
    "n04591713_2009_001103": ("wine bottle", {"body", "mouth"}),
    "n02690373_2010_002065": ("airliner", {"body", "engine", "wing", "tail"}),
    "n02814533_2010_003057": ("beach wagon", {"body", "tire"}),
    "n01530575_2010_005511": ("brambling", {"head", "body", "foot"}),
}


def test_partimagenet_round_trips(pin) -> None:
    root, truth = pin
    res = ingest(pin_cfg(root))
    check_tables(res)
    assert res.skips.total == 0
    assert {i.split("/")[1] for i in res.images["image_id"]} == set(PIN_EXPECTED) == set(truth)
    assert_parts_inside_objects(res)
    encodings = Counter(p in b.polygon_parts for b in truth.values() for p in b.parts)
    assert encodings[True] and encodings[False]  # both polygons and RLE were read
    for oid, (omask, parts, cat) in decoded(res).items():
        stem = oid.split("/")[1].split("#")[0]
        want_cat, want_parts = PIN_EXPECTED[stem]
        assert cat == want_cat and {n for n, _ in parts} == want_parts and oid.endswith("#o0")
        assert (omask == union(m for _, m in parts)).all()  # the object is the union of its parts
        for name, pmask in parts:
            written = {"tire": "Tier", "side mirror": "Side Mirror"}.get(name, name.capitalize())
            truth_mask = truth[stem].parts[written]
            if written in truth[stem].polygon_parts:  # pixel-exact only up to rasterisation
                assert iou(pmask, truth_mask) > 0.6, (stem, name)
            else:  # written as RLE: exact
                assert (pmask == truth_mask).all(), (stem, name)


def test_partimagenet_names() -> None:
    names = partimagenet.synset_names()
    assert len(names) == 1000 and names["n02085620"] == "Chihuahua" and names["n02690373"] == "airliner"
    assert partimagenet.part_name("Car Tier", "Car") == "tire"
    assert partimagenet.part_name("Car Side Mirror", "Car") == "side mirror"
    assert partimagenet.part_name("Quadruped Head", "Quadruped") == "head"


def test_partimagenet_unknown_synset_falls_back_to_the_super_category(pin, tmp_path: Path) -> None:
    root, _ = pin
    data = json.loads((root / "annotations/train.json").read_text())
    row = next(r for r in data["images"] if r["file_name"].startswith("n02085620_"))
    (tmp_path / "images").mkdir()
    shutil.copyfile(root / "images/train/n02085620" / row["file_name"],
                    tmp_path / "images/n99999999_dog.JPEG")
    row["file_name"] = "n99999999_dog.JPEG"
    (tmp_path / "train.json").write_text(json.dumps(data))
    cfg = partimagenet.PartImageNetConfig(root=tmp_path, annotations="train.json", images="images")
    rec = partimagenet.load_sample(cfg, str(row["id"]))
    assert rec.objects[0].category == "quadruped" and rec.stem == "n99999999_dog"


def test_partimagenet_index_is_not_pickled_and_workers_agree(pin) -> None:
    root, _ = pin
    cfg = pin_cfg(root)
    one = ingest(cfg)
    assert cfg._index is not None
    assert pickle.loads(pickle.dumps(cfg))._index is None
    two = ingest(cfg, workers=2)
    assert one.parts.sort_values("part_id").reset_index(drop=True).equals(
        two.parts.sort_values("part_id").reset_index(drop=True))


# --------------------------------------------------------------------------- full ADE20K


def test_ade20k_full_real_sample(ade_dir: Path) -> None:
    cfg = ade20k_full.Ade20kFullConfig(root=ade_dir)
    assert ade20k_full.list_samples(cfg) == [ADE_NAME]
    res = ingest(cfg)
    check_tables(res)
    assert res.skips.total == 0
    assert_parts_inside_objects(res, tolerance=0.01)  # ADE20K parts may spill a few pixels over their object
    objs = decoded(res)
    vans = [(sorted(n for n, _ in ps), omask, ps) for omask, ps, cat in objs.values() if cat == "van"]
    assert [v[0] for v in vans] == [["license plate"], ["window", "windshield"]]
    cats = Counter(cat for _, _, cat in objs.values())
    assert cats == {"van": 2, "building": 2}  # the buildings' parts are linked through the encoded maps
    inst = {i: np.array(Image.open(ade_dir / ADE_NAME / f"instance_{i:03d}_{ADE_NAME}.png"))
            for i in (5, 7, 8, 12, 13)}
    assert iou(vans[0][1], inst[5] == 255) > 0.99 and iou(vans[1][1], inst[8] == 255) > 0.99
    assert not (vans[0][1] & ~(inst[5] > 0)).any() and not (vans[1][1] & ~(inst[8] > 0)).any()
    parts = {n: m for _, _, ps in vans for n, m in ps}
    assert (parts["license plate"] == (inst[7] == 255)).all()
    assert (parts["window"] == (inst[12] == 255)).all() and (parts["windshield"] == (inst[13] == 255)).all()
    row = res.images.iloc[0]
    assert (row.width, row.height) == (2200, 1467)


def test_ade20k_full_links_without_instance_masks(ade_dir: Path, tmp_path: Path) -> None:
    """Without the instance mask files the order rule links the same pixels (checked against the files)."""
    link_dir(ade_dir, tmp_path, [f"{ADE_NAME}{s}" for s in (".jpg", ".json", "_seg.png", "_parts_1.png")])
    bare = ade20k_full.load_sample(ade20k_full.Ade20kFullConfig(root=tmp_path), ADE_NAME)
    full = ade20k_full.load_sample(ade20k_full.Ade20kFullConfig(root=ade_dir), ADE_NAME)
    assert [o.category for o in bare.objects] == [o.category for o in full.objects]
    for a, b in zip(bare.objects, full.objects, strict=True):
        assert (a.mask == b.mask).all() and [p.name for p in a.parts] == [p.name for p in b.parts]
        assert all((p.mask == q.mask).all() for p, q in zip(a.parts, b.parts, strict=True))


def test_ade20k_full_objects_without_parts(ade_dir: Path) -> None:
    cfg = ade20k_full.Ade20kFullConfig(root=ade_dir, objects_without_parts=True)
    rec = ade20k_full.load_sample(cfg, ADE_NAME)
    cats = Counter(o.category for o in rec.objects)
    assert sum(cats.values()) == 24 and cats["tree"] == 4 and cats["van"] == 2 and cats["road"] == 2
    assert all(o.mask.any() for o in rec.objects)


# --------------------------------------------------------------------------- bad input


@dataclass
class Bad:
    cfg: object
    reason: str
    file: str  # a fragment of BadInput.where
    n_good: int  # samples that still ingest under the skip policy


def _pascal_bad(kind: str, real: Path, tmp: Path) -> Bad:
    good, bad = "2008_003497", "2010_002065"
    link_dir(real / "pascal_part_mat", tmp, [f"{good}.mat", f"{good}.jpg", f"{bad}.mat", f"{bad}.jpg"])
    cfg = pascal_part_mat.PascalPartMatConfig(root=tmp, annotations=".", images=".")
    if kind == "missing_image":
        (tmp / f"{bad}.jpg").unlink()
        return Bad(cfg, MISSING_IMAGE, f"{bad}.jpg", 1)
    if kind == "corrupt_image":
        truncate(tmp / f"{bad}.jpg")
        return Bad(cfg, CORRUPT_IMAGE, f"{bad}.jpg", 1)
    if kind == "wrong_size":
        shrink(tmp / f"{bad}.jpg")
        return Bad(cfg, SIZE_MISMATCH, f"{bad}.mat", 1)
    if kind == "malformed":
        (tmp / f"{bad}.mat").unlink()
        (tmp / f"{bad}.mat").write_bytes(b"MATLAB 5.0 MAT-file, but not really" + bytes(200))
        return Bad(cfg, UNREADABLE_ANNOTATION, f"{bad}.mat", 1)
    raise ValueError(kind)


def _ov116_bad(kind: str, real: Path, tmp: Path) -> Bad:
    build_ov_parts_pascal(real / "pascal_part_mat", tmp)
    bad, cfg = "2010_002065", ov_parts.OvPartsConfig(variant="pascal_part_116", root=tmp)
    if kind == "missing_image":
        (tmp / "images/val" / f"{bad}.jpg").unlink()
        return Bad(cfg, MISSING_IMAGE, f"{bad}.jpg", 7)
    if kind == "corrupt_image":
        truncate(tmp / "images/val" / f"{bad}.jpg")
        return Bad(cfg, CORRUPT_IMAGE, f"{bad}.jpg", 7)
    if kind == "wrong_size":
        shrink(tmp / "annotations_detectron2_part/val" / f"{bad}.png")
        return Bad(cfg, SIZE_MISMATCH, f"annotations_detectron2_part/val/{bad}.png", 7)
    if kind == "malformed":  # a label outside the 116-class table
        png = tmp / "annotations_detectron2_part/val" / f"{bad}.png"
        labels = np.array(Image.open(png))
        labels[0, 0] = 200
        Image.fromarray(labels).save(png)
        return Bad(cfg, UNKNOWN_LABEL, f"{bad}.png", 7)
    raise ValueError(kind)


def _ade234_bad(kind: str, real: Path, tmp: Path) -> Bad:
    build_ov_parts_ade(real / "pascal_part_mat", tmp)
    bad, cfg = "2010_002065", ov_parts.OvPartsConfig(variant="ade20k_part_234", root=tmp)
    if kind == "missing_image":
        (tmp / "images/validation" / f"{bad}.jpg").unlink()
        return Bad(cfg, MISSING_IMAGE, f"{bad}.jpg", 3)
    if kind == "corrupt_image":
        truncate(tmp / "images/validation" / f"{bad}.jpg")
        return Bad(cfg, CORRUPT_IMAGE, f"{bad}.jpg", 3)
    if kind == "wrong_size":
        shrink(tmp / "annotations_detectron2_part/validation" / f"{bad}.png")
        return Bad(cfg, SIZE_MISMATCH, f"{bad}.png", 3)
    if kind == "malformed":
        path = tmp / "ade20k_instance_val.json"
        data = json.loads(path.read_text())
        image_id = next(r["id"] for r in data["images"] if r["file_name"] == f"{bad}.jpg")
        next(a for a in data["annotations"] if a["image_id"] == image_id)["segmentation"] = {"bogus": 1}
        path.write_text(json.dumps(data))
        return Bad(cfg, MALFORMED_ROW, "ade20k_instance_val.json", 3)
    raise ValueError(kind)


def _pin_bad(kind: str, real: Path, tmp: Path) -> Bad:
    build_partimagenet(real / "pascal_part_mat", tmp)
    bad, cfg = "n02690373_2010_002065.JPEG", pin_cfg(tmp)
    image = tmp / "images/train/n02690373" / bad
    path = tmp / "annotations/train.json"
    data = json.loads(path.read_text())
    row = next(r for r in data["images"] if r["file_name"] == bad)
    if kind == "missing_image":
        image.unlink()
        return Bad(cfg, MISSING_IMAGE, bad, 6)
    if kind == "corrupt_image":
        truncate(image)
        return Bad(cfg, CORRUPT_IMAGE, bad, 6)
    if kind == "wrong_size":
        row["width"] += 10
        path.write_text(json.dumps(data))
        return Bad(cfg, SIZE_MISMATCH, f"train.json: image id {row['id']}", 6)
    if kind == "malformed":
        next(a for a in data["annotations"] if a["image_id"] == row["id"])["segmentation"] = 5
        path.write_text(json.dumps(data))
        return Bad(cfg, MALFORMED_ROW, "train.json: annotation id", 6)
    raise ValueError(kind)


def _ade_full_bad(kind: str, real: Path, tmp: Path) -> Bad:
    src = real / "ade20k_full"
    link_dir(src, tmp / "good", [f"{ADE_NAME}{s}" for s in (".jpg", ".json", "_seg.png", "_parts_1.png")])
    bad = "ADE_bad_00000001"
    link_dir(src, tmp / "bad", [f"{ADE_NAME}{s}" for s in (".jpg", ".json", "_seg.png", "_parts_1.png")])
    for s in (".jpg", ".json", "_seg.png", "_parts_1.png"):
        (tmp / "bad" / f"{ADE_NAME}{s}").rename(tmp / "bad" / f"{bad}{s}")
    cfg = ade20k_full.Ade20kFullConfig(root=tmp)
    if kind == "missing_image":
        (tmp / "bad" / f"{bad}.jpg").unlink()
        return Bad(cfg, MISSING_IMAGE, f"{bad}.jpg", 1)
    if kind == "corrupt_image":
        truncate(tmp / "bad" / f"{bad}.jpg", keep=0.2)
        return Bad(cfg, CORRUPT_IMAGE, f"{bad}.jpg", 1)
    if kind == "wrong_size":
        shrink(tmp / "bad" / f"{bad}_seg.png")
        return Bad(cfg, SIZE_MISMATCH, f"{bad}_seg.png", 1)
    if kind == "malformed":
        path = tmp / "bad" / f"{bad}.json"
        data = json.loads(path.read_text())
        del data["annotation"]["object"][8]["parts"]  # the second van
        path.unlink()
        path.write_text(json.dumps(data))
        return Bad(cfg, MALFORMED_ROW, f"{bad}.json: object #8", 1)
    raise ValueError(kind)


MAKERS: dict[str, Callable[[str, Path, Path], Bad]] = {
    "pascal_part_mat": _pascal_bad,
    "ov_parts_116": _ov116_bad,
    "ov_parts_234": _ade234_bad,
    "partimagenet": _pin_bad,
    "ade20k_full": _ade_full_bad,
}
KINDS = ("missing_image", "corrupt_image", "wrong_size", "malformed")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("adapter", list(MAKERS))
def test_bad_input_is_skipped_with_its_reason(adapter: str, kind: str, real_fixtures: Path,
                                              tmp_path: Path) -> None:
    bad = MAKERS[adapter](kind, real_fixtures, tmp_path)
    res = ingest(bad.cfg, OnError.skip)
    assert dict(res.skips.counts) == {bad.reason: 1}
    assert bad.file in res.skips.examples[bad.reason][0]
    assert len(res.images) == bad.n_good
    check_tables(res)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("adapter", list(MAKERS))
def test_bad_input_stops_strict_ingestion_naming_the_file(adapter: str, kind: str, real_fixtures: Path,
                                                          tmp_path: Path) -> None:
    bad = MAKERS[adapter](kind, real_fixtures, tmp_path)
    with pytest.raises(BadInput) as err:
        ingest(bad.cfg, OnError.strict)
    assert err.value.reason == bad.reason and bad.file in err.value.where


def test_segmentation_mask_rejects_malformed_input() -> None:
    with pytest.raises(BadInput, match="polygon"):
        segmentation_mask([[1, 2, 3]], 4, 4, "x")
    with pytest.raises(BadInput) as err:
        segmentation_mask({"size": [5, 5], "counts": "abc"}, 4, 4, "x")
    assert err.value.reason == SIZE_MISMATCH
    square = segmentation_mask([[0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5]], 4, 4, "x")
    assert square.sum() > 0 and not square[3].any()


# --------------------------------------------------------------------------- tiny datasets built here
# (no real samples needed): paths read from a dataset's json, duplicate image ids, the process pool

BOX = [4.0, 4.0, 28.0, 4.0, 28.0, 20.0, 4.0, 20.0]  # a polygon inside a 32 x 24 image


def _jpeg(path: Path, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path, format="JPEG")


def tiny_partimagenet(root: Path, file_names: list[str]) -> partimagenet.PartImageNetConfig:
    """A PartImageNet split: one 32 x 24 image (one 'head' part) per file name, ids from 1 in that order."""
    images, annotations = [], []
    for k, name in enumerate(file_names, start=1):
        _jpeg(root / "images" / name, k)
        images.append({"id": k, "file_name": name, "width": 32, "height": 24})
        annotations.append({"id": k, "image_id": k, "category_id": 0, "segmentation": [BOX], "iscrowd": 0})
    (root / "train.json").write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": 0, "name": "Quadruped Head", "supercategory": "Quadruped"}],
    }))
    return partimagenet.PartImageNetConfig(root=root, annotations="train.json", images="images")


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def tiny_ade234(root: Path, stems: list[str]) -> ov_parts.OvPartsConfig:
    """An ADE20K-Part-234 split: per stem a 32 x 24 image, a part PNG and one 'person' in the json."""
    objects, part_names = name_table(ov_parts.ADE20K_OBJECTS_44), name_table(ov_parts.ADE20K_PART_234)
    images, annotations = [], []
    for k, stem in enumerate(stems, start=1):
        _jpeg(root / "images/validation" / f"{stem}.jpg", k)
        labels = np.full((24, 32), ov_parts.ADE_IGNORE, np.uint16)
        labels[4:20, 4:28] = part_names.index("person's arm")
        (root / "annotations_detectron2_part/validation").mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels).save(root / "annotations_detectron2_part/validation" / f"{stem}.png")
        images.append({"id": k, "file_name": f"{stem}.jpg", "width": 32, "height": 24})
        annotations.append({"id": k, "image_id": k, "iscrowd": 0, "segmentation": [BOX],
                            "category_id": objects.index("person")})
    (root / "ade20k_instance_val.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return ov_parts.OvPartsConfig(variant="ade20k_part_234", root=root)


def tiny_ade20k_full(root: Path, names: list[str], instance_mask: str | None = None) -> ade20k_full.Ade20kFullConfig:
    """ADE20K images (one 'car' with a 'wheel') at the paths `names` (relative to root, no extension)."""
    for name in names:
        json_path = root / f"{name}.json"
        _jpeg(json_path.with_suffix(".jpg"))
        seg = np.zeros((24, 32, 3), np.uint8)
        seg[4:20, 4:28] = (0, 5, 1)  # class 5 (R/10*256 + G), instance 1
        parts = np.zeros((24, 32, 3), np.uint8)
        parts[12:20, 4:12] = (0, 7, 1)  # class 7, instance 1
        Image.fromarray(seg).save(json_path.with_name(f"{json_path.stem}_seg.png"))
        Image.fromarray(parts).save(json_path.with_name(f"{json_path.stem}_parts_1.png"))
        json_path.write_text(json.dumps({"annotation": {"object": [
            {"id": 0, "name": "car, auto", "name_ndx": 5, "parts": {"part_level": 0, "ispartof": []}},
            {"id": 1, "name": "wheel", "name_ndx": 7, "parts": {"part_level": 1, "ispartof": 0},
             "instance_mask": instance_mask},
        ]}}))
    return ade20k_full.Ade20kFullConfig(root=root)


def test_tiny_datasets_ingest(tmp_path: Path) -> None:
    pin = ingest(tiny_partimagenet(tmp_path / "pin", ["n02085620_1.JPEG", "n02085620_2.JPEG"]))
    ovp = ingest(tiny_ade234(tmp_path / "ovp", ["a", "b"]))
    ade = ingest(tiny_ade20k_full(tmp_path / "ade", ["x/a", "y/b"]))
    for res in (pin, ovp, ade):
        check_tables(res)
        assert len(res.images) == 2 and len(res.parts) == 2 and res.skips.total == 0
    assert set(pin.parts.part) == {"head"} and set(ovp.parts.part) == {"arm"} and set(ade.parts.part) == {"wheel"}


def test_strict_ingest_with_two_workers_raises_the_bad_input_naming_the_file(tmp_path: Path) -> None:
    cfg = tiny_partimagenet(tmp_path, ["n02085620_1.JPEG", "n02085620_2.JPEG", "n02085620_3.JPEG"])
    truncate(tmp_path / "images" / "n02085620_2.JPEG", keep=0.5)
    with pytest.raises(BadInput) as err:  # was: BrokenProcessPool, BadInput could not be unpickled
        ingest(cfg, OnError.strict, workers=2)
    assert err.value.reason == CORRUPT_IMAGE and err.value.where.endswith("n02085620_2.JPEG")
    res = ingest(cfg, OnError.skip, workers=2)
    assert dict(res.skips.counts) == {CORRUPT_IMAGE: 1} and len(res.images) == 2


def test_bad_input_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(BadInput("a/b.jpg", CORRUPT_IMAGE, "truncated")))
    assert (type(err), err.where, err.reason, err.detail) == (BadInput, "a/b.jpg", CORRUPT_IMAGE, "truncated")
    assert str(err) == "a/b.jpg: corrupt image (truncated)"


OUTSIDE_NAMES = ["../../../etc/passwd", "/etc/passwd", "sub/../../secret.jpg"]


def _outside(adapter: str, root: Path, name: str) -> tuple[object, str]:
    """(config with one good and one bad sample whose json names `name`, fragment of the bad one's where)."""
    if adapter == "partimagenet":
        cfg = tiny_partimagenet(root, ["n02085620_1.JPEG", "n02085620_2.JPEG"])
        _edit_json(cfg.annotation_json, lambda d: d["images"][1].__setitem__("file_name", name))
        return cfg, "train.json: image id 2"
    if adapter == "ov_parts_234":
        cfg = tiny_ade234(root, ["a", "b"])
        _edit_json(cfg.instance_json, lambda d: d["images"][1].__setitem__("file_name", name))
        # the json's rows are found by stem, so the bad row keeps the stem of its part PNG
        (root / "annotations_detectron2_part/validation/b.png").rename(
            root / "annotations_detectron2_part/validation" / f"{Path(name).stem}.png")
        return cfg, f"image row '{Path(name).stem}'"
    if adapter == "ade20k_full":
        tiny_ade20k_full(root, ["good/a"])
        return tiny_ade20k_full(root, ["bad/b"], instance_mask=name), "b.json: object id 1"
    raise ValueError(adapter)


@pytest.mark.parametrize("name", OUTSIDE_NAMES)
@pytest.mark.parametrize("adapter", ["partimagenet", "ov_parts_234", "ade20k_full"])
def test_json_paths_outside_the_dataset_root_are_skipped(adapter: str, name: str, tmp_path: Path) -> None:
    cfg, where = _outside(adapter, tmp_path / "data", name)
    res = ingest(cfg, OnError.skip)
    assert dict(res.skips.counts) == {OUTSIDE_ROOT: 1} and len(res.images) == 1
    example = res.skips.examples[OUTSIDE_ROOT][0]
    assert where in example and repr(name) in example
    assert not res.images.file.str.contains("passwd|secret|\\.\\.", regex=True).any()
    with pytest.raises(BadInput) as err:
        ingest(cfg, OnError.strict)
    assert err.value.reason == OUTSIDE_ROOT and where in err.value.where


def test_pascal_image_name_outside_the_image_folder_is_skipped(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "x.mat").write_bytes(b"")  # its content comes from the patched reader below
    monkeypatch.setattr(pascal_part_mat, "_read_objects", lambda mat: ("../../etc/passwd", []))
    cfg = pascal_part_mat.PascalPartMatConfig(root=tmp_path, annotations="ann", images="img")
    with pytest.raises(BadInput) as err:
        pascal_part_mat.load_sample(cfg, "x")
    assert err.value.reason == OUTSIDE_ROOT and err.value.where == str(tmp_path / "ann" / "x.mat")
    assert "'../../etc/passwd.jpg'" in str(err.value)


def test_duplicate_image_ids_keep_the_first(tmp_path: Path) -> None:
    # two files with one stem: one image_id twice, which made the split stage fail with a pandas MergeError
    cfg = tiny_partimagenet(tmp_path / "pin", ["a/n02085620_7.JPEG", "b/n02085620_7.JPEG", "n02085620_8.JPEG"])
    res = ingest(cfg, OnError.skip)
    check_tables(res)
    assert dict(res.skips.counts) == {DUPLICATE_IMAGE_ID: 1}
    assert "b/n02085620_7.JPEG" in res.skips.examples[DUPLICATE_IMAGE_ID][0]
    assert "a/n02085620_7.JPEG" in res.skips.examples[DUPLICATE_IMAGE_ID][0]
    assert res.images.image_id.tolist() == ["src/n02085620_7", "src/n02085620_8"]
    assert res.images.file.iloc[0].endswith("a/n02085620_7.JPEG")
    assert not res.objects.object_id.duplicated().any() and not res.parts.part_id.duplicated().any()
    assert len(res.objects) == 2 and len(res.parts) == 2
    with pytest.raises(BadInput) as err:
        ingest(cfg, OnError.strict)
    assert err.value.reason == DUPLICATE_IMAGE_ID and err.value.where.endswith("b/n02085620_7.JPEG")

    ade = ingest(tiny_ade20k_full(tmp_path / "ade", ["x/same", "y/same"]))  # one name in two folders
    assert dict(ade.skips.counts) == {DUPLICATE_IMAGE_ID: 1} and len(ade.images) == 1


def test_descriptions_of_the_real_pascal_samples_are_faithful_and_tell_the_two_dogs_apart(pascal_cfg, tmp_path):
    """Ingest -> mine -> grounded synthesis on the real Pascal-Part samples: every description's claims (object,
    instance order, part and which of its repeated parts, position in the part, colour) read back by the parser
    agree with the annotations; numbered parts (wheel_1..5) say which one and how many;
    the two dogs of 2008_003497 (side by side: centres 134 px apart across, 11 px down) are told apart left /
    right, not top / bottom."""
    from talking_points.pipeline.data.tables import write_table
    from talking_points.pipeline.keypoints.config import MineConfig
    from talking_points.pipeline.keypoints.mine import mine_sources
    from talking_points.pipeline.synthesis.backends import make_backend
    from talking_points.pipeline.synthesis.config import SynthesizeConfig
    from talking_points.pipeline.synthesis.parse import check_faithful, parse_description
    from talking_points.pipeline.synthesis.vocabulary import OrderAxis

    res = ingest(pascal_cfg)
    folder = tmp_path / "pascal"
    folder.mkdir()
    for table, sch, name in ((res.images, schema.IMAGES, "images"), (res.objects, schema.OBJECTS, "objects"),
                             (res.parts, schema.PARTS, "parts")):
        write_table(table, folder / f"{name}.parquet", sch, name)
    kps = mine_sources([folder], MineConfig(top_k=4, workers=1)).keypoints
    assert len(kps) >= 20 and kps["image_id"].nunique() >= 5
    described = make_backend(SynthesizeConfig()).describe(kps, seed=0)
    rows = kps.to_dict(orient="records")
    for row, text in zip(rows, described["description"]):
        assert check_faithful(row, text) == [], text
    repeated = [(row, text) for row, text in zip(rows, described["description"]) if row["n_same_part"] > 1]
    assert repeated  # the cars' wheels and windows, the aeroplane's wheels and engines, the bus's headlights
    for row, text in repeated:
        facts = parse_description(text, category=row["category"], part=row["part"])
        assert facts.part_counts == [row["n_same_part"]], text
    dogs = [(row, text) for row, text in zip(rows, described["description"]) if row["image_id"] == "src/2008_003497"]
    assert dogs
    for row, text in dogs:
        facts = parse_description(text, category="dog", part=row["part"])
        assert row["n_same"] == 2 and {c.axis for c in facts.orders} == {OrderAxis.lr}, text

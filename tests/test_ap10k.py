"""AP-10K / Animal-Pose keypoint sets: the COCO-keypoint reader (real samples), the KEYPOINTS conversion,
the synthetic AP-10K generator and the cross-family split."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from talking_points.pipeline.data import schema
from talking_points.pipeline.data.errors import BadInput, OnError
from talking_points.pipeline.data.keypoint_sets import coco_keypoints as ck
from talking_points.pipeline.data.keypoint_sets import synthetic_ap10k as syn
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction, cross_family_split
from talking_points.pipeline.data.keypoint_sets.keypoint_rows import (
    PoseRowsConfig,
    image_rows,
    part_index,
    pose_keypoint_rows,
)
from talking_points.pipeline.data.keypoint_sets.layouts import ANIMAL_POSE, AP10K, PartGranularity, layout_of
from talking_points.pipeline.data.partworld.animals import QUADRUPED_SPECIES, Family, HornType
from talking_points.pipeline.data.tables import validate
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.vocabulary import WordBins

AP10K_PARTS = {
    "left_eye": "head", "right_eye": "head", "nose": "head", "neck": "neck", "root_of_tail": "tail",
    "left_shoulder": "legs", "left_elbow": "legs", "left_front_paw": "legs", "right_shoulder": "legs",
    "right_elbow": "legs", "right_front_paw": "legs", "left_hip": "legs", "left_knee": "legs",
    "left_back_paw": "legs", "right_hip": "legs", "right_knee": "legs", "right_back_paw": "legs",
}  # fmt: skip


def _ap10k(real: Path) -> tuple[Path, Path]:
    return real / "ap10k" / "test_ap10k.json", real / "ap10k"


# ------------------------------------------------------------------------------------------ the reader


def test_reads_real_ap10k(real_fixtures):
    ann, images = _ap10k(real_fixtures)
    got = ck.read_coco_keypoints(ann, images, "ap10k", on_error=OnError.strict)
    t = got.table
    validate(t, ck.POSE_SAMPLES, "samples")
    assert got.layouts == {"ap10k": 2} and got.skips.total == 0
    # both animals have 16 labelled keypoints (right_eye is unlabelled)
    assert t.groupby("image_id").size().to_dict() == {"ap10k/000000000004": 16, "ap10k/000000037516": 16}
    assert "right_eye" not in set(t["keypoint"])
    antelope = t[t["image_id"] == "ap10k/000000000004"].set_index("keypoint")
    assert set(antelope["category"]) == {"antelope"} and set(antelope["family"]) == {"Bovidae"}
    assert set(t.loc[t["category"] == "jaguar", "family"]) == {"Felidae"}
    # json [488, 443, 2] -> pixel centre; kp_id numbers keypoint j of animal 0 as k<j>
    assert (antelope.loc["left_eye", "x"], antelope.loc["left_eye", "y"]) == (488.5, 443.5)
    assert antelope.loc["nose", "kp_id"] == "ap10k/000000000004#k2"
    assert antelope.loc["root_of_tail", ["x", "y"]].tolist() == [787.5, 255.5]
    assert set(antelope["object_id"]) == {"ap10k/000000000004#o0"} and set(antelope["ann_id"]) == {6}
    # bbox [408, 197, 429, 341]
    assert antelope.iloc[0][["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]].tolist() == [408, 197, 837, 538]
    assert set(antelope["visibility"]) == {2} and set(antelope["num_keypoints"]) == {16}
    assert dict(zip(t["keypoint"], t["part"])) == {k: v for k, v in AP10K_PARTS.items() if k != "right_eye"}
    assert antelope.loc["left_front_paw", "file"] == str(images / "000000000004.jpg")


def test_reads_real_animal_pose(real_fixtures):
    folder = real_fixtures / "animalpose"
    ann = folder / "test_animalpose.json"
    got = ck.read_coco_keypoints(ann, folder, "animal_pose", on_error=OnError.strict)
    t = got.table
    validate(t, ck.POSE_SAMPLES, "samples")
    assert got.layouts == {"animal_pose": 2}
    assert t.groupby("image_id").size().to_dict() == {"animal_pose/ca110": 17, "animal_pose/ho105": 15}
    parts = dict(zip(t["keypoint"], t["part"]))
    assert parts["L_EarBase"] == "ears" and parts["Throat"] == "neck" and parts["Withers"] == "body"
    assert parts["TailBase"] == "tail" and parts["Nose"] == "head" and parts["L_B_Paw"] == "legs"
    cat = t[t["image_id"] == "animal_pose/ca110"].set_index("keypoint")
    assert cat.loc["L_Eye", ["x", "y"]].tolist() == [117.5, 95.5]
    assert "R_B_Elbow" not in cat.index  # v = 0: no row
    assert cat.loc["L_F_Paw", "kp_id"] == "animal_pose/ca110#k16"
    fine = ck.read_coco_keypoints(ann, folder, "ap", granularity=PartGranularity.fine)
    fine_parts = dict(zip(fine.table["keypoint"], fine.table["part"]))
    assert fine_parts["L_B_Paw"] == "left back leg" and fine_parts["R_F_Knee"] == "right front leg"
    assert fine_parts["Nose"] == "head"


def test_layouts_match_the_real_files(real_fixtures):
    ap = json.loads((real_fixtures / "ap10k" / "test_ap10k.json").read_text())
    animal = json.loads((real_fixtures / "animalpose" / "test_animalpose.json").read_text())
    assert layout_of(ap["categories"][0]["keypoints"]) is AP10K
    assert layout_of(animal["categories"][0]["keypoints"]) is ANIMAL_POSE
    assert [list(p) for p in AP10K.skeleton] == ap["categories"][0]["skeleton"]
    assert [list(p) for p in ANIMAL_POSE.skeleton] == animal["categories"][0]["skeleton"]
    assert layout_of(["nose", "left_eye"]) is None
    assert AP10K.parts(PartGranularity.coarse) == ("head", "neck", "tail", "legs")
    assert len(AP10K.parts(PartGranularity.fine)) == 7
    assert part_index("ap10k", "legs") == 3 and part_index("ap10k", "right back leg") == 6
    assert part_index("animal_pose", "ears") == 1


def _broken(real: Path, tmp_path: Path, edit) -> Path:
    data = json.loads((real / "ap10k" / "test_ap10k.json").read_text())
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


def _ann(data: dict, ann_id: int) -> dict:
    return next(a for a in data["annotations"] if a["id"] == ann_id)


@pytest.mark.parametrize(
    "edit, reason, names",
    [
        (lambda d: _ann(d, 6)["keypoints"].pop(), ck.MALFORMED_ROW, "annotation 6"),
        (lambda d: _ann(d, 6)["keypoints"].__setitem__(5, 7), ck.MALFORMED_ROW, "annotation 6"),
        (lambda d: _ann(d, 6).__setitem__("bbox", [1, 2, 0, 4]), ck.MALFORMED_ROW, "annotation 6"),
        (lambda d: _ann(d, 6).__setitem__("category_id", 99), ck.UNKNOWN_LABEL, "annotation 6"),
        (lambda d: _ann(d, 6)["keypoints"].__setitem__(0, 1024), ck.OUTSIDE_IMAGE, "annotation 6"),
        (lambda d: d["images"][1].__setitem__("width", 1000), ck.SIZE_MISMATCH, "000000000004.jpg"),
        (lambda d: d["images"][1].__setitem__("file_name", "gone.jpg"), "missing image", "gone.jpg"),
    ],
)
def test_bad_input_is_named_and_skipped(real_fixtures, tmp_path, edit, reason, names):
    path = _broken(real_fixtures, tmp_path, edit)
    images = real_fixtures / "ap10k"
    with pytest.raises(BadInput) as err:
        ck.read_coco_keypoints(path, images, "ap10k", on_error=OnError.strict)
    assert err.value.reason == reason and names in str(err.value)
    assert "annotation 6" in str(err.value) or "annotations [6]" in str(err.value)  # also for a bad image
    got = ck.read_coco_keypoints(path, images, "ap10k", on_error=OnError.skip)
    assert got.skips.counts == {reason: 1}
    # the antelope (annotation 6 of image 4) is gone, the jaguar stays
    assert set(got.table["category"]) == {"jaguar"}


def test_broken_json_and_unknown_layout(real_fixtures, tmp_path):
    images = real_fixtures / "ap10k"
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(BadInput, match="malformed json"):
        ck.read_coco_keypoints(bad, images, "ap10k")

    def odd_layout(d):
        d["categories"][0]["keypoints"] = d["categories"][0]["keypoints"][::-1]  # antelope, id 1

    path = _broken(real_fixtures, tmp_path, odd_layout)
    got = ck.read_coco_keypoints(path, images, "ap10k")
    assert got.skips.counts == {ck.UNKNOWN_LAYOUT: 1} and set(got.table["category"]) == {"jaguar"}


# --------------------------------------------------------------------------------- the KEYPOINTS rows


def test_keypoint_rows_of_real_ap10k(real_fixtures):
    ann, images = _ap10k(real_fixtures)
    samples = ck.read_coco_keypoints(ann, images, "ap10k").table
    cfg = PoseRowsConfig()
    rows, skips = pose_keypoint_rows(samples, cfg, on_error=OnError.strict)
    validate(rows, schema.KEYPOINTS, "keypoints")
    assert len(rows) == 32 and skips.total == 0
    assert rows["kp_id"].tolist() == samples["kp_id"].tolist()
    bins = WordBins()
    for row in rows.to_dict(orient="records"):  # synthesis accepts every row
        row_facts(row, bins)
    ante = rows[rows["image_id"] == "ap10k/000000000004"].set_index("kp_id")
    eye = ante.loc["ap10k/000000000004#k0"]
    # object: bbox [408, 197, 429, 341] in a 1024 x 683 image
    assert eye["obj_x0"] == pytest.approx(408 / 1024) and eye["obj_y1"] == pytest.approx(538 / 683)
    assert eye["obj_area_frac"] == pytest.approx(429 * 341 / (1024 * 683), rel=1e-5)
    assert (eye["n_objects"], eye["n_same"], eye["order_lr"], eye["n_parts"]) == (1, 1, 1, 4)
    # head box: the eye (488.5, 443.5) and nose (466.5, 499.5), padded by 0.08 * 429
    pad = 0.08 * 429
    assert eye["part"] == "head" and eye["part_id"] == "ap10k/000000000004#o0p0"
    assert eye["part_x0"] * 1024 == pytest.approx(466.5 - pad, abs=1e-3)
    assert eye["part_y1"] * 683 == pytest.approx(499.5 + pad, abs=1e-3)
    assert eye["kp_in_part_x"] == pytest.approx((488.5 - 466.5 + pad) / (22 + 2 * pad), abs=1e-5)
    assert eye["border_dist"] == pytest.approx(pad, abs=1e-4)
    # one-keypoint parts are squares centred on their point
    assert set(zip(ante["part"], ante["part_id"].str[-2:])) == {("head", "p0"), ("neck", "p1"), ("tail", "p2"),
                                                                ("legs", "p3")}
    neck = ante[ante["part"] == "neck"].iloc[0]
    assert (neck["kp_in_part_x"], neck["kp_in_part_y"]) == (pytest.approx(0.5), pytest.approx(0.5))
    # patch: the 9 x 9 window around the pixel, all inside the head box
    rgb = cv2.cvtColor(cv2.imread(str(images / "000000000004.jpg")), cv2.COLOR_BGR2RGB)
    window = rgb[443 - 4 : 443 + 5, 488 - 4 : 488 + 5].reshape(-1, 3) / 255.0
    assert eye["patch_r"] == pytest.approx(window[:, 0].mean(), abs=1e-5)
    assert eye["patch_b"] == pytest.approx(window[:, 2].mean(), abs=1e-5)
    assert (eye["response"], eye["sift_size"]) == (0.0, 0.0) and eye["part_colour"] is None
    # every point lies in its part box, every part box in its object box
    for r in rows.itertuples():
        assert r.part_x0 <= r.x_norm <= r.part_x1 and r.part_y0 <= r.y_norm <= r.part_y1
        assert r.obj_x0 - 1e-6 <= r.part_x0 and r.part_x1 <= r.obj_x1 + 1e-6


def test_visibility_filter_and_missing_image(real_fixtures, tmp_path):
    ann, images = _ap10k(real_fixtures)
    samples = ck.read_coco_keypoints(ann, images, "ap10k").table.copy()
    samples.loc[samples["keypoint"] == "nose", "visibility"] = 1
    image = samples[samples["image_id"] == "ap10k/000000000004"]
    rgb = cv2.cvtColor(cv2.imread(image["file"].iloc[0]), cv2.COLOR_BGR2RGB)
    visible = image_rows(image, rgb, PoseRowsConfig(min_visibility=2))
    both = image_rows(image, rgb, PoseRowsConfig(min_visibility=1))
    assert len(visible) == 15 and len(both) == 16
    # the occluded nose still shapes the head box
    head_boxes = [{r["part_x0"] for r in rows if r["part"] == "head"} for rows in (visible, both)]
    assert head_boxes[0] == head_boxes[1]
    samples.loc[samples["image_id"] == "ap10k/000000000004", "file"] = str(tmp_path / "gone.jpg")
    rows, skips = pose_keypoint_rows(samples, PoseRowsConfig())
    assert skips.counts == {"missing image file": 1} and set(rows["category"]) == {"jaguar"}
    with pytest.raises(BadInput, match="gone.jpg"):
        pose_keypoint_rows(samples, PoseRowsConfig(), on_error=OnError.strict)


# ---------------------------------------------------------------------------------- synthetic AP-10K

SMALL = syn.SyntheticAP10KConfig(n_images=10, seed=3, width=160, height=120)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, ck.PoseSamples]:
    out = tmp_path_factory.mktemp("synthetic_ap10k")
    path = syn.write_synthetic_ap10k(SMALL, out)
    return path, ck.read_coco_keypoints(path, out / syn.IMAGE_DIR, "syn", on_error=OnError.strict)


def test_synthetic_json_has_the_ap10k_layout(synthetic, real_fixtures):
    path, _ = synthetic
    data = json.loads(path.read_text())
    real = json.loads((real_fixtures / "ap10k" / "test_ap10k.json").read_text())
    assert set(real) <= set(data)
    assert set(data["images"][0]) <= set(real["images"][0])
    assert set(data["annotations"][0]) == set(real["annotations"][0])
    real_cats = {c["id"]: c for c in real["categories"]}
    for cat in data["categories"]:  # ids, names, families, keypoints and skeleton as AP-10K has them
        assert cat == real_cats[cat["id"]]
    for a in data["annotations"]:
        kps = a["keypoints"]
        assert len(kps) == 51 and all(isinstance(v, int) for v in kps)
        assert a["num_keypoints"] == sum(v > 0 for v in kps[2::3]) > 0
        x, y, w, h = a["bbox"]
        assert a["area"] == w * h and 0 <= x and x + w <= SMALL.width and y + h <= SMALL.height
        for kx, ky, v in zip(kps[0::3], kps[1::3], kps[2::3]):
            assert (kx, ky) == (0, 0) if v == 0 else (0 <= kx < SMALL.width and 0 <= ky < SMALL.height)
            if v == 2:
                assert x <= kx < x + w and y <= ky < y + h


def test_synthetic_reads_back_with_both_families(synthetic):
    path, got = synthetic
    data = json.loads(path.read_text())
    t = got.table
    assert got.skips.total == 0 and got.layouts == {"ap10k": len(data["annotations"])}
    assert t.groupby("image_id")["family"].nunique().max() == 1  # one family per image
    assert set(t["family"]) == {"Bovidae", "Canidae"}
    assert t.groupby("image_id")["object_id"].nunique().max() > 1  # several animals per image
    assert set(t["category"]) <= set(syn.family_species(Family.bovidae) + syn.family_species(Family.canidae))
    # read-back coordinates are the pixel centres of the json's pixels
    first = data["annotations"][0]
    rows = t[t["ann_id"] == first["id"]].set_index("keypoint_index")
    for j in rows.index:
        kx, ky = first["keypoints"][3 * j : 3 * j + 2]
        assert (rows.loc[j, "x"], rows.loc[j, "y"]) == (kx + 0.5, ky + 0.5)
    # and the KEYPOINTS conversion takes them
    kp, skips = pose_keypoint_rows(t, PoseRowsConfig(), on_error=OnError.strict)
    validate(kp, schema.KEYPOINTS, "keypoints")
    assert len(kp) == int((t["visibility"] == 2).sum()) and skips.total == 0
    # same-category instances are ranked left to right by box centre (ties: centre y, then animal number)
    objects = kp.drop_duplicates("object_id").assign(
        cx=lambda d: d["obj_x0"] + d["obj_x1"], cy=lambda d: d["obj_y0"] + d["obj_y1"],
        k=lambda d: d["object_id"].str.rsplit("#o", n=1).str[1].astype(int),
    )
    assert objects["n_same"].max() > 1
    for _, group in objects.groupby(["image_id", "category"]):
        assert group.sort_values(["cx", "cy", "k"])["order_lr"].tolist() == list(range(1, len(group) + 1))


def test_synthetic_is_deterministic():
    pixels, anns, family = syn.synthetic_image(SMALL, 0)
    assert pixels.shape == (SMALL.height, SMALL.width, 3) and anns
    again = syn.synthetic_image(SMALL, 0)
    assert np.array_equal(again[0], pixels) and again[1] == anns and again[2] is family
    other = syn.synthetic_image(SMALL.model_copy(update={"seed": 4}), 0)
    assert not np.array_equal(other[0], pixels)


def test_synthetic_keypoints_and_visibility_follow_the_scene():
    """x, y: the pixel holding the rendered keypoint; v = 2 exactly where that pixel shows the animal."""
    seen = set()
    for index in range(SMALL.n_images):
        scene, family = syn.synthetic_scene(SMALL, index)
        _, anns, _ = syn.synthetic_image(SMALL, index)
        shown = [inst for inst in scene.instances if inst.parts]
        assert len(anns) == len(shown) >= 1
        for ann, inst in zip(anns, shown):
            assert ann["category_id"] == syn.AP10K_CATEGORY_IDS[inst.spec.category]
            assert QUADRUPED_SPECIES[inst.spec.category].family is family
            kps = ann["keypoints"]
            for j, (kx, ky, v) in enumerate(zip(kps[0::3], kps[1::3], kps[2::3])):
                x, y = inst.keypoints[j]
                inside = 0 <= x < SMALL.width and 0 <= y < SMALL.height
                assert (v > 0) == inside
                if v > 0:
                    assert (kx, ky) == (math.floor(x), math.floor(y))
                    assert (v == 2) == bool(inst.mask[ky, kx])
                seen.add(v)
    assert {1, 2} <= seen  # some keypoints are hidden behind another animal


def test_families_differ_in_body_plan():
    bov, can = syn.family_species(Family.bovidae), syn.family_species(Family.canidae)
    assert bov == ("antelope", "argali sheep", "bison", "buffalo", "cow", "sheep")
    assert can == ("arctic fox", "dog", "fox", "wolf")
    assert all(QUADRUPED_SPECIES[s].horn is not HornType.none for s in bov)
    assert all(QUADRUPED_SPECIES[s].horn is HornType.none for s in can)
    assert all("ears" in QUADRUPED_SPECIES[s].parts for s in can)
    bulk = {s: QUADRUPED_SPECIES[s].body_height * QUADRUPED_SPECIES[s].boxiness for s in bov + can}
    assert np.mean([bulk[s] for s in bov]) > np.mean([bulk[s] for s in can])


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"families": []}, "families"),
        ({"families": ["Bovidae", "Bovidae"]}, "families"),
        ({"species": ["unicorn"]}, "species"),
        ({"species": ["dog"]}, "species"),  # no Bovidae species left
        ({"min_animals": 4, "max_animals": 2}, "min_animals"),
        ({"scale": (0.5, 0.2)}, "scale"),
        ({"n_image": 3}, "n_image"),
    ],
)
def test_synthetic_config_errors(bad, field):
    with pytest.raises(ValueError, match=field):
        syn.SyntheticAP10KConfig.model_validate(bad)


# --------------------------------------------------------------------------------------- cross-family


def test_cross_family_split(synthetic):
    _, got = synthetic
    t = got.table
    there = cross_family_split(t, Direction.bovidae_to_canidae, seed=0)
    back = cross_family_split(t, Direction.canidae_to_bovidae, seed=0)
    assert set(there.train["family"]) == {"Bovidae"} and set(there.test["family"]) == {"Canidae"}
    assert set(back.train["family"]) == {"Canidae"} and set(back.test["family"]) == {"Bovidae"}
    assert not set(there.train["image_id"]) & set(there.test["image_id"])
    assert sorted(there.train["kp_id"]) == sorted(back.test["kp_id"])
    assert len(there.train) + len(there.test) == len(t) and there.mixed_images == 0
    # seeded: the same seed gives the same order; rows of one image stay together
    again = cross_family_split(t, Direction.bovidae_to_canidae, seed=0)
    assert again.train["kp_id"].tolist() == there.train["kp_id"].tolist()
    orders = {
        tuple(dict.fromkeys(cross_family_split(t, Direction.bovidae_to_canidae, seed=s).train["image_id"]))
        for s in range(6)
    }
    assert len(orders) > 1
    ids = there.train["image_id"].tolist()
    assert len(list(dict.fromkeys(ids))) == sum(1 for a, b in zip([None] + ids, ids) if a != b)
    capped = cross_family_split(t, Direction.bovidae_to_canidae, seed=0, max_train_images=2,
                                max_test_images=1)
    assert capped.train["image_id"].nunique() == 2 and capped.test["image_id"].nunique() == 1


def test_cross_family_mixed_images_and_missing_family():
    t = pd.DataFrame(
        {
            "image_id": ["a", "a", "b", "c", "c"],
            "family": ["Bovidae", "Canidae", "Bovidae", "Canidae", "Canidae"],
            "kp_id": ["a1", "a2", "b1", "c1", "c2"],
        }
    )
    split = cross_family_split(t, Direction.bovidae_to_canidae, seed=1)
    assert split.train["kp_id"].tolist() == ["b1"] and split.mixed_images == 1
    assert sorted(split.test["kp_id"]) == ["a2", "c1", "c2"]
    with pytest.raises(ValueError, match="Canidae"):
        cross_family_split(t[t["family"] == "Bovidae"], Direction.bovidae_to_canidae)


# ------------------------------------------------------------------- bad files named by the json


def _small_set(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A 4-image synthetic AP-10K set (json path, images folder, parsed json), written into tmp_path."""
    path = syn.write_synthetic_ap10k(SMALL.model_copy(update={"n_images": 4}), tmp_path)
    return path, tmp_path / syn.IMAGE_DIR, json.loads(path.read_text())


def test_truncated_jpeg_is_a_corrupt_image_in_the_samples_and_the_rows(tmp_path):
    path, images, data = _small_set(tmp_path)
    row = data["images"][1]
    png = images / row["file_name"]
    jpg = png.with_suffix(".jpg")
    cv2.imwrite(str(jpg), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])  # truncated to half its bytes
    row["file_name"] = jpg.name
    path.write_text(json.dumps(data))
    assert cv2.imread(str(jpg)) is not None  # OpenCV decodes it anyway, grey-padded: the reason for the check

    got = ck.read_coco_keypoints(path, images, "syn")
    assert got.skips.counts == {"corrupt image": 1} and jpg.name in got.skips.examples["corrupt image"][0]
    # a table read without the image check: the KEYPOINTS rows must not read the half image either
    table = ck.read_coco_keypoints(path, images, "syn", check_images=False).table
    rows, skips = pose_keypoint_rows(table, PoseRowsConfig())
    assert skips.counts == {"corrupt image": 1} and jpg.name in skips.examples["corrupt image"][0]
    assert f"syn/{jpg.stem}" not in set(rows["image_id"]) and len(rows)
    with pytest.raises(BadInput, match=rf"{jpg.name}: corrupt image \(OSError: image file is truncated"):
        pose_keypoint_rows(table, PoseRowsConfig(), on_error=OnError.strict)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "sub/../../000000.png"])
@pytest.mark.parametrize("check_images", [True, False])
def test_file_names_outside_the_images_folder_are_skipped(tmp_path, name, check_images):
    path, images, data = _small_set(tmp_path)
    data["images"][2]["file_name"] = name
    path.write_text(json.dumps(data))
    got = ck.read_coco_keypoints(path, images, "syn", check_images=check_images)
    assert got.skips.counts == {"path outside dataset root": 1}
    assert repr(name) in got.skips.examples["path outside dataset root"][0]
    assert len(got.table) and not got.table["file"].str.contains("passwd|\\.\\.", regex=True).any()
    with pytest.raises(BadInput, match="path outside dataset root") as err:
        ck.read_coco_keypoints(path, images, "syn", on_error=OnError.strict, check_images=check_images)
    assert "[image 3:" in err.value.where and str(path) in err.value.where

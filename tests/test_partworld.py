"""PartWorld: determinism, config checks, categories, masks, occlusion, colours, keypoints, ingest."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from talking_points.pipeline.data import colours, schema
from talking_points.pipeline.data import partworld as pw
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.ingest import ingest_source
from talking_points.pipeline.data.partworld.animals import Family
from talking_points.pipeline.data.partworld.looks import BackgroundSpec, Texture, part_tones
from talking_points.pipeline.data.tables import validate

W, H = 192, 144
QUADRUPEDS = [name for name, c in pw.CATEGORIES.items() if c.quadruped is not None]


def _alone(category: str, *, cx: float = W / 2, cy: float = H / 2, scale: float = 0.4, facing: str = "right",
           seed: int | None = None, **kw) -> pw.RenderedScene:
    inst = pw.InstanceSpec(category, cx, cy, scale, facing, seed, **kw)
    return pw.render_scene(pw.SceneSpec(W, H, BackgroundSpec(), (inst,)), np.random.default_rng(0))


def _scenes(cfg: pw.PartWorldConfig, n: int) -> list[pw.RenderedScene]:
    out = []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, i])
        out.append(pw.render_scene(pw.sample_scene(cfg, rng), rng))
    return out


@pytest.fixture(scope="module")
def default_scenes() -> list[pw.RenderedScene]:
    return _scenes(pw.PartWorldConfig(seed=3), 80)


# ------------------------------------------------------------------------------------------ determinism


def test_keys_and_stems():
    cfg = pw.PartWorldConfig(n_images=5)
    assert pw.list_samples(cfg) == ["000000", "000001", "000002", "000003", "000004"]
    rec = pw.load_sample(cfg, "000003")
    assert rec.stem == "pw_000003"
    assert rec.pixels.shape == (H, W, 3) and rec.pixels.dtype == np.uint8
    assert (rec.width, rec.height) == (W, H)


def _same(a, b) -> bool:
    if not np.array_equal(a.pixels, b.pixels) or len(a.objects) != len(b.objects):
        return False
    for oa, ob in zip(a.objects, b.objects):
        if (oa.category, len(oa.parts)) != (ob.category, len(ob.parts)):
            return False
        if not np.array_equal(oa.mask, ob.mask):
            return False
        for pa, pb in zip(oa.parts, ob.parts):
            if (pa.name, pa.colour, pa.texture) != (pb.name, pb.colour, pb.texture):
                return False
            if not np.array_equal(pa.mask, pb.mask):
                return False
    return True


def test_same_key_same_sample_in_any_order():
    cfg = pw.PartWorldConfig(n_images=10, seed=7)
    forward = {k: pw.load_sample(cfg, k) for k in pw.list_samples(cfg)[:6]}
    backward = {k: pw.load_sample(cfg, k) for k in reversed(pw.list_samples(cfg)[:6])}
    assert all(_same(forward[k], backward[k]) for k in forward)
    # a sample depends on (seed, index) only, not on how many images the source has
    assert _same(forward["000004"], pw.load_sample(cfg.model_copy(update={"n_images": 500}), "000004"))
    # and differs between indices and between seeds
    assert not np.array_equal(forward["000001"].pixels, forward["000002"].pixels)
    other = pw.load_sample(cfg.model_copy(update={"seed": 8}), "000001")
    assert not np.array_equal(forward["000001"].pixels, other.pixels)


def test_public_path_equals_adapter_path():
    """sample_scene + render_scene with the sample's rng give exactly what the adapter writes."""
    cfg = pw.PartWorldConfig(seed=5)
    for i in range(4):
        rng = np.random.default_rng([cfg.seed, i])
        rec = pw.scene_record(pw.render_scene(pw.sample_scene(cfg, rng), rng), f"pw_{i:06d}")
        assert _same(rec, pw.load_sample(cfg, f"{i:06d}"))


def test_bad_keys_are_bad_input():
    cfg = pw.PartWorldConfig(n_images=3)
    with pytest.raises(BadInput, match="bad sample key"):
        pw.load_sample(cfg, "abc")
    with pytest.raises(BadInput, match="outside 0..2"):
        pw.load_sample(cfg, "000003")


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"min_instances": 5, "max_instances": 2}, "min_instances (5) must be <= max_instances (2)"),
        ({"categories": ["dog", "unicorn"]}, "unknown categories ['unicorn']; known: ["),
        ({"categories": []}, "categories is empty"),
        ({"categories": ["dog", "dog"]}, "duplicates"),
        ({"scale": (0.5, 0.3)}, "0 < lo < hi <= 1"),
        ({"max_occlusion": 1.0}, "max_occlusion"),
        ({"width": 16}, "width"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_config_errors_are_actionable(fields, needle):
    with pytest.raises(ValidationError) as err:
        pw.PartWorldConfig(**fields)
    assert needle in str(err.value)


def test_unknown_category_error_lists_known_ones():
    with pytest.raises(ValidationError) as err:
        pw.PartWorldConfig(categories=["dgo"])
    assert "'dog'" in str(err.value) and "'tree'" in str(err.value)


def test_instance_spec_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown category"):
        pw.InstanceSpec("dragon", 10, 10, 0.3)
    with pytest.raises(ValueError, match="a dog has"):
        pw.InstanceSpec("dog", 10, 10, 0.3, colours={"wheels": "red"})
    with pytest.raises(ValueError, match="unknown colour"):
        pw.InstanceSpec("dog", 10, 10, 0.3, colours={"head": "mauve"})


# ------------------------------------------------------------------------------------------- categories


def test_category_content():
    assert len(pw.DEFAULT_CATEGORIES) >= 12
    for name in pw.DEFAULT_CATEGORIES:
        assert len(pw.CATEGORIES[name].parts) >= 3
        assert all(p.replace(" ", "").isalpha() and p.islower() for p in pw.CATEGORIES[name].parts)
    for name in ("dog", "cat", "horse", "cow", "sheep"):
        assert name in pw.DEFAULT_CATEGORIES and pw.CATEGORIES[name].quadruped is not None
        assert {"head", "body", "legs", "tail"} <= set(pw.CATEGORIES[name].parts)
    assert "ears" in pw.CATEGORIES["dog"].parts and "ears" in pw.CATEGORIES["cat"].parts
    assert "horns" in pw.CATEGORIES["cow"].parts and "horns" in pw.CATEGORIES["sheep"].parts
    families = {name: p.family for name, p in pw.QUADRUPED_SPECIES.items()}
    for name in ("cow", "sheep", "bison", "buffalo", "antelope"):
        assert families[name] is Family.bovidae and "horns" in pw.CATEGORIES[name].parts
    for name in ("dog", "fox", "wolf", "arctic fox"):
        assert families[name] is Family.canidae and "ears" in pw.CATEGORIES[name].parts
    for cat in pw.CATEGORIES.values():
        assert set(cat.palettes) >= set(cat.parts)
        assert all(c in colours.PALETTE for p in cat.parts for c in cat.palettes[p])


@pytest.mark.parametrize("category", sorted(pw.CATEGORIES))
def test_every_category_renders_all_parts(category):
    for seed, facing in [(None, "right"), (1, "left"), (2, "right")]:
        scene = _alone(category, seed=seed, facing=facing)
        inst = scene.instances[0]
        areas = {p.name: int(p.mask.sum()) for p in inst.parts}
        assert set(areas) == {pw.REPEATED_PARTS.get(p, p) for p in pw.CATEGORIES[category].parts}, (seed, facing)
        assert min(int(p.mask.sum()) for p in inst.parts) >= 10, (seed, facing, areas)
        # the object fills a box of the requested size, centred where asked
        ys, xs = np.nonzero(inst.mask)
        box_w, box_h = xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()
        assert abs(max(box_w, box_h) - 0.4 * W) <= 3
        assert abs((xs.max() + 1 + xs.min()) / 2 - W / 2) <= 2
        assert abs((ys.max() + 1 + ys.min()) / 2 - H / 2) <= 2


def _silhouette(category: str) -> np.ndarray:
    mask = _alone(category).instances[0].mask
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8)
    return cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA) > 0


def test_default_categories_differ_in_silhouette():
    sil = {c: _silhouette(c) for c in pw.DEFAULT_CATEGORIES}
    for a, b in itertools.combinations(sil, 2):
        iou = (sil[a] & sil[b]).sum() / (sil[a] | sil[b]).sum()
        assert iou < 0.85, (a, b, iou)


# ------------------------------------------------------------------------------------- masks and scenes


def test_masks_partition_the_objects(default_scenes):
    for scene in default_scenes:
        covered = np.zeros((H, W), dtype=np.int32)
        for inst in scene.instances:
            assert inst.parts, "sampled instances always keep a visible part"
            stack = np.stack([p.mask for p in inst.parts])
            assert stack.sum(axis=0).max() <= 1, "parts of one instance overlap"
            assert np.array_equal(stack.any(axis=0), inst.mask), "instance mask is not the union of its parts"
            assert all(p.mask.sum() >= scene.spec.min_part_pixels for p in inst.parts)
            covered += inst.mask
        assert covered.max() <= 1, "instances overlap"


def test_instance_counts_repeats_and_facings(default_scenes):
    counts = [len(s.instances) for s in default_scenes]
    assert min(counts) >= 1 and max(counts) <= 4 and len(set(counts)) == 4
    multi = [s for s in default_scenes if len(s.instances) > 1]
    repeated = [s for s in multi if len({i.spec.category for i in s.instances}) < len(s.instances)]
    assert len(repeated) >= 0.4 * len(multi)
    facings = {i.spec.facing for s in default_scenes for i in s.instances}
    assert facings == {pw.Facing.left, pw.Facing.right}
    textures = {p.texture for s in default_scenes for i in s.instances for p in i.parts}
    assert textures == set(Texture)


def test_no_instance_more_hidden_than_allowed():
    cfg = pw.PartWorldConfig(seed=11, min_instances=3, max_instances=4, max_occlusion=0.25, scale=(0.35, 0.5))
    n_occluded = 0
    for scene in _scenes(cfg, 25):
        for inst in scene.instances:
            # independent check: the instance drawn alone vs what is left of it in the scene
            alone = pw.render_scene(pw.SceneSpec(W, H, scene.spec.background, (inst.spec,)))
            full = int(alone.instances[0].mask.sum())
            slack = len(pw.CATEGORIES[inst.spec.category].parts) * scene.spec.min_part_pixels / full
            hidden = 1.0 - inst.mask.sum() / full
            assert hidden <= cfg.max_occlusion + slack, (inst.spec, hidden)
            assert inst.hidden_fraction <= cfg.max_occlusion + 1e-9
            n_occluded += hidden > 0.02
    assert n_occluded >= 5, "the scenes should contain some occlusion"


def test_known_layout_left_to_right_order_and_given_looks():
    xs = [40.0, 96.0, 152.0]
    specs = [
        pw.InstanceSpec("dog", x, 90.0, 0.25, "left" if i % 2 else "right", i,
                        colours={"head": "white", "body": "brown"}, textures={"body": "striped"})
        for i, x in enumerate(xs)
    ]
    scene = pw.render_scene(pw.SceneSpec(W, H, BackgroundSpec(), specs), np.random.default_rng(1))
    centres = []
    for inst in scene.instances:
        _, xs_ = np.nonzero(inst.mask)
        centres.append((xs_.min() + xs_.max() + 1) / 2)
        looks = {p.name: (p.colour, p.texture) for p in inst.parts}
        assert looks["head"][0] == "white" and looks["body"] == ("brown", Texture.striped)
    assert np.allclose(centres, xs, atol=2)
    rec = pw.scene_record(scene, "pw_test")
    assert [o.category for o in rec.objects] == ["dog"] * 3


def test_small_images_and_every_category_config():
    cfg = pw.PartWorldConfig(width=32, height=32, categories=sorted(pw.CATEGORIES), n_images=10)
    for key in pw.list_samples(cfg):
        rec = pw.load_sample(cfg, key)
        assert rec.pixels.shape == (32, 32, 3)


# ---------------------------------------------------------------------------------------------- colours


def _interior_mean(mask: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, int]:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return pixels[inner].astype(np.float64).mean(axis=0) if inner.any() else None, int(inner.sum())


def test_part_colours_are_named_back(default_scenes):
    solid_ok = solid_n = tex_ok = tex_n = 0
    for scene in default_scenes:
        for inst in scene.instances:
            for part in inst.parts:
                mean, n = _interior_mean(part.mask, scene.pixels)
                if part.texture is Texture.solid and n >= 5:
                    solid_n += 1
                    solid_ok += colours.name_of(mean) == part.colour
                elif part.texture is not Texture.solid and n >= 40:
                    tex_n += 1
                    tex_ok += colours.name_of(mean) == part.colour
    assert solid_n >= 100 and tex_n >= 100
    assert solid_ok == solid_n, f"{solid_n - solid_ok} solid parts named otherwise"
    assert tex_ok >= 0.95 * tex_n, f"{tex_n - tex_ok} of {tex_n} textured parts named otherwise"


@pytest.mark.parametrize("texture", [Texture.striped, Texture.dotted, Texture.checkered, Texture.gradient])
def test_textures_are_visible_and_keep_the_colour_name(texture):
    rng = np.random.default_rng(0)
    for name in colours.PALETTE:
        for _ in range(20):
            tones = part_tones(name, texture, rng)
            assert all(colours.name_of(t) == name for t in tones), (name, tones)
            assert np.abs(tones[0] - tones[1]).max() >= 15, (name, tones)  # two tones, clearly apart
    scene = _alone("car", scale=0.9, textures={"body": texture}, colours={"body": "red"})
    body = next(p for p in scene.instances[0].parts if p.name == "body")
    luma = scene.pixels[body.mask].astype(np.float64) @ [0.299, 0.587, 0.114]
    assert luma.std() > 6


# -------------------------------------------------------------------------------------------- keypoints


def _part_mask(inst: pw.RenderedInstance, name: str) -> np.ndarray:
    """The union of the instance's parts called `name` (all four legs for 'leg')."""
    return np.logical_or.reduce([p.mask for p in inst.parts if p.name == name])


def _at(mask: np.ndarray, xy) -> bool:
    return bool(mask[math.floor(xy[1]), math.floor(xy[0])])


@pytest.mark.parametrize("category", QUADRUPEDS)
def test_keypoints_lie_in_the_right_parts(category):
    idx = {k: i for i, k in enumerate(pw.AP10K_KEYPOINTS)}
    for seed, facing in [(None, "right"), (3, "left"), (4, "right"), (5, "left")]:
        inst = _alone(category, seed=seed, facing=facing, scale=0.45).instances[0]
        kps, vis = inst.keypoints, inst.keypoint_visible
        assert kps.shape == (17, 2) and vis.shape == (17,) and vis.all()
        head, legs, tail = _part_mask(inst, "head"), _part_mask(inst, "leg"), _part_mask(inst, "tail")
        for k in ("left_eye", "right_eye", "nose"):
            assert _at(head, kps[idx[k]]), (k, seed, facing)
        for side, k in itertools.product(("left", "right"), ("elbow", "front_paw", "knee", "back_paw")):
            assert _at(legs, kps[idx[f"{side}_{k}"]]), (side, k, seed, facing)
        for k in ("neck", "left_shoulder", "right_shoulder", "left_hip", "right_hip"):
            assert _at(inst.mask, kps[idx[k]]), (k, seed, facing)
        dist_to_tail = cv2.distanceTransform((~tail).astype(np.uint8), cv2.DIST_L2, 5)
        root = kps[idx["root_of_tail"]]
        assert dist_to_tail[math.floor(root[1]), math.floor(root[0])] <= 2
        # facing: the nose is on the facing side, the tail on the other
        body_x = np.nonzero(_part_mask(inst, "body"))[1].mean()
        ahead = 1 if facing == "right" else -1
        assert (kps[idx["nose"], 0] - body_x) * ahead > 0 and (root[0] - body_x) * ahead < 0
        # paws at the bottom of the animal
        assert kps[idx["left_front_paw"], 1] > kps[idx["left_shoulder"], 1]


def test_keypoint_sides_swap_when_mirrored():
    idx = {k: i for i, k in enumerate(pw.AP10K_KEYPOINTS)}
    right = _alone("dog", facing="right").instances[0].keypoints
    left = _alone("dog", facing="left").instances[0].keypoints
    for k in pw.AP10K_KEYPOINTS:
        twin = k.replace("left_", "@").replace("right_", "left_").replace("@", "right_")
        assert abs(left[idx[k], 0] - (W - right[idx[twin], 0])) < 0.01
        assert abs(left[idx[k], 1] - right[idx[twin], 1]) < 0.01
    # facing right, the right (near) legs are drawn in front of the left (far) ones
    assert right[idx["right_front_paw"], 0] < right[idx["left_front_paw"], 0]


def test_keypoint_visibility_follows_occlusion():
    back = pw.InstanceSpec("horse", 80, 80, 0.45, "right", 1)
    front = pw.InstanceSpec("cow", 110, 95, 0.4, "left", 2)
    scene = pw.render_scene(pw.SceneSpec(W, H, BackgroundSpec(), (back, front)), np.random.default_rng(0))
    horse, cow = scene.instances
    hidden = visible = 0
    for (x, y), vis in zip(horse.keypoints, horse.keypoint_visible):
        if vis:
            visible += 1
            assert _at(horse.mask, (x, y))
        else:
            hidden += 1
            assert _at(cow.mask, (x, y)) or not _at(horse.mask, (x, y))
    assert hidden >= 1 and visible >= 1
    assert cow.keypoint_visible.all()
    assert pw.render_scene(pw.SceneSpec(W, H, BackgroundSpec(), (back,))).instances[0].keypoint_visible.all()
    assert _alone("car").instances[0].keypoints is None


# ---------------------------------------------------------------------------------------------- ingest


def test_ingest_source_writes_valid_tables(tmp_path: Path):
    cfg = pw.PartWorldConfig(n_images=20, width=96, height=72, seed=2)
    result = ingest_source("pw", cfg, image_dir=tmp_path)
    assert result.skips.total == 0
    images = validate(result.images, schema.IMAGES, "images").to_pandas()
    objects = validate(result.objects, schema.OBJECTS, "objects").to_pandas()
    parts = validate(result.parts, schema.PARTS, "parts").to_pandas()
    assert len(images) == 20 and images["image_id"].str.startswith("pw/pw_").all()
    assert set(objects["category"]) <= set(pw.CATEGORIES)
    assert set(objects["image_id"]) <= set(images["image_id"])
    assert set(parts["object_id"]) <= set(objects["object_id"])
    assert parts["colour"].isin(list(colours.PALETTE)).all()
    assert parts["texture"].isin([t.value for t in Texture]).all()
    assert (parts["area"] >= cfg.min_part_pixels).all()
    first = images.iloc[0]
    with Image.open(first["file"]) as im:
        assert im.size == (96, 72) and im.mode == "RGB"


@pytest.mark.parametrize(("category", "part", "pieces"), [("car", "wheel", 2), ("car", "window", 2), ("dog", "leg", 4),
                                                        ("person", "arm", 2), ("table", "leg", 2), ("house", "window", 2)])
def test_repeated_parts_are_drawn_as_one_part_per_piece(category, part, pieces):
    """A car's wheels, a dog's legs: each visible piece is its own part (singular name, disjoint mask, the group's
    colour and texture), so descriptions can tell them apart."""
    scene = _alone(category, seed=3, facing="right")
    inst = scene.instances[0]
    same = [p for p in inst.parts if p.name == part]
    assert len(same) == pieces
    union = np.zeros_like(same[0].mask, dtype=np.int32)
    for p in same:
        union += p.mask
    assert union.max() == 1  # disjoint
    assert len({p.colour for p in same}) == 1 and len({p.texture for p in same}) == 1
    centres = sorted(float(np.nonzero(p.mask)[1].mean()) for p in same)
    assert centres[-1] - centres[0] > 2.0  # apart, not one mask counted twice

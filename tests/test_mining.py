"""The mine stage: SIFT keypoints inside parts, their geometry and local look, balanced sampling, bad input."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from talking_points.pipeline.config import ConfigError, load_section, read_params, validate_section
from talking_points.pipeline.data import colours, masks, schema
from talking_points.pipeline.data.errors import BadInput, OnError, SkipLog
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord, record_rows
from talking_points.pipeline.data.tables import read_table, validate, write_table
from talking_points.pipeline.keypoints import geometry, patch, selection, sift
from talking_points.pipeline.keypoints.config import Balance, MineConfig, SiftConfig
from talking_points.pipeline.keypoints.mine import NoKeypoint, mine_sources
from talking_points.pipeline.keypoints.sampling import TooFewKeypoints, balance, discard_warnings, quotas

W, H = 240, 160  # deliberately not square


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class PartSpec:
    name: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive
    colour: str  # palette name of the base colour
    dots: str = "black"  # palette name of the 3x3 dots that make SIFT fire


@dataclass(frozen=True)
class ObjectSpec:
    category: str
    parts: tuple[PartSpec, ...]


# three robots, left to right A, B, C; top to bottom B, C, A; largest first B, A, C; and a lamp at the right edge
LAYOUT = (
    ObjectSpec("robot", (PartSpec("head", (10, 90, 50, 110), "red"), PartSpec("body", (10, 110, 50, 150), "blue"))),
    ObjectSpec("robot", (PartSpec("head", (90, 10, 150, 30), "green"), PartSpec("body", (90, 30, 150, 70), "yellow"))),
    ObjectSpec("robot", (PartSpec("head", (170, 50, 200, 63), "orange"), PartSpec("body", (170, 63, 200, 90), "teal"))),
    ObjectSpec("lamp", (PartSpec("shade", (200, 100, 236, 120), "pink"), PartSpec("base", (200, 120, 236, 150), "purple"))),
)
BACKGROUND = (190, 190, 190)


def box_mask(box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[box[1] : box[3], box[0] : box[2]] = True
    return m


def paint(layout=LAYOUT, seed: int = 0) -> np.ndarray:
    """RGB image: flat background, every part its base colour with jittered 3x3 dots every 9 pixels."""
    rng = np.random.default_rng(seed)
    img = np.empty((H, W, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    for obj in layout:
        for p in obj.parts:
            x0, y0, x1, y1 = p.box
            img[y0:y1, x0:x1] = colours.PALETTE[p.colour]
            for y in range(y0 + 3, y1 - 3, 9):
                for x in range(x0 + 3, x1 - 3, 9):
                    dx, dy = rng.integers(-1, 2, size=2)
                    img[y + dy : y + dy + 3, x + dx : x + dx + 3] = colours.PALETTE[p.dots]
    return img


def record(stem: str, layout=LAYOUT, seed: int = 0, pixels: np.ndarray | None = None) -> ImageRecord:
    objects = []
    for obj in layout:
        parts = [PartRecord(p.name, box_mask(p.box), colour=p.colour, texture="dotted") for p in obj.parts]
        objects.append(ObjectRecord(obj.category, np.logical_or.reduce([p.mask for p in parts]), parts))
    return ImageRecord(stem, W, H, objects, pixels=paint(layout, seed) if pixels is None else pixels)


def write_source(folder: Path, name: str, records: list[ImageRecord]) -> Path:
    """An ingested source folder, written the way the ingest stage writes one."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, objects, parts = [], [], []
    for rec in records:
        file = folder / "images" / f"{rec.stem}.png"
        Image.fromarray(rec.pixels).save(file)
        img, objs, prts = record_rows(rec, name, str(file), SkipLog())
        images.append(img)
        objects += objs
        parts += prts
    write_table(pd.DataFrame(images), folder / "images.parquet", schema.IMAGES, "images")
    write_table(pd.DataFrame(objects), folder / "objects.parquet", schema.OBJECTS, "objects")
    write_table(pd.DataFrame(parts), folder / "parts.parquet", schema.PARTS, "parts")
    return folder


def cfg(**kw) -> MineConfig:
    base = dict(top_k=1000, one_per_part=False, min_separation=0.0, min_border_dist=0.0, min_border_px=2.0, workers=1)
    return MineConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def scene_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ingested") / "scenes"
    return write_source(folder, "scenes", [record(f"s{k}", seed=k) for k in range(3)])


@pytest.fixture(scope="module")
def all_points(scene_source) -> pd.DataFrame:
    """Every eligible keypoint of the scenes (no top-k, no separation, one per part off)."""
    return mine_sources([scene_source], cfg()).keypoints


def part_masks(folder: Path) -> dict[str, np.ndarray]:
    parts = read_table(folder / "parts.parquet", schema.PARTS)
    return {r.part_id: masks.decode(r.mask_rle, H, W) for r in parts.itertuples()}


# --------------------------------------------------------------------------- where the points are


def test_pixel_convention_is_centre_at_half():
    """A blob centred on pixel (50, 40) is found at about (50.5, 40.5) in the tables' convention."""
    yy, xx = np.mgrid[0:H, 0:W]
    blob = np.exp(-((xx - 50) ** 2 + (yy - 40) ** 2) / (2 * 3.0**2))  # centred on the pixel centre (50, 40)
    grey = (40 + 200 * blob).astype(np.uint8)
    found = sift.detect(grey, SiftConfig())
    best = int(np.argmax(found.response))
    assert found.x[best] == pytest.approx(50.5, abs=0.05)
    assert found.y[best] == pytest.approx(40.5, abs=0.05)
    col, row = sift.pixel_of(np.array([50.0, 50.99, -0.2]), np.array([40.5, 39.0, 170.0]), W, H)
    assert col.tolist() == [50, 50, 0] and row.tolist() == [40, 39, H - 1]


def test_stored_points_are_opencv_points_plus_half(scene_source, all_points):
    grey = cv2.cvtColor(np.asarray(Image.open(scene_source / "images" / "s0.png")), cv2.COLOR_RGB2GRAY)
    cv_pts = np.array([k.pt for k in cv2.SIFT_create(enable_precise_upscale=True).detect(grey, None)], dtype=np.float32)
    mine = all_points[all_points.image_id == "scenes/s0"]
    for x, y in zip(mine.x, mine.y):
        assert np.min(np.hypot(cv_pts[:, 0] + 0.5 - x, cv_pts[:, 1] + 0.5 - y)) < 1e-4


def test_points_on_their_part_and_away_from_its_border(scene_source):
    res = mine_sources([scene_source], cfg(min_border_px=4.0))
    kps = res.keypoints
    pm = part_masks(scene_source)
    assert len(kps) > 20
    for r in kps.itertuples():
        mask = pm[r.part_id]
        col, row = int(math.floor(r.x)), int(math.floor(r.y))
        assert mask[row, col], f"{r.kp_id} is not on its part"
        # independent check of the border distance: scipy's exact EDT with the image edge as background
        edt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        assert r.border_dist == pytest.approx(edt[row, col], abs=1e-3)
        assert r.border_dist >= 4.0
    # the filter really filtered: SIFT also fires on the object outlines and near part borders
    grey = cv2.cvtColor(np.asarray(Image.open(scene_source / "images" / "s0.png")), cv2.COLOR_RGB2GRAY)
    raw = sift.detect(grey, SiftConfig())
    col, row = sift.pixel_of(raw.x, raw.y, W, H)
    on_any = np.logical_or.reduce(list(pm.values()))[row, col]
    assert (~on_any).sum() > 0
    assert len(kps[kps.image_id == "scenes/s0"]) < len(raw)


def test_border_distance_is_a_fraction_of_the_shorter_side(scene_source, all_points):
    """min_border_dist scales with the image (here 240 x 160: 0.025 = 4 px); min_border_px is its floor."""
    rel = mine_sources([scene_source], cfg(min_border_dist=0.025, min_border_px=0.0)).keypoints
    pd.testing.assert_frame_equal(rel, mine_sources([scene_source], cfg(min_border_px=4.0)).keypoints)
    assert rel.border_dist.min() >= 4.0 and len(rel) < len(all_points)
    assert all_points.border_dist.min() < 4.0  # the 4 px really removed points
    floor = mine_sources([scene_source], cfg(min_border_dist=0.01, min_border_px=4.0)).keypoints  # 1.6 px < 4 px
    pd.testing.assert_frame_equal(floor, rel)
    c = MineConfig(min_border_dist=0.01, min_border_px=2.0)
    assert c.border_px(2200, 1467) == pytest.approx(14.67) and c.border_px(1467, 2200) == pytest.approx(14.67)


@pytest.mark.parametrize("profile, today_px", [("params.yaml", 2.0), ("profiles/default.yaml", 2.0),
                                               ("profiles/smoke.yaml", 1.0)])
def test_profiles_keep_their_pixel_border_on_their_own_images(profile, today_px):
    """On each profile's generated images the border distance is what it was in pixels (2 px default, 1 px
    smoke), so these profiles mine the same keypoints as before it became relative."""
    path = Path(__file__).resolve().parents[1] / profile
    mine = load_section("mine", path, MineConfig)
    sources = read_params(path)["ingest"]["sources"].values()
    sizes = [(s["width"], s["height"]) for s in sources]
    assert sizes and all(mine.border_px(w, h) == today_px for w, h in sizes)
    assert MineConfig().border_px(192, 144) == 2.0


def test_bad_border_and_balance_params_are_named():
    with pytest.raises(ConfigError, match=r"mine\.min_border_dist: .*fraction of the image's shorter side.*got 2\.0"
                       r".*min_border_px"):
        validate_section("mine", {"mine": {"min_border_dist": 2.0}}, MineConfig)
    with pytest.raises(ConfigError, match=r"mine\.min_border_px: Input should be greater than or equal to 0"):
        validate_section("mine", {"mine": {"min_border_px": -1}}, MineConfig)
    with pytest.raises(ConfigError, match=r"mine\.balance: Input should be 'equal', 'target' or 'proportional'"):
        validate_section("mine", {"mine": {"balance": "largest"}}, MineConfig)
    with pytest.raises(ConfigError, match=r"balance: target needs per_source"):
        validate_section("mine", {"mine": {"balance": "target"}}, MineConfig)


def test_top_k_takes_the_strongest(scene_source, all_points):
    top = mine_sources([scene_source], cfg(top_k=5)).keypoints
    assert top.groupby("image_id").size().tolist() == [5, 5, 5]
    for image_id, group in top.groupby("image_id"):
        everything = all_points[all_points.image_id == image_id]
        assert sorted(group.response, reverse=True) == group.response.tolist()
        assert np.allclose(sorted(group.response, reverse=True), sorted(everything.response, reverse=True)[:5])
        assert group.kp_id.tolist() == [f"{image_id}#k{k}" for k in range(5)]


def test_one_per_part_and_min_separation(scene_source):
    one = mine_sources([scene_source], cfg(top_k=100, one_per_part=True)).keypoints
    per_image = one.groupby("image_id")
    assert (per_image.part_id.nunique() == per_image.size()).all()
    assert per_image.size().max() == 8  # every part of the 4 objects
    sep = 0.25
    spread = mine_sources([scene_source], cfg(top_k=100, min_separation=sep)).keypoints
    diag = math.hypot(W, H)
    for _, group in spread.groupby("image_id"):
        xy = group[["x", "y"]].to_numpy()
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(xy), 1)].min() >= sep * diag - 1e-3
        assert 2 <= len(group) < 20


# --------------------------------------------------------------------------- geometry


def test_orders_on_a_known_layout(all_points):
    obj = all_points.drop_duplicates("object_id").set_index("object_id")
    robots = [f"scenes/s0#o{k}" for k in range(3)]
    assert obj.loc[robots, "order_lr"].tolist() == [1, 2, 3]
    assert obj.loc[robots, "order_tb"].tolist() == [3, 1, 2]
    assert obj.loc[robots, "order_size"].tolist() == [2, 1, 3]
    assert obj.loc[robots, "n_same"].tolist() == [3, 3, 3]
    assert obj.loc["scenes/s0#o3", ["n_same", "order_lr", "order_tb", "order_size"]].tolist() == [1, 1, 1, 1]
    assert (obj.n_objects == 4).all()
    assert (obj.n_parts == 2).all()


def test_orders_break_ties_by_annotation_order():
    same = {"category": "cup", "bbox_x0": 10, "bbox_y0": 10, "bbox_x1": 20, "bbox_y1": 20, "area": 100}
    objs = [{**same, "object_id": f"i#o{k}"} for k in range(3)]
    cols = geometry.object_columns(objs, 100, 50, 0.05)
    for key in ("order_lr", "order_tb", "order_size"):
        assert [cols[f"i#o{k}"][key] for k in range(3)] == [1, 2, 3]


def test_geometry_of_the_lamp_by_hand(all_points):
    """The lamp: box [200, 236) x [100, 150) in a 240 x 160 image; shade rows 100-120, base rows 120-150."""
    lamp = all_points[all_points.object_id == "scenes/s0#o3"]
    assert set(lamp.part) == {"shade", "base"}
    r = lamp.iloc[0]
    approx = lambda v: pytest.approx(v, abs=1e-5)  # noqa: E731 - float32 columns
    assert (r.obj_x0, r.obj_y0, r.obj_x1, r.obj_y1) == (approx(200 / 240), approx(100 / 160), approx(236 / 240), approx(150 / 160))
    assert (r.obj_cx, r.obj_cy) == (approx(218 / 240), approx(125 / 160))
    assert r.obj_area_frac == approx(36 * 50 / (240 * 160))
    assert (r.obj_h_pos, r.obj_v_pos, r.obj_edge) == ("right", "bottom", "right")  # right gap 1/60 < bottom 1/16
    expected_part = {
        "shade": dict(box=(200, 100, 236, 120), cy=0.2, v="top", frac=0.4),
        "base": dict(box=(200, 120, 236, 150), cy=0.7, v="bottom", frac=0.6),
    }
    for r in lamp.itertuples():
        e = expected_part[r.part]
        x0, y0, x1, y1 = e["box"]
        assert (r.part_x0, r.part_y0, r.part_x1, r.part_y1) == (approx(x0 / W), approx(y0 / H), approx(x1 / W), approx(y1 / H))
        assert (r.part_cx_in_obj, r.part_cy_in_obj) == (approx(0.5), approx(e["cy"]))
        assert (r.part_h_in_obj, r.part_v_in_obj) == ("center", e["v"])
        assert r.part_area_frac == approx(e["frac"])
        assert (r.x_norm, r.y_norm) == (approx(r.x / W), approx(r.y / H))
        px, py = (r.x - x0) / (x1 - x0), (r.y - y0) / (y1 - y0)
        assert (r.kp_in_part_x, r.kp_in_part_y) == (approx(px), approx(py))
        assert r.kp_h_in_part == ("left", "center", "right")[min(int(px * 3), 2)]
        assert r.kp_v_in_part == ("top", "middle", "bottom")[min(int(py * 3), 2)]
        assert (r.part_colour, r.part_texture) == (("pink" if r.part == "shade" else "purple"), "dotted")
        assert (r.width, r.height, r.category, r.source) == (W, H, "lamp", "scenes")


def test_object_positions_and_edges():
    objs = [
        {"object_id": "a", "category": "x", "bbox_x0": 0, "bbox_y0": 0, "bbox_x1": 10, "bbox_y1": 5, "area": 50},
        {"object_id": "b", "category": "y", "bbox_x0": 40, "bbox_y0": 20, "bbox_x1": 60, "bbox_y1": 30, "area": 200},
    ]
    cols = geometry.object_columns(objs, 100, 50, edge_margin=0.05)
    assert (cols["a"]["obj_h_pos"], cols["a"]["obj_v_pos"], cols["a"]["obj_edge"]) == ("left", "top", "left")  # tie
    assert (cols["b"]["obj_h_pos"], cols["b"]["obj_v_pos"], cols["b"]["obj_edge"]) == ("center", "middle", "none")
    assert geometry.nearest_edge(0.5, 0.5, 0.9, 0.97, 0.05) == "bottom"
    assert geometry.nearest_edge(0.5, 0.5, 0.9, 0.9, 0.05) == "none"
    assert [geometry.third(v, schema.H_POSITIONS) for v in (0, 0.3333, 1 / 3, 0.6667, 1)] == [
        "left", "left", "center", "right", "right"
    ]


# --------------------------------------------------------------------------- local look


def test_patch_colour_of_a_solid_and_a_striped_part():
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[:] = colours.PALETTE["blue"]
    part = np.ones((20, 30), dtype=bool)
    stats = patch.patch_stats(rgb, patch.edge_magnitude(rgb), part, col=10, row=10, radius=4)
    assert stats["patch_colour"] == "blue"
    assert (stats["patch_r"], stats["patch_g"], stats["patch_b"]) == pytest.approx(
        tuple(c / 255 for c in colours.PALETTE["blue"])
    )
    assert stats["patch_brightness"] == pytest.approx(np.dot([0.299, 0.587, 0.114], colours.PALETTE["blue"]) / 255)
    assert stats["patch_edge_energy"] == 0.0
    # stripes: two rows red, one row white -> named red, though the mean colour is not
    striped = np.zeros_like(rgb)
    striped[:] = colours.PALETTE["red"]
    striped[::3] = colours.PALETTE["white"]
    stats = patch.patch_stats(striped, patch.edge_magnitude(striped), part, col=10, row=10, radius=4)
    assert stats["patch_colour"] == "red"
    assert 0 < stats["patch_edge_energy"] <= 1


def test_patch_is_restricted_to_the_part_and_clipped_to_the_image():
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[:, :15] = colours.PALETTE["green"]
    rgb[:, 15:] = colours.PALETTE["white"]
    part = np.zeros((20, 30), dtype=bool)
    part[:, :15] = True
    stats = patch.patch_stats(rgb, patch.edge_magnitude(rgb), part, col=14, row=0, radius=4)
    assert stats["patch_colour"] == "green"
    assert stats["patch_g"] == pytest.approx(colours.PALETTE["green"][1] / 255)
    edge = patch.edge_magnitude(np.repeat(np.repeat(np.array([[0, 255], [255, 255]], np.uint8), 3, 0), 3, 1)[..., None].repeat(3, 2))
    assert 0 < edge.max() <= 1


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of `a` whose data starts `offset` bytes into a fresh buffer (another memory alignment)."""
    buf = np.empty(a.nbytes + 64, np.uint8)
    view = buf[offset:offset + a.nbytes].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def test_border_distance_and_edge_magnitude_do_not_depend_on_memory_alignment():
    """OpenCV's float32 distance transform and Sobel/magnitude round differently with the buffer's alignment
    (SIMD or scalar path); that made two runs of `mine` differ in ~1 row in 400. Both are bit-identical now,
    and the border distances are exact roots of integer squared distances."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = np.zeros((60, 80), np.uint8)
        centre = (int(rng.integers(20, 60)), int(rng.integers(15, 45)))
        axes = (int(rng.integers(5, 30)), int(rng.integers(5, 25)))
        cv2.ellipse(mask, centre, axes, float(rng.integers(0, 180)), 0, 360, 1, -1)
        rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        dists = [selection.border_distance(_at_offset(mask.astype(bool), k)) for k in range(16)]
        edges = [patch.edge_magnitude(_at_offset(rgb, k)) for k in range(16)]
        assert all(np.array_equal(dists[0], d) for d in dists)
        assert all(np.array_equal(edges[0], e) for e in edges)
        squared = dists[0].astype(np.float64) ** 2
        np.testing.assert_allclose(squared, np.rint(squared), atol=1e-4)
        assert np.array_equal(dists[0], np.sqrt(np.rint(squared)).astype(np.float32))


def test_patch_colour_of_mined_points_is_the_part_colour(all_points):
    """Dots are a minority of every 9x9 patch, so the dominant colour is the part's base colour."""
    assert (all_points.patch_colour == all_points.part_colour).all()


# --------------------------------------------------------------------------- runs, sampling, output


def test_one_and_two_workers_give_the_same_table(scene_source):
    one = mine_sources([scene_source], cfg(top_k=3, one_per_part=True, min_separation=0.05, workers=1))
    two = mine_sources([scene_source], cfg(top_k=3, one_per_part=True, min_separation=0.05, workers=2))
    pd.testing.assert_frame_equal(one.keypoints, two.keypoints)
    assert one.report == two.report


def test_balanced_sampling_is_equal_and_seeded(tmp_path):
    small = write_source(tmp_path / "small", "small", [record("a", seed=1)])
    big = write_source(tmp_path / "big", "big", [record(f"b{k}", seed=10 + k) for k in range(3)])
    res = mine_sources([small, big], cfg(top_k=4, one_per_part=True))
    assert res.mined == {"small": 4, "big": 12}
    assert res.keypoints.source.value_counts().to_dict() == {"small": 4, "big": 4}
    assert res.report["sources"]["big"]["keypoints_sampled"] == 4 and res.report["per_source"] == 4
    assert res.keypoints.source.tolist() == ["small"] * 4 + ["big"] * 4  # source order, then mined order
    again = mine_sources([small, big], cfg(top_k=4, one_per_part=True))
    pd.testing.assert_frame_equal(res.keypoints, again.keypoints)
    with pytest.raises(TooFewKeypoints, match=r"small.*'small': 4, 'big': 12"):
        mine_sources([small, big], cfg(top_k=4, one_per_part=True, per_source=5))


def test_balance_seeds_each_source_on_its_own():
    df = pd.DataFrame({"source": ["a"] * 100 + ["b"] * 10 + ["c"] * 50, "kp_id": [f"k{i}" for i in range(160)]})
    s0 = balance(df, ["a", "b"], None, seed=0)
    assert s0.source.value_counts().to_dict() == {"a": 10, "b": 10}
    assert s0.kp_id.tolist() == balance(df, ["a", "b"], None, seed=0).kp_id.tolist()
    assert s0.kp_id.tolist() != balance(df, ["a", "b"], None, seed=1).kp_id.tolist()
    with_c = balance(df, ["a", "b", "c"], None, seed=0)
    assert with_c[with_c.source == "a"].kp_id.tolist() == s0[s0.source == "a"].kp_id.tolist()
    assert len(balance(df, ["a", "c"], 30, seed=0)) == 60
    with pytest.raises(TooFewKeypoints, match=r"\['b'\]"):
        balance(df, ["a", "b"], 11, seed=0)


def test_balance_modes_quotas():
    counts = {"pascal": 14, "tiny": 2, "ade": 9}
    assert quotas(counts, None, Balance.equal) == {"pascal": 2, "tiny": 2, "ade": 2}
    assert quotas(counts, 2, Balance.equal) == {"pascal": 2, "tiny": 2, "ade": 2}
    with pytest.raises(TooFewKeypoints, match=r"\['tiny'\].*mine\.balance to target"):
        quotas(counts, 5, Balance.equal)
    assert quotas(counts, 5, Balance.target) == {"pascal": 5, "tiny": 2, "ade": 5}
    assert quotas(counts, 50, Balance.target) == counts
    with pytest.raises(ConfigError, match="target needs mine.per_source"):
        quotas(counts, None, Balance.target)
    assert quotas(counts, None, Balance.proportional) == counts
    assert quotas(counts, 9, Balance.proportional) == counts  # 27 >= 25: everything
    # 4 x 3 = 12 of 25 in proportion: 6.72, 0.96, 4.32 -> 6, 0, 4 and the 2 left to the largest remainders
    assert quotas(counts, 4, Balance.proportional) == {"pascal": 7, "tiny": 1, "ade": 4}


def test_balance_target_keeps_a_small_source_whole_and_samples_as_equal():
    df = pd.DataFrame({"source": ["a"] * 100 + ["b"] * 10, "kp_id": [f"k{i}" for i in range(110)]})
    tgt = balance(df, ["a", "b"], 30, seed=0, mode=Balance.target)
    assert tgt.source.value_counts().to_dict() == {"a": 30, "b": 10}
    assert tgt[tgt.source == "b"].kp_id.tolist() == [f"k{i}" for i in range(100, 110)]
    eq = balance(df, ["a"], 30, seed=0)  # a source's sample depends on its own quota only
    assert tgt[tgt.source == "a"].kp_id.tolist() == eq.kp_id.tolist()
    prop = balance(df, ["a", "b"], 11, seed=0, mode=Balance.proportional)
    assert prop.source.value_counts().to_dict() == {"a": 20, "b": 2}
    assert balance(df, ["a", "b"], None, 0, Balance.proportional).kp_id.tolist() == df.kp_id.tolist()


def test_discard_warnings_name_the_sources_cut_by_more_than_half():
    warn = discard_warnings({"pascal": 14, "tiny": 2, "half": 8}, {"pascal": 2, "tiny": 2, "half": 4}, Balance.equal)
    assert list(warn) == ["pascal"]  # exactly half discarded is not more than half
    assert "balance 'equal' kept 2 of its 14 mined keypoints (86% discarded)" in warn["pascal"]


def test_a_small_source_is_reported_and_target_keeps_the_others(tmp_path):
    small = write_source(tmp_path / "small", "small", [record("a", seed=1)])
    big = write_source(tmp_path / "big", "big", [record(f"b{k}", seed=10 + k) for k in range(3)])
    eq = mine_sources([small, big], cfg(top_k=4, one_per_part=True))
    assert eq.report["balance"] == "equal" and list(eq.report["warnings"]) == ["big"]
    assert "kept 4 of its 12 mined keypoints (67% discarded)" in eq.report["warnings"]["big"]
    tgt = mine_sources([small, big], cfg(top_k=4, one_per_part=True, balance=Balance.target, per_source=6))
    assert tgt.keypoints.source.value_counts().to_dict() == {"small": 4, "big": 6}
    assert tgt.report["warnings"] == {} and tgt.report["per_source"] is None
    assert set(tgt.keypoints.kp_id) > set(eq.keypoints.kp_id[eq.keypoints.source == "small"])
    prop = mine_sources([small, big], cfg(top_k=4, one_per_part=True, balance=Balance.proportional))
    assert len(prop.keypoints) == 16 and prop.report["warnings"] == {}


def test_bad_input_is_skipped_with_reasons_or_raised(tmp_path):
    flat = np.full((H, W, 3), 128, dtype=np.uint8)
    recs = [record(f"ok{k}", seed=k) for k in range(2)] + [
        record("gone"), record("corrupt"), record("small"), record("badmask"), record("flat", pixels=flat)
    ]
    folder = write_source(tmp_path / "bad", "bad", recs)
    (folder / "images" / "gone.png").unlink()
    (folder / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    Image.fromarray(paint()[:-10]).save(folder / "images" / "small.png")
    parts = read_table(folder / "parts.parquet", schema.PARTS)
    bad_rows = parts.image_id == "bad/badmask"
    parts.loc[bad_rows, "mask_rle"] = masks.encode(np.ones((H // 2, W), dtype=bool))  # another size's RLE
    write_table(parts, folder / "parts.parquet", schema.PARTS, "parts")

    res = mine_sources([folder], cfg(top_k=2, on_error=OnError.skip))
    rep = res.report["sources"]["bad"]
    assert rep["by_reason"] == {
        "missing image file": 1, "unreadable image": 1, "mask size disagrees with image": 1, "corrupt mask": 1
    }
    assert rep["no_keypoints"] == {NoKeypoint.no_sift.value: 1}
    assert rep["images"] == 7 and rep["images_with_keypoints"] == 2
    assert set(res.keypoints.image_id) == {"bad/ok0", "bad/ok1"}
    assert any("gone.png" in e for e in rep["examples"]["missing image file"])

    with pytest.raises(BadInput, match=r"gone\.png: missing image file"):
        mine_sources([folder], cfg(top_k=2, on_error=OnError.strict, workers=2))


def test_truncated_jpeg_is_a_corrupt_image(tmp_path):
    folder = write_source(tmp_path / "jpg", "jpg", [record("ok", seed=0), record("half", seed=1)])
    for stem in ("ok", "half"):  # the same scenes as JPEG files
        png = folder / "images" / f"{stem}.png"
        cv2.imwrite(str(png.with_suffix(".jpg")), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    half = folder / "images" / "half.jpg"
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    assert cv2.imread(str(half)) is not None  # OpenCV decodes it anyway, grey-padded
    images = read_table(folder / "images.parquet", schema.IMAGES)
    images["file"] = images["file"].str.replace(".png", ".jpg", regex=False)
    write_table(images, folder / "images.parquet", schema.IMAGES, "images")

    res = mine_sources([folder], cfg(top_k=2, on_error=OnError.skip))
    rep = res.report["sources"]["jpg"]
    assert rep["by_reason"] == {"corrupt image": 1} and "half.jpg" in rep["examples"]["corrupt image"][0]
    assert set(res.keypoints.image_id) == {"jpg/ok"}
    with pytest.raises(BadInput, match=r"half\.jpg: corrupt image \(OSError: image file is truncated"):
        mine_sources([folder], cfg(top_k=2, on_error=OnError.strict, workers=2))


def test_output_validates_and_the_stage_writes_it(tmp_path, scene_source):
    import typer
    from typer.testing import CliRunner

    from talking_points.stages import mine as stage

    res = mine_sources([scene_source], cfg(top_k=2, one_per_part=True))
    table = validate(res.keypoints, schema.KEYPOINTS, "keypoints")
    assert table.num_rows == 6 and table.schema.equals(schema.KEYPOINTS)

    other = write_source(tmp_path / "ingested" / "other", "other", [record("x", seed=5)])
    (tmp_path / "params.yaml").write_text("mine:\n  top_k: 2\n  workers: 1\n")
    app = typer.Typer()
    app.command()(stage.main)
    out = tmp_path / "mined"
    result = CliRunner().invoke(
        app, ["--ingested", str(scene_source), "--ingested", str(tmp_path / "ingested" / "*"),
              "--out", str(out), "--params", str(tmp_path / "params.yaml")],
    )
    assert result.exit_code == 0, result.output
    kps = read_table(out / "keypoints.parquet", schema.KEYPOINTS)
    assert kps.source.value_counts().to_dict() == {"scenes": 2, "other": 2}
    report = json.loads((out / "report.json").read_text())
    assert set(report["sources"]) == {"scenes", "other"} and report["keypoints"] == 4
    # 'other' (1 image) cuts 'scenes' from 6 keypoints to 2: said in the summary and after it
    assert list(report["warnings"]) == ["scenes"]
    text = " ".join(result.output.split())
    assert "WARNING scenes" in text and "WARNING other" not in text
    assert "warning: scenes: balance 'equal' kept 2 of its 6 mined keypoints (67% discarded)" in text
    assert other.exists()


def test_order_separation_measures_each_axis_relative_to_the_boxes():
    def box(x0, y0, w, h, area=None):
        return {"bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x0 + w, "bbox_y1": y0 + h, "area": area or w * h}

    side_by_side = [box(0, 40, 150, 150), box(134, 51, 150, 150)]  # 2008_003497's dogs, roughly
    lr, tb, size = geometry.order_separation(side_by_side, 0)
    assert lr == pytest.approx(134 / 150) and tb == pytest.approx(11 / 150) and size == pytest.approx(0.0)
    stacked = [box(10, 0, 40, 20), box(12, 30, 40, 20), box(100, 60, 40, 20)]
    lr, tb, size = geometry.order_separation(stacked, 0)
    assert lr == pytest.approx(2 / 40) and tb == pytest.approx(30 / 20)  # nearest across: the one stacked below
    # it (2 px); nearest down: the same one (30 px): top/bottom tells it apart, left/right does not
    row_of_three = [box(10, 0, 40, 20), box(12, 30, 40, 20), box(100, 0, 40, 20)]
    lr, tb, _ = geometry.order_separation(row_of_three, 0)
    assert lr == pytest.approx(2 / 40) and tb == 0.0  # level with the third: no single axis orders it
    nested = [box(0, 0, 100, 100), box(25, 25, 50, 50)]
    assert geometry.order_separation(nested, 1)[2] == pytest.approx(math.log(4))
    assert all(math.isnan(v) for v in geometry.order_separation(nested[:1], 0))
    cols = geometry.object_columns([{**b, "object_id": f"o{i}", "category": "dog"} for i, b in enumerate(side_by_side)]
                                   + [{**box(300, 0, 10, 10), "object_id": "c", "category": "cat"}], 400, 300, 0.05)
    assert cols["o1"]["order_sep_lr"] == pytest.approx(134 / 150) and math.isnan(cols["c"]["order_sep_lr"])


def test_repeated_parts_are_ranked_among_the_parts_of_their_name_in_their_object():
    """A car's two wheels are ranked left to right among themselves (not with the other car's wheels, not with
    the body); a part that is alone of its name gets count 1 and no separation."""
    def part(pid, oid, name, x0, w=20, y0=50, h=20):
        return {"part_id": pid, "object_id": oid, "part": name, "bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x0 + w,
                "bbox_y1": y0 + h, "area": w * h}

    parts = [part("a-body", "a", "body", 0, w=100), part("a-w2", "a", "wheel", 70), part("a-w1", "a", "wheel", 10),
             part("b-w1", "b", "wheel", 200), part("b-w2", "b", "wheel", 280), part("b-w3", "b", "wheel", 240)]
    cols = geometry.part_order_columns(parts)
    assert cols["a-w1"]["n_same_part"] == 2 and cols["a-w1"]["part_order_lr"] == 1 and cols["a-w2"]["part_order_lr"] == 2
    assert cols["a-w1"]["part_order_sep_lr"] == pytest.approx(60 / 20) and cols["a-w1"]["part_order_sep_tb"] == 0.0
    assert [cols[f"b-w{k}"]["part_order_lr"] for k in (1, 2, 3)] == [1, 3, 2] and cols["b-w3"]["n_same_part"] == 3
    assert cols["a-body"]["n_same_part"] == 1 and math.isnan(cols["a-body"]["part_order_sep_lr"])
    assert {k: v for k, v in cols["a-body"].items() if not k.startswith("part_order_sep")} == {
        k: v for k, v in geometry.LONE_PART.items() if not k.startswith("part_order_sep")}

"""The synthesize stage: grounded four-level descriptions, the name-only template, the backend interface,
and the parser that checks a description against its keypoint row."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.colours import NAMES
from talking_points.pipeline.data.errors import BadInput, OnError
from talking_points.pipeline.data.tables import read_table, validate, write_table
from talking_points.pipeline.synthesis.backends import make_backend
from talking_points.pipeline.synthesis.base import DescriptionBackend, Draft, word_bins
from talking_points.pipeline.synthesis.config import SynthBackend, SynthesizeConfig
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.grounded import GroundedBackend
from talking_points.pipeline.synthesis.parse import (
    AxisClaim,
    check_faithful,
    levels_present,
    parse_description,
    split_levels,
)
from talking_points.pipeline.synthesis.sentences import order_axis, part_order_axis
from talking_points.pipeline.synthesis.synthesize import PASSES, synthesize
from talking_points.pipeline.synthesis.template import TEMPLATE_FORMS, template_phrase
from talking_points.pipeline.synthesis.vocabulary import (
    Brightness,
    OrderAxis,
    OrderEnd,
    WordBins,
    ordinal,
    plural,
    point_grade,
)

H, V = ("left", "center", "right"), ("top", "middle", "bottom")
#: names with irregular plurals, several words, or words of the descriptions' own vocabulary ("orange", "top")
CATEGORIES = [
    "dog",
    "cat",
    "horse",
    "person",
    "sheep",
    "bus",
    "potted plant",
    "traffic light",
    "red panda",
    "orange",
]
PARTS = [
    "head",
    "tail",
    "body",
    "left front leg",
    "left_eye",
    "root_of_tail",
    "upper arm",
    "top",
    "legs",
    "ear",
]
TEXTURES = [None, None, "solid", "striped", "dotted", "checkered", "gradient"]
#: coordinates on and around the bin edges of the point wording and the thirds
SPECIAL = [0.0, 1.0, 0.5, 0.06, 0.44, 0.56, 0.4399, 0.5601, 1 / 3, 2 / 3, 0.15, 0.85, 0.3334, 0.94, 0.6667]
N_ROWS = 400


def third(value: float, names: tuple[str, str, str]) -> str:
    return names[0] if value < 1 / 3 else names[1] if value < 2 / 3 else names[2]


def make_row(rng: np.random.Generator, i: int, **overrides) -> dict:
    """One KEYPOINTS row with every field drawn at random, consistently (labels follow coordinates)."""
    n_same = int(rng.integers(1, 5))
    cx, cy = (float(v) for v in rng.uniform(0.02, 0.98, 2))
    pcx, pcy = (float(v) for v in rng.uniform(0, 1, 2))
    kx, ky = (
        float(rng.choice(SPECIAL)) if rng.random() < 0.25 else float(rng.uniform(0, 1)) for _ in range(2)
    )
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    image = f"src/img{i // 2}"
    row = dict(
        kp_id=f"{image}#k{i}",
        image_id=image,
        source="src",
        file=f"img{i // 2}.png",
        width=640,
        height=480,
        object_id=f"{image}#o{i % 3}",
        category=CATEGORIES[int(rng.integers(len(CATEGORIES)))],
        part_id=f"{image}#o{i % 3}p0",
        part=PARTS[int(rng.integers(len(PARTS)))],
        x=float(rng.uniform(0, 640)),
        y=float(rng.uniform(0, 480)),
        x_norm=0.5,
        y_norm=0.5,
        response=float(rng.uniform(0, 0.1)),
        sift_size=float(rng.uniform(1, 10)),
        border_dist=float(rng.uniform(2, 9)),
        obj_x0=max(0.0, cx - 0.1),
        obj_y0=max(0.0, cy - 0.1),
        obj_x1=min(1.0, cx + 0.1),
        obj_y1=min(1.0, cy + 0.1),
        obj_cx=cx,
        obj_cy=cy,
        obj_area_frac=float(rng.uniform(0.01, 0.5)),
        obj_h_pos=third(cx, H),
        obj_v_pos=third(cy, V),
        obj_edge=str(rng.choice(["none", "none", "left", "right", "top", "bottom"])),
        n_objects=n_same + int(rng.integers(0, 3)),
        n_same=n_same,
        order_lr=int(rng.integers(1, n_same + 1)),
        order_tb=int(rng.integers(1, n_same + 1)),
        order_size=int(rng.integers(1, n_same + 1)),
        order_sep_lr=float(rng.uniform(0, 1.5)) if n_same > 1 else float("nan"),
        order_sep_tb=float(rng.uniform(0, 1.5)) if n_same > 1 else float("nan"),
        order_sep_size=float(rng.uniform(0, 1)) if n_same > 1 else float("nan"),
        part_x0=0.1,
        part_y0=0.1,
        part_x1=0.2,
        part_y1=0.2,
        part_cx_in_obj=pcx,
        part_cy_in_obj=pcy,
        part_h_in_obj=third(pcx, H),
        part_v_in_obj=third(pcy, V),
        part_area_frac=float(rng.uniform(0.01, 0.6)),
        n_parts=int(rng.integers(1, 12)),
        kp_in_part_x=kx,
        kp_in_part_y=ky,
        kp_h_in_part=third(kx, H),
        kp_v_in_part=third(ky, V),
        patch_r=float(rng.uniform()),
        patch_g=float(rng.uniform()),
        patch_b=float(rng.uniform()),
        patch_colour=str(rng.choice(NAMES)),
        patch_brightness=float(rng.choice([0.3, 0.6])) if rng.random() < 0.1 else float(rng.uniform(0, 1)),
        patch_edge_energy=float(rng.uniform(0, 0.3)),
        part_colour=None if texture is None else str(rng.choice(NAMES)),
        part_texture=texture,
    )
    n_part = int(rng.choice([1, 1, 2, 3, 5]))  # repeated parts: the wheels of a car
    row.update(
        n_same_part=n_part,
        **{f"part_order_{a}": int(rng.integers(1, n_part + 1)) for a in ("lr", "tb", "size")},
        **{f"part_order_sep_{a}": float(rng.uniform(0, 1.5)) if n_part > 1 else float("nan")
           for a in ("lr", "tb", "size")},
    )
    row.update(overrides)
    return row


def make_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([make_row(rng, i) for i in range(n)])


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return make_rows(N_ROWS)


@pytest.fixture(scope="module")
def backend() -> GroundedBackend:
    return make_backend(SynthesizeConfig())


@pytest.fixture(scope="module")
def described(rows, backend) -> pd.DataFrame:
    return backend.describe(rows, seed=0)


def records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


# ------------------------------------------------------------------------------------------ the row factory


def test_factory_rows_are_keypoints_rows(rows):
    validate(rows, schema.KEYPOINTS, "factory rows")
    assert set(rows["n_same"]) == {1, 2, 3, 4}
    assert rows["part_texture"].isna().any() and rows["part_texture"].notna().any()


# ------------------------------------------------------------------------------------------ faithfulness


def test_every_description_is_faithful(rows, described):
    assert len(described) == len(rows) >= 300
    assert list(described["kp_id"]) == list(rows["kp_id"])
    for row, out in zip(records(rows), records(described)):
        assert check_faithful(row, out["description"]) == [], out["description"]
        for level in ("level_object", "level_part", "level_point", "level_local"):
            assert out[level] and out[level] in out["description"]
    assert described["valid"].all()
    axes = {order_axis(row_facts(r, WordBins())) for r in records(rows) if r["n_same"] > 1}
    assert axes == {*OrderAxis, None}  # None: no axis separates the instance, the count names it


def test_parsed_facts_match_the_row(rows, described):
    bins = WordBins()
    for row, text in zip(records(rows), described["description"]):
        f = row_facts(row, bins)
        facts = parse_description(text, category=f.category, part=f.part, texture=f.texture)
        assert facts.category == f.category and facts.part == f.part, text
        if f.n_same == 1:
            assert not facts.orders and set(facts.counts) <= {1}, text
        elif order_axis(f) is None:
            assert not facts.orders and facts.counts == [f.n_same] and not facts.only, text
        else:
            assert facts.orders and {c.axis for c in facts.orders} == {order_axis(f)}, text
        assert len(facts.scene) == 1 and facts.scene[0] != (None, None), text
        v, h = facts.scene[0]
        assert v in (None, f.scene_v) and h in (None, f.scene_h)
        assert facts.edges == ([] if f.edge == "none" else [f.edge]), text
        assert len(facts.part_positions) == 1, text
        for claims, grade, value, (low, high, centre) in (
            (facts.point_h, f.point_h_grade, f.point_x, ("left", "right", "center")),
            (facts.point_v, f.point_v_grade, f.point_y, ("top", "bottom", "middle")),
        ):
            if grade:
                assert AxisClaim(low if value < 0.5 else high, grade) in claims, text
            else:
                assert all(c == AxisClaim(centre, 0) for c in claims), text
        assert facts.colours == [f.colour], text
        assert facts.brightness == [f.brightness], text
        if f.texture is None:
            assert facts.energies == [f.energy] and not facts.textures, text
        else:
            assert facts.textures == [f.texture] and not facts.energies, text


def _mirror(value: float) -> float:
    return 1.0 - value


MUTATIONS = {
    "colour": (
        lambda r, f: True,
        lambda r, f: {
            "patch_colour": (c := next(n for n in NAMES if n not in (f.colour, f.part_colour))),
            "part_colour": None if f.part_colour is None else c,
        },
    ),
    "brightness": (
        lambda r, f: True,
        lambda r, f: {"patch_brightness": 0.9 if f.brightness is Brightness.dark else 0.05},
    ),
    "energy": (
        lambda r, f: f.texture is None,
        lambda r, f: {"patch_edge_energy": 0.0 if f.energy.value != "smooth" else 0.5},
    ),
    "texture": (
        lambda r, f: f.texture is not None,
        lambda r, f: {"part_texture": "dotted" if f.texture != "dotted" else "striped"},
    ),
    "point_x": (
        lambda r, f: f.point_h_grade > 0,
        lambda r, f: {"kp_in_part_x": _mirror(f.point_x), "kp_h_in_part": third(_mirror(f.point_x), H)},
    ),
    "point_y": (
        lambda r, f: f.point_v_grade > 0,
        lambda r, f: {"kp_in_part_y": _mirror(f.point_y), "kp_v_in_part": third(_mirror(f.point_y), V)},
    ),
    "scene": (
        lambda r, f: f.scene_h != "center" and abs(f.obj_cx - 0.5) > 0.2,
        lambda r, f: {"obj_cx": _mirror(f.obj_cx), "obj_h_pos": third(_mirror(f.obj_cx), H)},
    ),
    "edge": (
        lambda r, f: f.edge != "none",
        lambda r, f: {"obj_edge": "left" if f.edge != "left" else "right"},
    ),
    "part_position": (
        lambda r, f: f.part_h != "center" and abs(r["part_cx_in_obj"] - 0.5) > 0.2,
        lambda r, f: {
            "part_cx_in_obj": _mirror(r["part_cx_in_obj"]),
            "part_h_in_obj": third(_mirror(r["part_cx_in_obj"]), H),
        },
    ),
    "order": (
        lambda r, f: f.n_same > 1 and order_axis(f) is not None and 2 * f.ranks[order_axis(f)] != f.n_same + 1,
        lambda r, f: {c: f.n_same + 1 - r[c] for c in ("order_lr", "order_tb", "order_size")},
    ),
    "part_order": (
        lambda r, f: f.n_same_part > 1
        and part_order_axis(f) is not None
        and 2 * f.part_ranks[part_order_axis(f)] != f.n_same_part + 1,
        lambda r, f: {c: f.n_same_part + 1 - r[c] for c in ("part_order_lr", "part_order_tb", "part_order_size")},
    ),
    "part_count": (lambda r, f: f.n_same_part > 1, lambda r, f: {"n_same_part": f.n_same_part + 1}),
    "only": (
        lambda r, f: f.n_same == 1,
        lambda r, f: {"n_same": 3, "order_lr": 2, "order_tb": 2, "order_size": 2},
    ),
    "part_name": (lambda r, f: True, lambda r, f: {"part": "whisker"}),
    "category": (lambda r, f: True, lambda r, f: {"category": "zebra"}),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_check_catches_a_changed_fact(name, rows, described):
    """Change one fact of the row (keeping the row consistent) and the old description must be flagged."""
    applies, change = MUTATIONS[name]
    bins, flagged, tried = WordBins(), 0, 0
    for row, text in zip(records(rows), described["description"]):
        f = row_facts(row, bins)
        if not applies(row, f):
            continue
        mutated = {**row, **change(row, f)}
        issues = check_faithful(mutated, text)
        tried += 1
        if name == "only" and not parse_description(text, category=f.category).only:
            continue  # 'the dog' makes no claim about the count
        assert issues, f"{name}: {text}"
        flagged += 1
    assert tried >= 15 and flagged >= 5


def test_free_text_forms_of_the_descriptions_still_parse(rows, described):
    """With the ';' level separators turned into commas the text is parsed as free text."""
    for row, text in zip(records(rows), described["description"]):
        free = text.replace(";", ",")
        assert check_faithful(row, free) == [], free
        assert all(levels_present(free, category=row["category"], part=row["part"]).values()), free
        assert all(levels_present(free).values()), free


# ------------------------------------------------------------------------------------- determinism, variety


def test_determinism_row_order_and_batching(rows, backend, described):
    again = backend.describe(rows, seed=0)
    pd.testing.assert_frame_equal(again, described)
    shuffled = backend.describe(rows.sample(frac=1.0, random_state=3), seed=0)
    pd.testing.assert_frame_equal(
        shuffled.set_index("kp_id").loc[described["kp_id"]].reset_index(), described
    )
    batched = pd.concat(
        [backend.describe(rows.iloc[i : i + 37], seed=0) for i in range(0, len(rows), 37)], ignore_index=True
    )
    pd.testing.assert_frame_equal(batched, described)
    small = synthesize(rows, SynthesizeConfig(batch_size=7)).descriptions
    pd.testing.assert_frame_equal(small, described)
    other = backend.describe(rows, seed=1)
    assert (other["description"] != described["description"]).mean() > 0.8


def test_phrasing_varies_across_seeds_for_the_same_geometry(backend):
    rng = np.random.default_rng(5)
    row = make_row(
        rng,
        0,
        category="dog",
        n_same=3,
        order_lr=2,
        order_tb=1,
        order_size=3,
        obj_cx=0.5,
        obj_h_pos="center",
        obj_cy=0.2,
        obj_v_pos="top",
        obj_edge="top",
        kp_in_part_x=0.3,
        kp_h_in_part="left",
        kp_in_part_y=0.9,
        kp_v_in_part="bottom",
        order_sep_lr=0.2,  # the instances stand apart vertically only
        order_sep_tb=1.5,
        order_sep_size=0.1,
    )
    out = backend.describe(pd.DataFrame([row] * 1), seed=0)
    texts = pd.concat([backend.describe(pd.DataFrame([row]), seed=s) for s in range(30)], ignore_index=True)
    for column, at_least in (
        ("level_object", 5),
        ("level_part", 4),
        ("level_point", 3),
        ("level_local", 4),
        ("description", 25),
    ):
        assert texts[column].nunique() >= at_least, column
    assert texts["valid"].all() and out["valid"].all()
    claims = {tuple(parse_description(t, category="dog").orders) for t in texts["level_object"]}
    assert {(c.axis, c.end, c.k) for cs in claims for c in cs} == {(OrderAxis.tb, OrderEnd.top, 1)}


def test_single_instances_are_named_without_an_order(backend):
    rng = np.random.default_rng(6)
    rows = pd.DataFrame(
        [make_row(rng, i, category="cat", n_same=1, order_lr=1, order_tb=1, order_size=1) for i in range(40)]
    )
    out = backend.describe(rows, seed=0)
    for text in out["level_object"]:
        assert text.startswith(("on the only cat", "on the cat", "on the single cat", "on the lone cat")), (
            text
        )
        assert not parse_description(text, category="cat").orders


@pytest.mark.parametrize(
    "separations, axis",
    [
        ((0.9, 0.07, 0.07), OrderAxis.lr),  # side by side (two dogs 134 px apart across, 11 px down): left/right
        ((0.1, 1.2, 0.0), OrderAxis.tb),  # stacked: top/bottom, whatever the ranks' image positions suggest
        ((0.2, 0.3, 0.9), OrderAxis.size),  # overlapping, one much larger: by size
        ((0.2, 0.3, 0.1), None),  # nothing separates them: the count and the scene position
    ],
)
def test_the_order_axis_is_the_one_that_separates_the_instances(backend, separations, axis):
    rng = np.random.default_rng(3)
    lr, tb, size = separations
    row = make_row(rng, 0, category="dog", n_same=2, order_lr=1, order_tb=2, order_size=1, obj_cx=0.2, obj_cy=0.8,
                   obj_h_pos="left", obj_v_pos="bottom", order_sep_lr=lr, order_sep_tb=tb, order_sep_size=size)
    assert order_axis(row_facts(row, WordBins())) is axis
    for seed in range(4):
        text = backend.describe(pd.DataFrame([row]), seed=seed)["description"].iloc[0]
        assert check_faithful(row, text) == [], text
        facts = parse_description(text, category="dog")
        if axis is None:
            assert "one of the two dogs" in text and not facts.orders and facts.counts == [2], text
        else:
            assert {c.axis for c in facts.orders} == {axis}, text


@pytest.mark.parametrize(
    "ranks, centre, axis, end",
    [
        (dict(n_same=3, order_lr=3, order_tb=2, order_size=2), (0.85, 0.5), OrderAxis.lr, OrderEnd.right),
        (dict(n_same=4, order_lr=2, order_tb=3, order_size=1), (0.9, 0.1), OrderAxis.size, OrderEnd.largest),
        (dict(n_same=2, order_lr=1, order_tb=2, order_size=2), (0.52, 0.8), OrderAxis.tb, OrderEnd.bottom),
        (dict(n_same=4, order_lr=2, order_tb=3, order_size=2), (0.35, 0.1), OrderAxis.lr, OrderEnd.left),
    ],
)
def test_without_measured_separations_the_axis_is_estimated_from_ranks_and_position(backend, ranks, centre, axis,
                                                                                     end):
    """Rows of tables mined before the separations were measured (the columns null): the old estimate."""
    rng = np.random.default_rng(7)
    cx, cy = centre
    nan = float("nan")
    row = make_row(
        rng, 0, category="car", obj_cx=cx, obj_cy=cy, obj_h_pos=third(cx, H), obj_v_pos=third(cy, V), **ranks,
        order_sep_lr=nan, order_sep_tb=nan, order_sep_size=nan,
    )
    assert order_axis(row_facts(row, WordBins())) is axis
    for seed in range(5):
        text = backend.describe(pd.DataFrame([row]), seed=seed)["level_object"].iloc[0]
        claims = parse_description(text, category="car").orders
        assert claims and {c.end for c in claims} == {end}, text


# ------------------------------------------------------------------------------------------ the parser


@pytest.mark.parametrize(
    "text, end, k, count",
    [
        ("the second dog from the left", OrderEnd.left, 2, None),
        ("the rightmost of the three cats", OrderEnd.right, 1, 3),
        ("the lower of the two cars", OrderEnd.bottom, 1, 2),
        ("the largest horse", OrderEnd.largest, 1, None),
        ("the third-smallest of the five sheep", OrderEnd.smallest, 3, 5),
        ("the first of the four people from the top", OrderEnd.top, 1, 4),
        ("the upper one of the two buses", OrderEnd.top, 1, 2),
    ],
)
def test_order_phrases_parse(text, end, k, count):
    facts = parse_description(f"The point is on {text}, in the centre of the image.")
    assert [(c.end, c.k) for c in facts.orders] == [(end, k)]
    assert facts.counts == ([] if count is None else [count])


def test_the_papers_example_parses_level_by_level():
    text = (
        "The point is on the second dog from the left, which stands near the bottom edge; on its head, in "
        "the upper right of the dog; slightly left of and above the head's centre; "
        "in a small dark, dotted patch."
    )
    facts = parse_description(text)
    assert facts.category == "dog" and facts.part == "head"
    assert [(c.end, c.k) for c in facts.orders] == [(OrderEnd.left, 2)]
    assert facts.edges == ["bottom"] and facts.part_positions == [("top", "right")]
    assert facts.point_h == [AxisClaim("left", 1)] and facts.point_v == [AxisClaim("top", 2)]
    assert facts.brightness == [Brightness.dark] and facts.textures == ["dotted"]
    assert split_levels(text)["point"] == "slightly left of and above the head's centre"


def test_levels_present_on_free_text():
    model_like = (
        "The point is on the dog on the left of the image. It is on the dog's head, at the top of its "
        "body. It lies slightly right of the head's centre. The patch is dark brown and smooth."
    )
    assert levels_present(model_like) == dict(object=True, part=True, point=True, local=True)
    assert levels_present(model_like, category="dog", part="head") == dict(
        object=True, part=True, point=True, local=True
    )
    levels = split_levels(model_like, category="dog", part="head")
    assert levels["point"] == "It lies slightly right of the head's centre"
    assert levels["local"] == "The patch is dark brown and smooth"
    tip = "A pixel on the only cat in the upper left corner of the picture, at the very tip of its tail."
    assert levels_present(tip, category="cat", part="tail") == dict(
        object=True, part=True, point=True, local=False
    )
    assert levels_present("the head of the dog", category="dog", part="head") == dict(
        object=False, part=True, point=False, local=False
    )
    assert not any(levels_present("").values())


def test_names_are_not_read_as_positions_or_colours():
    row_text = (
        "The point is on the red panda, in the centre of the image; on its left front leg, at the lower "
        "left of the red panda; near the centre of the left front leg; in a dark blue patch."
    )
    facts = parse_description(row_text, category="red panda", part="left front leg")
    assert facts.colours == ["blue"] and facts.part == "left front leg"
    assert facts.point_h == [AxisClaim("center", 0)]


# ------------------------------------------------------------------------------------------ template, outputs


def test_template_names_only_the_part_and_the_category(rows, described):
    for row, template in zip(records(rows), described["template"]):
        part, category = row["part"].replace("_", " "), row["category"]
        assert template in {form.format(part=part, category=category) for form in TEMPLATE_FORMS}
        assert levels_present(template, category=category, part=part) == dict(
            object=False, part=True, point=False, local=False
        )
    assert template_phrase("Dog", "left_eye", "a#k1", 0) in {"the left eye of the dog", "the dog's left eye"}


def test_outputs_validate_and_report(rows):
    result = synthesize(rows, SynthesizeConfig(batch_size=64))
    table = validate(result.descriptions, schema.DESCRIPTIONS, "descriptions")
    validate(result.passes, PASSES, "passes")
    assert table.num_rows == len(rows)
    out = result.descriptions
    assert (out["backend"] == "grounded").all() and (out["model"] == "").all()
    assert (out["prompt_version"] == "grounded-v1").all()
    assert (out["pass_refine"] == out["description"]).all()
    assert (out["pass_object"].str.len() > 0).all() and (out["pass_local"].str.len() > 0).all()
    sampling = json.loads(out["sampling"].iloc[0])
    assert sampling["seed"] == 0 and sampling["shuffle_clauses"] == 0.3
    report = result.report
    assert report["rows_out"] == len(rows) and report["valid_fraction"] == 1.0 and report["skipped"] == 0
    words = report["words"]
    # random rows repeat their part in 60% of cases (PartWorld: 42%, 99% of its texts within 30-60 words), and a
    # repeated part's rank ('the second of its five wheels from the left') adds four to six words
    assert 30 <= words["median"] <= 60 and words["within_30_60"] >= 0.8, words
    assert report["template_words"]["max"] <= 10


def test_no_reordering_means_generate_equals_refine(rows):
    cfg = SynthesizeConfig(grounded={"shuffle_clauses": 0.0})
    out = make_backend(cfg).describe(rows.iloc[:50], seed=0)
    assert (out["pass_generate"] == out["description"]).all()
    always = make_backend(SynthesizeConfig(grounded={"shuffle_clauses": 1.0})).describe(
        rows.iloc[:50], seed=0
    )
    assert (always["pass_generate"] != always["description"]).any()
    assert always["valid"].all()


def test_empty_input_gives_empty_valid_tables(rows):
    for keypoints in (rows.iloc[:0], pd.DataFrame([{**rows.iloc[0].to_dict(), "kp_in_part_y": -0.1}])):
        result = synthesize(keypoints, SynthesizeConfig())
        validate(result.descriptions, schema.DESCRIPTIONS, "descriptions")
        validate(result.passes, PASSES, "passes")
        assert result.report["rows_out"] == 0 and result.report["valid_fraction"] is None


def _bad_rows() -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(9)
    good = [make_row(rng, i) for i in range(6)]
    bad = {
        "src/bad#k0": ({"part": "  "}, "empty part name"),
        "src/bad#k1": ({"kp_in_part_x": 1.5}, "value out of range"),
        "src/bad#k2": ({"n_same": 2, "order_lr": 5}, "rank out of range"),
        "src/bad#k3": ({"patch_brightness": math.nan}, "value out of range"),
        "src/bad#k4": ({"patch_colour": "mauve"}, "unknown colour name"),
        "src/bad#k5": ({"obj_cx": 0.9, "obj_h_pos": "left"}, "position label contradicts coordinates"),
    }
    rows = [
        make_row(rng, 100 + i, kp_id=kp_id, **change) for i, (kp_id, (change, _)) in enumerate(bad.items())
    ]
    dup = dict(good[0])
    return pd.DataFrame(good[:3] + rows + good[3:] + [dup]), {k: reason for k, (_, reason) in bad.items()}


def test_bad_rows_are_skipped_with_reasons():
    rows, reasons = _bad_rows()
    result = synthesize(rows, SynthesizeConfig(on_error=OnError.skip))
    assert len(result.descriptions) == 6 and result.descriptions["valid"].all()
    expected = {}
    for reason in [*reasons.values(), "duplicate kp_id"]:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(result.skips.counts) == expected
    examples = " ".join(e for ex in result.skips.examples.values() for e in ex)
    assert all(kp_id in examples for kp_id in reasons)
    assert result.report["skipped"] == 7


def test_bad_rows_raise_under_strict_naming_the_kp_id():
    rows, _ = _bad_rows()
    with pytest.raises(BadInput, match="src/bad#k0") as err:
        synthesize(rows, SynthesizeConfig(on_error=OnError.strict))
    assert err.value.reason == "empty part name"
    with pytest.raises(BadInput, match="src/bad#k1"):
        check_faithful(rows.iloc[4].to_dict(), "anything")


# ------------------------------------------------------------------------------------------ backends


def test_backend_factory():
    assert isinstance(make_backend(SynthesizeConfig()), GroundedBackend)
    with pytest.raises(ConfigError, match="unknown"):
        make_backend(SynthesizeConfig().model_copy(update={"backend": "nope"}))
    with pytest.raises(ConfigError, match="needs a 'synthesize.hf' section"):
        make_backend(SynthesizeConfig().model_copy(update={"backend": SynthBackend.hf}))
    with pytest.raises(ValueError, match="dark_below"):
        SynthesizeConfig(dark_below=0.7, bright_above=0.6)


class _EchoBackend(DescriptionBackend):
    """A stand-in model backend: returns a fixed text, to exercise the shared validation hook."""

    name = "echo"

    def __init__(self, text: str, bins: WordBins, short: bool = False):
        super().__init__(bins)
        self.text, self.short = text, short

    model = "echo-model"
    prompt_version = "echo-v0"

    def sampling(self, seed: int) -> str:
        return json.dumps({"seed": seed})

    def generate(self, rows, seed):
        levels = split_levels(self.text)
        drafts = [
            Draft(
                kp_id=k,
                description=self.text,
                **{f"level_{n}": t for n, t in levels.items()},
                pass_object="o",
                pass_local="l",
                pass_generate=self.text,
                pass_refine=self.text,
            )
            for k in rows["kp_id"]
        ]
        return drafts[:-1] if self.short else drafts


def test_a_new_backend_gets_template_provenance_and_validity(rows):
    row = make_row(
        np.random.default_rng(10),
        0,
        category="dog",
        part="head",
        n_same=1,
        order_lr=1,
        order_tb=1,
        order_size=1,
        obj_cx=0.2,
        obj_h_pos="left",
        obj_cy=0.5,
        obj_v_pos="middle",
        obj_edge="none",
        part_cx_in_obj=0.5,
        part_h_in_obj="center",
        part_cy_in_obj=0.1,
        part_v_in_obj="top",
        kp_in_part_x=0.62,
        kp_h_in_part="center",
        kp_in_part_y=0.5,
        kp_v_in_part="middle",
        patch_colour="brown",
        patch_brightness=0.1,
        patch_edge_energy=0.01,
        part_colour=None,
        part_texture=None,
    )
    good = (
        "The point is on the only dog, on the left side of the image; on its head, at the top of the dog; "
        "slightly right of the head's centre; in a dark brown patch that looks smooth."
    )
    bins = word_bins(SynthesizeConfig())
    out = _EchoBackend(good, bins).describe(pd.DataFrame([row]), seed=4)
    validate(out, schema.DESCRIPTIONS, "echo")
    assert out["valid"].iloc[0] and out["backend"].iloc[0] == "echo" and out["model"].iloc[0] == "echo-model"
    assert out["template"].iloc[0] in ("the head of the dog", "the dog's head")
    assert out["level_point"].iloc[0] == "slightly right of the head's centre"
    for wrong in (
        good.replace("left side", "right side"),
        good.replace("brown", "green"),
        good.replace("slightly right", "slightly left"),
        good.replace("only dog", "second dog from the left"),
        good.replace("; in a dark brown patch that looks smooth", ""),
    ):
        assert not _EchoBackend(wrong, bins).describe(pd.DataFrame([row]), seed=4)["valid"].iloc[0], wrong
    with pytest.raises(RuntimeError, match="drafts"):
        _EchoBackend(good, bins, short=True).describe(pd.DataFrame([row, row]), seed=0)


# ------------------------------------------------------------------------------------------ vocabulary


def test_vocabulary_helpers():
    assert [point_grade(d) for d in (0.0, 0.059, 0.06, -0.166, -1 / 6, 0.349, 0.35, -0.5)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    assert [plural(w) for w in ("dog", "bus", "person", "sheep", "potted plant", "pony", "fox")] == [
        "dogs",
        "buses",
        "people",
        "sheep",
        "potted plants",
        "ponies",
        "foxes",
    ]
    assert [ordinal(k) for k in (1, 2, 12, 13, 22)] == ["first", "second", "twelfth", "13th", "22nd"]
    bins = WordBins(dark_below=0.3, bright_above=0.6)
    assert [bins.brightness(v) for v in (0.29, 0.3, 0.59, 0.6)] == [
        Brightness.dark,
        Brightness.medium,
        Brightness.medium,
        Brightness.bright,
    ]


# ------------------------------------------------------------------------------------------ the stage command


def _stage_app():
    import typer

    from talking_points.stages import synthesize as stage

    app = typer.Typer()
    app.command()(stage.main)
    return app


def test_stage_writes_descriptions_passes_and_report(tmp_path, rows):
    kps = tmp_path / "keypoints.parquet"
    write_table(rows.iloc[:60], kps, schema.KEYPOINTS, "keypoints")
    params = tmp_path / "params.yaml"
    params.write_text("synthesize:\n  backend: grounded\n  seed: 3\n  batch_size: 16\n")
    out = tmp_path / "synth"
    res = CliRunner().invoke(
        _stage_app(), ["--keypoints", str(kps), "--out", str(out), "--params", str(params)]
    )
    assert res.exit_code == 0, res.output
    desc = read_table(out / "descriptions.parquet", schema.DESCRIPTIONS)
    assert len(desc) == 60 and desc["valid"].all()
    passes = read_table(out / "passes.parquet", PASSES)
    assert list(passes["kp_id"]) == list(desc["kp_id"])
    report = json.loads((out / "report.json").read_text())
    assert report["rows_out"] == 60 and report["seed"] == 3 and report["valid_fraction"] == 1.0


def test_stage_strict_bad_row_fails_naming_it(tmp_path):
    rows, _ = _bad_rows()
    rows = rows[rows["kp_id"] != "src/bad#k3"]  # a NaN would be written as a null, which KEYPOINTS rejects
    kps = tmp_path / "keypoints.parquet"
    write_table(rows, kps, schema.KEYPOINTS, "keypoints")
    params = tmp_path / "params.yaml"
    params.write_text("synthesize:\n  on_error: strict\n")
    out = tmp_path / "synth"
    res = CliRunner().invoke(
        _stage_app(), ["--keypoints", str(kps), "--out", str(out), "--params", str(params)]
    )
    assert res.exit_code == 1
    assert "src/bad#k0" in res.output and not out.exists()


def _repeated_part_row(**overrides) -> dict:
    rng = np.random.default_rng(11)
    fields = dict(category="car", part="wheel", n_same=1, order_lr=1, order_tb=1, order_size=1,
                  order_sep_lr=float("nan"), order_sep_tb=float("nan"), order_sep_size=float("nan"),
                  n_same_part=5, part_order_lr=1, part_order_tb=3, part_order_size=2,
                  part_order_sep_lr=1.2, part_order_sep_tb=0.1, part_order_sep_size=0.05)
    return make_row(rng, 0, **{**fields, **overrides})


def test_a_repeated_part_is_named_by_its_rank_among_the_parts_of_that_name(backend):
    """'the leftmost of its five wheels': the part level ranks the part along the axis that separates it from
    the object's other parts of the same name, and the parser reads the rank and count back."""
    row = _repeated_part_row()
    texts = pd.concat([backend.describe(pd.DataFrame([row]), seed=s) for s in range(20)], ignore_index=True)
    assert texts["valid"].all()
    for text in texts["level_part"]:
        facts = parse_description(text, category="car", part="wheel")
        assert facts.part == "wheel" and facts.part_counts == [5], text
        assert [(c.axis, c.end, c.k) for c in facts.part_orders] == [(OrderAxis.lr, OrderEnd.left, 1)], text
    assert texts["level_part"].str.contains("five wheels").all()
    # the object level is untouched by the part's rank: the car is the only one
    assert all(parse_description(t, category="car").orders == [] for t in texts["description"])
    # no axis separates the wheels (all within half a wheel of each other): 'one of its five wheels'
    close = _repeated_part_row(part_order_sep_lr=0.2, part_order_sep_tb=0.1, part_order_sep_size=0.1)
    text = backend.describe(pd.DataFrame([close]), seed=0)["level_part"].iloc[0]
    assert "one of" in text and "five wheels" in text, text
    facts = parse_description(text, category="car", part="wheel")
    assert facts.part_counts == [5] and facts.part_orders == []
    # a claim the row contradicts is caught
    assert check_faithful({**row, "part_order_lr": 2}, texts["description"].iloc[0])
    assert check_faithful({**row, "n_same_part": 4, "part_order_tb": 3, "part_order_size": 2},
                          texts["description"].iloc[0])
    assert check_faithful(row, texts["description"].iloc[0]) == []

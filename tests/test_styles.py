"""Description styles (synthesis.styles): every style keeps the row's facts, the paraphrase's words never occur
in the training texts, a style-robust localizer never trains on a held-out style, and the restyle stage, the
`texts: style` rows and the report's style table work end to end on small tables."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from test_synthesis import make_rows
from typer.testing import CliRunner

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import write_table
from talking_points.pipeline.evaluation import report as rep
from talking_points.pipeline.evaluation.config import EvalRowConfig
from talking_points.pipeline.evaluation.predict import read_style, texts_for
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.parse import (
    VOCABULARY_WORDS,
    check_faithful,
    levels_present,
    parse_description,
)
from talking_points.pipeline.synthesis.sentences import order_axis, part_order_axis
from talking_points.pipeline.synthesis.style_config import Style, StylesConfig
from talking_points.pipeline.synthesis.styles import (
    HELD_OUT,
    SPARSE_KEEP,
    mixed_styles,
    readable,
    restyle,
    restyle_frame,
)
from talking_points.pipeline.synthesis.synthesize import synthesize
from talking_points.pipeline.synthesis.vocabulary import WordBins

BINS = WordBins()
REWRITES = [s for s in Style if s not in (Style.gt, Style.llm)]  # llm: a model's (test_llm_style.py)


@pytest.fixture(scope="module")
def described() -> pd.DataFrame:
    """300 random keypoint rows (irregular plurals, names made of the descriptions' own words, repeated parts)
    with their grounded descriptions and templates: the training style."""
    rows = make_rows(300, seed=3)
    texts = synthesize(rows, SynthesizeConfig()).descriptions
    return rows.merge(texts, on="kp_id")


@pytest.mark.parametrize("style", REWRITES, ids=lambda s: s.value)
def test_every_style_keeps_the_facts(described, style):
    """The parser reads every rewritten text back without a contradiction, and finds the levels the style
    claims to keep: all four, except terse (the object and its part by name, as people write) and sparse (the
    instance and the part always, the places and the look at random)."""
    for row in described.to_dict(orient="records"):
        text = restyle(row, style, 0, BINS)
        assert text and (text != row["description"] or style is Style.sparse), text  # sparse may keep it all
        assert check_faithful(row, readable(text, style)) == [], (style, text)  # names the category and part too
        present = levels_present(readable(text, style), category=row["category"], part=row["part"])
        if style is Style.sparse:  # the category is named (check_faithful); a bare 'on the dog' is no level
            assert present["part"], (style, text, present)
        elif style is not Style.terse:
            assert all(present.values()), (style, text, present)


def test_sparse_drops_clauses_at_its_rates_and_speaks_only_training_words(described):
    """Fact dropout: each optional clause kept about as often as SPARSE_KEEP says (the object's place in the
    image, the point's place in the part, the look), the instance and the part always named, every word one
    the training descriptions use (no held-out synonym, nothing of another style's wording)."""
    rows = described.to_dict(orient="records")
    texts = [restyle(r, Style.sparse, 0, BINS) for r in rows]
    present = [levels_present(t, category=r["category"], part=r["part"]) for t, r in zip(texts, rows)]
    for level in ("point", "local"):
        share = np.mean([p[level] for p in present])
        assert abs(share - SPARSE_KEEP[level]) < 0.1, (level, share)
    scene = np.mean([bool(re.search(r"\b(?:image|picture|scene|frame|photo)\b", t)) for t in texts])
    assert abs(scene - SPARSE_KEEP["object"]) < 0.1, scene  # the object's place in the image
    words = lambda text: set(re.findall(r"[a-z]+", text.lower()))  # noqa: E731
    training = words(" ".join(described["description"])) | VOCABULARY_WORDS  # the templates' words
    for t, r in zip(texts, rows):
        assert words(t) <= training | words(f"{r['category']} {r['part']}"), t
        assert not [w for w in HELD_OUT if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", t.lower())], t
    assert len(set(texts)) > 0.9 * len(texts)
    assert np.mean([t == r["description"] for t, r in zip(texts, rows)]) < 0.1  # every clause kept: rare


#: 'one of the three dogs', 'the top end of one of its four legs' (not 'the right one of the two')
OPEN_INSTANCE = re.compile(r"(?:^|, |\bof )one of (?:the|its) ", re.IGNORECASE)


def test_terse_says_which_of_a_repeated_part_as_people_do(described):
    """'left front paw of the cat': a terse text names which of the object's parts of that name it means, with
    the descriptions' own order logic, and the parser reads the count and the rank back; where no axis tells
    the parts apart, it says where the part lies in the object instead ('the leg at the lower left of the cat')."""
    repeated = [r for r in described.to_dict(orient="records") if r["n_same_part"] > 1]
    assert len(repeated) >= 30
    ranked = 0
    for row in repeated:
        text = restyle(row, Style.terse, 0, BINS)
        facts = parse_description(text, category=row["category"], part=row["part"])
        told_apart = part_order_axis(row_facts(row, BINS)) is not None
        if told_apart:
            assert facts.part_counts == [row["n_same_part"]], (text, facts.part_counts)
        else:
            assert facts.part_positions and not facts.part_orders, text
        assert bool(facts.part_orders) == told_apart, text
        assert not OPEN_INSTANCE.search(text), text
        ranked += told_apart
    assert ranked >= 30
    row = next(r for r in repeated if part_order_axis(row_facts(r, BINS)) is not None)
    wrong = {**row, "n_same_part": row["n_same_part"] + 1}  # the count is checked, not just written
    assert any("n_same_part" in issue for issue in check_faithful(wrong, restyle(row, Style.terse, 0, BINS)))


def _in_the_opposite_corner(row: dict, x: str, y: str, h: str, v: str) -> dict:
    """`row` with the centre columns `x`, `y` (0 to 1) moved to the opposite corner and their position labels
    `h`, `v` with them."""
    cx, cy = (0.1 if row[x] > 0.5 else 0.9), (0.1 if row[y] > 0.5 else 0.9)
    return {**row, x: cx, h: "left" if cx < 0.5 else "right", y: cy, v: "top" if cy < 0.5 else "bottom"}


def test_terse_names_the_instance_by_its_place_when_no_order_tells_it(described):
    """'the ear of one of the three dogs' leaves the instance open, which people do not: where no axis tells the
    instance (the part) apart, a terse text says where it is, the parser reads that back, and a row whose object
    (part) lies elsewhere contradicts it. Texts told apart by rank say nothing of the place, as before."""
    rows = make_rows(1500, seed=11)
    rows = rows.merge(synthesize(rows, SynthesizeConfig()).descriptions, on="kp_id").to_dict(orient="records")
    placed = {"object": 0, "part": 0}
    for row in rows:
        f = row_facts(row, BINS)
        text = restyle(row, Style.terse, 0, BINS)
        facts = parse_description(text, category=row["category"], part=row["part"])
        assert not OPEN_INSTANCE.search(text), text
        if f.n_same > 1 and order_axis(f) is None:
            assert facts.scene, text
            moved = _in_the_opposite_corner(row, "obj_cx", "obj_cy", "obj_h_pos", "obj_v_pos")
            assert any("scene" in issue for issue in check_faithful(moved, text)), text
            placed["object"] += 1
        else:
            assert not facts.scene, text  # rank alone, as before
        if f.n_same_part > 1 and part_order_axis(f) is None:
            assert facts.part_positions, text
            moved = _in_the_opposite_corner(row, "part_cx_in_obj", "part_cy_in_obj", "part_h_in_obj", "part_v_in_obj")
            assert check_faithful(moved, text), text
            placed["part"] += 1
    assert placed["object"] >= 15 and placed["part"] >= 10, placed


def test_a_wrong_fact_in_a_styled_text_is_caught(described):
    """The round trip is a real check: mirror the row's point position and every style that states it fails."""
    caught = {s: 0 for s in REWRITES}
    for row in described.head(120).to_dict(orient="records"):
        if abs(row["kp_in_part_x"] - 0.5) < 0.4:  # terse only speaks of far ends
            continue
        x = 1.0 - row["kp_in_part_x"]
        mirrored = {**row, "kp_in_part_x": x, "kp_h_in_part": "left" if x < 1 / 3 else "right"}
        for s in REWRITES:
            caught[s] += bool(check_faithful(mirrored, readable(restyle(row, s, 0, BINS), s)))
    assert all(n >= 5 for n in caught.values()), caught


def test_the_paraphrase_speaks_words_the_training_texts_never_use(described):
    training = " ".join(described["description"].tolist() + described["template"].tolist()).lower()
    used = {w for w in HELD_OUT if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", training)}
    assert not used, used
    paraphrased = [restyle(r, Style.paraphrase, 0, BINS) for r in described.to_dict(orient="records")]
    counts = [sum(bool(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", t.lower())) for w in HELD_OUT)
              for t in paraphrased]
    assert np.median(counts) >= 4 and min(counts) >= 2


def test_a_row_named_with_a_replaced_word_keeps_its_name():
    rows = make_rows(40, seed=8).assign(category="picture frame", part="border")
    texts = synthesize(rows, SynthesizeConfig()).descriptions
    for row in rows.merge(texts[["kp_id", "description"]], on="kp_id").to_dict(orient="records"):
        text = restyle(row, Style.paraphrase, 0, BINS)
        assert "picture frame" in text and "border" in text
        assert check_faithful(row, readable(text, Style.paraphrase)) == [], text


def test_styles_are_fixed_by_seed_and_kp_id_not_by_the_batch(described):
    whole = restyle_frame(described, REWRITES, 0, BINS)
    part = restyle_frame(described.iloc[100:150], REWRITES, 0, BINS).reset_index(drop=True)
    pd.testing.assert_frame_equal(part, whole.iloc[100:150].reset_index(drop=True))
    other = restyle_frame(described.iloc[:60], [Style.verbose, Style.terse], 1, BINS)
    assert (other["verbose"] != whole["verbose"].iloc[:60]).mean() > 0.5


def test_a_mixed_style_training_set_holds_only_its_styles(described):
    """The style-robust localizer's training texts: each one exactly the row's text in one of the listed styles,
    every listed style used, and no held-out word anywhere."""
    listed = [Style.gt, Style.reordered, Style.verbose]
    texts = mixed_styles(described, listed, 0, BINS)
    table = restyle_frame(described, [Style.reordered, Style.verbose, Style.terse, Style.paraphrase], 0, BINS)
    table["gt"] = described["description"].to_numpy()
    which = [next(s.value for s in listed if table.at[i, s.value] == t) for i, t in enumerate(texts)]
    assert set(which) == {s.value for s in listed}
    assert not any(t == table.at[i, "terse"] or t == table.at[i, "paraphrase"] for i, t in enumerate(texts))
    assert not any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", t.lower()) for t in texts for w in HELD_OUT)


def test_a_style_listed_twice_is_drawn_twice_as_often(described):
    texts = mixed_styles(described, [Style.gt, Style.gt, Style.reordered, Style.verbose], 0, BINS)
    share = (pd.Series(texts) == described["description"].reset_index(drop=True)).mean()
    assert len(described) >= 200 and 0.4 < share < 0.6, share  # half the rows, not a third


def test_the_training_stage_refuses_a_held_out_style(tmp_path):
    from talking_points.pipeline.training.config import TrainLocalizerConfig
    from talking_points.stages.train import _styled

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"styles": {"seed": 0, "held_out": ["terse", "paraphrase"]},
                                      "synthesize": {}}))
    cfg = TrainLocalizerConfig(text_styles=["gt", "terse"])
    with pytest.raises(ConfigError, match=r"text_styles lists \['terse'\], held out"):
        _styled(make_rows(4), cfg, params)


def test_styles_config_validates_its_lists():
    with pytest.raises(ValueError, match="the samples' own column"):
        StylesConfig(styles=["gt", "terse"], held_out=[])
    with pytest.raises(ValueError, match="are not written"):
        StylesConfig(styles=["terse"], held_out=["paraphrase"])
    with pytest.raises(ValueError, match="`style` is needed exactly when texts is 'style'"):
        EvalRowConfig(label="x", texts="style", localizer="m")
    with pytest.raises(ValueError, match="use texts: gt"):
        EvalRowConfig(label="x", texts="style", style="gt", localizer="m")


def run_restyle(tmp_path, samples: pd.DataFrame, styles: dict, out):
    """`tp restyle` on `samples` as the test split (written to tmp_path) with `styles` as the params' styles
    section, into `out`: the CLI's result."""
    from talking_points.cli import app

    test = tmp_path / "test.parquet"
    write_table(samples[[f.name for f in schema.SAMPLES]], test, schema.SAMPLES, "test")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"styles": styles, "synthesize": {}}))
    return CliRunner().invoke(app, ["restyle", "--test", str(test), "--out", str(out), "--params", str(params)])


def test_restyle_stage_and_style_rows(described, tmp_path):
    """tp restyle writes the styled test table and a report whose faithful fractions are all 1; a `texts: style`
    row reads its style by kp_id; a style the table lacks is a named error."""
    samples = described.assign(split="test")
    out = tmp_path / "styles"
    res = run_restyle(tmp_path, samples, {"seed": 0, "styles": ["terse", "verbose"], "held_out": ["terse"]}, out)
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "test.parquet")
    assert list(table.columns) == ["kp_id", "terse", "verbose"] and len(table) == len(samples)
    report = json.loads((out / "report.json").read_text())
    assert {s: v["faithful"] for s, v in report["styles"].items()} == {"terse": 1.0, "verbose": 1.0}
    row = EvalRowConfig(label="t", texts="style", style="terse", localizer="m")
    subset = samples.iloc[[5, 2, 9]]
    written = read_style(str(out / "test.parquet"), subset["kp_id"], "terse")
    assert texts_for(row, subset, written) == table.set_index("kp_id").loc[subset["kp_id"], "terse"].tolist()
    with pytest.raises(Exception, match="no column 'paraphrase'"):
        read_style(str(out / "test.parquet"), subset["kp_id"], "paraphrase")


def test_the_report_lays_styles_out_per_localizer(tmp_path):
    rows = {
        "gt": EvalRowConfig(label="GT", groups=["main"], texts="gt", localizer="models/localizer"),
        "style_terse": EvalRowConfig(label="a", groups=["styles"], texts="style", style="terse",
                                     localizer="models/localizer"),
        "ms_gt": EvalRowConfig(label="b", groups=["styles"], texts="gt", localizer="models/localizer_multistyle"),
        "ms_terse": EvalRowConfig(label="c", groups=["styles"], texts="style", style="terse",
                                  localizer="models/localizer_multistyle"),
        "tp": EvalRowConfig(label="TP", groups=["main"], texts="generated", describer="tp",
                            localizer="models/localizer"),
        "ms_tp": EvalRowConfig(label="d", groups=["styles"], texts="generated", describer="tp",
                               localizer="models/localizer_multistyle"),
        "template": EvalRowConfig(label="e", groups=["main"], texts="template", localizer="models/localizer"),
    }
    summary = pd.DataFrame([{"row": r, "mPCK": m, "groups": list(rows[r].groups)}
                            for r, m in (("gt", 78.0), ("style_terse", 40.0), ("ms_gt", 77.0), ("ms_terse", 70.0),
                                         ("tp", 75.0), ("ms_tp", 74.0), ("template", 30.0))])
    table = rep.style_table(summary, rows, ["terse"])
    assert table["style"].tolist() == ["gt (training style)", "terse (held out)", "TP texts (tp)"]
    assert table.set_index("style").loc["TP texts (tp)"].tolist() == [75.0, 74.0]  # TP read by both localizers
    assert table.set_index("style").loc["terse (held out)"].to_dict() == {"localizer": 40.0,
                                                                         "localizer_multistyle": 70.0}
    rep.plot_style_robustness(table, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 5000
    checks = {c["finding"]: c["holds"] for c in rep.findings(summary.assign(**{"PCK@0.1": 0, "PCK@0.2": 0}))}
    assert checks["style-robust localizer: held-out style within 5 points of its in-style mPCK"] is False
    assert checks["style-robust localizer: in-style no more than 2 points below the default localizer"] is True

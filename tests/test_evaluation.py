"""PCK metric by hand, the evaluation rows' config, resumable shards and the report writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from talking_points.pipeline.evaluation import report as rep
from talking_points.pipeline.evaluation.config import (
    ChancePredictor,
    ChanceRowConfig,
    EvalRowConfig,
    EvaluateConfig,
)
from talking_points.pipeline.evaluation.predict import chance_points, prediction_frame, read_texts, texts_for
from talking_points.pipeline.metrics.pck import mpck, normalised_distance, pck, pck_curve, pck_table


def test_pck_by_hand_on_a_non_square_image():
    # 200 x 100 image: 20 px in x is 0.1, 10 px in y is 0.1
    true = np.array([[100.0, 50.0]] * 4)
    pred = np.array([[119.0, 50.0], [100.0, 70.0], [130.0, 50.0], [100.0, 50.0]])
    d = normalised_distance(pred, true, width=200, height=100)
    assert d == pytest.approx([0.095, 0.2, 0.15, 0.0])
    assert pck(d, 0.1) == 0.5  # 0.095 and 0.0
    assert pck(d, 0.2) == 0.75  # 0.2 itself is not below 0.2
    assert mpck(d) == pytest.approx(0.625)
    per_image = normalised_distance(pred[:2], true[:2], width=np.array([200, 400]), height=np.array([100, 50]))
    assert per_image == pytest.approx([0.095, 0.4])


def test_pck_boundary_is_strict_and_curve_is_monotone():
    d = np.array([0.1, 0.1 - 1e-9, 0.2])
    assert pck(d, 0.1) == pytest.approx(1 / 3)
    assert np.isnan(pck(np.array([]), 0.1))
    curve = pck_curve(np.random.default_rng(0).random(50) * 0.4)
    assert curve["threshold"].iloc[0] == 0 and curve["threshold"].iloc[-1] == pytest.approx(0.3)
    assert (np.diff(curve["pck"]) >= 0).all() and curve["pck"].iloc[0] == 0
    with pytest.raises(ValueError, match="both"):
        normalised_distance(d[:, None].repeat(2, 1), d[:, None].repeat(2, 1), width=10)


def test_pck_table_groups_in_percent():
    df = pd.DataFrame({"dist": [0.05, 0.15, 0.25, 0.05], "source": ["a", "a", "b", "b"]})
    t = pck_table(df, by=["source"]).set_index("source")
    assert t.loc["a", "PCK@0.1"] == 50 and t.loc["a", "PCK@0.2"] == 100 and t.loc["a", "mPCK"] == 75
    assert t.loc["b", "mPCK"] == 50 and t.loc["b", "n"] == 2


def test_row_configs_reject_inconsistent_rows():
    with pytest.raises(ValueError, match="describer"):
        EvalRowConfig(label="x", texts="generated", localizer="m")
    with pytest.raises(ValueError, match="localizer"):
        EvalRowConfig(label="x", texts="gt")
    with pytest.raises(ValueError, match="chance row"):
        EvalRowConfig(label="x", texts="none", localizer="m")
    with pytest.raises(ValueError, match="predictor"):
        ChanceRowConfig(label="x", predictor="median")
    gt = {"label": "GT", "texts": "gt", "localizer": "m"}
    with pytest.raises(ValueError, match="figure_rows"):
        EvaluateConfig(rows={"gt": gt}, report={"figure_rows": ["tp"], "breakdown_rows": [], "reference": "gt"})
    with pytest.raises(ValueError, match="describer 'tp' is neither in evaluate.describers"):
        EvaluateConfig(rows={"gt": gt, "tp": {**gt, "texts": "generated", "describer": "tp"}},
                       report={"figure_rows": [], "breakdown_rows": []})
    with pytest.raises(ValueError, match="evaluate.rows and evaluate.chance both name"):
        EvaluateConfig(rows={"gt": gt}, chance={"gt": {"label": "c", "predictor": "centre"}},
                       report={"figure_rows": [], "breakdown_rows": []})
    with pytest.raises(ValueError, match="reference 'centre' is not a row of evaluate.rows"):
        EvaluateConfig(rows={"gt": gt}, chance={"centre": {"label": "c", "predictor": "centre"}},
                       report={"figure_rows": [], "breakdown_rows": [], "reference": "centre"})
    with pytest.raises(ValueError, match=r"comparisons\[0\] \[gt, tp\] names rows \['tp'\]"):
        EvaluateConfig(rows={"gt": gt}, report={"figure_rows": [], "breakdown_rows": [],
                                                "comparisons": [["gt", "tp"]]})
    with pytest.raises(ValueError, match=r"comparisons\[0\] compares row 'gt' with itself"):
        EvaluateConfig(rows={"gt": gt}, report={"figure_rows": [], "breakdown_rows": [],
                                                "comparisons": [["gt", "gt"]]})
    ok = EvaluateConfig(rows={"gt": gt, "tp": {**gt, "texts": "generated", "describer": "tp"}},
                        describers={"tp": {"descriptor": "models/descriptor"}},
                        chance={"centre": {"label": "c", "predictor": "centre"}},
                        report={"figure_rows": ["tp", "centre"], "breakdown_rows": []})
    assert list(ok.table_rows) == ["gt", "tp", "centre"] and ok.table_rows["centre"].texts.value == "none"


def samples(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "kp_id": [f"img{i // 2}#k{i % 2}" for i in range(n)], "image_id": [f"img{i // 2}" for i in range(n)],
        "source": ["pw"] * n, "file": ["none.png"] * n, "width": [200] * n, "height": [100] * n,
        "category": ["dog", "cat"] * (n // 2), "part": ["head", "tail"] * (n // 2),
        "x_norm": rng.random(n), "y_norm": rng.random(n),
        "description": [f"The point is on the lone {c} in the middle of the image; on the {c}'s {p}, at the top of "
                        f"its body; at the very centre of the {p}; in a small dark patch with a plain look"
                        for c, p in zip(["dog", "cat"] * (n // 2), ["head", "tail"] * (n // 2))],
        "template": ["the head of the dog"] * n, "level_object": ["The point is on the dog"] * n,
    })


def test_text_sources_and_chance_points(tmp_path):
    s = samples()
    assert texts_for(EvalRowConfig(label="t", texts="template", localizer="m"), s)[0] == "the head of the dog"
    assert texts_for(EvalRowConfig(label="o", texts="object_level", localizer="m"), s)[0] == "The point is on the dog"
    gen = EvalRowConfig(label="g", texts="generated", describer="d", localizer="m")
    table = pd.DataFrame({"kp_id": s.kp_id[::-1], "text": [f"text {k}" for k in s.kp_id[::-1]]})
    table.to_parquet(tmp_path / "d.parquet")
    written = read_texts(str(tmp_path / "d.parquet"), s["kp_id"], "d")
    assert texts_for(gen, s, written) == [f"text {k}" for k in s.kp_id]  # by kp_id, in the samples' order
    with pytest.raises(Exception, match="wrote no text for 1 test points .first 'other#k0'"):
        read_texts(str(tmp_path / "d.parquet"), pd.concat([s["kp_id"], pd.Series(["other#k0"])]), "d")
    with pytest.raises(ValueError, match="needs the written texts"):
        texts_for(gen, s)
    centre = chance_points(ChancePredictor.centre, s.kp_id.tolist(), 0)
    assert (centre == 0.5).all()
    u1 = chance_points(ChancePredictor.uniform, s.kp_id.tolist(), 0)
    u2 = chance_points(ChancePredictor.uniform, s.kp_id.tolist()[3:], 0)  # per-id seeding: chunking does not matter
    assert np.allclose(u1[3:], u2) and not np.allclose(u1, chance_points(ChancePredictor.uniform, s.kp_id.tolist(), 1))


def fake_predictions() -> tuple[dict, dict]:
    s = samples(40)
    rows = {
        "tp": EvalRowConfig(label="TP", groups=["main", "gaussian"], texts="generated", describer="d", localizer="l"),
        "gt": EvalRowConfig(label="GT", groups=["main", "adaptation"], texts="gt", localizer="l"),
        "template": EvalRowConfig(label="Template", texts="template", localizer="l"),
        "centre": ChanceRowConfig(label="Centre", predictor="centre"),
    }
    rng = np.random.default_rng(1)
    truth = s[["x_norm", "y_norm"]].to_numpy()
    preds = {}
    for name, noise in [("tp", 0.05), ("gt", 0.04), ("template", 0.3)]:
        preds[name] = prediction_frame(s, s["description"].tolist(), truth + rng.normal(0, noise, truth.shape))
    preds["centre"] = prediction_frame(s, [""] * len(s), chance_points(ChancePredictor.centre, s.kp_id.tolist(), 0))
    return preds, rows


def test_report_tables_metrics_and_findings():
    preds, rows = fake_predictions()
    summary = rep.summary_table(preds, rows)
    assert summary["row"].tolist() == ["tp", "gt", "template", "centre"]
    d = preds["tp"]["dist"].to_numpy()
    assert summary.set_index("row").loc["tp", "mPCK"] == pytest.approx(100 * mpck(d))
    metrics = rep.metrics_dict(preds, rows)["evaluation"]
    assert set(metrics) == set(rows) and "part_named" in metrics["gt"] and "part_named" not in metrics["centre"]
    json.dumps(metrics, allow_nan=False)  # strict JSON: no NaN
    # compact: PCK, n and the two naming rates; the other text statistics are in results.md
    assert set(metrics["gt"]) == {"pck@0.1", "pck@0.2", "mpck", "n", "category_named", "part_named"}
    assert set(metrics["centre"]) == {"pck@0.1", "pck@0.2", "mpck", "n"}
    gt = metrics["gt"]
    assert gt["category_named"] == 1.0 and gt["part_named"] == 1.0
    assert gt["pck@0.1"] == pytest.approx(100 * float((preds["gt"]["dist"] < 0.1).mean()), abs=0.01)
    checks = {c["finding"]: c["holds"] for c in rep.findings(summary)}
    m = summary.set_index("row")["mPCK"]
    assert checks["TP within 3 mPCK points of GT description"] == bool(m["gt"] - m["tp"] <= 3)
    assert checks["template baseline at least 15 points below TP"] is True
    md = rep.results_markdown(preds, rows, ["tp"])
    assert "| Method | PCK@0.1 | PCK@0.2 | mPCK | n |" in md
    assert md.count("## ") >= 5 and "per category" in md and "Chance" in md
    assert "% right object" in md and "Differences between rows" not in md
    # comparisons: paired bootstrap intervals in metrics.json, results.md and the findings that name both rows
    diffs = rep.differences(preds, [("tp", "gt"), ("template", "tp"), ("tp", "absent")], resamples=500)
    assert set(diffs) == {("tp", "gt"), ("template", "tp")}  # a row that was not scored is left out
    d = diffs[("tp", "gt")]
    assert d.diff == pytest.approx(m["tp"] - m["gt"]) and d.low <= d.diff <= d.high
    everything = rep.metrics_dict(preds, rows, diffs)
    assert everything["differences"]["tp_minus_gt"] == d.as_metrics()
    json.dumps(everything, allow_nan=False)
    md = rep.results_markdown(preds, rows, ["tp"], diffs=diffs)
    assert "## Differences between rows, with their noise" in md and f"{d.diff:+.2f}" in md
    tp_gt = next(c for c in rep.findings(summary, diffs) if c["finding"].startswith("TP within 3"))
    assert f"tp - gt {d.text()}" in tp_gt["numbers"]


def test_text_stats_reads_grounding_back():
    """A text naming another category and part counts as wrong on both; the PCK split follows the names."""
    s = samples(4).reset_index(drop=True)
    texts = s["description"].tolist()
    other = s.loc[1, "category"] if s.loc[1, "category"] != s.loc[0, "category"] else None
    if other is None:
        pytest.skip("the first two samples share a category")
    texts[0] = texts[1]  # row 0 now describes row 1's object and part
    d = prediction_frame(s, texts, s[["x_norm", "y_norm"]].to_numpy())
    d.loc[0, "dist"] = 0.5
    stats = rep.text_stats(d)
    assert stats["category_named"] == pytest.approx(0.75)
    assert stats["pck@0.1_names_right"] == 1.0 and stats["pck@0.1_names_wrong"] == 0.0


def test_plots_and_figure_are_written(tmp_path):
    from PIL import Image

    preds, rows = fake_predictions()
    img = tmp_path / "img.png"
    Image.new("RGB", (200, 100), (90, 120, 90)).save(img)
    for df in preds.values():
        df["file"] = str(img)
    styled = {**rows, "style_terse": EvalRowConfig(label="S", groups=["styles"], texts="style", style="terse",
                                                   localizer="l")}
    assert rep.plot_pck_curves({**preds, "style_terse": preds["gt"]}, styled, tmp_path / "pck.png") == list(preds)
    examples = rep.qualitative_figure(preds, rows, ["tp", "gt", "template"], 3, 0, tmp_path / "q.png")
    assert len(examples) == 3 and len(examples[0]["texts"]) == 3
    for f in ("pck.png", "q.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    live = tmp_path / "live" / "run" / "plots" / "metrics"
    live.mkdir(parents=True)
    pd.DataFrame({"step": [10, 20], "loss": [2.0, 1.0]}).to_csv(live / "loss.tsv", sep="\t", index=False)
    assert rep.plot_training_curves({"run": live.parents[1]}, tmp_path / "t.png") == ["run"]


def test_training_curves_never_mix_two_kinds_of_loss(tmp_path):
    runs = {}
    for run, extra in (("descriptor", None), ("descriptor_object_mask", None), ("localizer", "mean_dist"),
                       ("vision", "part_loss")):
        live = tmp_path / run / "plots" / "metrics"
        live.mkdir(parents=True)
        pd.DataFrame({"step": [10, 20], "loss": [2.0, 1.0]}).to_csv(live / "loss.tsv", sep="\t", index=False)
        pd.DataFrame({"step": [10, 20], "lr": [1e-3, 1e-4]}).to_csv(live / "lr.tsv", sep="\t", index=False)
        if extra:
            pd.DataFrame({"step": [10, 20], extra: [0.3, 0.2]}).to_csv(live / f"{extra}.tsv", sep="\t", index=False)
        runs[run] = tmp_path / run
    kinds = {"descriptor": "descriptor", "descriptor_object_mask": "descriptor", "localizer": "localizer",
             "vision": "vision"}
    panels = rep.curve_panels(runs, kinds)
    assert set(panels) == {("loss", rep.LOSS_KINDS["descriptor"]), ("loss", rep.LOSS_KINDS["localizer"]),
                           ("loss", rep.LOSS_KINDS["vision"]), ("mean_dist", ""), ("part_loss", "")}
    assert set(panels[("loss", rep.LOSS_KINDS["descriptor"])]) == {"descriptor", "descriptor_object_mask"}
    assert set(panels[("loss", rep.LOSS_KINDS["localizer"])]) == {"localizer"}  # lr is not plotted
    out = tmp_path / "curves.png"
    assert rep.plot_training_curves(runs, out, kinds, title="default profile") == sorted(runs)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="unknown kind of training 'segmenter'"):
        rep.curve_panels(runs, {"vision": "segmenter"})


def test_results_state_the_profile_and_the_number_of_points():
    preds, rows = fake_predictions()
    line = rep.profile_line("smoke", "Its numbers mean nothing.", len(preds["gt"]))
    md = rep.results_markdown(preds, rows, ["tp"], profile=line)
    assert md.splitlines()[2] == f"**smoke profile, {len(preds['gt']):,} test points. Its numbers mean nothing.**"


def test_a_file_row_needs_its_file_and_reads_only_fitting_descriptions(tmp_path):
    from talking_points.pipeline.data.errors import BadInput
    from talking_points.pipeline.evaluation.text_files import read_description_file

    with pytest.raises(ValueError, match="`file` is needed exactly when texts is 'file'"):
        EvalRowConfig(label="h", texts="file", localizer="m")
    with pytest.raises(ValueError, match="`file` is needed exactly when texts is 'file'"):
        EvalRowConfig(label="h", texts="gt", localizer="m", file="x.csv")
    row = EvalRowConfig(label="h", texts="file", localizer="m", file=str(tmp_path / "d.csv"))
    s = samples(6)
    good = pd.DataFrame({"kp_id": s["kp_id"][[3, 1]], "description": ["  on the cat's tail ", "on the dog"]})
    for suffix in (".csv", ".jsonl", ".parquet"):
        path = tmp_path / f"d{suffix}"
        {".csv": lambda p: good.to_csv(p, index=False), ".parquet": lambda p: good.to_parquet(p),
         ".jsonl": lambda p: good.to_json(p, orient="records", lines=True)}[suffix](path)
        written = read_description_file(path, s["kp_id"])
        assert list(written.index) == list(s["kp_id"][[3, 1]]) and written.iloc[0] == "on the cat's tail"
    chosen = s[s["kp_id"].isin(written.index)]
    assert texts_for(row, chosen, written) == ["on the dog", "on the cat's tail"]  # the samples' order
    with pytest.raises(ValueError, match="no description for kp_id"):
        texts_for(row, s, written)
    bad = pd.DataFrame({"kp_id": [s["kp_id"][0], "nowhere#0", s["kp_id"][0], s["kp_id"][2]],
                        "description": ["a", "b", "c", ""]})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(BadInput) as err:
        read_description_file(tmp_path / "bad.csv", s["kp_id"])
    message = str(err.value)
    assert str(tmp_path / "bad.csv") in message
    assert "1 empty or missing descriptions: row 3" in message
    assert "1 kp_ids not in the test split: row 1 (kp_id 'nowhere#0')" in message
    assert "1 repeated kp_ids: row 2" in message
    pd.DataFrame({"kp_id": ["a"], "text": ["b"]}).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(BadInput, match="missing columns"):
        read_description_file(tmp_path / "cols.csv", s["kp_id"])


def test_an_annotation_sheet_marks_each_chosen_point(tmp_path):
    from PIL import Image

    from talking_points.pipeline.evaluation.annotation import SHEET, choose_points, write_sheet
    from talking_points.pipeline.visualize import INPUT

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (100, 200, 3), dtype=np.uint8)).save(tmp_path / "none.png")
    s = samples(6).assign(x=lambda d: d["x_norm"] * 200, y=lambda d: d["y_norm"] * 100)
    chosen = choose_points(s, 4, seed=3)
    assert len(chosen) == 4 and chosen["kp_id"].is_unique
    assert list(chosen["kp_id"]) == list(choose_points(s, 4, seed=3)["kp_id"])
    assert list(chosen["kp_id"]) != list(choose_points(s, 4, seed=4)["kp_id"]) or len(s) < 3
    assert len(choose_points(s, 50)) == 6
    sheet = pd.read_csv(write_sheet(chosen, tmp_path / "sheet", root=tmp_path), keep_default_na=False)
    assert list(sheet.columns) == ["kp_id", "image", "category", "part", "description"]
    assert list(sheet["kp_id"]) == list(chosen["kp_id"]) and (sheet["description"] == "").all()
    first = np.asarray(Image.open(tmp_path / "sheet" / sheet["image"][0]))
    assert first.shape[1] >= 480 and (tmp_path / "sheet" / SHEET).exists()
    scale = first.shape[1] / 200  # the sheet image is the test image scaled up, the point drawn at its pixel
    at = first[int(chosen["y"][0] * scale), int(chosen["x"][0] * scale)]
    assert tuple(at) == INPUT
    with pytest.raises(ValueError, match="at least 1"):
        choose_points(s, 0)


def test_export_model_puts_the_models_test_results_in_the_card_of_a_copy(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from talking_points.cli import app
    from talking_points.pipeline.training.model_card import CardFacts, model_card

    monkeypatch.chdir(tmp_path)
    for name, kind in (("descriptor", "descriptor"), ("localizer", "localizer")):
        folder = tmp_path / "models" / name
        folder.mkdir(parents=True)
        (folder / "point_model.json").write_text("{}")
        (folder / "weights.bin").write_bytes(b"w")
        (folder / "README.md").write_text(model_card(CardFacts(kind=kind, name=name, base_source="models/base",
                                                               config={}, training={"steps": 3}, train_params={})))
    gt = {"label": "GT description", "texts": "gt", "localizer": "models/localizer"}
    params = {"evaluate": {
        "describers": {"tp": {"descriptor": "models/descriptor"}},
        "rows": {"tp": {**gt, "label": "TP", "texts": "generated", "describer": "tp"}, "gt": gt,
                 "other": {**gt, "label": "Other", "localizer": "models/other"}},
        "chance": {"centre": {"label": "Centre", "predictor": "centre"}},
        "report": {"reference": "gt", "figure_rows": [], "breakdown_rows": [], "profile": "default"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    row = {"pck@0.1": 60.0, "pck@0.2": 90.0, "mpck": 75.0, "n": 100, "category_named": 0.9, "part_named": 0.7}
    metrics = {"tp": row, "gt": {**row, "mpck": 79.0}, "other": row, "centre": {**row, "mpck": 17.0}}
    Path("reports").mkdir()
    Path("reports/metrics.json").write_text(json.dumps({"evaluation": metrics}))
    before = (tmp_path / "models/descriptor/README.md").read_text()

    res = CliRunner().invoke(app, ["export-model", "models/descriptor", "--out", "share/descriptor"])
    assert res.exit_code == 0, res.output
    card = (tmp_path / "share/descriptor/README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    results = meta["model-index"][0]["results"]
    assert [r["task"]["name"] for r in results] == ["TP"]  # the row whose texts it wrote
    assert {m["type"]: m["value"] for m in results[0]["metrics"]} == {"pck@0.1": 60.0, "pck@0.2": 90.0, "mpck": 75.0}
    assert "| TP (`tp`) | describer | scored by `models/localizer` | 60.0 | 90.0 | **75.0** | 100 | 90.0% | 70.0% |" \
        in card
    assert "not in this card" not in card and "## How to use" in card  # the section replaced, the rest kept
    assert (tmp_path / "share/descriptor/weights.bin").read_bytes() == b"w"
    assert (tmp_path / "models/descriptor/README.md").read_text() == before  # the DVC output is untouched

    res = CliRunner().invoke(app, ["export-model", "models/localizer", "--out", "share/localizer"])
    card = (tmp_path / "share/localizer/README.md").read_text()
    assert res.exit_code == 0 and "| GT description (`gt`) | localizer |" in card and "| TP (`tp`) | localizer |" in card
    assert "Other" not in card and "Centre" not in card  # another localizer's row, a chance row
    again = CliRunner().invoke(app, ["export-model", "models/localizer", "--out", "share/localizer"])
    assert again.exit_code == 1 and "exists" in again.output
    missing = CliRunner().invoke(app, ["export-model", "models/nothing", "--out", "share/x"])
    assert missing.exit_code == 1 and "not a trained model folder" in " ".join(missing.output.split())

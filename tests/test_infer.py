"""`tp describe` / `tp localize` on a tiny model: bad inputs are named (file, row, what is wrong) before any
model is loaded; a too-long text is cut with a warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from PIL import Image
from tiny_point_models import LIMIT, build_tiny_point_models
from transformers import AutoTokenizer
from typer.testing import CliRunner

from talking_points.pipeline.data.user_tables import read_rows
from talking_points.stages import infer

app = typer.Typer()
app.command("describe")(infer.describe)
app.command("localize")(infer.localize)


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_point_models(tmp_path_factory.mktemp("infer"))


def parquet(path: Path, **columns) -> Path:
    pd.DataFrame(columns).to_parquet(path, index=False)
    return path


def failed(res, *texts: str) -> str:
    """The output of a command that must have stopped with exit code 1 (no traceback) saying every text."""
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    for t in texts:
        assert t in res.output, (t, res.output)
    return res.output


def test_describe_and_localize_good_inputs(models, tmp_path):
    res = run("describe", "--image", models["a"], "--x", 10, "--y", 20, "--model", models["descriptor"],
              "--max-new-tokens", 4)
    assert res.exit_code == 0, res.output
    res = run("localize", "--image", models["b"], "--text", "the front wheel", "--model", models["localizer"])
    assert res.exit_code == 0, res.output
    x, y = map(float, res.stdout.split())
    assert 0 <= x <= 80 and 0 <= y <= 48
    pts = parquet(tmp_path / "p.parquet", file=[str(models["a"]), str(models["b"])], x_norm=[0.1, 0.9],
                  y_norm=[0.5, 1.0])
    res = run("describe", "--points", pts, "--out", tmp_path / "d.parquet", "--model", models["descriptor"],
              "--max-new-tokens", 4)
    assert res.exit_code == 0, res.output
    texts = parquet(tmp_path / "t.parquet", file=[str(models["a"])], description=["the head"])
    res = run("localize", "--texts", texts, "--out", tmp_path / "l.parquet", "--model", models["localizer"])
    assert res.exit_code == 0, res.output
    assert set(pd.read_parquet(tmp_path / "l.parquet").columns) == {"file", "description", "x_pred", "y_pred",
                                                                    "x_pred_norm", "y_pred_norm"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_batch_tables_in_pixels_any_format_with_default_out(models, tmp_path, suffix):
    """Batch points in pixels (as the single mode) from CSV / JSON lines / parquet; the output lands next to
    the input in the same format, with pixels and normalised coordinates; the localizer's batch output too."""
    rows = pd.DataFrame({"file": [str(models["a"]), str(models["b"])], "x": [8.0, 79.0], "y": [24.0, 0.0]})
    points = tmp_path / f"points{suffix}"
    {".csv": lambda: rows.to_csv(points, index=False),
     ".jsonl": lambda: rows.to_json(points, orient="records", lines=True),
     ".parquet": lambda: rows.to_parquet(points, index=False)}[suffix]()
    res = run("describe", "--points", points, "--model", models["descriptor"], "--max-new-tokens", 4)
    assert res.exit_code == 0, res.output
    described = tmp_path / f"points.described{suffix}"
    got = read_rows(described, ("file", "x", "y", "x_norm", "y_norm", "description"))
    np.testing.assert_allclose(got[["x_norm", "y_norm"]].to_numpy(), [[0.1, 0.5], [79 / 80, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(got[["x", "y"]].to_numpy(), rows[["x", "y"]].to_numpy(), rtol=1e-6)
    assert got["description"].map(lambda t: isinstance(t, str)).all()
    res = run("localize", "--texts", described, "--model", models["localizer"])
    assert res.exit_code == 0, res.output
    loc = read_rows(tmp_path / f"points.described.localized{suffix}", ("x_pred", "y_pred"))
    assert ((loc["x_pred"] >= 0) & (loc["x_pred"] <= 80) & (loc["y_pred"] >= 0) & (loc["y_pred"] <= 48)).all()
    np.testing.assert_allclose(loc["x_pred"] / 80, loc["x_pred_norm"], rtol=1e-5)


def test_pixel_points_outside_their_image_are_named(models, tmp_path):
    points = tmp_path / "p.csv"
    pd.DataFrame({"file": [str(models["a"])] * 2, "x": [10, 81], "y": [10, 10]}).to_csv(points, index=False)
    failed(run("describe", "--points", points, "--model", tmp_path / "no_model"),
           f"error: {points} row 1: point outside the image (x=81.0, y=10.0; pixels must be within the 80x48 image")
    failed(run("describe", "--points", tmp_path / "p.txt", "--model", tmp_path / "no_model"),
           "unknown table format", "'.txt'")


def test_json_output_and_drawings(models, tmp_path):
    import json

    res = run("describe", "--image", models["a"], "--x", 40, "--y", 12, "--model", models["descriptor"],
              "--max-new-tokens", 4, "--json", "--draw", tmp_path / "d.png")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["point"] == {"x": 40.0, "y": 12.0, "x_norm": 0.5, "y_norm": 0.25}
    assert (got["width"], got["height"]) == (80, 48) and isinstance(got["description"], str)
    assert got["descriptor"] == str(models["descriptor"]) and got["seconds"]["describe"] > 0
    drawn = np.asarray(Image.open(tmp_path / "d.png"))
    assert drawn.shape[1] >= 480 and drawn.shape[0] > 48 * 6  # scaled up, with the text band below
    res = run("localize", "--image", models["b"], "--text", "the head", "--model", models["localizer"], "--json",
              "--draw", tmp_path / "l.png")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    p = got["point"]
    assert p["x"] == pytest.approx(p["x_norm"] * 80, abs=0.01) and p["y"] == pytest.approx(p["y_norm"] * 48, abs=0.01)
    assert (tmp_path / "l.png").exists()
    texts = parquet(tmp_path / "t.parquet", file=[str(models["a"]), str(models["b"])],
                    description=["the head", "the tail"])
    res = run("localize", "--texts", texts, "--model", models["localizer"], "--json", "--draw", tmp_path / "many")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows"] == 2 and summary["out"] == str(tmp_path / "t.localized.parquet")
    assert sorted(f.name for f in (tmp_path / "many").iterdir()) == ["00000.png", "00001.png"]


def _bad_image(kind: str, models: dict, tmp: Path) -> tuple[Path, str]:
    if kind == "text file":
        (tmp / "notes.jpg").write_text("not an image at all")
        return tmp / "notes.jpg", "not an image file"
    if kind == "empty file":
        (tmp / "empty.png").write_bytes(b"")
        return tmp / "empty.png", "empty image file"
    if kind == "folder":
        (tmp / "dir.png").mkdir()
        return tmp / "dir.png", "not an image file"
    if kind == "truncated jpeg":
        data = models["b"].read_bytes()
        (tmp / "half.jpg").write_bytes(data[: len(data) // 2])
        return tmp / "half.jpg", "corrupt image"
    if kind == "missing":
        return tmp / "gone.png", "missing image file"
    raise ValueError(kind)


IMAGE_KINDS = ["text file", "empty file", "folder", "truncated jpeg", "missing"]


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_bad_image_is_named_before_the_model_is_loaded(models, tmp_path, kind):
    image, reason = _bad_image(kind, models, tmp_path)
    no_model = tmp_path / "no_model"  # loading it would fail: the image must be checked first
    failed(run("describe", "--image", image, "--x", 1, "--y", 1, "--model", no_model),
           f"error: {image}: {reason}")
    failed(run("localize", "--image", image, "--text", "the head", "--model", no_model),
           f"error: {image}: {reason}")
    # and in a batch, with the row
    pts = parquet(tmp_path / "p.parquet", file=[str(models["a"]), str(image)], x_norm=[0.5, 0.5],
                  y_norm=[0.5, 0.5])
    failed(run("describe", "--points", pts, "--out", tmp_path / "o.parquet", "--model", no_model),
           f"error: {pts} row 1: {reason}", str(image))


@pytest.mark.parametrize(
    "column, value, says",
    [
        ("description", None, "row 1: missing description"),
        ("description", "  ", "row 1: empty description"),
        ("file", None, "row 1: missing image file name (column 'file' is null)"),
        ("file", "", "row 1: missing image file name (column 'file' must name an image file, got '')"),
    ],
)
def test_bad_text_rows_are_named(models, tmp_path, column, value, says):
    rows = {"file": [str(models["a"])] * 3, "description": ["the head", "the tail", "the ear"]}
    rows[column][1] = value
    texts = parquet(tmp_path / "t.parquet", **rows)
    out, no_model = tmp_path / "o.parquet", tmp_path / "no_model"
    failed(run("localize", "--texts", texts, "--out", out, "--model", no_model), f"error: {texts} {says}")


def test_bad_texts_files_are_named(models, tmp_path):
    out, no_model = tmp_path / "o.parquet", tmp_path / "no_model"
    empty = parquet(tmp_path / "empty.parquet", file=pd.Series([], dtype=str),
                    description=pd.Series([], dtype=str))
    failed(run("localize", "--texts", empty, "--out", out, "--model", no_model),
           f"error: {empty}: empty table")
    fake = tmp_path / "texts.parquet"
    fake.write_text("file,description\na.png,the head\n")
    failed(run("localize", "--texts", fake, "--out", out, "--model", no_model),
           f"error: {fake}: not a parquet file")
    failed(run("localize", "--texts", tmp_path / "gone.parquet", "--out", out, "--model", no_model),
           f"error: {tmp_path / 'gone.parquet'}: missing file")
    cols = parquet(tmp_path / "cols.parquet", file=[str(models["a"])], text=["the head"])
    failed(run("localize", "--texts", cols, "--out", out, "--model", no_model),
           f"error: {cols}: missing columns", "lacks ['description']")
    assert not out.exists()


@pytest.mark.parametrize(
    "x, y, says",
    [
        (float("nan"), 0.5, "row 2 (and 1 more): point is not a number (x_norm=nan, y_norm=0.5"),
        (0.5, 1.5, "row 2: point outside the image (x_norm=0.5, y_norm=1.5; normalised coordinates"),
        (-0.1, 0.5, "row 2: point outside the image (x_norm=-0.1"),
    ],
)
def test_bad_points_are_named(models, tmp_path, x, y, says):
    xs, ys = [0.1, 0.2, x, 0.4], [0.5, 0.5, y, 0.5]
    if np.isnan(x):
        ys[3] = float("nan")
    pts = parquet(tmp_path / "p.parquet", file=[str(models["a"])] * 4, x_norm=xs, y_norm=ys)
    out = tmp_path / "d.parquet"
    # with the real model too: NaN used to be described, silently, as an empty text
    failed(run("describe", "--points", pts, "--out", out, "--model", models["descriptor"]),
           f"error: {pts} {says}")
    assert not out.exists()


def test_single_point_must_be_finite(models, tmp_path):
    res = run("describe", "--image", models["a"], "--x", "nan", "--y", 1, "--model", tmp_path / "no_model")
    assert res.exit_code == 2 and "--x must be a finite number" in res.output


@pytest.mark.parametrize("text", ["", "   "])
def test_localize_refuses_an_empty_text(models, tmp_path, text):
    res = run("localize", "--image", models["a"], "--text", text, "--model", models["localizer"])
    assert res.exit_code == 2 and "--text is empty" in res.output and not res.stdout.strip()


def test_too_long_text_is_cut_with_a_warning(models, tmp_path):
    text = " ".join(["the point is on the front wheel of the only car"] * 6)
    tok = AutoTokenizer.from_pretrained(models["localizer"])
    n = len(tok(" " + text, add_special_tokens=False).input_ids)
    assert n > LIMIT
    res = run("localize", "--image", models["a"], "--text", text, "--model", models["localizer"])
    assert res.exit_code == 0, res.output
    assert (f"warning: --text: the description has {n} tokens, the model reads {LIMIT}: "
            f"the last {n - LIMIT} are dropped") in res.output
    assert len(res.stdout.split()) == 2  # the point still comes, on stdout; the warning is on stderr
    texts = parquet(tmp_path / "t.parquet", file=[str(models["a"])] * 3, description=["the head", text, text])
    res = run("localize", "--texts", texts, "--out", tmp_path / "o.parquet", "--model", models["localizer"])
    assert res.exit_code == 0, res.output
    assert f"warning: {texts} row 1: the description has {n} tokens" in res.output
    assert "1 more description(s) are cut too" in res.output
    res = run("localize", "--image", models["a"], "--text", "the head", "--model", models["localizer"])
    assert res.exit_code == 0 and "warning" not in res.output

"""`tp describe` / `tp localize`: run a trained Point Descriptor or Point Localizer on one image or a table.

Points are in **pixels** in both modes (x = column from the left edge, y = row from the top edge, as in
`--x/--y`); a batch table may give `x_norm, y_norm` (0..1 of the width and height) instead of `x, y`, and
the outputs carry both. Tables are parquet, CSV or JSON lines, by their suffix; the output has the input's
format unless `--out` says otherwise (default: next to the input, `<name>.described.<ext>` /
`<name>.localized.<ext>`). `--json` prints a machine-readable result (point in pixels and normalised, text,
model, timing); `--draw` writes the image with the points and the text (a folder of PNGs in batch mode).

Inputs are checked before a model is loaded, and a bad one stops the command with a line naming the file (and
the table row, counted from 0) and what is wrong: an image that is missing, a folder, empty, not an image or
truncated; a table that is not one, has no rows, or has a null / non-finite / out-of-range value or an
empty description. A description longer than the model's token limit is cut, with a warning saying by how
much.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from PIL import Image, UnidentifiedImageError
from rich.markup import escape

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.user_tables import first_bad as _first_bad
from talking_points.pipeline.data.user_tables import read_rows as _read_rows
from talking_points.pipeline.data.user_tables import table_format
from talking_points.pipeline.data.user_tables import write_rows as _write_rows
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import DecodingConfig
from talking_points.pipeline.models.inference import describe as describe_points
from talking_points.pipeline.models.inference import localize as localize_texts
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.training.data import load_image
from talking_points.pipeline.visualize import INPUT, PREDICTED, Mark, draw_marks, read_rgb
from talking_points.stages.common import console, stage


def _check_image(path: Path, where: str | None = None) -> tuple[int, int]:
    """(W, H) of an image file, decoded completely; BadInput naming `where` (default: the file) otherwise."""
    file = "" if where is None else f"{path}: "  # the detail names the file when `where` does not
    where = str(path) if where is None else where
    if path.is_dir():
        raise BadInput(where, "not an image file", f"{file}a folder")
    if not path.is_file():
        raise BadInput(where, "missing image file", f"{file}no such file")
    if path.stat().st_size == 0:
        raise BadInput(where, "empty image file", f"{file}0 bytes")
    try:
        with Image.open(path) as im:
            im.load()  # the whole file: a truncated JPEG fails here, not later as grey pixels
            return im.size
    except UnidentifiedImageError:
        raise BadInput(where, "not an image file", f"{file}not a format Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(where, "corrupt image", f"{file}{type(exc).__name__}: {exc}") from None


def _default_out(path: Path, what: str) -> Path:
    return path.with_name(f"{path.stem}.{what}{path.suffix}")


def _check_files(path: Path, df: pd.DataFrame) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The `file` column as strings and each distinct image's (W, H), every one decoded once; BadInput naming
    the first bad row."""
    bad = ~df["file"].map(lambda f: isinstance(f, str) and bool(f.strip())).to_numpy(bool)
    if bad.any():
        value = df["file"].iloc[int(np.flatnonzero(bad)[0])]
        null = value is None or (isinstance(value, float) and math.isnan(value))
        detail = "column 'file' is null" if null else f"column 'file' must name an image file, got {value!r}"
        raise BadInput(_first_bad(path, bad), "missing image file name", detail)
    files = df["file"].tolist()
    first_row: dict[str, int] = {}
    for i, f in enumerate(files):
        first_row.setdefault(f, i)
    sizes = {f: _check_image(Path(f), f"{path} row {i}") for f, i in first_row.items()}
    return files, sizes


def _check_points(path: Path, df: pd.DataFrame, sizes: np.ndarray) -> np.ndarray:
    """(N, 2) float32 normalised points of the rows: from `x, y` in pixels if the table has them, else from
    `x_norm, y_norm`; `sizes` (N, 2) is each row's image (W, H). BadInput naming the first row that is not a
    finite point inside its image."""
    pixels = {"x", "y"} <= set(df.columns)
    cols = ["x", "y"] if pixels else ["x_norm", "y_norm"]
    if not pixels and not {"x_norm", "y_norm"} <= set(df.columns):
        raise BadInput(path, "missing columns", f"needs x, y (pixels) or x_norm, y_norm (0..1); has "
                       f"{list(df.columns)}")
    try:
        pts = df[cols].to_numpy(np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise BadInput(path, "bad column", f"{cols[0]} and {cols[1]} must be numbers: {exc}") from None
    nan = ~np.isfinite(pts).all(axis=1)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise BadInput(_first_bad(path, nan), "point is not a number",
                       f"{cols[0]}={pts[i, 0]}, {cols[1]}={pts[i, 1]}; both must be finite")
    limit = sizes if pixels else np.ones_like(sizes)
    out = ((pts < 0) | (pts > limit)).any(axis=1)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        rule = (f"pixels must be within the {int(sizes[i, 0])}x{int(sizes[i, 1])} image" if pixels
                else "normalised coordinates must be in [0, 1]")
        raise BadInput(_first_bad(path, out), "point outside the image",
                       f"{cols[0]}={pts[i, 0]}, {cols[1]}={pts[i, 1]}; {rule}")
    return (pts / sizes if pixels else pts).astype(np.float32)


def _check_texts(path: Path, df: pd.DataFrame) -> list[str]:
    """The `description` column; BadInput naming the first row that is null, not text or empty."""
    col = df["description"]
    null = col.isna().to_numpy()
    if null.any():
        raise BadInput(_first_bad(path, null), "missing description", "column 'description' is null")
    not_text = ~col.map(lambda t: isinstance(t, str)).to_numpy()
    if not_text.any():
        i = int(np.flatnonzero(not_text)[0])
        raise BadInput(_first_bad(path, not_text), "description is not text",
                       f"got {type(col.iloc[i]).__name__} {col.iloc[i]!r}")
    empty = (col.str.strip() == "").to_numpy()
    if empty.any():
        raise BadInput(_first_bad(path, empty), "empty description", "there is nothing to localize")
    return col.tolist()


def _warn_long(model: PointLocalizer, tok, texts: list[str], where: list[str]) -> None:
    """Warn about descriptions longer than the model's token limit (the prompt keeps the first ones)."""
    limit = model.cfg.max_description_tokens
    # the tokens PromptFormat._description_ids cuts to `limit`
    lengths = [len(tok(" " + t.strip(), add_special_tokens=False).input_ids) for t in texts]
    long = [(w, n) for w, n in zip(where, lengths) if n > limit]
    if not long:
        return
    w, n = long[0]
    more = f"; {len(long) - 1} more description(s) are cut too" if len(long) > 1 else ""
    console.print(f"[yellow]warning:[/] {escape(w)}: the description has {n} tokens, the model reads "
                  f"{limit}: the last {n - limit} are dropped{escape(more)}", highlight=False, soft_wrap=True)


def _images(files: list[str], size: tuple[int, int]) -> np.ndarray:
    return np.stack([load_image(str(f), size) for f in files])


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise typer.BadParameter(f"{name} must be a finite number, got {value}")
    return value


def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _point(x_norm: float, y_norm: float, w: int, h: int) -> dict[str, float]:
    return {"x": round(float(x_norm) * w, 2), "y": round(float(y_norm) * h, 2),
            "x_norm": round(float(x_norm), 5), "y_norm": round(float(y_norm), 5)}


def _emit(result: dict) -> None:
    print(json.dumps(result, ensure_ascii=False))


def _finish_batch(df: pd.DataFrame, out: Path, draw: Path | None, files: list[str], points: np.ndarray,
                  texts: list[str], colour: tuple[int, int, int], label: str, as_json: bool, facts: dict,
                  what: str) -> None:
    """The end of a batch: the table to OUT, one PNG per row into DRAW (each row's point in pixels, marked
    `label`, with its text), and the summary (`facts` + rows and OUT) as JSON or a line."""
    _write_rows(df, out)
    if draw is not None:
        for i, (f, (x, y), t) in enumerate(zip(files, points, texts)):
            _save_png(draw / f"{i:05d}.png", draw_marks(read_rgb(f), [Mark(x, y, colour, label)], t))
    if as_json:
        _emit({"rows": len(df), "out": str(out), **facts})
    else:
        console.print(f"{len(df)} {what} written to {out}", markup=False)


_JSON = typer.Option(False, "--json", help="print the result as one JSON object (points in pixels and "
                     "normalised, text, model, seconds)")


@stage
def describe(
    image: Path = typer.Option(None, help="image file (with --x/--y)"),
    x: float = typer.Option(None, help="pixel column of the point (0 = left edge)"),
    y: float = typer.Option(None, help="pixel row of the point (0 = top edge)"),
    points: Path = typer.Option(None, help="batch mode: a table (.parquet, .csv, .jsonl) with columns file and "
                                "x, y in pixels (or x_norm, y_norm in 0..1)"),
    out: Path = typer.Option(None, help="batch mode: output table, input columns + x, y, x_norm, y_norm, "
                             "description (default: <points>.described.<ext>)"),
    draw: Path = typer.Option(None, help="write the image with the point and the description: a PNG file "
                              "(single mode) or a folder of <row>.png (batch mode)"),
    as_json: bool = _JSON,
    model: Path = typer.Option(Path("models/descriptor"), help="trained descriptor folder"),
    max_new_tokens: int = typer.Option(96, min=1),
    sample: bool = typer.Option(False, help="sample (temperature 1, top-p 0.95) instead of greedy decoding"),
    batch_size: int = typer.Option(32, min=1),
) -> None:
    """Describe a point of an image: `tp describe --image I --x X --y Y` prints the description;
    `tp describe --points P.parquet` describes every row (batched generation with KV cache)."""
    gen = DecodingConfig(max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=sample,
                         top_p=0.95 if sample else 1.0)
    if points is not None:
        out = out or _default_out(points, "described")
        table_format(out)
        df = _read_rows(points, ("file",))
        files, sizes = _check_files(points, df)
        wh = np.array([sizes[f] for f in files], np.float64)
        pts = _check_points(points, df, wh)
        t0 = time.perf_counter()
        m, tok = PointDescriptor.from_pretrained(model)
        t1 = time.perf_counter()
        texts = describe_points(m, tok, _images(files, m.input_size), pts, gen, progress="describe")
        t2 = time.perf_counter()
        df["x"], df["y"] = pts[:, 0] * wh[:, 0], pts[:, 1] * wh[:, 1]
        df["x_norm"], df["y_norm"], df["description"] = pts[:, 0], pts[:, 1], texts
        _finish_batch(df, out, draw, files, df[["x", "y"]].to_numpy(), texts, INPUT, "point", as_json,
                      {"descriptor": str(model), "seconds": {"load": round(t1 - t0, 3), "describe": round(t2 - t1, 3)}},
                      "descriptions")
        return
    if image is None or x is None or y is None:
        raise typer.BadParameter("give --image, --x and --y (or --points)")
    x, y = _finite("--x", x), _finite("--y", y)
    w, h = _check_image(image)
    if not (0 <= x <= w and 0 <= y <= h):
        raise typer.BadParameter(f"point ({x}, {y}) is outside the {w}x{h} image {image}")
    t0 = time.perf_counter()
    m, tok = PointDescriptor.from_pretrained(model)
    t1 = time.perf_counter()
    point = np.array([[x / w, y / h]], np.float32)
    text = describe_points(m, tok, _images([str(image)], m.input_size), point, gen)[0]
    t2 = time.perf_counter()
    if draw is not None:
        _save_png(draw, draw_marks(read_rgb(image), [Mark(x, y, INPUT, "point")], text))
    if as_json:
        _emit({"image": str(image), "width": w, "height": h, "point": _point(x / w, y / h, w, h),
               "description": text, "descriptor": str(model),
               "seconds": {"load": round(t1 - t0, 3), "describe": round(t2 - t1, 3)}})
    else:
        print(text)


@stage
def localize(
    image: Path = typer.Option(None, help="image file (with --text)"),
    text: str = typer.Option(None, help="description of a point"),
    texts: Path = typer.Option(None, help="batch mode: a table (.parquet, .csv, .jsonl) with columns file and "
                               "description"),
    out: Path = typer.Option(None, help="batch mode: output table, input columns + x_pred, y_pred in pixels and "
                             "x_pred_norm, y_pred_norm (default: <texts>.localized.<ext>)"),
    draw: Path = typer.Option(None, help="write the image with the predicted point and the text: a PNG file "
                              "(single mode) or a folder of <row>.png (batch mode)"),
    as_json: bool = _JSON,
    model: Path = typer.Option(Path("models/localizer"), help="trained localizer folder"),
    batch_size: int = typer.Option(32, min=1),
) -> None:
    """Find the pixel a description talks about: `tp localize --image I --text "..."` prints x y in pixels;
    `tp localize --texts T.parquet` localizes every row."""
    if texts is not None:
        out = out or _default_out(texts, "localized")
        table_format(out)
        df = _read_rows(texts, ("file", "description"))
        descriptions = _check_texts(texts, df)
        files, sizes = _check_files(texts, df)
        wh = np.array([sizes[f] for f in files], np.float64)
        t0 = time.perf_counter()
        m, tok = PointLocalizer.from_pretrained(model)
        t1 = time.perf_counter()
        _warn_long(m, tok, descriptions, [f"{texts} row {i}" for i in range(len(df))])
        pred = localize_texts(m, tok, _images(files, m.input_size), descriptions, batch_size,
                              progress="localize")
        t2 = time.perf_counter()
        df["x_pred"], df["y_pred"] = pred[:, 0] * wh[:, 0], pred[:, 1] * wh[:, 1]
        df["x_pred_norm"], df["y_pred_norm"] = pred[:, 0], pred[:, 1]
        _finish_batch(df, out, draw, files, df[["x_pred", "y_pred"]].to_numpy(), descriptions, PREDICTED,
                      "localized", as_json,
                      {"localizer": str(model), "seconds": {"load": round(t1 - t0, 3), "localize": round(t2 - t1, 3)}},
                      "points")
        return
    if image is None or text is None:
        raise typer.BadParameter("give --image and --text (or --texts)")
    if not text.strip():
        raise typer.BadParameter("--text is empty: give the description of a point")
    w, h = _check_image(image)
    t0 = time.perf_counter()
    m, tok = PointLocalizer.from_pretrained(model)
    t1 = time.perf_counter()
    _warn_long(m, tok, [text], ["--text"])
    p = localize_texts(m, tok, _images([str(image)], m.input_size), [text])[0]
    t2 = time.perf_counter()
    if draw is not None:
        _save_png(draw, draw_marks(read_rgb(image), [Mark(p[0] * w, p[1] * h, PREDICTED, "localized")], text))
    if as_json:
        _emit({"image": str(image), "width": w, "height": h, "description": text,
               "point": _point(p[0], p[1], w, h), "localizer": str(model),
               "seconds": {"load": round(t1 - t0, 3), "localize": round(t2 - t1, 3)}})
    else:
        print(f"{p[0] * w:.1f} {p[1] * h:.1f}")

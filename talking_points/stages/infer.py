"""`tp describe` / `tp localize`: run a trained Point Descriptor or Point Localizer on one image or a parquet.

Inputs are checked before a model is loaded, and a bad one stops the command with a line naming the file (and
the parquet row, counted from 0) and what is wrong: an image that is missing, a folder, empty, not an image or
truncated; a parquet that is not one, has no rows, or has a null / non-finite / out-of-range value or an
empty description. A description longer than the model's token limit is cut, with a warning saying by how
much.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import typer
from PIL import Image, UnidentifiedImageError
from rich.markup import escape

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.tables import atomic_path
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import DecodingConfig
from talking_points.pipeline.models.inference import describe as describe_points
from talking_points.pipeline.models.inference import localize as localize_texts
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.training.data import load_image
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


def _first_bad(path: Path, bad: np.ndarray) -> str:
    """'<path> row <first bad row>' (and how many more) for a boolean mask of bad rows."""
    idx = np.flatnonzero(bad)
    return f"{path} row {int(idx[0])}" + (f" (and {len(idx) - 1} more)" if len(idx) > 1 else "")


def _read_rows(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows of an input parquet; BadInput naming the file if it is none, lacks `columns` or is empty."""
    if not path.exists():
        raise BadInput(path, "missing file", "no such parquet file")
    try:
        df = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BadInput(path, "not a parquet file", f"{type(exc).__name__}: {exc}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BadInput(path, "missing columns",
                       f"needs {list(columns)}, lacks {missing} (has {list(df.columns)})")
    if df.empty:
        raise BadInput(path, "empty table", "no rows")
    return df.reset_index(drop=True)


def _check_files(path: Path, df: pd.DataFrame) -> list[str]:
    """The `file` column as strings, every distinct image decoded once; BadInput naming the first bad row."""
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
    for f, i in first_row.items():
        _check_image(Path(f), f"{path} row {i}")
    return files


def _check_points(path: Path, df: pd.DataFrame) -> np.ndarray:
    """(N, 2) float32 of x_norm, y_norm; BadInput naming the first row not a finite point in [0, 1]."""
    try:
        pts = df[["x_norm", "y_norm"]].to_numpy(np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise BadInput(path, "bad column", f"x_norm and y_norm must be numbers: {exc}") from None
    nan = ~np.isfinite(pts).all(axis=1)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise BadInput(_first_bad(path, nan), "point is not a number",
                       f"x_norm={pts[i, 0]}, y_norm={pts[i, 1]}; both must be finite")
    out = ((pts < 0) | (pts > 1)).any(axis=1)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise BadInput(_first_bad(path, out), "point outside the image",
                       f"x_norm={pts[i, 0]}, y_norm={pts[i, 1]}; normalised coordinates must be in [0, 1]")
    return pts.astype(np.float32)


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


@stage
def describe(
    image: Path = typer.Option(None, help="image file (with --x/--y)"),
    x: float = typer.Option(None, help="pixel column of the point (0 = left edge)"),
    y: float = typer.Option(None, help="pixel row of the point (0 = top edge)"),
    points: Path = typer.Option(None, help="batch mode: parquet with columns file, x_norm, y_norm"),
    out: Path = typer.Option(None, help="batch mode: output parquet (input columns + description)"),
    model: Path = typer.Option(Path("models/descriptor"), help="trained descriptor folder"),
    max_new_tokens: int = typer.Option(96, min=1),
    batch_size: int = typer.Option(32, min=1),
) -> None:
    """Describe a point of an image: `tp describe --image I --x X --y Y` prints the description;
    `tp describe --points P.parquet --out D.parquet` describes every row (batched generation with KV cache)."""
    gen = DecodingConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
    if points is not None:
        if out is None:
            raise typer.BadParameter("--points needs --out")
        df = _read_rows(points, ("file", "x_norm", "y_norm"))
        pts = _check_points(points, df)
        files = _check_files(points, df)
        m, tok = PointDescriptor.from_pretrained(model)
        df["description"] = describe_points(m, tok, _images(files, m.input_size), pts, gen,
                                            progress="describe")
        with atomic_path(out) as tmp:
            df.to_parquet(tmp, index=False)
        console.print(f"{len(df)} descriptions written to {out}", markup=False)
        return
    if image is None or x is None or y is None:
        raise typer.BadParameter("give --image, --x and --y (or --points and --out)")
    x, y = _finite("--x", x), _finite("--y", y)
    w, h = _check_image(image)
    if not (0 <= x <= w and 0 <= y <= h):
        raise typer.BadParameter(f"point ({x}, {y}) is outside the {w}x{h} image {image}")
    m, tok = PointDescriptor.from_pretrained(model)
    point = np.array([[x / w, y / h]], np.float32)
    text = describe_points(m, tok, _images([str(image)], m.input_size), point, gen)[0]
    print(text)


@stage
def localize(
    image: Path = typer.Option(None, help="image file (with --text)"),
    text: str = typer.Option(None, help="description of a point"),
    texts: Path = typer.Option(None, help="batch mode: parquet with columns file and description"),
    out: Path = typer.Option(None, help="batch mode: output parquet (input columns + x_pred, y_pred normalised)"),
    model: Path = typer.Option(Path("models/localizer"), help="trained localizer folder"),
    batch_size: int = typer.Option(32, min=1),
) -> None:
    """Find the pixel a description talks about: `tp localize --image I --text "..."` prints x y in pixels;
    `tp localize --texts T.parquet --out P.parquet` localizes every row."""
    if texts is not None:
        if out is None:
            raise typer.BadParameter("--texts needs --out")
        df = _read_rows(texts, ("file", "description"))
        descriptions = _check_texts(texts, df)
        files = _check_files(texts, df)
        m, tok = PointLocalizer.from_pretrained(model)
        _warn_long(m, tok, descriptions, [f"{texts} row {i}" for i in range(len(df))])
        pred = localize_texts(m, tok, _images(files, m.input_size), descriptions, batch_size,
                              progress="localize")
        df["x_pred"], df["y_pred"] = pred[:, 0], pred[:, 1]
        with atomic_path(out) as tmp:
            df.to_parquet(tmp, index=False)
        console.print(f"{len(df)} points written to {out}", markup=False)
        return
    if image is None or text is None:
        raise typer.BadParameter("give --image and --text (or --texts and --out)")
    if not text.strip():
        raise typer.BadParameter("--text is empty: give the description of a point")
    w, h = _check_image(image)
    m, tok = PointLocalizer.from_pretrained(model)
    _warn_long(m, tok, [text], ["--text"])
    p = localize_texts(m, tok, _images([str(image)], m.input_size), [text])[0]
    print(f"{p[0] * w:.1f} {p[1] * h:.1f}")

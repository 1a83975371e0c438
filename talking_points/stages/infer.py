"""`tp describe` / `tp localize`: run a trained Point Descriptor or Point Localizer on one image or a parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer
from PIL import Image

from talking_points.pipeline.data.tables import atomic_path
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import GenerationConfig, describe as describe_points, localize as \
    localize_texts
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.training.data import load_image
from talking_points.stages.common import console, stage


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size  # (W, H)


def _images(files: list[str], size: tuple[int, int]) -> np.ndarray:
    return np.stack([load_image(str(f), size) for f in files])


@stage
def describe(
    image: Path = typer.Option(None, help="image file (with --x/--y)"),
    x: float = typer.Option(None, help="pixel column of the point (0 = left edge)"),
    y: float = typer.Option(None, help="pixel row of the point (0 = top edge)"),
    points: Path = typer.Option(None, help="batch mode: parquet with columns file, x_norm, y_norm"),
    out: Path = typer.Option(None, help="batch mode: output parquet (input columns + description)"),
    model: Path = typer.Option(Path("models/descriptor"), help="trained descriptor folder"),
    max_new_tokens: int = typer.Option(96),
    batch_size: int = typer.Option(32),
) -> None:
    """Describe a point of an image: `tp describe --image I --x X --y Y` prints the description;
    `tp describe --points P.parquet --out D.parquet` describes every row (batched generation with KV cache)."""
    m, tok = PointDescriptor.from_pretrained(model)
    size = m.input_size
    gen = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
    if points is not None:
        if out is None:
            raise typer.BadParameter("--points needs --out")
        df = pd.read_parquet(points)
        missing = {"file", "x_norm", "y_norm"} - set(df.columns)
        if missing:
            raise typer.BadParameter(f"{points} lacks columns {sorted(missing)}")
        df["description"] = describe_points(m, tok, _images(df["file"].tolist(), size),
                                            df[["x_norm", "y_norm"]].to_numpy(np.float32), gen, progress="describe")
        with atomic_path(out) as tmp:
            df.to_parquet(tmp, index=False)
        console.print(f"{len(df)} descriptions written to {out}")
        return
    if image is None or x is None or y is None:
        raise typer.BadParameter("give --image, --x and --y (or --points and --out)")
    w, h = _size(image)
    if not (0 <= x <= w and 0 <= y <= h):
        raise typer.BadParameter(f"point ({x}, {y}) is outside the {w}x{h} image {image}")
    text = describe_points(m, tok, _images([str(image)], size), np.array([[x / w, y / h]], np.float32), gen)[0]
    print(text)


@stage
def localize(
    image: Path = typer.Option(None, help="image file (with --text)"),
    text: str = typer.Option(None, help="description of a point"),
    texts: Path = typer.Option(None, help="batch mode: parquet with columns file and description"),
    out: Path = typer.Option(None, help="batch mode: output parquet (input columns + x_pred, y_pred normalised)"),
    model: Path = typer.Option(Path("models/localizer"), help="trained localizer folder"),
    batch_size: int = typer.Option(32),
) -> None:
    """Find the pixel a description talks about: `tp localize --image I --text "..."` prints x y in pixels;
    `tp localize --texts T.parquet --out P.parquet` localizes every row."""
    m, tok = PointLocalizer.from_pretrained(model)
    size = m.input_size
    if texts is not None:
        if out is None:
            raise typer.BadParameter("--texts needs --out")
        df = pd.read_parquet(texts)
        missing = {"file", "description"} - set(df.columns)
        if missing:
            raise typer.BadParameter(f"{texts} lacks columns {sorted(missing)}")
        pred = localize_texts(m, tok, _images(df["file"].tolist(), size), df["description"].astype(str).tolist(),
                              batch_size, progress="localize")
        df["x_pred"], df["y_pred"] = pred[:, 0], pred[:, 1]
        with atomic_path(out) as tmp:
            df.to_parquet(tmp, index=False)
        console.print(f"{len(df)} points written to {out}")
        return
    if image is None or text is None:
        raise typer.BadParameter("give --image and --text (or --texts and --out)")
    w, h = _size(image)
    p = localize_texts(m, tok, _images([str(image)], size), [text])[0]
    print(f"{p[0] * w:.1f} {p[1] * h:.1f}")

"""Annotation sheets: the paper's human study (100 test points described by people, scored by the localizer)
as a workflow. `write_sheet` draws each chosen test point on its image and writes a table with an empty
`description` column; filled in, the table goes back as a `texts: file` evaluation row."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.data.user_tables import write_rows
from talking_points.pipeline.visualize import INPUT, Mark, draw_marks, read_rgb

__all__ = ["INSTRUCTIONS", "SHEET", "choose_points", "write_sheet"]

SHEET = "descriptions.csv"
INSTRUCTIONS = """# Describe the marked points

Each PNG shows one image with one point marked (green disc). In `descriptions.csv`, write in the `description`
column of its row (the `image` column names the PNG) a description that lets someone who cannot see the mark
find that exact pixel again: which object, which part of it, where in the part, what it looks like there.
Leave the other columns as they are. A row left empty is an error when the sheet is scored; delete the rows
you do not describe.

Scoring (from the project folder): add a row to `evaluate.rows` in params.yaml,

    human: {{label: "Human descriptions", texts: file, file: {sheet}, localizer: models/localizer}}

and run `dvc repro evaluate@human report` (or `tp evaluate human`).
"""


def choose_points(samples: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """`n` test rows (all when fewer), drawn without replacement with `seed`, in the drawn order."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    order = np.random.default_rng(seed).permutation(len(samples))[:n]
    return samples.iloc[order].reset_index(drop=True)


def _png_name(i: int, kp_id: str) -> str:
    return f"{i:04d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', kp_id)}.png"


def write_sheet(points: pd.DataFrame, out: str | Path, root: str | Path | None = None) -> Path:
    """Write OUT/<nnnn>_<kp_id>.png (the image, the point marked) for every row of `points` (test samples:
    kp_id, file, x, y), OUT/descriptions.csv (kp_id, image, category, part, description = '') and
    OUT/INSTRUCTIONS.md; files are relative to `root` (default: the working directory). Returns the CSV."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else Path.cwd()
    names = []
    for i, r in enumerate(points.itertuples(index=False)):
        file = Path(r.file)
        image = read_rgb(file if file.is_absolute() else root / file)
        name = _png_name(i, str(r.kp_id))
        with atomic_path(out / name) as tmp:
            Image.fromarray(draw_marks(image, [Mark(float(r.x), float(r.y), INPUT, "point")])).save(tmp, "PNG")
        names.append(name)
    sheet = pd.DataFrame({"kp_id": points["kp_id"].astype(str), "image": names, "category": points["category"],
                          "part": points["part"], "description": [""] * len(points)})
    write_rows(sheet, out / SHEET)
    with atomic_path(out / "INSTRUCTIONS.md") as tmp:
        tmp.write_text(INSTRUCTIONS.format(sheet=out / SHEET))
    return out / SHEET

"""`tp annotate export`: an annotation sheet of test points for people (or an API model) to describe; the
filled sheet is scored as a `texts: file` row of `tp evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.stages.common import console, stage

app = typer.Typer(help="Annotation sheets: test points for people to describe, scored back as a `texts: file` "
                  "row.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _group() -> None:
    """Annotation sheets: test points for people to describe, scored back as a `texts: file` row."""


@app.command("export")
@stage
def export(
    out: Path = typer.Option(..., "--out", help="sheet folder (PNGs, descriptions.csv, INSTRUCTIONS.md)"),
    n: int = typer.Option(100, "--n", min=1, help="test points on the sheet (the paper's human study: 100)"),
    test: Path = typer.Option(Path("data/split/test.parquet"), help="test samples"),
    seed: int = typer.Option(0, help="seed of the choice of points"),
) -> None:
    """Draw N test points (seeded) on their images and write a CSV with kp_id and an empty description column.

    Fill in the descriptions, then score them with an evaluation row
    `{texts: file, file: OUT/descriptions.csv, localizer: models/localizer}` (see OUT/INSTRUCTIONS.md).
    """
    from talking_points.pipeline.data import schema
    from talking_points.pipeline.data.tables import read_table
    from talking_points.pipeline.evaluation.annotation import choose_points, write_sheet

    points = choose_points(read_table(test, schema.SAMPLES, "test split"), n, seed)
    sheet = write_sheet(points, out)
    console.print(f"annotate: {len(points)} points -> {sheet} (and {len(points)} PNGs); fill in the "
                  "`description` column, then see INSTRUCTIONS.md to score it", markup=False)

"""`tp check-params [FILE]`: validate a whole params file (every section, every variant) without running
anything or touching the files it names."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.sections import load_params
from talking_points.stages.common import console, stage


@stage
def main(
    path: Path = typer.Argument(Path("params.yaml"), help="params file (e.g. profiles/paper.yaml)"),
    require_all: bool = typer.Option(True, help="every known section must be there (a full profile)"),
) -> None:
    """Validate every section of PATH: unknown keys, wrong types and values, bad combinations and unknown or
    missing sections are reported together, each naming its key; exit code 1 if any."""
    sections = load_params(path, require_all=require_all)
    console.print(f"{path}: {len(sections)} sections valid ({', '.join(sorted(sections))})", markup=False)

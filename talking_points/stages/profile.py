"""`tp profile`: switch params.yaml to one of the shipped profiles (default, smoke, paper)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from talking_points.pipeline.data.tables import atomic_path
from talking_points.stages.common import console, stage


@stage
def main(
    name: str = typer.Argument(..., help="profile name: a file profiles/<name>.yaml"),
    profiles: Path = typer.Option(Path("profiles"), help="folder holding the profiles"),
    params: Path = typer.Option(Path("params.yaml"), help="params file to overwrite"),
) -> None:
    """Copy profiles/NAME.yaml over params.yaml (the default profile is kept as profiles/default.yaml).

    `dvc repro` then reruns whatever the new params change. Commit params.yaml to record the switch.
    """
    src = profiles / f"{name}.yaml"
    if not src.exists():
        known = sorted(p.stem for p in profiles.glob("*.yaml"))
        raise typer.BadParameter(f"no profile {name!r} in {profiles}/ (known: {known})")
    with atomic_path(params) as tmp:
        shutil.copyfile(src, tmp)
    console.print(f"{params} <- {src}", markup=False)

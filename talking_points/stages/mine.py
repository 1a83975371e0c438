"""`tp mine`: ingested sources -> keypoints.parquet (SIFT points inside parts, balanced across sources)."""

from __future__ import annotations

import glob
from pathlib import Path

import typer
from rich.markup import escape

from talking_points.pipeline.config import load_section, source_names
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, print_skips, stage, write_json

_GLOB_CHARS = set("*?[")


def expand_folders(patterns: list[str]) -> list[Path]:
    """The ingested folders named by `patterns`, in order; a glob pattern adds its matching folders, sorted."""
    folders: list[Path] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "images.parquet").is_file())
            if not matches:
                raise FileNotFoundError(f"{pattern}: no ingested source folder (with images.parquet) matches")
            folders.extend(matches)
        else:
            folders.append(Path(pattern))
    return list(dict.fromkeys(folders))


@stage
def main(
    ingested: list[str] = typer.Option(
        None, "--ingested", "-i", help="ingested source folder (repeatable), or a quoted glob like 'data/ingested/*'"
    ),
    ingested_root: Path = typer.Option(
        Path("data/ingested"), help="without --ingested: mine ROOT/<name> for every source in ingest.sources"
    ),
    out: Path = typer.Option(Path("data/mined"), help="output folder"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Mine SIFT keypoints inside the annotated parts of every ingested source, with their geometry.

    Writes OUT/keypoints.parquet (sampled by mine.balance: by default the same number of keypoints from every
    source) and OUT/report.json (counts per source, images without keypoints and why, skipped bad input, and a
    warning for every source that the balancing cut by more than half), each atomically.
    """
    # the mining library (OpenCV, pandas, pyarrow) loads when the command runs, not for `tp mine --help`
    from talking_points.pipeline.data import schema
    from talking_points.pipeline.data.tables import write_table
    from talking_points.pipeline.keypoints.config import MineConfig
    from talking_points.pipeline.keypoints.mine import mine_sources

    cfg = load_section("mine", params, MineConfig)
    if ingested:
        folders = expand_folders(ingested)
    else:
        folders = [ingested_root / name for name in source_names(params)]
    result = mine_sources(folders, cfg)
    write_table(result.keypoints, out / "keypoints.parquet", schema.KEYPOINTS, "keypoints")
    write_json(result.report, out / "report.json")
    per_source = result.report["per_source"]
    counts = {"keypoints": len(result.keypoints), "balance": result.report["balance"],
              "per source": "varies" if per_source is None else per_source}
    for name, rep in result.report["sources"].items():
        counts[f"{name}: images / with keypoints / mined / sampled"] = (
            f"{rep['images']} / {rep['images_with_keypoints']} / {rep['keypoints_mined']} / {rep['keypoints_sampled']}"
        )
        for reason, n in rep["no_keypoints"].items():
            counts[f"{name}: {reason}"] = n
    warnings = result.report["warnings"]  # source -> why: balancing cut it by more than half
    for name in warnings:
        rep = result.report["sources"][name]
        counts[f"WARNING {name}: more than half discarded"] = f"kept {rep['keypoints_sampled']} of {rep['keypoints_mined']}"
    print_counts("mine", counts)
    for name, why in warnings.items():
        console.print(f"[bold yellow]warning:[/] {escape(name)}: {escape(why)}")
    print_skips(result.skips, "mine")

"""`tp ingest`: one part-annotated dataset -> images / objects / parts parquet tables."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.ingest import ingest_source
from talking_points.pipeline.data.ingest_config import IngestConfig
from talking_points.pipeline.data.tables import atomic_dir, write_table
from talking_points.stages.common import PARAMS_OPTION, print_counts, print_skips, stage, write_json


@stage
def main(
    source: str = typer.Argument(..., help="source name, a key of ingest.sources in the params file"),
    out: Path = typer.Option(None, help="output folder (default: data/ingested/<source>)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Ingest one part dataset (PartWorld, Pascal-Part, OV-PARTS, PartImageNet, ADE20K) into parquet.

    Writes images.parquet, objects.parquet, parts.parquet and report.json (with the skipped samples and why)
    into OUT, atomically: a crash leaves the previous output untouched. Generated sources also write
    their images as PNG under OUT/images.
    """
    cfg = load_section("ingest", params, IngestConfig)
    if source not in cfg.sources:
        raise typer.BadParameter(f"{source!r} is not in ingest.sources ({sorted(cfg.sources)})")
    out = out or Path("data/ingested") / source
    with atomic_dir(out) as tmp:
        result = ingest_source(
            source, cfg.sources[source], image_dir=tmp / "images", image_ref_dir=out / "images",
            on_error=cfg.on_error, workers=cfg.workers,
        )
        write_table(result.images, tmp / "images.parquet", schema.IMAGES, f"{source} images")
        write_table(result.objects, tmp / "objects.parquet", schema.OBJECTS, f"{source} objects")
        write_table(result.parts, tmp / "parts.parquet", schema.PARTS, f"{source} parts")
        counts = {
            "images": len(result.images),
            "objects": len(result.objects),
            "parts": len(result.parts),
            "categories": int(result.objects["category"].nunique()) if len(result.objects) else 0,
        }
        # the image files' digest: the tables only point at the images, so an edited image must change
        # the output for DVC to rerun what reads the pixels (mine, pretrain-vision, ...)
        write_json({"source": source, **counts, **result.skips.as_dict(),
                    "image_files_sha256": result.image_digest}, tmp / "report.json")
    print_counts(f"ingest {source}", counts)
    print_skips(result.skips, f"ingest {source}")

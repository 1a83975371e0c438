"""`tp synthesize`: mined keypoints -> one coarse-to-fine description per keypoint."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import SynthBackend, SynthesizeConfig, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table, write_table
from talking_points.pipeline.synthesis.synthesize import PASSES, synthesize
from talking_points.stages.common import PARAMS_OPTION, print_counts, print_skips, stage, write_json


def shard_folder(cfg: SynthesizeConfig, out: Path) -> Path | None:
    """Where the resume shards of a model backend go (None for the grounded backend, which needs none)."""
    if cfg.backend is SynthBackend.grounded:
        return None
    if cfg.backend in (SynthBackend.hf, SynthBackend.vllm):
        section = getattr(cfg, cfg.backend.value)
        if section is not None and section.shard_dir:
            return Path(section.shard_dir)
        return out.parent / f".{out.name}.shards"
    raise ValueError(f"unknown synthesize.backend {cfg.backend!r}")


@stage
def main(
    keypoints: Path = typer.Option(Path("data/mined/keypoints.parquet"), help="mined keypoints"),
    out: Path = typer.Option(Path("data/synthesized"), help="output folder"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Describe every keypoint in four levels (object in the scene, part in the object, point in the part,
    local look) with the backend named in synthesize.backend.

    Writes descriptions.parquet, passes.parquet (the raw output of every pass) and report.json (valid
    fraction, length distribution, skipped rows and why) into OUT, atomically. The model backends (hf,
    vllm) also write each finished batch to a shard folder (synthesize.<backend>.shard_dir, default
    .<OUT>.shards next to OUT); a rerun takes the rows found there instead of generating them again.
    """
    cfg = load_section("synthesize", params)
    kps = read_table(keypoints, schema.KEYPOINTS, "keypoints")
    result = synthesize(kps, cfg, shard_dir=shard_folder(cfg, out))
    with atomic_dir(out) as tmp:
        write_table(result.descriptions, tmp / "descriptions.parquet", schema.DESCRIPTIONS, "descriptions")
        write_table(result.passes, tmp / "passes.parquet", PASSES, "passes")
        write_json(result.report, tmp / "report.json")
    words = result.report["words"]
    print_counts(
        f"synthesize ({result.report['backend']})",
        {
            "rows": result.report["rows_out"],
            "valid": result.report["valid_fraction"] if result.report["valid_fraction"] is not None else "-",
            "median words": words.get("median", "-"),
        },
    )
    print_skips(result.skips, "synthesize")

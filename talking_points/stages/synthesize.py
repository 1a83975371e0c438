"""`tp synthesize`: mined keypoints -> one coarse-to-fine description per keypoint."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table, write_table
from talking_points.pipeline.synthesis.backends import entry_for
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.synthesize import PASSES, synthesize
from talking_points.stages.common import PARAMS_OPTION, print_counts, print_skips, stage, write_json


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
    vllm) also write each finished batch to .<OUT>.resume next to OUT; a rerun takes the rows found there
    (same keypoint row, same backend settings) instead of generating them again.
    """
    cfg = load_section("synthesize", params, SynthesizeConfig)
    kps = read_table(keypoints, schema.KEYPOINTS, "keypoints")
    result = synthesize(kps, cfg, resume_for=out if entry_for(cfg).resumes else None)
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

"""`tp split`: keypoints + descriptions -> train.parquet / test.parquet, by image, per source."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.split import SplitConfig, assign_splits, join_samples
from talking_points.pipeline.data.tables import read_table, write_table
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage, write_json


@stage
def main(
    keypoints: Path = typer.Option(Path("data/mined/keypoints.parquet"), help="mined keypoints"),
    descriptions: Path = typer.Option(Path("data/synthesized/descriptions.parquet"), help="synthesized descriptions"),
    out: Path = typer.Option(Path("data/split"), help="output folder for train.parquet and test.parquet"),
    only_valid: bool = typer.Option(True, help="drop descriptions that failed the faithfulness check"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Split the keypoint-description rows into train and test by image (no image in both), per source.

    The test fraction is the same within every source (paper: 17K train / 4K test), seeded by split.seed.
    """
    cfg = load_section("split", params, SplitConfig)
    kps = read_table(keypoints, schema.KEYPOINTS, "keypoints")
    desc = read_table(descriptions, schema.DESCRIPTIONS, "descriptions")
    if only_valid:
        dropped = int((~desc["valid"]).sum())
        if dropped:
            console.print(f"dropping {dropped} description(s) that failed the faithfulness check")
        desc = desc[desc["valid"]]
    splits = assign_splits(kps[["image_id", "source"]], cfg.test_fraction, cfg.seed)
    samples = join_samples(kps, desc, splits)
    counts = {}
    for name in ("train", "test"):
        part = samples[samples["split"] == name]
        write_table(part, out / f"{name}.parquet", schema.SAMPLES, f"{name} split")
        counts[f"{name}_rows"] = len(part)
        counts[f"{name}_images"] = int(part["image_id"].nunique())
    per_source = samples.groupby(["source", "split"]).size().unstack(fill_value=0).to_dict(orient="index")
    write_json({**counts, "per_source": per_source}, out / "report.json")
    print_counts("split", counts)

"""`tp ap10k-data`: the AP-10K keypoints GRPO trains and is evaluated on, split across animal families."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.keypoint_sets.coco_keypoints import POSE_SAMPLES
from talking_points.pipeline.data.tables import atomic_dir, write_table
from talking_points.pipeline.rl.ap10k_data import ap10k_samples, direction_splits, split_file
from talking_points.pipeline.rl.config import GRPOSection
from talking_points.stages.common import PARAMS_OPTION, print_counts, print_skips, stage, write_json


@stage
def main(
    out: Path = typer.Option(Path("data/ap10k"), help="output folder"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write the AP-10K keypoints for GRPO: the synthetic AP-10K (grpo.data.source synthetic: PartWorld
    animals in AP-10K's layout, rendered into OUT/synthetic) or a real AP-10K json (source coco).

    OUT gets pose_samples.parquet (one row per labelled keypoint, with its family), keypoints.parquet
    (KEYPOINTS rows of the visible ones), and for both directions <direction>/train.parquet and
    test.parquet (SAMPLES rows: train family / test family, no image in both; descriptions from the grounded
    synthesis, used as the evaluation's reference row), plus report.json. Written atomically.
    """
    cfg = load_section("grpo", params, GRPOSection).data
    out = Path(out)
    with atomic_dir(out) as tmp:
        data = ap10k_samples(cfg, tmp, out)
        for step, skips in data.skips.items():
            print_skips(skips, f"ap10k {step}")
        write_table(data.tables["pose_samples"], tmp / "pose_samples.parquet", POSE_SAMPLES, "pose samples")
        write_table(data.tables["keypoints"], tmp / "keypoints.parquet", schema.KEYPOINTS, "ap10k keypoints")
        try:
            splits = direction_splits(data.tables["samples"], cfg)
        except ValueError as err:
            raise ConfigError(f"{params}: grpo.data gives no cross-family split: {err}") from None
        for direction, split in splits.items():
            for part, rows in (("train", split.train), ("test", split.test)):
                write_table(rows, split_file(tmp, direction, part), schema.SAMPLES,
                            f"{direction.value} {part}")
        report = {**data.report, "directions": {d.value: s.counts for d, s in splits.items()}}
        write_json(report, tmp / "report.json")
    print_counts("ap10k-data", {**{f"{k} keypoints": v for k, v in report["keypoints_per_family"].items()},
                                **{f"{d} train/test": f"{c['train_rows']}/{c['test_rows']}"
                                   for d, c in report["directions"].items()}})

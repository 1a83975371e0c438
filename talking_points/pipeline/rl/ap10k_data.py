"""The GRPO data: AP-10K keypoints as SAMPLES rows (keypoint geometry + grounded description + family), and
the cross-family train/test split of every direction. Pure functions; `tp ap10k-data` writes the tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from talking_points.pipeline.data.errors import SkipLog
from talking_points.pipeline.data.keypoint_sets.coco_keypoints import read_coco_keypoints
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction, cross_family_split
from talking_points.pipeline.data.keypoint_sets.keypoint_rows import pose_keypoint_rows
from talking_points.pipeline.data.keypoint_sets.synthetic_ap10k import IMAGE_DIR, write_synthetic_ap10k
from talking_points.pipeline.rl.config import AP10KDataConfig, AP10KSource
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.synthesize import synthesize

__all__ = ["AP10KSamples", "DirectionSplit", "ap10k_samples", "direction_splits", "rebase", "split_file"]


def split_file(data: Path, direction: Direction, part: str) -> Path:
    """Where `tp ap10k-data` writes a direction's train or test rows under its output folder `data`."""
    return Path(data) / direction.value / f"{part}.parquet"


@dataclass
class AP10KSamples:
    """pose_samples (one row per labelled keypoint), keypoints (KEYPOINTS rows of the visible ones), samples
    (SAMPLES rows + family); the report; the skip logs by step."""

    tables: dict[str, pd.DataFrame]
    report: dict
    skips: dict[str, SkipLog] = field(default_factory=dict)


@dataclass
class DirectionSplit:
    train: pd.DataFrame
    test: pd.DataFrame
    counts: dict[str, int]


def rebase(files: pd.Series, old: Path, new: Path) -> pd.Series:
    """Paths under `old` moved to the same place under `new` (others unchanged)."""
    def move(f: str) -> str:
        p = Path(f)
        return str(new / p.relative_to(old)) if p.is_relative_to(old) else f

    return files.map(move)


def ap10k_samples(cfg: AP10KDataConfig, work: Path, final: Path) -> AP10KSamples:
    """The configured AP-10K as tables; synthetic images are rendered into `work` and their paths written as
    under `final` (the folder `work` becomes)."""
    if cfg.source is AP10KSource.synthetic:
        annotations = write_synthetic_ap10k(cfg.synthetic, work / "synthetic", workers=cfg.workers)
        images = annotations.parent / IMAGE_DIR
    elif cfg.source is AP10KSource.coco:
        annotations, images = Path(str(cfg.annotations)), Path(str(cfg.images))
    else:
        raise ValueError(f"unknown AP-10K source {cfg.source!r}")
    pose = read_coco_keypoints(annotations, images, cfg.source_name, cfg.on_error, cfg.granularity)
    keypoints, row_skips = pose_keypoint_rows(pose.table, cfg.rows, on_error=cfg.on_error)
    described = synthesize(keypoints, SynthesizeConfig(seed=cfg.describe_seed, on_error=cfg.on_error))
    family = pose.table.set_index("kp_id")["family"]
    samples = keypoints.merge(described.descriptions, on="kp_id", how="inner", validate="one_to_one")
    samples["family"] = samples["kp_id"].map(family)
    tables = {"pose_samples": pose.table, "keypoints": keypoints, "samples": samples}
    for t in tables.values():
        t["file"] = rebase(t["file"], work, final)
    skips = {"annotations": pose.skips, "rows": row_skips, "descriptions": described.skips}
    report = {
        "source": cfg.source.value,
        "layouts": pose.layouts,
        "keypoints_per_family": {str(k): int(v) for k, v in samples.groupby("family").size().items()},
        "images_per_family": {str(k): int(v)
                              for k, v in samples.groupby("family")["image_id"].nunique().items()},
        "skipped": {k: s.as_dict() for k, s in skips.items()},
        "descriptions_valid_fraction": described.report["valid_fraction"],
    }
    return AP10KSamples(tables, report, skips)


def direction_splits(samples: pd.DataFrame, cfg: AP10KDataConfig) -> dict[Direction, DirectionSplit]:
    """Every direction's train-family / test-family SAMPLES rows (no image in both, `family` dropped, `split`
    set) and their counts. Raises ValueError when the data gives no split."""
    out = {}
    for direction in Direction:
        split = cross_family_split(samples, direction, cfg.split_seed, cfg.max_train_images, cfg.max_test_images)
        parts = {part: rows.drop(columns=["family"]).assign(split=part)
                 for part, rows in (("train", split.train), ("test", split.test))}
        counts = {"mixed_images": split.mixed_images}
        for part, rows in parts.items():
            counts.update({f"{part}_rows": len(rows), f"{part}_images": int(rows["image_id"].nunique())})
        out[direction] = DirectionSplit(parts["train"], parts["test"], counts)
    return out

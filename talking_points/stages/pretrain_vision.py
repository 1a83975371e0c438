"""`tp pretrain-vision`: the tiny vision tower trained for dense category / part prediction (OMG-Seg stand-in)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from talking_points.pipeline.config import load_section, source_names
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.keypoints.mine import read_ingested
from talking_points.pipeline.models.tower import save_tower
from talking_points.pipeline.training.checkpoints import checkpoint_for
from talking_points.pipeline.vision_pretraining.config import PretrainVisionConfig
from talking_points.pipeline.vision_pretraining.pretrain import pretrain_tower
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage, write_json


@stage
def main(
    ingested_root: Path = typer.Option(Path("data/ingested"), help="folder of the ingested sources (ingest.sources)"),
    train: Path = typer.Option(Path("data/split/train.parquet"), help="train split: the only images trained on"),
    test: Path = typer.Option(Path("data/split/test.parquet"), help="test split: images and keypoints measured"),
    out: Path = typer.Option(Path("models/vision"), help="output folder of the tower"),
    live: Path = typer.Option(Path("reports/train/vision"), help="dvclive folder of the training curve"),
    metrics: Path = typer.Option(Path("reports/vision.json"), help="held-out measurements (DVC metrics)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Train MobileNetV2 + a pixel decoder + dense heads to predict every pixel's object category and part on
    the train split's images (the ingested masks), measure it on the test split, and save it to OUT for
    init-models (init_models.tiny.pretrained_vision). Resumes from OUT.ckpt after an interruption."""
    cfg = load_section("pretrain_vision", params, PretrainVisionConfig)
    ckpt = checkpoint_for(out)
    if not cfg.enabled:
        with atomic_dir(out) as tmp:
            write_json({"enabled": False}, tmp / "disabled.json")
        write_json({"enabled": False}, metrics)
        live.mkdir(parents=True, exist_ok=True)
        console.print("pretrain_vision.enabled is false: no tower written")
        return
    sources_cfg = source_names(params)
    sources = [read_ingested(ingested_root / name) for name in sources_cfg]
    result = pretrain_tower(sources, read_table(train, schema.SAMPLES, "train split"),
                            read_table(test, schema.SAMPLES, "test split"), cfg, ckpt, live,
                            fingerprint=digest(train, test, *(ingested_root / s for s in sorted(sources_cfg))))
    summary = {"steps": result.steps, "train_images": len(result.train_image_ids),
               "categories": len(result.spec.categories), "parts": len(result.spec.parts)}
    if result.history:
        summary.update(first=result.history[0], last=result.history[-1])
    test_metrics = {k: v for k, v in result.metrics.items() if not isinstance(v, dict)}
    by_part = {k: v for k, v in result.metrics.items() if isinstance(v, dict)}
    with atomic_dir(out) as tmp:
        save_tower(tmp, result.tower, result.spec)
        write_json({**summary, "test_breakdowns": by_part}, tmp / "train.json")
    # the DVC metrics: the test measurements (per-part breakdowns and the first/last training losses are in
    # OUT/train.json and the training curve)
    write_json({"enabled": True, "steps": result.steps, "test": test_metrics}, metrics)
    shutil.rmtree(ckpt, ignore_errors=True)
    m = result.metrics
    counts = {"train images": len(result.train_image_ids), "steps": result.steps,
              "category pixel acc / mIoU": f"{m['category_pixel_acc']:.3f} / {m['category_miou']:.3f}",
              "part pixel acc / mIoU": f"{m['part_pixel_acc']:.3f} / {m['part_miou']:.3f}"}
    for head in ("category", "part", "colour", "texture"):
        if f"keypoint_{head}_acc" in m:
            counts[f"keypoint {head} acc (majority)"] = (f"{m[f'keypoint_{head}_acc']:.3f} "
                                                         f"({m[f'keypoint_{head}_majority']:.3f})")
    if "keypoint_luma_mae" in m:
        counts["keypoint brightness MAE"] = f"{m['keypoint_luma_mae']:.3f}"
    print_counts("pretrain-vision (test images)", counts)

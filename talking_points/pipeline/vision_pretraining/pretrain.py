"""Pretraining the tiny tower end to end: label maps of the train split's images, dense training, measurement
on the test split's images and keypoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.keypoints.mine import IngestedSource
from talking_points.pipeline.models.build import init_tower
from talking_points.pipeline.models.tower import TowerSpec
from talking_points.pipeline.models.vision import MultiScaleBackbone
from talking_points.pipeline.training.loop import fit
from talking_points.pipeline.vision_pretraining.config import PretrainVisionConfig
from talking_points.pipeline.vision_pretraining.data import DenseImages, dense_images
from talking_points.pipeline.vision_pretraining.labels import LabelSet
from talking_points.pipeline.vision_pretraining.metrics import evaluate_tower
from talking_points.pipeline.vision_pretraining.train import (
    DenseTower,
    class_weights,
    dense_collate,
    dense_step,
)

__all__ = ["PretrainResult", "split_images", "pretrain_tower"]


@dataclass
class PretrainResult:
    tower: MultiScaleBackbone
    spec: TowerSpec
    metrics: dict  # evaluate_tower on the test images
    history: list[dict]
    train_image_ids: list[str]  # every image the training saw (for the no-test-image check)
    steps: int


def split_images(sources: list[IngestedSource], image_ids: set[str]) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                              pd.DataFrame]:
    """The image, object and part rows of the given image ids, over all sources."""
    images = pd.concat([s.images[s.images["image_id"].isin(image_ids)] for s in sources], ignore_index=True)
    objects = pd.concat([s.objects[s.objects["image_id"].isin(image_ids)] for s in sources], ignore_index=True)
    parts = pd.concat([s.parts[s.parts["image_id"].isin(image_ids)] for s in sources], ignore_index=True)
    return images, objects, parts


def pretrain_tower(sources: list[IngestedSource], train: pd.DataFrame, test: pd.DataFrame,
                   cfg: PretrainVisionConfig, checkpoint_dir: str | Path, live_dir: str | Path | None = None,
                   fingerprint: str = "") -> PretrainResult:
    """Train the tower on the images of the `train` split (samples table) only and measure it on those of
    `test` (its keypoints: category and part at the exact point). The label set is the training images'.
    Resumes from `checkpoint_dir` if it holds a checkpoint of this run (`fingerprint`: the caller's digest of
    the data; the config is added here)."""
    size = tuple(cfg.tower.image_size)
    tr_images, tr_objects, tr_parts = split_images(sources, set(train["image_id"]))
    labels = LabelSet.from_tables(tr_objects, tr_parts)
    data: DenseImages = dense_images(tr_images, tr_objects, tr_parts, labels, size, progress="label maps (train)",
                                     workers=cfg.workers)
    appearance = cfg.loss.colour > 0 or cfg.loss.luma > 0
    tower, spec = init_tower(cfg.tower, list(labels.categories), list(labels.parts),
                             list(labels.colours) if appearance else [],
                             list(labels.textures) if cfg.loss.texture > 0 else [], seed=cfg.train.seed)
    model = DenseTower(tower, spec)
    n_classes = {"category": len(labels.categories) + 1, "part": len(labels.parts) + 1,
                 "colour": len(spec.colours), "texture": len(spec.textures)}
    weights = {h: class_weights(data.maps[h], n, cfg.loss.class_balance) for h, n in n_classes.items() if n}
    step = dense_step(cfg.loss, cfg.hflip, weights)
    result = fit(model, step, data, dense_collate, cfg.train, checkpoint_dir, live_dir, description="pretrain vision",
                 fingerprint=digest(fingerprint, cfg.model_dump(mode="json", exclude={"workers"})))
    te_images, te_objects, te_parts = split_images(sources, set(test["image_id"]))
    held_out = dense_images(te_images, te_objects, te_parts, labels, size, progress="label maps (test)",
                            workers=cfg.workers)
    metrics = evaluate_tower(model, held_out, test, labels, cfg.eval_batch_size)
    tower.eval()
    return PretrainResult(tower=tower, spec=spec, metrics=metrics, history=result.history,
                          train_image_ids=list(data.image_ids), steps=result.steps)

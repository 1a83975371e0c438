"""Training the tower for dense prediction: per-pixel cross-entropy on the category, part, colour and texture
maps and an L1 loss on the brightness, from the heads at stride 4 upsampled to the label maps' size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_points.pipeline.models.tower import TowerSpec
from talking_points.pipeline.models.vision import DenseOutput, MultiScaleBackbone, normalize_images
from talking_points.pipeline.training.data import stack
from talking_points.pipeline.training.loop import StepFn
from talking_points.pipeline.vision_pretraining.config import DenseLossConfig
from talking_points.pipeline.vision_pretraining.labels import IGNORE, MAPS

__all__ = ["CLASS_HEADS", "DenseTower", "class_weights", "dense_step", "dense_collate", "upsampled"]

#: the heads trained with cross-entropy against the label map of the same name (luma: L1)
CLASS_HEADS = ("category", "part", "colour", "texture")


class DenseTower(nn.Module):
    """The tower with its input normalisation: uint8 images (B, 3, H, W) -> `DenseOutput`."""

    def __init__(self, tower: MultiScaleBackbone, spec: TowerSpec):
        super().__init__()
        self.tower = tower
        self.spec = spec

    def forward(self, images: torch.Tensor) -> DenseOutput:
        return self.tower.dense(normalize_images(images, self.spec.image_mean, self.spec.image_std))


def upsampled(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits at the label maps' size (bilinear): thin parts are scored at full resolution."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def dense_collate(items: list[dict]) -> dict:
    return stack(items)


def class_weights(label_maps: np.ndarray, n_classes: int, balance: float) -> torch.Tensor:
    """Cross-entropy weights ∝ frequency^-balance over the labelled pixels, normalised to a pixel mean of 1;
    classes absent from the maps get the largest present weight."""
    counts = np.bincount(label_maps[label_maps != IGNORE].ravel(), minlength=n_classes)[:n_classes].astype(float)
    freq = counts / max(counts.sum(), 1.0)
    w = np.where(counts > 0, np.maximum(freq, 1e-12) ** -balance, 0.0)
    w = np.where(counts > 0, w, w.max() if (counts > 0).any() else 1.0)
    return torch.tensor(w / max((w * freq).sum(), 1e-12), dtype=torch.float32)


def dense_step(loss: DenseLossConfig, hflip: bool, weights: dict[str, torch.Tensor] | None = None) -> StepFn:
    """The step function of `training.loop.fit`: the weighted sum of every head's loss (IGNORE pixels
    skipped; `weights`: optional class weights per head, see `class_weights`); heads the tower lacks (no
    texture annotations) are skipped.

    With `hflip`, a random half of the batch is mirrored (torch's RNG, which the loop's checkpoints keep)."""
    weights = weights or {}

    def step(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        images, maps = batch["image"], {k: batch[k].long() for k in MAPS}
        if hflip:
            flip = torch.rand(len(images)) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
            maps = {k: torch.where(flip.view(-1, 1, 1), v.flip(-1), v) for k, v in maps.items()}
        out = model(images)
        size = tuple(maps["category"].shape[-2:])
        total = torch.zeros(())
        metrics: dict[str, float] = {}
        for head in CLASS_HEADS:
            target = maps[head]
            if head not in out.logits or not (target != IGNORE).any():
                continue
            logits = upsampled(out.logits[head], size)
            term = F.cross_entropy(logits, target, weight=weights.get(head), ignore_index=IGNORE)
            total = total + getattr(loss, head) * term
            metrics[f"{head}_loss"] = float(term.detach())
            with torch.no_grad():  # accuracy on the labelled, non-background pixels
                keep = (target != IGNORE) & ((target > 0) if head in ("category", "part") else True)
                metrics[f"{head}_pixel_acc"] = float((logits.argmax(1) == target)[keep].float().mean())
        if "luma" in out.logits:
            pred = torch.sigmoid(upsampled(out.logits["luma"], size)[:, 0])
            term = (pred - maps["luma"].float() / 255.0).abs().mean()
            total = total + loss.luma * term
            metrics["luma_l1"] = float(term.detach())
        return total, metrics

    return step

"""Training the tower for dense prediction: per-pixel cross-entropy on the category and the part maps."""

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
from talking_points.pipeline.vision_pretraining.labels import IGNORE

__all__ = ["DenseTower", "class_weights", "dense_step", "dense_collate", "upsampled"]


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


def dense_step(loss: DenseLossConfig, hflip: bool, category_weights: torch.Tensor | None = None,
               part_weights: torch.Tensor | None = None) -> StepFn:
    """The step function of `training.loop.fit`: weighted category + part cross-entropy (IGNORE skipped),
    each with optional class weights (`class_weights`).

    With `hflip`, a random half of the batch is mirrored (torch's RNG, which the loop's checkpoints keep)."""

    def step(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        images, cat, part = batch["image"], batch["category"].long(), batch["part"].long()
        if hflip:
            flip = torch.rand(len(images)) < 0.5
            images, cat, part = (torch.where(flip.view(-1, *[1] * (t.ndim - 1)), t.flip(-1), t)
                                 for t in (images, cat, part))
        out = model(images)
        size = tuple(cat.shape[-2:])
        cat_logits, part_logits = upsampled(out.category_logits, size), upsampled(out.part_logits, size)
        l_cat = F.cross_entropy(cat_logits, cat, weight=category_weights, ignore_index=IGNORE)
        l_part = F.cross_entropy(part_logits, part, weight=part_weights, ignore_index=IGNORE)
        with torch.no_grad():
            fg = (cat > 0) & (cat != IGNORE)
            acc = (cat_logits.argmax(1) == cat)[fg].float().mean() if fg.any() else torch.tensor(0.0)
            pfg = (part > 0) & (part != IGNORE)
            pacc = (part_logits.argmax(1) == part)[pfg].float().mean() if pfg.any() else torch.tensor(0.0)
        total = loss.category * l_cat + loss.part * l_part
        return total, {"category_loss": float(l_cat.detach()), "part_loss": float(l_part.detach()),
                       "object_pixel_acc": float(acc), "part_pixel_acc": float(pacc)}

    return step

"""Batched inference of both models over arrays of images (describe points; localize texts).

Rows often share an image (two keypoints per PartWorld test image, ~30 per AP-10K image): the frozen vision
tower runs once per distinct image (`feature_store.FeatureStore.features`, which can also keep the features on
disk for the next stage) and its features are repeated for the rows, which is where most of the time of a
localization went (the tower: 18 of 28 s for the 1,198 test rows).
"""

from __future__ import annotations

import numpy as np
import torch

from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.models.decoding import DecodingConfig
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.feature_store import FeatureStore, distinct_images
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.models.prompts import PromptFormat
from talking_points.pipeline.precision import Precision, autocast
from talking_points.pipeline.progress import track

__all__ = ["DecodingConfig", "FeatureStore", "describe", "distinct_images", "localize", "prompt_format"]


def prompt_format(model, tokenizer) -> PromptFormat:
    n_kpt = model.kpt_tokens if isinstance(model, PointDescriptor) else 1
    return PromptFormat(tokenizer, model.vlm.config.n_image_tokens, n_kpt, model.cfg.max_description_tokens)


@torch.no_grad()
def describe(model: PointDescriptor, tokenizer, images: np.ndarray, points: np.ndarray,
             gen: DecodingConfig = DecodingConfig(), progress: str | None = None,
             precision: Precision = Precision.fp32, store: FeatureStore | None = None) -> list[str]:
    """Descriptions of points (N, 2) normalised in images (N, 3, H, W) uint8 at the base's size; `precision`:
    bf16 runs the model under autocast (`precision.autocast`); the frozen tower's features come from `store`
    where it holds them (`feature_store.FeatureStore.features`, as in training)."""
    model.eval()
    dev = next(model.parameters()).device
    fmt = prompt_format(model, tokenizer)
    vision = (store or FeatureStore(None)).features(model, images)
    out: list[str] = []
    starts = range(0, len(points), gen.batch_size)
    for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
        rows = slice(s, s + gen.batch_size)
        imgs = torch.as_tensor(images[rows]).to(dev)
        pts = torch.tensor(points[rows], dtype=torch.float32, device=dev)
        b = fmt.descriptor_batch(None, len(pts), padding_side="left")
        with autocast(precision, dev):
            ids = model.generate(imgs, pts, b.input_ids.to(dev), b.attention_mask.to(dev),
                                 vision=_rows(vision, rows, model, dev), **gen.generate_kwargs(tokenizer))
        out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


@torch.no_grad()
def localize(model: PointLocalizer, tokenizer, images: np.ndarray, texts: list[str], batch_size: int = 32,
             progress: str | None = None, precision: Precision = Precision.fp32,
             store: FeatureStore | None = None) -> np.ndarray:
    """Normalised (x, y) predictions (N, 2) for texts describing points in images (N, 3, H, W); `precision` and
    `store` as in `describe`."""
    model.eval()
    dev = next(model.parameters()).device
    fmt = prompt_format(model, tokenizer)
    vision = (store or FeatureStore(None)).features(model, images)
    preds = []
    starts = range(0, len(texts), batch_size)
    for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
        rows = slice(s, s + batch_size)
        b = fmt.localizer_batch(list(texts[rows]), padding_side="right")
        with autocast(precision, dev):
            pred = model(None, b.input_ids.to(dev), b.attention_mask.to(dev),
                         vision=_rows(vision, rows, model, dev))
        preds.append(pred.float().cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros((0, 2), np.float32)


def _rows(vision: VisionFeatures, rows: slice, model, dev: torch.device) -> VisionFeatures:
    """The features of `rows`, in the model's dtype on its device (as a training batch gets them)."""
    return vision.rows(torch.arange(len(vision.maps[0]))[rows]).to(model.vlm.dtype, dev)

"""Batched inference of both models over arrays of images (describe points; localize texts)."""

from __future__ import annotations

import numpy as np
import torch

from talking_points.pipeline.models.decoding import DecodingConfig
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.models.prompts import PromptFormat
from talking_points.pipeline.precision import Precision, autocast
from talking_points.pipeline.progress import track

__all__ = ["DecodingConfig", "describe", "localize", "prompt_format"]


def prompt_format(model, tokenizer) -> PromptFormat:
    n_kpt = model.kpt_tokens if isinstance(model, PointDescriptor) else 1
    return PromptFormat(tokenizer, model.vlm.config.n_image_tokens, n_kpt, model.cfg.max_description_tokens)


@torch.no_grad()
def describe(model: PointDescriptor, tokenizer, images: np.ndarray, points: np.ndarray,
             gen: DecodingConfig = DecodingConfig(), progress: str | None = None,
             precision: Precision = Precision.fp32) -> list[str]:
    """Descriptions of points (N, 2) normalised in images (N, 3, H, W) uint8 at the base's size; `precision`:
    bf16 runs the model under autocast (`precision.autocast`)."""
    model.eval()
    dev = next(model.parameters()).device
    fmt = prompt_format(model, tokenizer)
    out: list[str] = []
    starts = range(0, len(points), gen.batch_size)
    for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
        imgs = torch.as_tensor(images[s : s + gen.batch_size]).to(dev)
        pts = torch.tensor(points[s : s + gen.batch_size], dtype=torch.float32, device=dev)
        b = fmt.descriptor_batch(None, len(pts), padding_side="left")
        with autocast(precision, dev):
            ids = model.generate(imgs, pts, b.input_ids.to(dev), b.attention_mask.to(dev),
                                 **gen.generate_kwargs(tokenizer))
        out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


@torch.no_grad()
def localize(model: PointLocalizer, tokenizer, images: np.ndarray, texts: list[str], batch_size: int = 32,
             progress: str | None = None, precision: Precision = Precision.fp32) -> np.ndarray:
    """Normalised (x, y) predictions (N, 2) for texts describing points in images (N, 3, H, W); `precision` as
    in `describe`."""
    model.eval()
    dev = next(model.parameters()).device
    fmt = prompt_format(model, tokenizer)
    preds = []
    starts = range(0, len(texts), batch_size)
    for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
        b = fmt.localizer_batch(list(texts[s : s + batch_size]), padding_side="right")
        imgs = torch.as_tensor(images[s : s + batch_size]).to(dev)
        with autocast(precision, dev):
            pred = model(imgs, b.input_ids.to(dev), b.attention_mask.to(dev))
        preds.append(pred.float().cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros((0, 2), np.float32)

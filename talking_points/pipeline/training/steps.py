"""Collate and step functions: what one training step of each model computes."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.models.localizer import soft_argmax
from talking_points.pipeline.models.prompts import IGNORE, PromptFormat
from talking_points.pipeline.training.config import HeatmapLossConfig
from talking_points.pipeline.training.data import stack

__all__ = ["batch_vision", "descriptor_collate", "descriptor_step", "heat_cross_entropy", "localizer_collate",
           "localizer_step", "lm_collate", "lm_step"]


def batch_vision(batch: dict, dtype: torch.dtype = torch.float32) -> VisionFeatures | None:
    """The cached tower features of a batch (`PointSamples.cache_vision`), or None (the model runs the tower)."""
    if "vision_maps" not in batch:
        return None
    return VisionFeatures(list(batch["vision_maps"]), batch.get("vision_category"), batch.get("vision_part")).to(dtype)


def descriptor_collate(fmt: PromptFormat, text_column: str = "description",
                       word_dropout: float = 0.0) -> Callable[[list[dict]], dict]:
    """Right-padded prompt + description batches; with `word_dropout`, each description token of the *input*
    is replaced by the tokenizer's unknown token with that probability (torch's global generator, seeded by
    the loop), while the labels keep every token: the model cannot guess a word from the words before it
    alone and has to read it from the image and the point (word dropout, Bowman et al. 2016)."""
    if not 0.0 <= word_dropout < 1.0:
        raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
    unk = fmt.tok.unk_token_id if fmt.tok.unk_token_id is not None else fmt.tok.pad_token_id

    def collate(items: list[dict]) -> dict:
        out = stack(items)
        b = fmt.descriptor_batch(out[text_column], padding_side="right")
        input_ids = b.input_ids
        if word_dropout:
            drop = (b.labels != IGNORE) & (torch.rand(b.labels.shape) < word_dropout)
            input_ids = input_ids.masked_fill(drop, unk)
        out.update(input_ids=input_ids, attention_mask=b.attention_mask, labels=b.labels)
        return out

    return collate


def descriptor_step(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """Standard LM loss on the description tokens."""
    out = model(batch["image"], batch["point"], batch["input_ids"], batch["attention_mask"], batch["labels"],
                vision=batch_vision(batch))
    return out.loss, {}


def localizer_collate(fmt: PromptFormat, text_column: str = "description") -> Callable[[list[dict]], dict]:
    def collate(items: list[dict]) -> dict:
        out = stack(items)
        b = fmt.localizer_batch(out[text_column], padding_side="right")
        out.update(input_ids=b.input_ids, attention_mask=b.attention_mask)
        return out

    return collate


def localizer_step(model: nn.Module, batch: dict, heatmap_loss: HeatmapLossConfig | None = None
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE between the predicted and the true normalised point; also reports the mean pixel-free distance. With
    `heatmap_loss` (heatmap head) also the cross-entropy of the heat map against a Gaussian at the true point."""
    inputs = (batch["image"], batch["input_ids"], batch["attention_mask"])
    if heatmap_loss is None:
        pred = model(*inputs, vision=batch_vision(batch))
    else:
        logits, centres = model.heat(*inputs, vision=batch_vision(batch))
        pred = soft_argmax(logits, centres)
    target = batch["point"].to(pred.dtype)
    loss = F.mse_loss(pred, target)
    logs = {}
    if heatmap_loss is not None:
        cross = heat_cross_entropy(logits, centres, target, heatmap_loss.sigma)
        loss = loss + heatmap_loss.weight * cross
        logs["heat_ce"] = float(cross.detach())
    dist = (pred.detach() - target).norm(dim=-1)
    return loss, {"mean_dist": float(dist.mean()), "pck@0.1": float((dist < 0.1).float().mean()), **logs}


def heat_cross_entropy(logits: torch.Tensor, centres: torch.Tensor, point: torch.Tensor, sigma: float
                       ) -> torch.Tensor:
    """Mean cross-entropy of softmax(logits) (B, S) against a Gaussian of `sigma` (normalised units) around each
    row's true point (B, 2) over the cells' centres (S, 2): the heat-map loss of keypoint detectors, which says
    which cells are right where the soft-argmax's MSE only says which way the mean should move."""
    d2 = ((centres.float().unsqueeze(0) - point.float().unsqueeze(1)) ** 2).sum(-1)  # (B, S)
    want = torch.softmax(-d2 / (2 * sigma**2), dim=-1)
    return -(want * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def lm_collate(tokenizer, max_tokens: int = 128) -> Callable[[list[dict]], dict]:
    """Text-only batches ("<s> text </s>") for warming up a freshly built LM on the description language."""

    def collate(items: list[dict]) -> dict:
        texts = [it["text"] for it in items]
        rows = [[tokenizer.bos_token_id] + tokenizer(" " + t, add_special_tokens=False).input_ids[:max_tokens]
                + [tokenizer.eos_token_id] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            labels[i, : len(r)] = ids[i, : len(r)]
        return {"input_ids": ids, "attention_mask": (labels != -100).long(), "labels": labels}

    return collate


def lm_step(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    return out.loss, {}

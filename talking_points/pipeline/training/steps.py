"""Collate and step functions: what one training step of each model computes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.models.localizer import soft_argmax
from talking_points.pipeline.models.prompts import IGNORE, PromptFormat
from talking_points.pipeline.models.region_keys import RANK_AXES, rank_classes
from talking_points.pipeline.training.config import HeatmapLossConfig
from talking_points.pipeline.training.data import stack

__all__ = ["GATE_LABELS", "RANK_COLUMNS", "RANK_LABELS", "batch_vision", "descriptor_collate", "descriptor_step", "gate_labels",
           "heat_cross_entropy", "localizer_collate", "localizer_step", "lm_collate", "lm_step", "rank_label_loss"]

#: the samples columns `gate_labels` adds: each row's category and part as the tower's class ids (0: background)
GATE_LABELS = ("category_label", "part_label")
#: the samples columns the instance heads learn from (`heatmap_instance_gate`): the object's count and ranks among
#: the objects of its category, then the part's among the parts of its name in the object (`keypoints.geometry`)
RANK_LABELS = (("n_same", *(f"order_{a}" for a in RANK_AXES)), ("n_same_part", *(f"part_order_{a}" for a in RANK_AXES)))
#: the same columns in one tuple (what `gate_labels(..., ranks=True)` adds and `PointSamples` carries)
RANK_COLUMNS = tuple(c for level in RANK_LABELS for c in level)


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


def gate_labels(samples: pd.DataFrame, categories: list[str], parts: list[str], ranks: bool = False) -> pd.DataFrame:
    """`samples` with `GATE_LABELS`: each row's `category` and `part` as the index of that name in the tower's
    classes (`categories`, `parts`; class i + 1, 0 is the background), IGNORE where the tower has no such class
    (the label loss skips it). A clear error when no row's category is one of the tower's. With `ranks`
    (`heatmap_instance_gate`) the `RANK_LABELS` columns as integers, IGNORE where missing."""
    out = samples.copy()
    for column in RANK_COLUMNS if ranks else ():
        if column not in out:
            raise KeyError(f"samples table lacks column {column!r} (the instance heads' targets: "
                           "heatmap_instance_gate)")
        out[column] = pd.to_numeric(out[column], errors="coerce").fillna(IGNORE).astype(np.int64)
    for column, target, names in zip(("category", "part"), GATE_LABELS, (categories, parts)):
        if column not in out:
            raise KeyError(f"samples table lacks column {column!r} (the label loss's targets)")
        index = {str(n).replace("_", " "): i + 1 for i, n in enumerate(names)}
        out[target] = np.array([index.get(str(v).replace("_", " "), IGNORE) for v in out[column]], np.int64)
    if (out[GATE_LABELS[0]] == IGNORE).all():
        found = sorted(out["category"].astype(str).unique())[:5]
        raise ValueError(f"none of the samples' categories ({found}...) is a class of the tower's dense heads "
                         f"({list(categories)[:5]}...): the label loss has nothing to learn from")
    return out


def localizer_step(model: nn.Module, batch: dict, heatmap_loss: HeatmapLossConfig | None = None,
                   label_loss: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE between the predicted and the true normalised point; also reports the mean pixel-free distance. With
    `heatmap_loss` (heatmap head) also the cross-entropy of the heat map against a Gaussian at the true point;
    with `label_loss` (`heatmap_gate`) `label_loss` times the cross-entropy of the gate's category and part
    heads against the row's labels (`GATE_LABELS` in the batch, `gate_labels`) and, with `heatmap_instance_gate`,
    times the instance heads' `rank_label_loss` against the classes the row's `RANK_LABELS` give."""
    inputs = (batch["image"], batch["input_ids"], batch["attention_mask"])
    if heatmap_loss is None and label_loss is None:
        pred = model(*inputs, vision=batch_vision(batch))
    else:
        heat = model.heat(*inputs, vision=batch_vision(batch))
        pred = soft_argmax(heat.logits, heat.centres)
    target = batch["point"].to(pred.dtype)
    loss = F.mse_loss(pred, target)
    logs = {}
    if heatmap_loss is not None:
        cross = heat_cross_entropy(heat.logits, heat.centres, target, heatmap_loss.sigma)
        loss = loss + heatmap_loss.weight * cross
        logs["heat_ce"] = float(cross.detach())
    if label_loss is not None:
        if heat.labels is None:
            raise ValueError("label_loss trains the heads of heatmap_gate; this localizer has none "
                             "(model.heatmap_gate: true)")
        for column, named in zip(GATE_LABELS, heat.labels):
            want = batch[column].to(named.device)
            if (want != IGNORE).any():  # a batch of rows the tower has no class for adds nothing (not NaN)
                ce = F.cross_entropy(named.float(), want, ignore_index=IGNORE)
                loss = loss + label_loss * ce
                logs[column.replace("_label", "_ce")] = float(ce.detach())
        for (count, *ranks), named in zip(RANK_LABELS, heat.labels[len(GATE_LABELS):]):  # heatmap_instance_gate
            missing = [c for c in (count, *ranks) if c not in batch]
            if missing:
                raise KeyError(f"batch lacks {missing}: heatmap_instance_gate's heads learn from the samples' "
                               "rank columns (gate_labels(..., ranks=True) and PointSamples' label_columns)")
            has = rank_classes(batch[count], torch.stack([batch[c] for c in ranks], -1)).to(named.device)
            if has.any():
                nll = rank_label_loss(named, has)
                loss = loss + label_loss * nll
                logs[f"{count}_rank_nll"] = float(nll.detach())
    dist = (pred.detach() - target).norm(dim=-1)
    return loss, {"mean_dist": float(dist.mean()), "pck@0.1": float((dist < 0.1).float().mean()), **logs}


def rank_label_loss(logits: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
    """The partial-label loss of the instance heads: the mean over rows with any of -log sum_{r in has} q(r | text)
    for the rank-class logits (B, R) and the classes each row's instance has (B, R) bool. An instance has one on
    each axis (the leftmost of three dogs is also, say, the lowest and the second largest); the text names one,
    and the head learns which from what the texts that name it have in common."""
    rows = has.any(-1)
    logits = logits[rows].float()
    return (logits.logsumexp(-1) - logits.masked_fill(~has[rows], float("-inf")).logsumexp(-1)).mean()


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

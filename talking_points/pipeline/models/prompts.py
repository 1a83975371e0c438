"""Prompt formats of both models and their batched tokenisation.

Descriptor: "<s><image>x N\nDescribe the point <region><kpt>x q:" -> " {description}</s>"
Localizer (the paper's format): "<s><image>x N\nPlease segment region1: {description}\n" + "<p> keypoint </p> <SEG>"
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from talking_points.pipeline.models import special_tokens as st

__all__ = ["Batch", "PromptFormat", "seg_positions", "position_ids"]

IGNORE = -100


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    labels: torch.Tensor | None = None  # (B, L), IGNORE outside the target


def _pad(rows: list[list[int]], pad: int, side: str) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        if side == "right":
            out[i, : len(r)] = torch.tensor(r)
        elif side == "left":
            out[i, width - len(r) :] = torch.tensor(r)
        else:
            raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    return out


class PromptFormat:
    """Builds token ids for both prompt formats with one tokenizer and one image-token count."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, n_image_tokens: int, n_kpt: int = 1,
                 max_description_tokens: int = 96):
        self.tok = tokenizer
        self.n_image_tokens = n_image_tokens
        self.n_kpt = n_kpt
        self.max_description_tokens = max_description_tokens

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids

    def _description_ids(self, text: str) -> list[int]:
        return self._ids(" " + text.strip())[: self.max_description_tokens]

    # ---- descriptor -----------------------------------------------------------------------------------------
    def descriptor_prefix(self) -> list[int]:
        text = f"{st.BOS}{st.IMAGE * self.n_image_tokens}\nDescribe the point {st.REGION}{st.KPT * self.n_kpt}:"
        return self._ids(text)

    def descriptor_batch(self, descriptions: list[str] | None, batch_size: int | None = None,
                         padding_side: str = "right") -> Batch:
        """With descriptions: prompt + target + </s>, labels on the target only. Without: prompts alone
        (left-padded for generation)."""
        prefix = self.descriptor_prefix()
        if descriptions is None:
            ids = torch.tensor([prefix] * int(batch_size or 1), dtype=torch.long)
            return Batch(ids, torch.ones_like(ids))
        rows, label_rows = [], []
        for d in descriptions:
            target = self._description_ids(d) + [self.tok.eos_token_id]
            rows.append(prefix + target)
            label_rows.append([IGNORE] * len(prefix) + target)
        ids = _pad(rows, self.tok.pad_token_id, padding_side)
        labels = _pad(label_rows, IGNORE, padding_side)
        return Batch(ids, _mask_like(rows, ids, padding_side), labels)

    # ---- localizer ------------------------------------------------------------------------------------------
    def localizer_batch(self, descriptions: list[str], padding_side: str = "right") -> Batch:
        answer = self._ids(f"{st.P_OPEN} keypoint {st.P_CLOSE} {st.SEG}")
        head = self._ids(f"{st.BOS}{st.IMAGE * self.n_image_tokens}\nPlease segment region1:")
        rows = [head + self._description_ids(d) + self._ids("\n") + answer for d in descriptions]
        ids = _pad(rows, self.tok.pad_token_id, padding_side)
        return Batch(ids, _mask_like(rows, ids, padding_side))


def _mask_like(rows: list[list[int]], ids: torch.Tensor, side: str) -> torch.Tensor:
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        if side == "right":
            mask[i, : len(r)] = 1
        else:
            mask[i, ids.shape[1] - len(r) :] = 1
    return mask


def seg_positions(input_ids: torch.Tensor, seg_token_id: int) -> torch.Tensor:
    """Index of the last `<SEG>` token in every row (whatever the padding side); raises if a row has none."""
    hits = input_ids == seg_token_id
    if not bool(hits.any(dim=1).all()):
        bad = (~hits.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"rows {bad} contain no <SEG> token")
    idx = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    return torch.where(hits, idx, torch.full_like(idx, -1)).max(dim=1).values


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore padding, so left- and right-padded rows see the same positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

"""How the causal LM inside a point model is trained: fully, through LoRA adapters (peft), or not at all."""

from __future__ import annotations

from enum import Enum

from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import Field
from torch import nn

from talking_points.pipeline.config import Section

__all__ = ["LmAdaptation", "LoraSettings", "PointModelSettings", "adapt_lm", "decoder_of", "base_lm"]


class LmAdaptation(str, Enum):
    full = "full"  # every LM weight trains (fine for the tiny default)
    lora = "lora"  # LoRA adapters via peft (the paper's setting)
    frozen = "frozen"  # the LM stays as loaded (the paper's "w/o LLM adaptation" ablation)


class LoraSettings(Section):

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    modules_to_save: list[str] = Field(
        default_factory=lambda: ["embed_tokens", "lm_head"],
        description="LM modules trained in full next to the adapters (the new special tokens' embeddings)",
    )


class PointModelSettings(Section):
    """What the descriptor's and the localizer's configs share: how the LM and the vision backbone train."""


    lm_adaptation: LmAdaptation = LmAdaptation.lora
    lora: LoraSettings = LoraSettings()
    train_vision: bool = Field(False, description="also fine-tune the vision backbone (tiny default: yes)")
    max_description_tokens: int = Field(96, ge=8)


def adapt_lm(lm: nn.Module, mode: LmAdaptation, lora: LoraSettings | None = None) -> nn.Module:
    """Return the LM prepared for `mode`: requires_grad set, LoRA injected (a `PeftModel`) for `lora`."""
    if mode is LmAdaptation.full:
        lm.requires_grad_(True)
        return lm
    elif mode is LmAdaptation.frozen:
        lm.requires_grad_(False)
        return lm
    elif mode is LmAdaptation.lora:
        lora = lora or LoraSettings()
        cfg = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            modules_to_save=list(lora.modules_to_save) or None,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(lm, cfg)
    else:
        raise ValueError(f"unknown LM adaptation {mode!r}")


def base_lm(lm: nn.Module) -> nn.Module:
    """The underlying transformers causal LM (LoRA layers stay injected in it)."""
    return lm.get_base_model() if isinstance(lm, PeftModel) else lm


def decoder_of(lm: nn.Module) -> nn.Module:
    """The LM's decoder stack without the output head (for reading hidden states cheaply)."""
    return base_lm(lm).get_decoder()

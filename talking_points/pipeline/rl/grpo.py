"""GRPO with the localizer as reward model: the math, as pure torch functions (no model code).

For one prompt (a keypoint p), the descriptor samples a group of G descriptions o_1..o_G; the localizer
maps each back to a point p̂_i. Then

* reward        r_i = −MSE(p̂_i, p) = −mean over (x, y) of (p̂_i − p)²        (`localization_rewards`)
* advantage     A_i = clip((r_i − mean_g r) / (std_g r + eps), ±adv_clip)       (`group_advantages`)
                std is the unbiased (n − 1) standard deviation of the group, as torch.std and trl use;
                a group of equal rewards gets A = 0 (no NaN).
* policy loss   L_pol = −(1/N) Σ_i A_i · (1/|o_i|) Σ_t log π_θ(o_i,t)          (`policy_loss`)
                over the valid (mask = 1) tokens; no importance ratio (one update per sampled batch).
* KL penalty    k3_t = exp(d_t) − d_t − 1, d_t = clamp(log π_ref − log π_θ, −kl_clamp, kl_clamp),
                averaged over a sequence's valid tokens, then over the N sequences (`kl_penalty`)
* total         L = L_pol + β · KL                                              (`grpo_loss`)

With N sequences in a batch of B prompts × G samples, tensors of per-sequence values are ordered
prompt-major: sequences g·G .. g·G + G − 1 are the group of prompt g.

This matches trl's GRPOTrainer (loss_type "grpo", num_iterations 1, no clipping active) in its gradient:
trl writes the per-token loss as −(exp(logp − logp.detach()) · A − β · k3), whose value is −A + β·k3
but whose gradient is that of −A · logp + β·k3; ours has the same gradient, and a value that shows the
log-likelihood term. The KL terms agree in value too while |log π_ref − log π_θ| ≤ kl_clamp.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import torch
from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.config import Section
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction

__all__ = [
    "GRPOParams",
    "GRPOLoss",
    "Trainable",
    "group_advantages",
    "grpo_loss",
    "k3_kl",
    "kl_penalty",
    "localization_rewards",
    "policy_loss",
    "sequence_mean",
    "token_logprobs",
]


class Trainable(str, Enum):
    """Which weights GRPO updates."""

    lora = "lora"  # the LM's LoRA adapters only
    lora_last_blocks = "lora+last_blocks"  # LoRA adapters and the LM's last `n_last_blocks` decoder blocks
    last_blocks = "last_blocks"  # the LM's last `n_last_blocks` decoder blocks only
    full = "full"  # every weight


class GRPOParams(Section):
    """Params of localizer-as-reward GRPO fine-tuning of the descriptor: the objective, the sampling and the
    trainable set (the loop's fields are in `rl.config.GRPOTrainConfig`)."""

    group_size: int = Field(3, ge=2, description="G: descriptions sampled per keypoint (a group's advantages "
                            "need two samples)")
    beta: float = Field(0.1, ge=0, description="weight of the KL penalty towards the reference descriptor")
    adv_clip: float = Field(5.0, gt=0, description="advantages are clipped to ±adv_clip")
    eps: float = Field(1e-4, gt=0, description="added to the group's reward std before dividing (trl's 1e-4; "
                       "it keeps equal-reward groups finite)")
    kl_clamp: float = Field(5.0, gt=0, description="log π_ref − log π_θ is clamped to ±kl_clamp in the k3 KL")
    epochs: int = Field(3, ge=1, description="passes over the training keypoints")
    trainable: Trainable = Trainable.lora_last_blocks
    n_last_blocks: int = Field(2, ge=0, description="decoder blocks trained in full under *last_blocks")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the descriptions")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling mass")
    max_new_tokens: int = Field(96, ge=1, description="longest sampled description, in tokens")
    directions: list[Direction] = Field(
        default_factory=lambda: list(Direction), description="cross-family settings to run"
    )

    @model_validator(mode="after")
    def _last_blocks(self) -> GRPOParams:
        if self.trainable in (Trainable.lora_last_blocks, Trainable.last_blocks) and self.n_last_blocks < 1:
            raise ValueError(f"n_last_blocks must be >= 1 with trainable {self.trainable.value!r}, got 0")
        return self

    @field_validator("directions")
    @classmethod
    def _directions(cls, directions: list[Direction]) -> list[Direction]:
        if not directions:
            raise ValueError("directions is empty; list some of " + ", ".join(d.value for d in Direction))
        if len(set(directions)) != len(directions):
            raise ValueError(f"directions has duplicates: {[d.value for d in directions]}")
        return directions


class GRPOLoss(NamedTuple):
    total: torch.Tensor  # L_pol + β · KL, scalar with gradient
    policy: torch.Tensor  # L_pol
    kl: torch.Tensor  # the (unweighted) KL penalty


def localization_rewards(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """r_i = −mean over coordinates of (p̂_i − p_i)²: (N, D) predictions, (N, D) or (D,) targets -> (N,)."""
    if predicted.ndim != 2:
        raise ValueError(f"predicted points must be (N, D), got shape {tuple(predicted.shape)}")
    target = target.expand_as(predicted) if target.ndim == 1 else target
    if target.shape != predicted.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match predicted "
                         f"{tuple(predicted.shape)}")
    if not torch.isfinite(predicted).all():
        raise ValueError("predicted points must be finite")
    return -((predicted - target) ** 2).mean(dim=1)


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4,
                     clip: float | None = None) -> torch.Tensor:
    """A_i = (r_i − mean_group) / (std_group + eps), clipped to ±clip; (N,) rewards in prompt-major groups."""
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size}")
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be (N,) with N a multiple of group_size {group_size}, "
                         f"got shape {tuple(rewards.shape)}")
    groups = rewards.reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    advantages = (centred / (groups.std(dim=1, keepdim=True) + eps)).reshape(-1)
    return advantages if clip is None else advantages.clamp(-clip, clip)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(token_t | ...): (N, T, V) logits, aligned so that logits[:, t] predicts tokens[:, t] -> (N, T).

    Logits are divided by the sampling `temperature` first, as trl does.
    """
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)


def sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's valid (mask = 1) entries: (N, T) -> (N,); a row with none gives 0."""
    if values.shape != mask.shape:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} differ in shape")
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def policy_loss(logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_pol = −mean_i A_i · (masked mean over t of logps[i, t]); advantages carry no gradient."""
    if advantages.shape != logps.shape[:1]:
        raise ValueError(f"advantages {tuple(advantages.shape)} must be (N,) for logps {tuple(logps.shape)}")
    return -(advantages.detach() * sequence_mean(logps, mask)).mean()


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor, clamp: float | None = 5.0) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ ‖ π_ref): exp(d) − d − 1 with d = clamp(ref_logps − logps, ±clamp)."""
    d = ref_logps.detach() - logps
    if clamp is not None:
        d = d.clamp(-clamp, clamp)
    return torch.exp(d) - d - 1.0


def kl_penalty(logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
               clamp: float | None = 5.0) -> torch.Tensor:
    """k3 KL averaged over each sequence's valid tokens, then over the sequences (a scalar)."""
    return sequence_mean(k3_kl(logps, ref_logps, clamp), mask).mean()


def grpo_loss(
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    kl_clamp: float | None = 5.0,
) -> GRPOLoss:
    """L = L_pol + β · KL for (N, T) token log-probs of the policy and the reference, (N,) advantages and an
    (N, T) mask of valid completion tokens."""
    if logps.shape != ref_logps.shape:
        raise ValueError(f"logps {tuple(logps.shape)} and ref_logps {tuple(ref_logps.shape)} differ in shape")
    pol = policy_loss(logps, advantages, mask)
    kl = kl_penalty(logps, ref_logps, mask, kl_clamp)
    return GRPOLoss(total=pol + beta * kl, policy=pol, kl=kl)

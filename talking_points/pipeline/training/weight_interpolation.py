"""Weight-space ensembling of a fine-tuned model with the model it started from (WiSE-FT: Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022): (1 - alpha) * start + alpha * fine-tuned, tensor by
tensor. Between the two ends a model often keeps most of what each end is good at (here: the default
localizer's in-style accuracy and the style-robust one's reading of other styles)."""

from __future__ import annotations

import torch

__all__ = ["interpolate_weights"]


def interpolate_weights(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float
                        ) -> dict[str, torch.Tensor]:
    """(1 - alpha) * start + alpha * tuned for every floating tensor of `tuned`; a tensor `start` lacks (or holds
    with another shape or dtype) and every integer buffer is taken from `tuned` as it is. A LoRA adapter's A and
    B matrices are interpolated one by one, as every other weight."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = {}
    for name, t in tuned.items():
        s = start.get(name)
        if s is not None and t.is_floating_point() and s.shape == t.shape and s.dtype == t.dtype:
            out[name] = torch.lerp(s.to(t.device), t, alpha)
        else:
            out[name] = t
    return out

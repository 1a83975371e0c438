"""The pixel decoder and dense heads of the tiny part-segmentation tower (the OMG-Seg stand-in).

A feature pyramid (FPN: lateral 1x1 convolutions, top-down upsampling and addition, a 3x3 smoothing
convolution per level) fuses the backbone's maps at its native strides (MobileNetV2: 4, 8, 16, 32) into
`dim`-channel maps, so that the fine levels carry what the coarse ones know (the object category) next to
what only they can resolve (the part, its borders). The dense heads read the finest level and predict, per
pixel, the object category and the part (a (category, part) pair), both with a background class 0.

`pretrain-vision` trains backbone + pixel decoder + heads on the training images' masks; the point models
then attend to the decoder's levels with the whole tower frozen, as the paper's models do with OMG-Seg.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PixelDecoder", "DenseHeads", "level_for_stride"]


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class PixelDecoder(nn.Module):
    """FPN over maps at `in_strides` (ascending) with `in_channels`; returns `dim`-channel maps per stride."""

    def __init__(self, in_channels: list[int], in_strides: list[int], dim: int):
        super().__init__()
        if list(in_strides) != sorted(in_strides) or len(in_channels) != len(in_strides):
            raise ValueError(f"pixel decoder: strides {in_strides} must ascend and match channels {in_channels}")
        self.in_strides = list(in_strides)
        self.dim = dim
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.smooth = nn.ModuleList(_conv_bn_relu(dim, dim, 3) for _ in in_channels)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """maps: one per `in_strides`, finest first; returns the fused maps in the same order."""
        out: list[torch.Tensor] = [None] * len(maps)  # type: ignore[list-item]
        top = None
        for i in reversed(range(len(maps))):
            x = self.lateral[i](maps[i])
            if top is not None:  # sizes need not be exact multiples (e.g. 144 px at stride 32 -> 5 rows)
                x = x + F.interpolate(top, size=x.shape[-2:], mode="bilinear", align_corners=False)
            top = x
            out[i] = self.smooth[i](x)
        return out


def level_for_stride(stride: int, levels: list[int]) -> int:
    """Index of the pyramid level a map at `stride` comes from: the level itself, else the coarsest level
    whose stride divides `stride` (the map is that level average-pooled by stride / level)."""
    if stride in levels:
        return levels.index(stride)
    fits = [i for i, s in enumerate(levels) if stride % s == 0]
    if not fits:
        raise ValueError(f"stride {stride} is not a multiple of any pyramid level {levels}")
    return fits[-1]


class DenseHeads(nn.Module):
    """Per-pixel logits of the object category and the (category, part) pair, each with background 0."""

    def __init__(self, dim: int, n_categories: int, n_parts: int):
        super().__init__()
        self.body = _conv_bn_relu(dim, dim, 3)
        self.category = nn.Conv2d(dim, n_categories + 1, 1)
        self.part = nn.Conv2d(dim, n_parts + 1, 1)

    def forward(self, fine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(fine)
        return self.category(h), self.part(h)

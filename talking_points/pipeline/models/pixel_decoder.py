"""The pixel decoder and dense heads of the tiny part-segmentation tower (the OMG-Seg stand-in).

A feature pyramid (FPN: lateral 1x1 convolutions, top-down upsampling and addition, a 3x3 smoothing
convolution per level) fuses the backbone's maps at its native strides (MobileNetV2: 4, 8, 16, 32) into
`dim`-channel maps, so that the fine levels carry what the coarse ones know (the object category) next to
what only they can resolve (the part, its borders). The dense heads read the finest level and predict, per
pixel, the object category and the part name (both with a background class 0) and the local look: the
pixel's palette colour, its brightness and its part's texture (what level 4 of a description says).

`pretrain-vision` trains backbone + pixel decoder + heads on the training images' masks; the point models
then attend to the decoder's levels with the whole tower frozen, as the paper's models do with OMG-Seg.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PixelDecoder", "DenseHeads", "dense_outputs", "level_for_stride"]


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


def dense_outputs(categories: list[str], parts: list[str], colours: list[str] = (), textures: list[str] = ()
                  ) -> dict[str, int]:
    """Output channels of every dense head for these class names: `category` and `part` (class 0 =
    background), `colour` (each pixel's palette colour), `luma` (one channel, the pixel's brightness through a
    sigmoid), `texture` (the part's painted texture; only where textures are annotated)."""
    out = {"category": len(categories) + 1, "part": len(parts) + 1}
    if colours:
        out["colour"] = len(colours)
        out["luma"] = 1
    if textures:
        out["texture"] = len(textures)
    return out


class DenseHeads(nn.Module):
    """Per-pixel outputs of the finest pyramid level: one 1x1 convolution per head over a shared 3x3 body."""

    def __init__(self, dim: int, outputs: dict[str, int]):
        super().__init__()
        self.body = _conv_bn_relu(dim, dim, 3)
        self.out = nn.ModuleDict({name: nn.Conv2d(dim, n, 1) for name, n in outputs.items()})

    def forward(self, fine: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(fine)
        return {name: conv(h) for name, conv in self.out.items()}

"""The local look: the raw pixels right around the point, for what the frozen tower does not encode.

The pretrained tower (`pretrain-vision`) is trained for category and part only, so its features say little
about the point's colour, brightness or texture, the last level of a description. The paper's descriptor sees
them through OMG-LLaVA's pixels; ours reads a small crop of the image centred on the point (bilinear, so a
sub-pixel point gets a sub-pixel crop), and a small MLP turns it into an embedding that goes into the
prompt as one more `<kpt>` token (a token of its own, as DAM gives its focal crop). It costs one tiny matrix
product per point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LookEncoder", "point_crop"]


def point_crop(images: torch.Tensor, points: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 3, side, side) floats in [0, 1]: the pixels of `images` (B, 3, H, W; uint8 or floats in [0, 1])
    on a side x side grid of one-pixel steps centred on `points` (B, 2; normalised, pixel centres at
    (col + 0.5) / W). Outside the image the border pixels repeat."""
    b, _, h, w = images.shape
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    steps = torch.arange(side, device=images.device, dtype=torch.float32) - (side - 1) / 2
    gx = (points[:, 0, None].float() + steps[None] / w) * 2 - 1  # (B, side)
    gy = (points[:, 1, None].float() + steps[None] / h) * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (B, side, side, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class LookEncoder(nn.Module):
    """side x side RGB crop -> an `out_dim` embedding (centred pixels, two linear layers)."""

    def __init__(self, side: int, hidden: int, out_dim: int):
        super().__init__()
        self.side = side
        self.net = nn.Sequential(nn.Linear(3 * side * side, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        crop = point_crop(images, points, self.side)
        return self.net((crop - 0.5).flatten(1))

"""Sinusoidal encodings of normalised 2-D positions (points and feature-map cells)."""

from __future__ import annotations

import math

import torch

__all__ = ["sinusoid_2d", "grid_centres"]


def sinusoid_2d(xy: torch.Tensor, dim: int, max_freq: float = 64.0) -> torch.Tensor:
    """Encode points `xy` (..., 2) in [0, 1] as (..., dim) sines/cosines at log-spaced frequencies.

    `dim` must be a multiple of 4 (sin and cos for x and for y).
    """
    if dim % 4:
        raise ValueError(f"sinusoid_2d needs dim divisible by 4, got {dim}")
    n = dim // 4
    freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), n, device=xy.device, dtype=torch.float32))
    ang = xy.float().unsqueeze(-1) * freqs * math.pi  # (..., 2, n)
    enc = torch.cat([ang.sin(), ang.cos()], dim=-1)  # (..., 2, 2n)
    return enc.flatten(-2).to(xy.dtype if xy.is_floating_point() else torch.float32)


def grid_centres(h: int, w: int, device=None) -> torch.Tensor:
    """(h*w, 2) normalised (x, y) centres of the cells of an h x w grid, in raster order."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(-1, 2)

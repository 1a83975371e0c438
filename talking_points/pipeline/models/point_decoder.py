"""The Point Descriptor's point-query decoder (paper §3.2).

A point query = learnable content embeddings + a positional embedding of the point (sinusoidal encoding of
(x, y) followed by a linear layer). N decoder layers each cross-attend from the queries to the multi-scale
image features under a fixed Gaussian boolean attention mask centred at the point, then self-attend among
the queries, then apply an FFN. The output tokens are the "keypoint feature"; the positional query is the
"region feature".

Attention masks (`AttentionMask`): `gaussian` (the paper's design), `object` (the paper's "w/o Gaussian mask"
ablation as OMG-LLaVA does it: the point prompt selects the object the tower segments at the point and the
query attends within that object's mask) and `none` (every key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat
from torch import nn

from talking_points.pipeline.config import Section
from talking_points.pipeline.models.positional import grid_centres, sinusoid_2d

__all__ = ["AttentionMask", "PointDecoderConfig", "PointQueryDecoder", "ScaleKeys", "factorised_cross_attention",
           "gaussian_key_mask", "logits_at", "object_key_mask", "object_mask_at", "region_geometry",
           "class_map_at", "region_at", "instance_context", "INSTANCE_FEATURES"]


class AttentionMask(str, Enum):
    gaussian = "gaussian"  # keys near the point only (the paper's design)
    object = "object"  # keys inside the object the tower segments at the point (OMG-LLaVA's point prompt)
    none = "none"  # every key


class PointDecoderConfig(Section):

    dim: int = Field(256, ge=8, description="decoder width; must be divisible by 4 and by heads")
    layers: int = Field(9, ge=1, description="decoder layers (paper: 9)")
    heads: int = Field(8, ge=1)
    queries: int = Field(1, ge=1, description="content query tokens per point (one <kpt> placeholder each); "
                         "a list of masks or sigmas sets it")
    ffn_mult: int = Field(4, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    attention_mask: AttentionMask | list[AttentionMask] = Field(
        AttentionMask.gaussian, description="the keys each query may attend; a list gives one per query "
        "(e.g. [gaussian, object]: one query reads the point's part, one the whole object)")
    sigma: PositiveFloat | list[PositiveFloat] = Field(
        0.1, description="Gaussian std as a fraction of the image size (normalised coords); a list gives each "
        "query its own (used by the queries whose mask is gaussian)")
    threshold: float = Field(0.1, gt=0, lt=1, description="keys where the Gaussian falls below this are masked")
    float32: bool = Field(True, description="run the decoder in float32 under a bf16 autocast (it is small; "
                          "bf16 rounds the positional encodings and attention scores that tell the point's cell "
                          "from its neighbours')")

    def model_post_init(self, __context) -> None:
        if self.dim % 4 or self.dim % self.heads:
            raise ValueError(f"point decoder dim {self.dim} must be divisible by 4 and by heads={self.heads}")
        lengths = {name: len(v) for name, v in (("attention_mask", self.attention_mask), ("sigma", self.sigma))
                   if isinstance(v, list)}
        if any(n == 0 for n in lengths.values()):
            raise ValueError(f"point decoder: empty list in {sorted(lengths)}; give a value or a non-empty list")
        if len(set(lengths.values())) > 1:
            raise ValueError(f"point decoder: one entry per query, but the lists have lengths {lengths}")
        if lengths:
            n = next(iter(lengths.values()))
            if "queries" in self.model_fields_set and self.queries != n:
                raise ValueError(f"point decoder: {n} per-query entries need queries {n} (or leave queries out), "
                                 f"got {self.queries}")
            self.queries = n

    @property
    def masks(self) -> list[AttentionMask]:
        """One attention mask per query."""
        m = self.attention_mask
        return list(m) if isinstance(m, list) else [m] * self.queries

    @property
    def sigmas(self) -> list[float]:
        """One Gaussian std per query."""
        return list(self.sigma) if isinstance(self.sigma, list) else [float(self.sigma)] * self.queries


def gaussian_key_mask(points: torch.Tensor, key_xy: list[torch.Tensor], sigma: float, threshold: float) -> torch.Tensor:
    """Boolean (B, S) mask, True where a key may be attended, over the keys of every scale concatenated.

    A key at normalised centre c is allowed when exp(-|c - p|^2 / (2 sigma^2)) >= threshold. The nearest key
    of every scale is always allowed, so no row is empty (an all-masked softmax row would give NaNs).
    """
    radius2 = 2.0 * sigma**2 * math.log(1.0 / threshold)
    allowed = []
    for xy in key_xy:  # (S_s, 2)
        d2 = ((points[:, None, :] - xy[None, :, :]) ** 2).sum(-1)  # (B, S_s)
        near = torch.zeros_like(d2, dtype=torch.bool).scatter_(1, d2.argmin(dim=1, keepdim=True), True)
        allowed.append((d2 <= radius2) | near)
    return torch.cat(allowed, dim=1)


def logits_at(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, C): dense logits (B, C, h, w) sampled bilinearly at normalised points (B, 2), in float32."""
    grid = (points.float() * 2 - 1).view(-1, 1, 1, 2)
    return F.grid_sample(logits.float(), grid, mode="bilinear", align_corners=False).flatten(1)


def class_map_at(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, h, w) bool: the cells the tower assigns to the class it sees at each point (the most likely
    non-background class of the logits sampled at the point, bilinear)."""
    cls = logits_at(logits, points)[:, 1:].argmax(dim=1) + 1
    return logits.argmax(dim=1) == cls.view(-1, 1, 1)


def object_mask_at(category_logits: torch.Tensor, points: torch.Tensor,
                   within: torch.Tensor | None = None) -> torch.Tensor:
    """(B, h, w) bool: the object the tower segments at each point, on the logits' grid (with part logits:
    the part).

    The point's class is the most likely non-background class of the logits sampled at the point
    (bilinear); the mask is the 8-connected region of cells predicted as that class (and inside `within`,
    (B, h, w) bool, when given: a part inside its object) that holds the point's cell, and always holds that
    cell (a point the tower calls background still gets its own cell).
    """
    return region_at(class_map_at(category_logits, points), points, within)


def region_at(same: torch.Tensor, points: torch.Tensor, within: torch.Tensor | None = None) -> torch.Tensor:
    """(B, h, w) bool: the 8-connected region of the cells of `same` ((B, h, w) bool, e.g. `class_map_at`; and
    of `within` when given) that holds each point's cell, and always holds that cell (`object_mask_at`)."""
    b, h, w = same.shape
    col = (points[:, 0].float() * w).long().clamp(0, w - 1)
    row = (points[:, 1].float() * h).long().clamp(0, h - 1)
    seed = torch.zeros(b, h, w, dtype=torch.bool, device=same.device)
    seed[torch.arange(b), row, col] = True
    region, allowed = seed, (same if within is None else same & within) | seed
    for _ in range(h * w):  # flood fill; stops when the region stops growing (about the object's diameter)
        grown = F.max_pool2d(region.float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1).bool() & allowed
        if torch.equal(grown, region):
            break
        region = grown
    return region


def region_geometry(region: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 8): a region's box (x0, y0, x1, y1 in normalised image coordinates, cell edges), its centre of mass
    (x, y) and the point's place in the box (0: left / top edge, 1: right / bottom edge) from a (B, h, w)
    bool mask that holds at least one cell per row (`object_mask_at` always holds the point's cell)."""
    b, h, w = region.shape
    dev = region.device
    cols, rows = region.any(dim=1), region.any(dim=2)  # (B, w), (B, h)
    ix, iy = torch.arange(w, device=dev), torch.arange(h, device=dev)
    x0 = torch.where(cols, ix, w).amin(dim=1) / w
    x1 = (torch.where(cols, ix, -1).amax(dim=1) + 1) / w
    y0 = torch.where(rows, iy, h).amin(dim=1) / h
    y1 = (torch.where(rows, iy, -1).amax(dim=1) + 1) / h
    m = region.float()
    n = m.sum(dim=(1, 2))
    cx = (m.sum(dim=1) * (ix + 0.5) / w).sum(dim=1) / n
    cy = (m.sum(dim=2) * (iy + 0.5) / h).sum(dim=1) / n
    px = ((points[:, 0].float() - x0) / (x1 - x0)).clamp(0, 1)
    py = ((points[:, 1].float() - y0) / (y1 - y0)).clamp(0, 1)
    return torch.stack([x0, y0, x1, y1, cx, cy, px, py], dim=1)


#: numbers `instance_context` gives (others' share of the class, whether there are any, their share on each
#: side of the object's centre, their centre of mass)
INSTANCE_FEATURES = 8


def instance_context(same: torch.Tensor, region: torch.Tensor, min_cells: int = 4) -> torch.Tensor:
    """(B, 8): where the other objects of the point's class lie relative to the point's object, from the cells
    of that class (`class_map_at`, (B, h, w) bool) and the object's own region (`object_mask_at`): the
    others' share of the class's cells, 1 when they have at least `min_cells` cells (else they count as none:
    stray cells), the share of their cells left of / right of / above / below the object's centre of mass, and
    their centre of mass (0.5 when there are none). What "the only dog", "the left one of the two dogs", "the
    second cat from the top" need and the point's own region does not say."""
    b, h, w = same.shape
    dev = same.device
    others = (same & ~region).float()
    mine = region.float()
    n_other, n_mine = others.sum(dim=(1, 2)), mine.sum(dim=(1, 2))
    xs = ((torch.arange(w, device=dev) + 0.5) / w).view(1, 1, w)
    ys = ((torch.arange(h, device=dev) + 0.5) / h).view(1, h, 1)
    cx = (mine * xs).sum(dim=(1, 2)) / n_mine
    cy = (mine * ys).sum(dim=(1, 2)) / n_mine
    any_other = n_other >= min_cells
    denom = n_other.clamp(min=1)

    def share(where: torch.Tensor) -> torch.Tensor:
        return torch.where(any_other, (others * where).sum(dim=(1, 2)) / denom, torch.zeros_like(denom))

    left, above = share(xs < cx.view(b, 1, 1)), share(ys < cy.view(b, 1, 1))
    right, below = share(xs > cx.view(b, 1, 1)), share(ys > cy.view(b, 1, 1))
    ox = torch.where(any_other, (others * xs).sum(dim=(1, 2)) / denom, torch.full_like(denom, 0.5))
    oy = torch.where(any_other, (others * ys).sum(dim=(1, 2)) / denom, torch.full_like(denom, 0.5))
    frac = torch.where(any_other, n_other / (n_other + n_mine), torch.zeros_like(denom))
    return torch.stack([frac, any_other.float(), left, right, above, below, ox, oy], dim=1)


def object_key_mask(object_mask: torch.Tensor, key_shapes: list[tuple[int, int]]) -> torch.Tensor:
    """Boolean (B, S) over the keys of every scale concatenated: True for a key whose cell overlaps the
    object mask (B, h, w). Every scale's grid must divide the mask's grid; the point's own cell is in the mask,
    so every row allows at least the key holding the point at every scale."""
    m = object_mask.float().unsqueeze(1)
    allowed = []
    for kh, kw in key_shapes:
        if m.shape[-2] % kh or m.shape[-1] % kw:
            raise ValueError(f"key grid {kh}x{kw} does not divide the object mask's {tuple(m.shape[-2:])}")
        allowed.append(F.adaptive_max_pool2d(m, (kh, kw)).flatten(1).bool())
    return torch.cat(allowed, dim=1)


@dataclass
class ScaleKeys:
    """One scale's keys, kept factorised: key i is `proj(feats[:, i]) + pos[i]`, its value `proj(feats[:, i])`."""

    feats: torch.Tensor  # (B, N, C) the map's cells
    proj: nn.Linear  # C -> dim, trainable
    pos: torch.Tensor  # (N, dim) the cells' positional embedding (with the scale's embedding)


def factorised_cross_attention(mha: nn.MultiheadAttention, query: torch.Tensor, scales: list[ScaleKeys],
                               allowed: torch.Tensor | None) -> torch.Tensor:
    """What `mha(query, keys + pos, keys, attn_mask=~allowed)` computes, without projecting any key.

    With keys `proj(f) + pos` and linear key / value projections, each head's score of a key is
    `q_h . (W_k^h (P f + b + pos)) = (P^T W_k^h^T q_h) . f + (W_k^h^T q_h) . (b + pos)` (the key bias adds a
    constant per query, which softmax ignores), and its output is `W_v^h (P (sum_i a_i f_i) + (sum_i a_i) b)`.
    So the queries are carried into feature space instead of every key into the model's: per query and head
    the cost is O(N C) where projecting the keys costs O(N C dim + N dim^2) per layer; exact up to rounding
    (tests/test_vision_pretraining.py compares it with nn.MultiheadAttention on projected keys). No key is
    gathered, so a dense mask costs the same as a local one and the backward pass has no index scatter.

    query: (B, Q, dim) already holding its positional part; allowed: (B, Q, N_total) bool, True where the
    query may attend (every row must allow at least one key), or None for every key. Returns (B, Q, dim).
    """
    b, nq, d = query.shape
    heads = mha.num_heads
    dh = d // heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, _, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(query, w_q, b_q).view(b, nq, heads, dh).transpose(1, 2) * dh**-0.5  # (B, H, Q, dh)
    u = (q @ w_k.view(heads, dh, d)).reshape(b, heads * nq, d)  # each head's query in the keys' space
    scores = torch.cat([(u @ sk.proj.weight) @ sk.feats.transpose(1, 2) + u @ (sk.pos + sk.proj.bias).T
                        for sk in scales], dim=-1).view(b, heads, nq, -1)  # (B, H, Q, N)
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    attn = F.dropout(torch.softmax(scores, dim=-1), mha.dropout, mha.training).view(b, heads * nq, -1)
    ctx, offset = 0, 0
    for sk in scales:
        a = attn[..., offset : offset + sk.feats.shape[1]]
        ctx = ctx + (a @ sk.feats) @ sk.proj.weight.T + a.sum(-1, keepdim=True) * sk.proj.bias
        offset += sk.feats.shape[1]
    out = ctx.view(b, heads, nq, d) @ w_v.view(heads, dh, d).transpose(1, 2) + b_v.view(heads, 1, dh)
    return mha.out_proj(out.transpose(1, 2).reshape(b, nq, d))


class _Layer(nn.Module):
    def __init__(self, cfg: PointDecoderConfig):
        super().__init__()
        d = cfg.dim
        self.norm_q = nn.LayerNorm(d)
        self.cross = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_s = nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_f = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d * cfg.ffn_mult), nn.GELU(), nn.Linear(d * cfg.ffn_mult, d))

    def forward(self, q, q_pos, scales: list[ScaleKeys], allowed: torch.Tensor | None):
        h = self.norm_q(q)
        q = q + factorised_cross_attention(self.cross, h + q_pos, scales, allowed)
        h = self.norm_s(q)
        q = q + self.self_attn(h + q_pos, h + q_pos, h, need_weights=False)[0]
        return q + self.ffn(self.norm_f(q))


class PointQueryDecoder(nn.Module):
    def __init__(self, feature_channels: list[int], cfg: PointDecoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.in_proj = nn.ModuleList(nn.Linear(c, d) for c in feature_channels)
        self.scale_embed = nn.Parameter(torch.zeros(len(feature_channels), d))
        self.content = nn.Parameter(torch.randn(cfg.queries, d) * 0.02)
        self.pos_proj = nn.Linear(d, d)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)

    def allowed_keys(self, maps: list[torch.Tensor], points: torch.Tensor,
                     category_logits: torch.Tensor | None = None) -> torch.Tensor | None:
        """Boolean (B, queries, S) over the keys of every scale concatenated, each query per its own
        `attention_mask` (None: every query may attend every key)."""
        masks = self.cfg.masks
        if all(m is AttentionMask.none for m in masks):
            return None
        key_xy = [grid_centres(*m.shape[-2:], m.device) for m in maps]
        b, s = points.shape[0], sum(len(xy) for xy in key_xy)
        whole = None
        rows = []
        for mode, sigma in zip(masks, self.cfg.sigmas):
            if mode is AttentionMask.gaussian:
                rows.append(gaussian_key_mask(points.float(), key_xy, sigma, self.cfg.threshold))
            elif mode is AttentionMask.object:
                if category_logits is None:
                    raise ValueError("attention_mask 'object' needs the tower's category logits")
                if whole is None:
                    whole = object_key_mask(object_mask_at(category_logits, points),
                                            [tuple(m.shape[-2:]) for m in maps])
                rows.append(whole)
            elif mode is AttentionMask.none:
                rows.append(torch.ones(b, s, dtype=torch.bool, device=points.device))
            else:
                raise ValueError(f"unknown attention_mask {mode!r}")
        return torch.stack(rows, dim=1)

    def scale_keys(self, maps: list[torch.Tensor]) -> list[ScaleKeys]:
        """Every scale's keys in factorised form (`factorised_cross_attention`)."""
        out = []
        for s, (m, proj) in enumerate(zip(maps, self.in_proj)):
            pos = sinusoid_2d(grid_centres(*m.shape[-2:], m.device), self.cfg.dim) + self.scale_embed[s]
            feats = m.flatten(2).transpose(1, 2).to(proj.weight.dtype)  # (B, S_s, C_s)
            out.append(ScaleKeys(feats, proj, pos.to(feats.dtype)))
        return out

    def forward(self, maps: list[torch.Tensor], points: torch.Tensor,
                category_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """maps: per-scale (B, C_s, H_s, W_s); points: (B, 2) normalised (x, y); category_logits: the tower's
        (B, C, h, w) dense category logits, needed by the `object` mask.

        Returns (keypoint feature (B, queries, dim), region feature (B, 1, dim)).
        """
        if self.cfg.float32 and torch.is_autocast_enabled(points.device.type):
            with torch.autocast(points.device.type, enabled=False):
                return self._decode([m.float() for m in maps], points.float(), category_logits)
        return self._decode(maps, points, category_logits)

    def _decode(self, maps, points, category_logits):
        b, d = points.shape[0], self.cfg.dim
        allowed = self.allowed_keys(maps, points, category_logits)
        scales = self.scale_keys(maps)
        dtype = scales[0].feats.dtype
        region = self.pos_proj(sinusoid_2d(points, d).to(dtype)).unsqueeze(1)  # (B, 1, d)
        q = self.content.unsqueeze(0).expand(b, -1, -1).to(dtype)
        q_pos = region.expand(-1, self.cfg.queries, -1)
        for layer in self.layers:
            q = layer(q, q_pos, scales, allowed)
        return self.norm(q), region

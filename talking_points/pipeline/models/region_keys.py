"""Where every cell lies in what the tower segments: the localizer's per-cell view of "which object, which of its
parts, and where in them".

The descriptor reads these facts at its one point (`point_decoder.region_geometry`, `instance_context`: the
box of the object and of the part there, the point's place in them, where the other objects of its category
and the other parts of its name lie). A localizer has to go the other way: from "the left dog of the two, the
top end of its tail" to a cell. `region_key_features` gives every cell of a grid the same numbers, computed
for the object and the part the cell belongs to, so that each of those clauses is a feature a query can match
linearly (others of the category to the right: "the left one"; the cell near the top of its part's box: "the
top end"), instead of something the language model must work out from the image tokens.

Objects are the 8-connected regions of cells the tower gives one category (background excluded); parts the
8-connected regions of cells of one part name inside one object. The regions come from the argmax of the
tower's logits (no gradient), on the logits' own grid, then averaged onto the grid asked for.

`rank_maps` gives every cell the ranks its object (part) has among the others of its category (of its name in
the object), as a description counts them ("the lower of the two horses"): what the label gate's instance heads
(`label_gate.InstanceHeads`) weigh the heat map by.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RANK_AXES", "RANK_CLASSES", "RANK_LAYOUT", "RANK_MAX_COUNT", "REGION_KEY_FEATURES", "image_rank_maps",
           "rank_class", "rank_classes", "rank_maps", "region_key_features"]

#: per level (the object, then the part): inside one (1), its box (4), its centre of mass (2), the cell's place
#: in the box (2), the others of its class: their share of the class's cells, whether there are any, the share
#: of their cells left of / right of / above / below the region's centre of mass (4), their centre of mass (2)
_LEVEL = 1 + 4 + 2 + 2 + 1 + 1 + 4 + 2
REGION_KEY_FEATURES = 2 * _LEVEL


def _components(labels: np.ndarray) -> np.ndarray:
    """(h, w) int32: an id per 8-connected region of cells that share one non-zero label (0: label 0)."""
    out = np.zeros(labels.shape, np.int32)
    next_id = 1
    for value in np.unique(labels):
        if value == 0:
            continue
        n, comp = cv2.connectedComponents((labels == value).astype(np.uint8), connectivity=8)
        out[comp > 0] = comp[comp > 0] + (next_id - 1)
        next_id += n - 1
    return out


def _level(regions: np.ndarray, classes: np.ndarray, xs: np.ndarray, ys: np.ndarray, min_cells: int
           ) -> np.ndarray:
    """(_LEVEL, h, w) float32: each cell's region features (`_LEVEL`); `regions` the ids of `_components`,
    `classes` what makes two regions "others of the same class" (the category; the object and the part name).
    Vectorised over the regions (a noisy map has hundreds of stray ones)."""
    h, w = regions.shape
    out = np.zeros((_LEVEL, h, w), np.float32)
    n_reg = int(regions.max())
    if n_reg == 0:
        return out
    lab = regions.ravel()
    inside = lab > 0
    lab_in = lab[inside]
    cx_cell = np.broadcast_to(xs[None, :], (h, w)).ravel()[inside]
    cy_cell = np.broadcast_to(ys[:, None], (h, w)).ravel()[inside]
    col = np.broadcast_to(np.arange(w)[None, :], (h, w)).ravel()[inside]
    row = np.broadcast_to(np.arange(h)[:, None], (h, w)).ravel()[inside]
    size = n_reg + 1
    n = np.bincount(lab_in, minlength=size).astype(np.float64)
    n_safe = np.maximum(n, 1)
    sx, sy = np.bincount(lab_in, cx_cell, size), np.bincount(lab_in, cy_cell, size)
    cx, cy = sx / n_safe, sy / n_safe
    x0, y0 = np.full(size, w), np.full(size, h)
    x1, y1 = np.full(size, -1), np.full(size, -1)
    np.minimum.at(x0, lab_in, col)
    np.minimum.at(y0, lab_in, row)
    np.maximum.at(x1, lab_in, col)
    np.maximum.at(y1, lab_in, row)
    x0, x1, y0, y1 = x0 / w, (x1 + 1) / w, y0 / h, (y1 + 1) / h
    # the others of each region's class: the class's totals less the region's own
    _, cls_idx = np.unique(classes.ravel()[inside], return_inverse=True)
    reg_cls = np.zeros(size, np.int64)
    reg_cls[lab_in] = cls_idx
    n_cls = np.bincount(cls_idx).astype(np.float64)
    sx_cls, sy_cls = np.bincount(cls_idx, cx_cell), np.bincount(cls_idx, cy_cell)
    n_other = n_cls[reg_cls] - n
    shares = np.zeros((4, size))
    for k in range(len(n_cls)):  # per class: its cells left of / right of / above / below each region's centre
        of_k = cls_idx == k
        ox, oy = np.sort(cx_cell[of_k]), np.sort(cy_cell[of_k])
        regs = np.unique(lab_in[of_k])
        shares[0, regs] = np.searchsorted(ox, cx[regs], side="left")
        shares[1, regs] = len(ox) - np.searchsorted(ox, cx[regs], side="right")
        shares[2, regs] = np.searchsorted(oy, cy[regs], side="left")
        shares[3, regs] = len(oy) - np.searchsorted(oy, cy[regs], side="right")
    own = np.stack([np.bincount(lab_in, cx_cell < cx[lab_in], size), np.bincount(lab_in, cx_cell > cx[lab_in], size),
                    np.bincount(lab_in, cy_cell < cy[lab_in], size), np.bincount(lab_in, cy_cell > cy[lab_in], size)])
    some = n_other >= min_cells  # fewer: stray cells, as `point_decoder.instance_context`
    denom = np.maximum(n_other, 1)
    others = np.concatenate([
        np.where(some, n_other / (n_other + n_safe), 0.0)[None], some[None].astype(np.float64),
        np.where(some, (shares - own) / denom, 0.0),
        np.where(some, (sx_cls[reg_cls] - sx) / denom, 0.5)[None],
        np.where(some, (sy_cls[reg_cls] - sy) / denom, 0.5)[None],
    ])
    per_region = np.concatenate([np.ones((1, size)), x0[None], y0[None], x1[None], y1[None], cx[None], cy[None]])
    cells = np.concatenate([per_region, others])[:, lab_in]  # (15, cells inside)
    place = np.stack([((cx_cell - x0[lab_in]) / (x1 - x0)[lab_in]).clip(0, 1),
                      ((cy_cell - y0[lab_in]) / (y1 - y0)[lab_in]).clip(0, 1)])
    flat = out.reshape(_LEVEL, -1)
    flat[:7, inside] = cells[:7]
    flat[7:9, inside] = place
    flat[9:, inside] = cells[7:]
    return out


def image_region_features(category: np.ndarray, part: np.ndarray, min_cells: int = 4) -> np.ndarray:
    """(REGION_KEY_FEATURES, h, w) float32 of one image from the tower's (h, w) category and part labels
    (0: background): the object level, then the part level (zeros where a cell is in none)."""
    h, w = category.shape
    xs, ys = (np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h
    objects = _components(category)
    named_part = np.where((objects > 0) & (part > 0), objects.astype(np.int64) * (int(part.max()) + 1) + part, 0)
    parts = _components(named_part)
    return np.concatenate([_level(objects, category, xs, ys, min_cells),
                           _level(parts, named_part, xs, ys, min_cells)])


def region_key_features(category_logits: torch.Tensor, part_logits: torch.Tensor, size: tuple[int, int],
                        min_cells: int = 4) -> torch.Tensor:
    """(B, REGION_KEY_FEATURES, *size) float32 on the logits' device: every cell's object and part features
    (`image_region_features`) from the tower's (B, C, h, w) category and part logits, averaged onto `size` when
    the logits' grid differs. Computed on the CPU (a few milliseconds per image), no gradient."""
    with torch.no_grad():
        cats = category_logits.argmax(dim=1).cpu().numpy()
        parts = part_logits.argmax(dim=1).cpu().numpy()
        feats = torch.from_numpy(np.stack([image_region_features(c, p, min_cells) for c, p in zip(cats, parts)]))
        feats = feats.to(category_logits.device)
        if tuple(feats.shape[-2:]) != tuple(size):
            feats = F.adaptive_avg_pool2d(feats, size)
    return feats


#: the instance ranks a description can name: the only one of its kind, or the k-th from one end of n along one
#: of `keypoints.geometry`'s orders (left to right, top to bottom, largest first), for n up to `RANK_MAX_COUNT` and
#: k up to half of n (the nearer end: "the second of the five fruits from the right")
RANK_AXES = ("lr", "tb", "size")
RANK_MAX_COUNT = 6
#: (axis, from the far end, k, n) of each rank class after the first, the lone instance (-1, 0, 1, 1)
RANK_LAYOUT = ((-1, 0, 1, 1),) + tuple((a, e, k, n) for a in range(len(RANK_AXES)) for e in (0, 1)
                                       for n in range(2, RANK_MAX_COUNT + 1) for k in range(1, (n + 1) // 2 + 1))
RANK_CLASSES = len(RANK_LAYOUT)


def rank_class(axis: str, from_end: bool, k: int, n: int) -> int:
    """The index of a rank class in `RANK_LAYOUT` (n 1: the lone instance, whatever the rest)."""
    return 0 if n == 1 else RANK_LAYOUT.index((RANK_AXES.index(axis), int(from_end), k, n))


def rank_classes(count: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """(B, RANK_CLASSES) bool: the rank classes an instance with 1-based `ranks` (B, len(RANK_AXES)) among `count`
    (B,) of its kind has (one per axis, two for the middle one of an odd count; the lone class alone for a count
    of 1). A row whose count is below 1 (a missing label) or above `RANK_MAX_COUNT` has none."""
    layout = torch.tensor(RANK_LAYOUT, device=ranks.device)  # (R, 4)
    axis, end, k, n = layout.clamp_min(0).unbind(-1)
    from_ends = torch.stack([ranks, count.unsqueeze(-1) - ranks + 1], dim=-1)  # (B, axes, 2)
    return (count.unsqueeze(-1) == n) & ((from_ends[:, axis, end] == k) | (layout[:, 0] < 0))


def _class_rank_maps(regions: np.ndarray, classes: np.ndarray, min_cells: int) -> np.ndarray:
    """(RANK_CLASSES, h, w) float32: the rank classes of every cell among the cells of its class (`classes`, 0:
    none). For each count n: where the class has exactly n regions of at least `min_cells` cells (`regions`, the
    ids of `_components`), each region's ranks as `keypoints.geometry` ranks instances (box centre x then y;
    centre y then x; size, largest first); where it has another number (touching instances merge into one
    region; stray cells add one) the k-th n-th of the class's cells along the axis (its cells' share left of /
    above the cell), and every cell of the class for size. The lone class: every cell of a class."""
    h, w = regions.shape
    out = np.zeros((RANK_CLASSES, h * w), np.float32)
    flat_cls, flat_reg = classes.ravel(), regions.ravel()
    n_reg = int(regions.max())
    cells = np.bincount(flat_reg, minlength=n_reg + 1)
    row, col = np.divmod(np.arange(h * w), w)
    lo, hi = np.full((2, n_reg + 1), max(h, w)), np.full((2, n_reg + 1), -1)
    for axis, coord in enumerate((col, row)):
        np.minimum.at(lo[axis], flat_reg, coord)
        np.maximum.at(hi[axis], flat_reg, coord)
    box = (lo + hi).T  # twice each region's box centre (x, y): the order is the same
    layout = np.array(RANK_LAYOUT[1:])  # (R - 1, 4)
    axis, end, k, n = layout.T
    inside = np.flatnonzero(flat_cls > 0)
    if not len(inside):
        return out.reshape(RANK_CLASSES, h, w)
    _, group = np.unique(flat_cls[inside], return_inverse=True)  # each cell's class, numbered from 0
    size = np.bincount(group)
    hit = np.empty((len(layout), len(inside)), bool)
    # the k-th n-th of the class's cells from the end: each cell's share of its class's cells before it along the
    # axis, all classes at once (sorted by class, then coordinate)
    for a, coord in enumerate((col[inside], row[inside])):
        key = group * (max(h, w) + 1) + coord
        ordered = np.sort(key)
        start = np.searchsorted(ordered, group * (max(h, w) + 1))
        share = (np.searchsorted(ordered, key, "left") + np.searchsorted(ordered, key, "right") - 2 * start) / (
            2 * size[group])
        for e, along in enumerate((share, 1.0 - share)):
            rows = (axis == a) & (end == e)
            hit[rows] = np.minimum(np.floor(along[None] * n[rows, None]), n[rows, None] - 1) == k[rows, None] - 1
    hit[axis == 2] = True  # size: nothing to go by but the regions
    # where a class has 2 to RANK_MAX_COUNT regions of min_cells, the classes of that count: the regions' own ranks
    reg = flat_reg[inside]
    kept_region = (reg > 0) & (cells[reg] >= max(min_cells, 1))
    pairs = np.unique(np.stack([group[kept_region], reg[kept_region]]), axis=1)  # (class, region), each once
    counts = np.bincount(pairs[0], minlength=len(size))
    for g in np.flatnonzero((counts >= 2) & (counts <= RANK_MAX_COUNT)):
        kept = pairs[1, pairs[0] == g]  # sorted
        count = len(kept)
        ranks = np.empty((3, count), np.int64)
        for a, order in enumerate((np.lexsort((box[kept, 1], box[kept, 0])), np.lexsort((box[kept, 0], box[kept, 1])),
                                   np.argsort(-cells[kept], kind="stable"))):
            ranks[a, order] = np.arange(1, count + 1)
        from_ends = np.stack([ranks, count + 1 - ranks], 1)  # (3, 2, count)
        mine = np.flatnonzero(group == g)
        at = np.searchsorted(kept, reg[mine]).clip(0, count - 1)
        counted = np.flatnonzero(n == count)
        hit[np.ix_(counted, mine)] = (from_ends[axis[counted], end[counted]][:, at] == k[counted, None]) & (
            kept[at] == reg[mine])[None]  # a cell outside the kept regions (stray): none
    out[1:, inside] = hit
    out[0, inside] = 1.0
    return out.reshape(RANK_CLASSES, h, w)


def image_rank_maps(category: np.ndarray, part: np.ndarray, min_cells: int = 4) -> np.ndarray:
    """(2, RANK_CLASSES, h, w) float32 of one image from the tower's (h, w) category and part labels: each cell's
    object's rank classes among the objects of its category, then its part's among the parts of that name in its
    object (the components of `image_region_features`; zeros where a cell is in none)."""
    objects = _components(category)
    named_part = np.where((objects > 0) & (part > 0), objects.astype(np.int64) * (int(part.max()) + 1) + part, 0)
    parts = _components(named_part)
    return np.stack([_class_rank_maps(regions, classes, min_cells)
                     for regions, classes in ((objects, category), (parts, named_part))])


def _dilate(marks: np.ndarray, reach: int) -> np.ndarray:
    """`marks` (..., h, w) bool with every cell also taking the marks within `reach` cells (a square window): the
    max-pool of `label_gate.gate_map`, as bitwise ORs of shifted copies (a tenth of a float max-pool's time)."""
    out = marks.copy()
    for axis in (-1, -2):
        rows = out.copy()
        for shift in range(1, reach + 1):
            ahead = [slice(None)] * out.ndim
            behind = [slice(None)] * out.ndim
            ahead[axis], behind[axis] = slice(shift, None), slice(None, -shift)
            out[tuple(ahead)] |= rows[tuple(behind)]
            out[tuple(behind)] |= rows[tuple(ahead)]
    return out


def rank_maps(category_logits: torch.Tensor, part_logits: torch.Tensor, size: tuple[int, int], reach: int,
              min_cells: int = 4) -> torch.Tensor:
    """(B, 2, RANK_CLASSES, *size) float32 on the logits' device: `image_rank_maps` of the tower's argmax labels,
    max-pooled onto `size` when the logits' grid differs, then each cell taking the classes of every region
    within `reach` cells (keypoints lie on outlines, as `label_gate.gate_map`). No gradient."""
    with torch.no_grad():
        cats = category_logits.argmax(dim=1).cpu().numpy()
        parts = part_logits.argmax(dim=1).cpu().numpy()
        maps = np.stack([image_rank_maps(c, p, min_cells) for c, p in zip(cats, parts)])
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.adaptive_max_pool2d(torch.from_numpy(maps).flatten(1, 2), size).unflatten(1, maps.shape[1:3])
            maps = maps.numpy()
        if reach:
            maps = _dilate(maps > 0, reach).astype(np.float32)
    return torch.from_numpy(maps).to(category_logits.device)

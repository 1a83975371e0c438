"""Probe: how often the tower's rank maps hold the instance a keypoint is on, and what they cost (what the
instance heads of `model.heatmap_instance_gate` trust; `models/region_keys.rank_maps`).

    python benchmarks/probe_rank_maps.py [--base models/base] [--split test] [--batch 16]

For every row of `data/split/<split>.parquet`: whether the rank map at the row's point (within the gate's reach)
holds every rank class of the row's instance (`region_keys.rank_classes` of its `n_same` / `order_*` columns,
and of its part's `n_same_part` / `part_order_*`), for keypoints on an object with others of its category (a
part with others of its name) and alone. Then, per (image, category) with several instances, how the number of
the tower's regions of at least 4 cells compares with the number of instances (touching instances merge), and
the milliseconds per image of `rank_maps` in batches of `--batch`. The tower's features come from the feature
cache (`TP_FEATURE_CACHE`) when it holds them.
"""

from __future__ import annotations

import argparse
import collections
import os
import time

import numpy as np
import torch

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from probe_tower_labels import dense_tower, tower_features  # noqa: E402  (benchmarks/ is the script's path)

from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.models.label_gate import GATE_REACH  # noqa: E402
from talking_points.pipeline.models.region_keys import _components, rank_classes, rank_maps  # noqa: E402
from talking_points.pipeline.training.steps import RANK_LABELS, gate_labels  # noqa: E402


def held_at_points(maps: torch.Tensor, image_of_row: np.ndarray, points: np.ndarray, has: torch.Tensor
                   ) -> np.ndarray:
    """(rows,) bool: whether the (N_images, R, h, w) maps hold every class of `has` (rows, R) at each row's point
    (normalised x, y); rows with no class count as not held."""
    h, w = maps.shape[-2:]
    xs = np.clip((points[:, 0] * w).astype(int), 0, w - 1)
    ys = np.clip((points[:, 1] * h).astype(int), 0, h - 1)
    at = maps[torch.tensor(image_of_row), :, torch.tensor(ys), torch.tensor(xs)] > 0.5  # (rows, R)
    return ((at | ~has).all(-1) & has.any(-1)).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--split", default="test")
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    vlm, gated = dense_tower(a.base)
    cats, parts = list(vlm.config.dense_categories), list(vlm.config.dense_parts)
    rows = gate_labels(read_table(f"data/split/{a.split}.parquet", schema.SAMPLES, f"{a.split} split"), cats, parts,
                       ranks=True)
    feats, image_of_row = tower_features(vlm, gated, rows["file"])
    cat_logits, part_logits = feats.category_logits, feats.part_logits
    n_images, grid = len(cat_logits), tuple(cat_logits.shape[-2:])
    start = time.perf_counter()
    maps = torch.cat([rank_maps(cat_logits[s:s + a.batch], part_logits[s:s + a.batch], grid, GATE_REACH)
                      for s in range(0, n_images, a.batch)])
    per_image = (time.perf_counter() - start) / n_images * 1000
    points = rows[["x_norm", "y_norm"]].to_numpy(np.float64)
    for level, (count, *ranks) in zip(("object", "part"), RANK_LABELS):
        has = rank_classes(torch.tensor(rows[count].to_numpy()), torch.tensor(rows[ranks].to_numpy()))
        held = held_at_points(maps[:, int(level == "part")], image_of_row, points, has)
        several = rows[count].to_numpy() > 1
        print(f"{level:6s} every class of the instance at its keypoint: {held[several].mean():.1%} of "
              f"{several.sum()} with others, {held[~several & (rows[count].to_numpy() == 1)].mean():.1%} alone")
    # regions against instances, per (image, category) with several instances
    index = {name.replace("_", " "): i + 1 for i, name in enumerate(cats)}
    tally = collections.Counter()
    for _, row in rows.assign(image=image_of_row).drop_duplicates(["image", "category"]).iterrows():
        if row["n_same"] < 2 or str(row["category"]) not in index:
            continue
        labels = cat_logits[row["image"]].argmax(0).numpy()
        regions = _components((labels == index[str(row["category"])]).astype(np.int64))
        sizes = np.bincount(regions.ravel())[1:]
        tally[int((sizes >= 4).sum()) - int(row["n_same"])] += 1
    print("regions of >= 4 cells minus instances, (image, category) pairs with several:",
          ", ".join(f"{d:+d}: {n}" for d, n in sorted(tally.items())))
    print(f"rank_maps: {per_image:.2f} ms per image on the {grid[0]} x {grid[1]} grid, batches of {a.batch}")


if __name__ == "__main__":
    main()

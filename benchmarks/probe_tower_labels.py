"""Probe: how often the tower's dense heads name a keypoint's category and part, per split (what the label gate
of `model.heatmap_gate` trusts).

    python benchmarks/probe_tower_labels.py [--base models/base] [--splits train test]

For every row of `data/split/<split>.parquet`: the tower's argmax class at the row's point on its dense grid,
against the row's own `category` and `part` (as the tower's class ids, `training.steps.gate_labels`; names
the tower lacks are left out), and the mean probability the tower gives the true class there. A gate trained
on rows where the tower is right more often than on the test rows would learn to trust it too much; equal
figures on both splits rule that out. The tower's features come from the feature cache (`TP_FEATURE_CACHE`)
when it holds them.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.models.base import PointVLM, VisionFeatures  # noqa: E402
from talking_points.pipeline.models.feature_store import FeatureStore  # noqa: E402
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer  # noqa: E402
from talking_points.pipeline.models.point_model import load_base  # noqa: E402
from talking_points.pipeline.training.data import load_image  # noqa: E402
from talking_points.pipeline.training.steps import GATE_LABELS, gate_labels  # noqa: E402


def label_hits(logits: torch.Tensor, image_of_row: np.ndarray, points: np.ndarray, want: np.ndarray
               ) -> tuple[float, float, int]:
    """(accuracy of the argmax class, mean probability of the true class, rows scored) at each row's point
    (normalised x, y) on the (N_images, C, h, w) logits; rows whose label is -100 are left out."""
    h, w = logits.shape[-2:]
    xs = np.clip((points[:, 0] * w).astype(int), 0, w - 1)
    ys = np.clip((points[:, 1] * h).astype(int), 0, h - 1)
    at = torch.softmax(logits.float(), dim=1)[torch.tensor(image_of_row), :, torch.tensor(ys),
                                              torch.tensor(xs)]  # (rows, C)
    keep = want != -100
    at, target = at[torch.tensor(keep)], torch.tensor(want[keep])
    hit = (at.argmax(-1) == target).float().mean()
    return float(hit), float(at.gather(1, target[:, None]).mean()), int(keep.sum())


def dense_tower(base: str) -> tuple[PointVLM, PointLocalizer]:
    """The base's VLM and a gated localizer on it, which reads the tower as the gate does (its dense logits; the
    feature cache's entry); exits when the tower has no dense heads."""
    vlm, _ = load_base(base)
    if not vlm.has_dense_heads:
        raise SystemExit(f"{base}: its tower has no dense heads (pretrain-vision); nothing to probe")
    gated = PointLocalizer(vlm, LocalizerConfig(head="heatmap", heatmap_stride=min(vlm.config.strides),
                                                heatmap_gate=True)).eval()
    return vlm, gated


def tower_features(vlm: PointVLM, gated: PointLocalizer, files: pd.Series) -> tuple[VisionFeatures, np.ndarray]:
    """The tower's features of each distinct image of `files` (from the feature cache when it holds them) and the
    index of each row's image in them."""
    uniq = list(dict.fromkeys(files.astype(str)))
    size = tuple(vlm.config.image_size)
    images = np.stack([load_image(f, size) for f in uniq])
    with torch.no_grad():
        feats = FeatureStore.from_env().features(gated, images)
    return feats, files.astype(str).map({f: i for i, f in enumerate(uniq)}).to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--splits", nargs="+", default=["train", "test"])
    a = ap.parse_args()
    vlm, gated = dense_tower(a.base)
    cats, parts = list(vlm.config.dense_categories), list(vlm.config.dense_parts)
    for split in a.splits:
        rows = gate_labels(read_table(f"data/split/{split}.parquet", schema.SAMPLES, f"{split} split"), cats, parts)
        feats, image_of_row = tower_features(vlm, gated, rows["file"])
        points = rows[["x_norm", "y_norm"]].to_numpy(np.float64)
        for name, logits, column in (("category", feats.category_logits, GATE_LABELS[0]),
                                     ("part", feats.part_logits, GATE_LABELS[1])):
            acc, p_true, n = label_hits(logits, image_of_row, points, rows[column].to_numpy())
            print(f"{split:5s} {name:8s} right at {acc:.1%} of {n} keypoints, mean p(true class) {p_true:.3f}")


if __name__ == "__main__":
    main()

"""How good the tower is: pixel accuracy and mIoU of both maps on held-out images, and the category and part
it gives the exact keypoints (logits sampled bilinearly at the point, as the point decoder reads them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from talking_points.pipeline.vision_pretraining.data import DenseImages
from talking_points.pipeline.vision_pretraining.labels import IGNORE, LabelSet
from talking_points.pipeline.vision_pretraining.train import DenseTower, upsampled

__all__ = ["confusion", "miou", "point_logits", "evaluate_tower"]


def confusion(pred: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts of (truth, prediction) over the pixels whose truth is not IGNORE."""
    keep = truth != IGNORE
    idx = truth[keep].astype(np.int64) * n + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def miou(conf: np.ndarray) -> float:
    """Mean IoU over the classes that occur in the truth (background included)."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = conf.sum(1) > 0
    return float((inter[present] / np.maximum(union[present], 1)).mean()) if present.any() else float("nan")


def point_logits(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Logits (B, C) at normalised points (B, 2) of maps (B, C, h, w), bilinear (pixel-centre convention)."""
    grid = (points * 2 - 1).view(-1, 1, 1, 2).to(logits.dtype)
    return F.grid_sample(logits, grid, mode="bilinear", align_corners=False).flatten(1)


@torch.no_grad()
def evaluate_tower(model: DenseTower, data: DenseImages, keypoints: pd.DataFrame, labels: LabelSet,
                   batch_size: int = 64) -> dict:
    """Pixel accuracy, mIoU (category and part maps) over `data`; accuracy of the category and of the part at
    `keypoints` (columns image_id, x_norm, y_norm, category, part) of those images; the majority-class rate
    of each at the keypoints, for comparison."""
    model.eval()
    n_cat, n_part = len(labels.categories) + 1, len(labels.parts) + 1
    conf_c, conf_p = np.zeros((n_cat, n_cat), np.int64), np.zeros((n_part, n_part), np.int64)
    row_of = {iid: i for i, iid in enumerate(data.image_ids)}
    kp = keypoints[keypoints["image_id"].isin(row_of)].reset_index(drop=True)
    kp_img = kp["image_id"].map(row_of).to_numpy()
    kp_cat, kp_part = np.zeros(len(kp), np.int64), np.zeros(len(kp), np.int64)
    for s in range(0, len(data), batch_size):
        out = model(torch.from_numpy(data.images[s : s + batch_size]))
        size = data.categories.shape[-2:]
        pc = upsampled(out.category_logits, size).argmax(1).numpy()
        pp = upsampled(out.part_logits, size).argmax(1).numpy()
        conf_c += confusion(pc, data.categories[s : s + batch_size], n_cat)
        conf_p += confusion(pp, data.parts[s : s + batch_size], n_part)
        sel = np.flatnonzero((kp_img >= s) & (kp_img < s + batch_size))
        if len(sel):
            pts = torch.tensor(kp.loc[sel, ["x_norm", "y_norm"]].to_numpy(np.float32))
            rows = torch.as_tensor(kp_img[sel] - s)
            kp_cat[sel] = point_logits(out.category_logits[rows], pts).argmax(1).numpy()
            kp_part[sel] = point_logits(out.part_logits[rows], pts).argmax(1).numpy()
    true_cat = np.array([labels.category_index(c) for c in kp["category"]])
    true_part = np.array([labels.part_index(p) for p in kp["part"]])

    def majority(t: np.ndarray) -> float:
        return float(np.bincount(t[t != IGNORE]).max() / len(t)) if (t != IGNORE).any() else float("nan")

    def rate(ok: np.ndarray) -> float:
        return float(ok.mean()) if len(ok) else float("nan")

    return {
        "images": len(data), "keypoints": len(kp),
        "category_pixel_acc": float(np.diag(conf_c).sum() / max(conf_c.sum(), 1)), "category_miou": miou(conf_c),
        "part_pixel_acc": float(np.diag(conf_p).sum() / max(conf_p.sum(), 1)), "part_miou": miou(conf_p),
        "keypoint_category_acc": rate(kp_cat == true_cat), "keypoint_part_acc": rate(kp_part == true_part),
        "keypoint_category_majority": majority(true_cat), "keypoint_part_majority": majority(true_part),
        "keypoint_part_acc_by_part": {str(name): rate((kp_part == true_part)[(kp["part"] == name).to_numpy()])
                                      for name in sorted(kp["part"].unique())},
    }

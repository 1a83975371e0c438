"""How good the tower is: pixel accuracy and mIoU of the category and part maps on held-out images, and what
it gives the exact keypoints (outputs sampled bilinearly at the point, as the point decoder reads them): the
category, the part, the patch colour, the part's texture and the brightness."""

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


def _rate(ok: np.ndarray) -> float:
    return float(ok.mean()) if len(ok) else float("nan")


def _majority(t: np.ndarray) -> float:
    t = t[t != IGNORE]
    return float(np.bincount(t).max() / len(t)) if len(t) else float("nan")


@torch.no_grad()
def evaluate_tower(model: DenseTower, data: DenseImages, keypoints: pd.DataFrame, labels: LabelSet,
                   batch_size: int = 64) -> dict:
    """Pixel accuracy and mIoU (category and part maps) over `data`; at `keypoints` of those images (columns
    image_id, x_norm, y_norm, category, part; patch_colour, part_texture, patch_brightness where present):
    accuracy of each head and the majority-class rate for comparison, the part accuracy per part, the
    brightness' mean absolute error."""
    model.eval()
    n_cat, n_part = len(labels.categories) + 1, len(labels.parts) + 1
    conf_c, conf_p = np.zeros((n_cat, n_cat), np.int64), np.zeros((n_part, n_part), np.int64)
    row_of = {iid: i for i, iid in enumerate(data.image_ids)}
    kp = keypoints[keypoints["image_id"].isin(row_of)].reset_index(drop=True)
    kp_img = kp["image_id"].map(row_of).to_numpy()
    pred: dict[str, np.ndarray] = {}
    size = data.maps["category"].shape[-2:]
    for s in range(0, len(data), batch_size):
        out = model(torch.from_numpy(data.images[s : s + batch_size]))
        conf_c += confusion(upsampled(out.logits["category"], size).argmax(1).numpy(),
                            data.maps["category"][s : s + batch_size], n_cat)
        conf_p += confusion(upsampled(out.logits["part"], size).argmax(1).numpy(),
                            data.maps["part"][s : s + batch_size], n_part)
        sel = np.flatnonzero((kp_img >= s) & (kp_img < s + batch_size))
        if len(sel):
            pts = torch.tensor(kp.loc[sel, ["x_norm", "y_norm"]].to_numpy(np.float32))
            rows = torch.as_tensor(kp_img[sel] - s)
            for head, logits in out.logits.items():
                at = point_logits(logits[rows], pts)
                value = torch.sigmoid(at[:, 0]) if head == "luma" else at.argmax(1).float()
                pred.setdefault(head, np.full(len(kp), np.nan))[sel] = value.numpy()
    truth = {"category": np.array([labels.category_index(c) for c in kp["category"]]),
             "part": np.array([labels.part_index(p) for p in kp["part"]])}
    if "patch_colour" in kp:
        truth["colour"] = np.array([labels.colour_index(c) for c in kp["patch_colour"]])
    if "part_texture" in kp and labels.textures:
        truth["texture"] = np.array([labels.texture_index(t) for t in kp["part_texture"]])
    result = {
        "images": len(data), "keypoints": len(kp),
        "category_pixel_acc": float(np.diag(conf_c).sum() / max(conf_c.sum(), 1)), "category_miou": miou(conf_c),
        "part_pixel_acc": float(np.diag(conf_p).sum() / max(conf_p.sum(), 1)), "part_miou": miou(conf_p),
    }
    for head, t in truth.items():
        if head in pred:
            known = t != IGNORE
            result[f"keypoint_{head}_acc"] = _rate(pred[head][known] == t[known])
            result[f"keypoint_{head}_majority"] = _majority(t)
    if "luma" in pred and "patch_brightness" in kp:
        result["keypoint_luma_mae"] = float(np.nanmean(np.abs(pred["luma"] - kp["patch_brightness"].to_numpy())))
    if "part" in pred:
        ok = pred["part"] == truth["part"]
        result["keypoint_part_acc_by_part"] = {str(n): _rate(ok[(kp["part"] == n).to_numpy()])
                                               for n in sorted(kp["part"].unique())}
    return result

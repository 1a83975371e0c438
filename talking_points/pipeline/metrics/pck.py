"""PCK on image-normalised coordinates (the paper's metric).

A prediction is correct at threshold t when the Euclidean distance between the predicted and the true point,
both with x divided by the image width and y by the image height, is below t. mPCK = mean(PCK@0.1, PCK@0.2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["normalised_distance", "pck", "mpck", "pck_curve", "pck_table", "THRESHOLDS"]

THRESHOLDS = (0.1, 0.2)


def normalised_distance(pred: np.ndarray, true: np.ndarray, width=None, height=None) -> np.ndarray:
    """Distances (N,) between (N, 2) points. Without width/height the points are already normalised;
    with them (scalars or (N,) arrays) they are pixels and are divided by the image size first."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 2 or pred.shape[1] != 2:
        raise ValueError(f"points must both be (N, 2); got {pred.shape} and {true.shape}")
    if (width is None) != (height is None):
        raise ValueError("give both width and height, or neither")
    if width is not None:
        scale = np.stack([np.broadcast_to(np.asarray(width, np.float64), len(pred)),
                          np.broadcast_to(np.asarray(height, np.float64), len(pred))], axis=1)
        if (scale <= 0).any():
            raise ValueError("image sizes must be positive")
        return np.linalg.norm((pred - true) / scale, axis=1)  # the difference first: 20 px of 100 is exactly 0.2
    return np.linalg.norm(pred - true, axis=1)


def pck(dist: np.ndarray, t: float) -> float:
    """Fraction of distances strictly below t (in [0, 1]); NaN for no samples."""
    dist = np.asarray(dist, np.float64)
    return float((dist < t).mean()) if dist.size else float("nan")


def mpck(dist: np.ndarray) -> float:
    return float(np.mean([pck(dist, t) for t in THRESHOLDS]))


def pck_curve(dist: np.ndarray, t_max: float = 0.3, n: int = 31) -> pd.DataFrame:
    ts = np.linspace(0.0, t_max, n)
    return pd.DataFrame({"threshold": ts, "pck": [pck(dist, t) for t in ts]})


def pck_table(df: pd.DataFrame, dist_col: str = "dist", by: list[str] | None = None) -> pd.DataFrame:
    """PCK@0.1, PCK@0.2, mPCK (in %) and n, overall or per group."""
    def row(d: pd.Series) -> pd.Series:
        p1, p2 = pck(d.to_numpy(), 0.1), pck(d.to_numpy(), 0.2)
        return pd.Series({"PCK@0.1": 100 * p1, "PCK@0.2": 100 * p2, "mPCK": 50 * (p1 + p2), "n": len(d)})

    if not by:
        return row(df[dist_col]).to_frame().T
    return df.groupby(by, sort=True)[dist_col].apply(row).unstack().reset_index()

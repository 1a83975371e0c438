"""How sure a difference in mPCK between two methods scored on the same test points is: a paired bootstrap
over the points (Efron & Tibshirani 1993; the usual test for two systems on one test set, e.g. Koehn 2004).

Each point's own mPCK is 0, 50 or 100 (missed at both thresholds, within 0.2 only, within 0.1); the difference
of two methods' mPCK is the mean of the points' differences, so resampling the points with replacement
(`scipy.stats.bootstrap`, BCa interval, seeded) gives the interval. A 0.25-point difference on 1,198 points
is about three points' worth of hits: the interval says whether such a gap is more than the test set's noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from talking_points.pipeline.metrics.pck import THRESHOLDS

__all__ = ["PairedDifference", "point_mpck", "mpck_difference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """mPCK(a) - mPCK(b) in points (%), with its bootstrap interval over the shared test points."""

    diff: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def clear(self) -> bool:
        """Whether the interval leaves out 0 (the difference is more than the test set's noise)."""
        return self.low > 0 or self.high < 0

    def text(self) -> str:
        return f"{self.diff:+.2f} ({self.confidence:.0%} CI {self.low:+.2f} to {self.high:+.2f})"

    def as_metrics(self) -> dict:
        return {"diff": round(self.diff, 2), "ci_low": round(self.low, 2), "ci_high": round(self.high, 2),
                "n": self.n}


def point_mpck(dist: np.ndarray) -> np.ndarray:
    """Each point's own mPCK (%): the mean over THRESHOLDS of 100 when its distance is below the threshold."""
    dist = np.asarray(dist, np.float64)
    return 100 * np.mean([dist < t for t in THRESHOLDS], axis=0)


def mpck_difference(dist_a: np.ndarray, dist_b: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000,
                    seed: int = 0) -> PairedDifference:
    """mPCK(a) - mPCK(b) with a paired bootstrap interval; dist_a[i] and dist_b[i] are the same test point's
    distances under the two methods."""
    a, b = np.asarray(dist_a, np.float64), np.asarray(dist_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired distances must be two 1-D arrays of one length; got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 paired points, got {len(a)}")
    d = point_mpck(a) - point_mpck(b)
    if np.all(d == d[0]):  # every resample gives the same mean (BCa is undefined there)
        return PairedDifference(float(d[0]), float(d[0]), float(d[0]), len(d), confidence)
    ci = bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                   rng=np.random.default_rng(seed)).confidence_interval
    return PairedDifference(float(d.mean()), float(ci.low), float(ci.high), len(d), confidence)


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0, key: str = "kp_id", dist: str = "dist") -> PairedDifference:
    """`mpck_difference` of two prediction tables (a `key` and a `dist` column each) over the points both
    scored; an error when they share none or a table repeats a point."""
    for name, t in (("a", a), ("b", b)):
        if t[key].duplicated().any():
            raise ValueError(f"table {name} scores point {t[key][t[key].duplicated()].iloc[0]!r} twice")
    both = a[[key, dist]].merge(b[[key, dist]], on=key, suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("the two prediction tables share no point: a paired difference needs the same points")
    return mpck_difference(both[f"{dist}_a"].to_numpy(), both[f"{dist}_b"].to_numpy(), confidence, n_resamples,
                           seed)

"""Balanced sampling: the same number of keypoints from every source (the paper mixes its datasets equally).

Individual keypoints are sampled (not whole images), so every source contributes exactly `per_source`
rows even when images hold different numbers of keypoints. Each source is sampled without replacement by
its own generator, seeded by (seed, CRC-32 of the source name): a source's sample depends on the seed and
its own keypoints only, not on which other sources are mined with it. The sampled rows keep their mined
order. A source with fewer keypoints than `per_source` is an error (`TooFewKeypoints`) naming the source
and every source's count; nothing is silently unbalanced.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from talking_points.pipeline.config import ConfigError

__all__ = ["TooFewKeypoints", "source_rng", "balance"]


class TooFewKeypoints(ConfigError):
    """`mine.per_source` asks for more keypoints than a source has."""


def source_rng(seed: int, source: str) -> np.random.Generator:
    """The generator that samples `source`'s keypoints."""
    return np.random.default_rng([int(seed), zlib.crc32(source.encode("utf-8"))])


def balance(keypoints: pd.DataFrame, sources: Sequence[str], per_source: int | None, seed: int) -> pd.DataFrame:
    """`per_source` rows of `keypoints` (column `source`) from each of `sources`, in `sources` order.

    `per_source=None` takes as many as the smallest source has.
    """
    groups = {s: keypoints[keypoints["source"] == s] for s in sources}
    counts = {s: len(g) for s, g in groups.items()}
    n = min(counts.values()) if per_source is None else per_source
    if short := [s for s, c in counts.items() if c < n]:
        raise TooFewKeypoints(
            f"mine.per_source = {n} but source(s) {short} have fewer keypoints (mined per source: {counts}); "
            "lower mine.per_source, set it to null (= the smallest count), or mine more images"
        )
    picked = []
    for s, group in groups.items():
        index = np.sort(source_rng(seed, s).choice(len(group), size=n, replace=False))
        picked.append(group.iloc[index])
    if not picked:
        return keypoints.iloc[:0]
    return pd.concat(picked, ignore_index=True)

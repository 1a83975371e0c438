"""Balanced sampling: how many keypoints each source keeps (`mine.balance`, `mine.per_source` = N).

* `equal` (the default, the paper's mix of its datasets): N from every source; N null takes as many as the
  smallest source has. A source with fewer keypoints than N is an error (`TooFewKeypoints`) naming the
  source and every source's count; nothing is silently unbalanced.
* `target`: N from every source that has N, all of a source that has fewer (no error: that source is
  under-represented, by choice).
* `proportional`: the sources as mined; with N, at most N x (number of sources) in all, split in proportion
  to the mined counts (largest remainders, ties in source order).

Individual keypoints are sampled (not whole images), so a source contributes exactly its quota of rows
even when images hold different numbers of keypoints. Each source is sampled without replacement by its
own generator, seeded by (seed, CRC-32 of the source name): a source's sample depends on the seed, its
quota and its own keypoints only, not on which other sources are mined with it. The sampled rows keep
their mined order. `discard_warnings` names every source that lost more than half of its keypoints (one
small source can cut every other one down to its own count).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.keypoints.config import Balance

__all__ = ["TooFewKeypoints", "source_rng", "quotas", "balance", "discard_warnings"]


class TooFewKeypoints(ConfigError):
    """`mine.per_source` asks for more keypoints than a source has."""


def source_rng(seed: int, source: str) -> np.random.Generator:
    """The generator that samples `source`'s keypoints."""
    return np.random.default_rng([int(seed), zlib.crc32(source.encode("utf-8"))])


def quotas(counts: dict[str, int], per_source: int | None, mode: Balance = Balance.equal) -> dict[str, int]:
    """How many keypoints each source keeps, from its mined `counts` (see the module doc)."""
    if not counts:
        return {}
    if mode is Balance.equal:
        n = min(counts.values()) if per_source is None else per_source
        if short := [s for s, c in counts.items() if c < n]:
            raise TooFewKeypoints(
                f"mine.per_source = {n} but source(s) {short} have fewer keypoints (mined per source: {counts}); "
                "lower mine.per_source, set it to null (= the smallest count), set mine.balance to target "
                "(= all of a smaller source), or mine more images"
            )
        return {s: n for s in counts}
    elif mode is Balance.target:
        if per_source is None:
            raise ConfigError("mine.balance: target needs mine.per_source (the keypoints wanted per source)")
        return {s: min(c, per_source) for s, c in counts.items()}
    elif mode is Balance.proportional:
        total = sum(counts.values())
        if per_source is None or per_source * len(counts) >= total:
            return dict(counts)
        cap = per_source * len(counts)
        out = {s: c * cap // total for s, c in counts.items()}  # floors of the exact shares
        rest = sorted(counts, key=lambda s: -(counts[s] * cap % total))  # stable: ties keep source order
        for s in rest[: cap - sum(out.values())]:
            out[s] += 1
        return out
    else:
        raise ValueError(f"unknown mine.balance {mode!r} (known: {[m.value for m in Balance]})")


def balance(keypoints: pd.DataFrame, sources: Sequence[str], per_source: int | None, seed: int,
            mode: Balance = Balance.equal) -> pd.DataFrame:
    """Each source's `quotas` of rows of `keypoints` (column `source`), for each of `sources` in order."""
    groups = {s: keypoints[keypoints["source"] == s] for s in sources}
    want = quotas({s: len(g) for s, g in groups.items()}, per_source, mode)
    picked = []
    for s, group in groups.items():
        index = np.sort(source_rng(seed, s).choice(len(group), size=want[s], replace=False))
        picked.append(group.iloc[index])
    if not picked:
        return keypoints.iloc[:0]
    return pd.concat(picked, ignore_index=True)


def discard_warnings(mined: dict[str, int], kept: dict[str, int], mode: Balance) -> dict[str, str]:
    """Source -> a warning, for every source whose sampling kept fewer than half of its mined keypoints."""
    out = {}
    for s, m in mined.items():
        k = int(kept.get(s, 0))
        if 2 * k < m:
            out[s] = (f"balance '{mode.value}' kept {k} of its {m} mined keypoints ({1 - k / m:.0%} discarded); "
                      "see mine.balance (equal | target | proportional) and mine.per_source")
    return out

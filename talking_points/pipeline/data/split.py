"""Train/test split by image, proportional per source, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from talking_points.pipeline.config import Section, register_section

__all__ = ["SplitConfig", "assign_splits", "join_samples"]


@register_section("split")
class SplitConfig(Section):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of each source's images in the test split")
    seed: int = 0


def assign_splits(image_sources: pd.DataFrame, test_fraction: float, seed: int) -> dict[str, str]:
    """Map each image_id to 'train' or 'test'.

    `image_sources` has columns image_id and source. Within every source the images are shuffled with
    `seed` (and the source name, so adding a source does not reshuffle the others) and the first
    round(n * test_fraction) become test images - at least one test and one train image per source that has
    two or more images.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    out: dict[str, str] = {}
    for source, group in image_sources.drop_duplicates("image_id").groupby("source", sort=True):
        ids = np.array(sorted(group["image_id"]))
        key = [seed, *str(source).encode()]
        ids = ids[np.random.default_rng(key).permutation(len(ids))]
        n_test = int(round(len(ids) * test_fraction))
        if len(ids) >= 2:
            n_test = min(max(n_test, 1), len(ids) - 1)
        out.update({i: "test" for i in ids[:n_test]})
        out.update({i: "train" for i in ids[n_test:]})
    return out


def join_samples(keypoints: pd.DataFrame, descriptions: pd.DataFrame, splits: dict[str, str]) -> pd.DataFrame:
    """Keypoints joined with their descriptions (inner join on kp_id) and the image's split."""
    if descriptions["kp_id"].duplicated().any():
        dup = descriptions.loc[descriptions["kp_id"].duplicated(), "kp_id"].iloc[0]
        raise ValueError(f"descriptions: kp_id {dup!r} appears more than once")
    samples = keypoints.merge(descriptions, on="kp_id", how="inner", validate="one_to_one")
    samples["split"] = samples["image_id"].map(splits)
    if samples["split"].isna().any():
        raise ValueError("some keypoints belong to images without a split")
    return samples.sort_values("kp_id", kind="stable").reset_index(drop=True)

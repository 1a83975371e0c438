"""The cross-super-category setting of AP-10K: train on one family's animals, test on another's.

`cross_family_split(samples, direction, seed)` takes any table with `image_id` and `family` columns (the
pose samples; join KEYPOINTS rows to them on kp_id) and returns the train and test rows of `direction`.
The unit is the image: an image holding animals of both families goes to test only (its train-family
animals are dropped), so no test image is ever seen in training. Images come in a seeded random order
(rows of one image stay together, in table order), optionally capped at a number of images.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

from talking_points.pipeline.data.partworld.animals import Family

__all__ = ["Direction", "CrossFamilySplit", "cross_family_split"]


class Direction(str, Enum):
    """Which family trains and which tests."""

    bovidae_to_canidae = "bovidae_to_canidae"
    canidae_to_bovidae = "canidae_to_bovidae"

    @property
    def families(self) -> tuple[Family, Family]:
        """(train family, test family)."""
        if self is Direction.bovidae_to_canidae:
            return Family.bovidae, Family.canidae
        elif self is Direction.canidae_to_bovidae:
            return Family.canidae, Family.bovidae
        else:
            raise ValueError(f"unknown direction {self!r}")


@dataclass
class CrossFamilySplit:
    direction: Direction
    train: pd.DataFrame
    test: pd.DataFrame
    mixed_images: int  # images with both families: in test only


def _ordered(rows: pd.DataFrame, images: list, rng: np.random.Generator, cap: int | None) -> pd.DataFrame:
    order = [images[i] for i in rng.permutation(len(images))]
    if cap is not None:
        order = order[:cap]
    rank = {image: r for r, image in enumerate(order)}
    keep = rows[rows["image_id"].isin(rank)]
    position = keep["image_id"].map(rank).to_numpy()
    return keep.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)


def cross_family_split(
    samples: pd.DataFrame,
    direction: Direction,
    seed: int = 0,
    max_train_images: int | None = None,
    max_test_images: int | None = None,
) -> CrossFamilySplit:
    """Train rows (train family, images without the test family) and test rows (test family) of `direction`.

    Raises ValueError when either side is empty (the table lacks one of the two families).
    """
    for column in ("image_id", "family"):
        if column not in samples.columns:
            raise ValueError(f"cross_family_split needs a {column!r} column; got {list(samples.columns)}")
    for cap, name in ((max_train_images, "max_train_images"), (max_test_images, "max_test_images")):
        if cap is not None and cap < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {cap}")
    train_family, test_family = (f.value for f in direction.families)
    test_rows = samples[samples["family"] == test_family]
    test_images = list(dict.fromkeys(test_rows["image_id"]))
    in_test = set(test_images)
    family_rows = samples[samples["family"] == train_family]
    mixed = family_rows["image_id"].isin(in_test)
    train_rows = family_rows[~mixed]
    train_images = list(dict.fromkeys(train_rows["image_id"]))
    if not train_images or not test_images:
        found = sorted(samples["family"].unique())
        raise ValueError(f"{direction.value}: needs images of {train_family} (train) and {test_family} "
                         f"(test); the table has families {found}")
    rng_train, rng_test = (np.random.default_rng([seed, k]) for k in (0, 1))
    return CrossFamilySplit(
        direction=direction,
        train=_ordered(train_rows, train_images, rng_train, max_train_images),
        test=_ordered(test_rows, test_images, rng_test, max_test_images),
        mixed_images=int(family_rows.loc[mixed, "image_id"].nunique()),
    )

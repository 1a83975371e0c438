"""What a dataset adapter is: a config class plus two functions.

    list_samples(cfg) -> list[str]          # keys of the samples, in a deterministic order
    load_sample(cfg, key) -> ImageRecord    # one annotated image; raises BadInput for a bad sample

`load_sample` must never execute anything read from the dataset; it reads json/mat/png/jpg only.
Unexpected exceptions while loading (corrupt files, malformed json) are turned into `BadInput`
naming the sample by `talking_points.pipeline.data.ingest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import Field

from talking_points.pipeline.config import Section
from talking_points.pipeline.data.records import ImageRecord

__all__ = ["SourceConfigBase", "Adapter"]


class SourceConfigBase(Section):
    """Fields every source has. Subclasses add `adapter: Literal[...]` and their own fields."""


    limit: int | None = Field(None, ge=1, description="use at most this many samples (first in key order)")


@dataclass(frozen=True)
class Adapter:
    name: str
    config: type[SourceConfigBase]
    list_samples: Callable[[SourceConfigBase], list[str]]
    load_sample: Callable[[SourceConfigBase, str], ImageRecord]
    generated: bool = False  # True: records carry pixels that ingestion writes as PNG files

"""What a dataset adapter is: a config class plus two functions.

    list_samples(cfg) -> list[str]          # keys of the samples, in a deterministic order
    load_sample(cfg, key) -> ImageRecord    # one annotated image; raises BadInput for a bad sample

`load_sample` must never execute anything read from the dataset; it reads json/mat/png/jpg only.
Unexpected exceptions while loading (corrupt files, malformed json) are turned into `BadInput`
naming the sample by `talking_points.pipeline.data.ingest`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from talking_points.pipeline.config import Section
from talking_points.pipeline.data.records import ImageRecord

__all__ = ["Adapter", "SourceConfigBase", "path_inside"]


class SourceConfigBase(Section):
    """Fields every source has. Subclasses add `adapter: Literal[...]` and their own fields.

    `root` is the one folder the source reads. dvc.yaml makes it a dep of the source's ingest stage
    (`- ${item.root}`), so a file added, removed or edited under it reruns that ingest (and what depends on
    its tables). Every other path field of a source is relative to `root` (an absolute path is allowed if it
    lies inside `root`) and may not climb out of it: what the source reads is what DVC hashes.
    """

    root: Path = Field(description="the dataset folder this source reads; a dep of its ingest stage")
    limit: int | None = Field(None, ge=1, description="use at most this many samples (first in key order)")

    @model_validator(mode="after")
    def _paths_inside_root(self) -> SourceConfigBase:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name != "root" and isinstance(value, Path) and not path_inside(self.root, value):
                raise ValueError(f"{name} ({value}) must lie inside root ({self.root}): give it relative to "
                                 f"root, without '..' (root is what DVC tracks for this source)")
        return self

    def path(self, value: Path | str) -> Path:
        """A path field (relative to `root`, or absolute inside it) as a path to open."""
        return self.root / value


def path_inside(root: Path, value: Path | str) -> bool:
    """Whether `value`, taken relative to `root` (or absolute), lies inside `root`; a lexical check that
    touches no file."""
    r = os.path.abspath(root)
    v = os.path.abspath(os.path.join(root, value))
    return os.path.commonpath([r, v]) == r


@dataclass(frozen=True)
class Adapter:
    name: str
    config: type[SourceConfigBase]
    list_samples: Callable[[SourceConfigBase], list[str]]
    load_sample: Callable[[SourceConfigBase, str], ImageRecord]
    generated: bool = False  # True: records carry pixels that ingestion writes as PNG files

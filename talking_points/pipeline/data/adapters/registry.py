"""The dataset adapters by the name used in params (`ingest.sources.<name>.adapter`). Only ingest and its
config import this registry; the adapter modules do not know it."""

from __future__ import annotations

from talking_points.pipeline.data import partworld
from talking_points.pipeline.data.adapters import ade20k_full, ov_parts, partimagenet, pascal_part_mat
from talking_points.pipeline.data.adapters.base import Adapter, SourceConfigBase

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in [
        partworld.ADAPTER,
        pascal_part_mat.ADAPTER,
        ov_parts.ADAPTER,
        partimagenet.ADAPTER,
        ade20k_full.ADAPTER,
    ]
}

__all__ = ["ADAPTERS", "Adapter", "SourceConfigBase", "get_adapter"]


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {sorted(ADAPTERS)}") from None

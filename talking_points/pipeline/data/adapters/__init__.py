"""Dataset adapters, by the name used in params (`ingest.sources.<name>.adapter`)."""

from __future__ import annotations

from talking_points.pipeline.data.adapters.base import Adapter, SourceConfigBase
from talking_points.pipeline.data import partworld

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in [
        partworld.ADAPTER,
    ]
}

__all__ = ["ADAPTERS", "Adapter", "SourceConfigBase", "get_adapter"]


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {sorted(ADAPTERS)}") from None

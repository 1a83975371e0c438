"""The description backends by the name used in params (`synthesize.backend`), like the dataset adapters:
each backend module registers its `BackendEntry` (name, params model, constructor, whether its rows are
worth resuming); this registry imports none of them (`synthesis.backends` does, for the synthesize step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from talking_points.pipeline.config import ConfigError

__all__ = ["BackendEntry", "BACKENDS", "register_backend", "get_backend"]


@dataclass(frozen=True)
class BackendEntry:
    """`make(section, bins)` builds the backend from its params section `synthesize.<name>` (a `config`
    instance); `resumes`: its rows are slow enough to keep in a resume folder while the step runs."""

    name: str
    config: type
    make: Callable
    resumes: bool


BACKENDS: dict[str, BackendEntry] = {}


def register_backend(entry: BackendEntry) -> BackendEntry:
    if BACKENDS.get(entry.name, entry) is not entry:
        raise ValueError(f"synthesis backend {entry.name!r} registered twice")
    BACKENDS[entry.name] = entry
    return entry


def get_backend(name: str) -> BackendEntry:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown synthesize.backend {name!r}; known: {sorted(BACKENDS)}") from None

"""The `ingest` params section: the part datasets to read, each through its adapter (one `foreach` stage per
source)."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, field_validator

from talking_points.pipeline.config import Section, check_key, register_section
from talking_points.pipeline.data.adapters.registry import ADAPTERS
from talking_points.pipeline.data.errors import OnError
from talking_points.pipeline.data.partworld import PARTWORLD_ROOT

__all__ = ["SourceConfig", "IngestConfig"]

SourceConfig = Annotated[
    Union[tuple(a.config for a in ADAPTERS.values())],  # noqa: UP007 - built from the registry
    Field(discriminator="adapter"),
]


@register_section("ingest")
class IngestConfig(Section):
    on_error: OnError = OnError.skip
    workers: int = Field(1, ge=1, description="processes loading samples in parallel")
    sources: dict[str, SourceConfig]

    @field_validator("sources", mode="before")
    @classmethod
    def _roots_written_out(cls, sources: object) -> object:
        # dvc.yaml's ingest stage lists `${item.root}` as a dep, which DVC reads from the params file itself:
        # a root left to its default would fail `dvc repro` with an interpolation error, not here
        for name, source in (sources.items() if isinstance(sources, dict) else ()):
            if isinstance(source, dict) and "root" not in source:
                hint = (f" (for PartWorld: root: {PARTWORLD_ROOT})" if source.get("adapter") == "partworld"
                        else "")
                raise ValueError(f"source {name!r} needs a 'root': the folder it reads, which dvc.yaml "
                                 f"makes a dep of ingest@{name}{hint}")
        return sources

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict) -> dict:
        if not sources:
            raise ValueError("at least one source is needed")
        for name in sources:
            check_key(name, "source name")  # it also becomes a folder and the image ids' prefix
        return sources

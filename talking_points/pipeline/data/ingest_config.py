"""The `ingest` params section: the part datasets to read, each through its adapter (one `foreach` stage per
source)."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, field_validator

from talking_points.pipeline.config import Section, check_key, register_section
from talking_points.pipeline.data.adapters.registry import ADAPTERS
from talking_points.pipeline.data.errors import OnError

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

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict) -> dict:
        if not sources:
            raise ValueError("at least one source is needed")
        for name in sources:
            check_key(name, "source name")  # it also becomes a folder and the image ids' prefix
        return sources

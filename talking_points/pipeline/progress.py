"""One progress-bar helper for every long loop (rich; quiet when TP_NO_PROGRESS=1, e.g. in tests)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


class _RateColumn(TextColumn):
    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task):  # noqa: D102
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text(f"{speed:7.1f} {self.unit}/s" if speed else f"      ? {self.unit}/s")

__all__ = ["track", "enabled"]


def enabled() -> bool:
    return os.environ.get("TP_NO_PROGRESS", "") not in ("1", "true", "yes")


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate `items` with a progress bar showing count, rate and ETA."""
    if not enabled():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)

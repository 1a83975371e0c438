"""Bad-input policy: skip a bad sample with a counted reason, or stop with a clear message."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["OnError", "BadInput", "SchemaError", "SkipLog"]

log = logging.getLogger(__name__)


class OnError(str, Enum):
    """What to do with a corrupt / inconsistent sample."""

    strict = "strict"  # stop at the first bad sample, naming the file and the problem
    skip = "skip"  # skip it, count the reason, report a summary at the end


class BadInput(Exception):
    """A sample that cannot be used. `where` names the file (and row/object), `reason` a short category."""

    def __init__(self, where: str, reason: str, detail: str = ""):
        self.where, self.reason, self.detail = str(where), reason, detail
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):
        # Exception pickles as cls(*self.args), i.e. cls(message): without this, a BadInput raised in a worker
        # process could not be rebuilt in the parent, and the pool died with a BrokenProcessPool naming no file
        return type(self), (self.where, self.reason, self.detail), self.__dict__


class SchemaError(ValueError):
    """A table does not match its schema; the message names the table, the column and the first bad row."""


@dataclass
class SkipLog:
    """Counts skipped samples by reason and keeps the first few examples of each."""

    policy: OnError = OnError.skip
    examples_per_reason: int = 3
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def handle(self, err: BadInput) -> None:
        """Record `err` under the skip policy, or re-raise it under the strict policy."""
        if self.policy is OnError.strict:
            raise err
        if self.policy is not OnError.skip:
            raise ValueError(f"unknown on_error policy {self.policy!r}")
        self.counts[err.reason] += 1
        ex = self.examples.setdefault(err.reason, [])
        if len(ex) < self.examples_per_reason:
            ex.append(str(err))
        log.warning("skipped %s", err)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: "SkipLog") -> None:
        self.counts.update(other.counts)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: max(0, self.examples_per_reason - len(mine))])

    def as_dict(self) -> dict:
        return {"skipped": self.total, "by_reason": dict(self.counts), "examples": self.examples}

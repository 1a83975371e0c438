"""What a description backend is, and the factory that builds the one named in params.

A backend turns a batch of `schema.KEYPOINTS` rows into `schema.DESCRIPTIONS` rows. Subclasses implement
`generate` (one `Draft` per row: the final text, its four level texts and the raw output of each pass)
plus the provenance properties; `describe` adds the name-only template, the provenance columns and the
validity flag, so every backend's output has the same columns and is checked the same way.

Model-backed backends (`hf`, `vllm`: two VLM passes - object context on the full image with the point
marked, local detail on a Gaussian-masked crop - then two LLM passes, generate and refine) fit the same
shape: they fill `pass_*` with the raw model outputs, `description` with the refined text, the level
texts with `parse.split_levels(description)`, and may override `validate`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import pandas as pd

from talking_points.pipeline.data.schema import DESCRIPTIONS
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.parse import assess
from talking_points.pipeline.synthesis.template import template_phrase
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = [
    "Draft",
    "DescriptionBackend",
    "DESCRIPTION_COLUMNS",
    "PASS_COLUMNS",
    "word_bins",
    "description_issues",
]

DESCRIPTION_COLUMNS: tuple[str, ...] = tuple(DESCRIPTIONS.names)
PASS_COLUMNS: tuple[str, ...] = ("pass_object", "pass_local", "pass_generate", "pass_refine")


@dataclass(frozen=True)
class Draft:
    """What a backend writes for one row before templating and validation."""

    kp_id: str
    description: str
    level_object: str
    level_part: str
    level_point: str
    level_local: str
    pass_object: str
    pass_local: str
    pass_generate: str
    pass_refine: str


def description_issues(row, description: str, bins: WordBins, tol: float = 0.0) -> list[str]:
    """Contradictions between `description` and its row, plus one entry per coarse-to-fine level missing
    (`tol` widens every numeric bin, see `parse.check_faithful`)."""
    issues, present = assess(row, description, bins=bins, tol=tol)
    return issues + [f"missing level: {name}" for name, ok in present.items() if not ok]


class DescriptionBackend(ABC):
    """A synthesis backend. `describe(rows, seed)` returns exactly the DESCRIPTIONS columns, one row per
    input row, in input order; a row's output depends only on (seed, that row)."""

    name: str = ""
    #: leave rows that fail `validate` out of the stage's output (they are still counted in the report)
    drop_invalid: bool = False

    def __init__(self, bins: WordBins):
        self.bins = bins

    @property
    @abstractmethod
    def model(self) -> str:
        """Model ids the backend uses ('' when none)."""

    @property
    @abstractmethod
    def prompt_version(self) -> str:
        """Version of the prompts / templates, for provenance."""

    @abstractmethod
    def sampling(self, seed: int) -> str:
        """The sampling parameters (and seed) as a JSON string."""

    @abstractmethod
    def generate(self, rows: pd.DataFrame, seed: int) -> list[Draft]:
        """One draft per row of `rows` (KEYPOINTS columns), in order."""

    def fingerprint(self, seed: int) -> str:
        """Everything besides the row that shapes a row's output, as a string (keys the resume shards)."""
        return json.dumps([self.name, self.model, self.prompt_version, self.sampling(seed)])

    def check_row(self, row: dict) -> None:
        """Raise `BadInput` when the backend cannot describe `row` (called before any generation)."""

    def validate(self, rows: pd.DataFrame, drafts: list[Draft]) -> list[list[str]]:
        """Problems of each draft (empty = valid): contradictions with its row and missing levels."""
        return [
            description_issues(row, d.description, self.bins)
            for row, d in zip(rows.to_dict("records"), drafts)
        ]

    def describe(self, rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        """DESCRIPTIONS rows for a batch of KEYPOINTS rows; `valid` is set by `validate`."""
        return self.describe_checked(rows, seed)[0]

    def describe_checked(self, rows: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[list[str]]]:
        """`describe`, plus the problems `validate` found in each row (for the report)."""
        drafts = self.generate(rows, seed)
        if len(drafts) != len(rows):
            raise RuntimeError(f"backend {self.name!r} returned {len(drafts)} drafts for {len(rows)} rows")
        issues = self.validate(rows, drafts)
        sampling = self.sampling(seed)
        out = []
        for row, draft, problems in zip(rows.to_dict("records"), drafts, issues):
            if draft.kp_id != row["kp_id"]:
                raise RuntimeError(
                    f"backend {self.name!r} returned {draft.kp_id!r} in place of {row['kp_id']!r}"
                )
            out.append(
                {
                    **asdict(draft),
                    "template": template_phrase(row["category"], row["part"], draft.kp_id, seed),
                    "backend": self.name,
                    "model": self.model,
                    "prompt_version": self.prompt_version,
                    "sampling": sampling,
                    "valid": not problems,
                }
            )
        return pd.DataFrame(out, columns=list(DESCRIPTION_COLUMNS)), issues


def word_bins(cfg: SynthesizeConfig) -> WordBins:
    """The brightness / edge-energy thresholds of a synthesize config."""
    return WordBins(
        dark_below=cfg.dark_below,
        bright_above=cfg.bright_above,
        smooth_below=cfg.smooth_below,
        busy_above=cfg.busy_above,
    )

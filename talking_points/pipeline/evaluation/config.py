"""What the evaluation stage scores: named rows, each a text source and a point predictor."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from talking_points.pipeline.models.inference import GenerationConfig

__all__ = ["TextSource", "Predictor", "EvalRowConfig", "EvaluateConfig", "ReportConfig"]


class TextSource(str, Enum):
    generated = "generated"  # written by a Point Descriptor (the row's `descriptor`) for each test point
    gt = "gt"  # the synthesized description of the test split (the upper reference)
    template = "template"  # the name-only phrasing 'the head of the dog' (KptLLM-style baseline)
    object_level = "object_level"  # only level 1 of the description (stands in for region captioners)
    none = "none"  # no text (chance rows)


class Predictor(str, Enum):
    localizer = "localizer"  # the row's Point Localizer reads the text
    centre = "centre"  # always the image centre
    uniform = "uniform"  # a uniformly random point (seeded)


class EvalRowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(..., description="the row's name in the tables")
    groups: list[str] = Field(["main"], description="the tables the row goes to: main, gaussian, adaptation, "
                              "chance (see evaluation.report.GROUP_TITLES)")
    texts: TextSource
    predictor: Predictor = Predictor.localizer
    descriptor: str | None = Field(None, description="folder of the descriptor writing the texts (texts: generated)")
    localizer: str | None = Field(None, description="folder of the localizer (predictor: localizer)")

    @model_validator(mode="after")
    def _consistent(self) -> "EvalRowConfig":
        if (self.texts is TextSource.generated) != (self.descriptor is not None):
            raise ValueError("`descriptor` is needed exactly when texts is 'generated' "
                             f"(texts: {self.texts.value}, descriptor: {self.descriptor})")
        if self.predictor is Predictor.localizer:
            if not self.localizer:
                raise ValueError("predictor 'localizer' needs `localizer` (a trained localizer folder)")
            if self.texts is TextSource.none:
                raise ValueError("predictor 'localizer' needs texts; use texts 'gt', 'generated', ...")
        elif self.predictor in (Predictor.centre, Predictor.uniform):
            if self.texts is not TextSource.none or self.localizer:
                raise ValueError(f"predictor '{self.predictor.value}' reads no text and no model: "
                                 "set texts: none and remove `localizer`")
        else:
            raise ValueError(f"unknown predictor {self.predictor!r}")
        return self


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field("gt", description="row the others are compared with (the GT-description row)")
    examples: int = Field(8, ge=0, description="test images in the qualitative figure")
    figure_rows: list[str] = Field(default_factory=lambda: ["tp", "gt", "template"],
                                   description="rows whose predictions the qualitative figure draws")
    breakdown_rows: list[str] = Field(default_factory=lambda: ["tp", "gt"],
                                      description="rows broken down per source, category and part")
    seed: int = 0


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, description="score only the first N test rows (null: all)")
    chunk_size: int = Field(128, ge=1, description="rows per resumable shard")
    localizer_batch_size: int = Field(64, ge=1)
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")
    generation: GenerationConfig = GenerationConfig()
    rows: dict[str, EvalRowConfig]
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _rows(self) -> "EvaluateConfig":
        if not self.rows:
            raise ValueError("evaluate.rows is empty")
        names = set(self.rows)
        for field in ("figure_rows", "breakdown_rows"):
            missing = [r for r in getattr(self.report, field) if r not in names]
            if missing:
                raise ValueError(f"evaluate.report.{field} names rows {missing} that evaluate.rows lacks")
        if self.report.reference not in names:
            raise ValueError(f"evaluate.report.reference {self.report.reference!r} is not a row")
        return self

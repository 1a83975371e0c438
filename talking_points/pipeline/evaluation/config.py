"""What the evaluation stage scores: named rows, each a text source and a point predictor."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from talking_points.pipeline.config import Section, check_key, register_section
from talking_points.pipeline.evaluation.scoring import ScoringConfig
from talking_points.pipeline.evaluation.vlm_describer import VLMDescriberConfig

__all__ = ["TextSource", "Predictor", "EvalRowConfig", "ScoringConfig", "EvaluateConfig", "ReportConfig"]


class TextSource(str, Enum):
    generated = "generated"  # written by a Point Descriptor (the row's `descriptor`) for each test point
    gt = "gt"  # the synthesized description of the test split (the upper reference)
    template = "template"  # the name-only phrasing 'the head of the dog' (KptLLM-style baseline)
    object_level = "object_level"  # only level 1 of the description (stands in for region captioners)
    file = "file"  # descriptions written elsewhere (people, an API model): the row's `file`, by kp_id
    vlm = "vlm"  # an image-text-to-text checkpoint shown the image with the point marked (the row's `vlm`)
    none = "none"  # no text (chance rows)


class Predictor(str, Enum):
    localizer = "localizer"  # the row's Point Localizer reads the text
    centre = "centre"  # always the image centre
    uniform = "uniform"  # a uniformly random point (seeded)


class EvalRowConfig(Section):

    label: str = Field(..., description="the row's name in the tables")
    groups: list[str] = Field(["main"], description="the tables the row goes to: main, gaussian, adaptation, "
                              "chance (see evaluation.report.GROUP_TITLES)")
    texts: TextSource
    predictor: Predictor = Predictor.localizer
    descriptor: str | None = Field(None, description="folder of the descriptor writing the texts (texts: generated)")
    localizer: str | None = Field(None, description="folder of the localizer (predictor: localizer)")
    file: str | None = Field(None, description="texts: file: a table (.csv, .parquet, .jsonl) with columns kp_id "
                             "and description, e.g. a filled `tp annotate export` sheet; only its test points "
                             "are scored (not a DVC dep of the row: `dvc add` it and list it in dvc.yaml)")
    vlm: VLMDescriberConfig | None = Field(None, description="texts: vlm: the checkpoint that describes each "
                                           "marked point, its prompt and decoding (evaluation.vlm_describer)")

    @model_validator(mode="after")
    def _consistent(self) -> "EvalRowConfig":
        if (self.texts is TextSource.generated) != (self.descriptor is not None):
            raise ValueError("`descriptor` is needed exactly when texts is 'generated' "
                             f"(texts: {self.texts.value}, descriptor: {self.descriptor})")
        if (self.texts is TextSource.file) != (self.file is not None):
            raise ValueError("`file` is needed exactly when texts is 'file' "
                             f"(texts: {self.texts.value}, file: {self.file})")
        if (self.texts is TextSource.vlm) != (self.vlm is not None):
            raise ValueError("`vlm` (with its checkpoint) is needed exactly when texts is 'vlm' "
                             f"(texts: {self.texts.value})")
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


class ReportConfig(Section):

    reference: str = Field("gt", description="row the others are compared with (the GT-description row)")
    examples: int = Field(8, ge=0, description="test images in the qualitative figure")
    figure_rows: list[str] = Field(default_factory=lambda: ["tp", "gt", "template"],
                                   description="rows whose predictions the qualitative figure draws")
    breakdown_rows: list[str] = Field(default_factory=lambda: ["tp", "gt"],
                                      description="rows broken down per source, category and part")
    seed: int = 0
    profile: str = Field("default", description="the profile's name, stated on results.md and every figure")
    profile_note: str = Field("", description="one sentence results.md adds after the profile's name (the smoke "
                              "profile says that its numbers mean nothing)")


@register_section("evaluate")
class EvaluateConfig(ScoringConfig):
    """The rows of the paper's tables (one DVC stage each) and the report built from them."""

    rows: dict[str, EvalRowConfig]
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _rows(self) -> "EvaluateConfig":
        if not self.rows:
            raise ValueError("evaluate.rows is empty")
        for name in self.rows:
            check_key(name, "row name")  # dvc.yaml's foreach pastes it into commands and paths
        names = set(self.rows)
        for field in ("figure_rows", "breakdown_rows"):
            missing = [r for r in getattr(self.report, field) if r not in names]
            if missing:
                raise ValueError(f"evaluate.report.{field} names rows {missing} that evaluate.rows lacks")
        if self.report.reference not in names:
            raise ValueError(f"evaluate.report.reference {self.report.reference!r} is not a row")
        return self

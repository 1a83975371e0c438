"""What the evaluation stages score: describers (texts), localizer rows and chance rows."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from talking_points.pipeline.config import Section, check_key, register_section
from talking_points.pipeline.evaluation.scoring import ScoringConfig
from talking_points.pipeline.evaluation.vlm_config import VLMDescriberConfig
from talking_points.pipeline.synthesis.style_config import Style

__all__ = ["ChancePredictor", "ChanceRowConfig", "DescriberConfig", "EvalRowConfig", "EvaluateConfig", "ReportConfig",
           "ScoringConfig", "TextSource"]


class TextSource(str, Enum):
    generated = "generated"  # written by a describer (the row's `describer`: a Point Descriptor or an external VLM)
    gt = "gt"  # the synthesized description of the test split (the upper reference)
    template = "template"  # the name-only phrasing 'the head of the dog' (KptLLM-style baseline)
    object_level = "object_level"  # only level 1 of the description (stands in for region captioners)
    file = "file"  # descriptions written elsewhere (people, an API model): the row's `file`, by kp_id
    style = "style"  # the GT facts rewritten in the row's `style` (tp restyle: data/styles/test.parquet)
    none = "none"  # no text (chance rows)


class ChancePredictor(str, Enum):
    centre = "centre"  # always the image centre
    uniform = "uniform"  # a uniformly random point (seeded)


class DescriberConfig(Section):
    """A Point Descriptor that writes the text of every test point once (stage describe@<name>)."""

    descriptor: str = Field(..., description="folder of the trained descriptor (a DVC dep of its stage)")


class EvalRowConfig(Section):
    """A row scored by a Point Localizer (stage evaluate@<row>): its texts and the localizer that reads them."""

    label: str = Field(..., description="the row's name in the tables")
    groups: list[str] = Field(["main"], description="the tables the row goes to: main, gaussian, adaptation "
                              "(see evaluation.report.GROUP_TITLES)")
    texts: TextSource
    describer: str | None = Field(None, description="texts: generated: a key of evaluate.describers or "
                                  "evaluate.vlm_describers, whose texts (data/eval/texts/<key>.parquet) are read")
    localizer: str = Field(..., description="folder of the localizer that reads the texts (a DVC dep of the row)")
    style: Style | None = Field(None, description="texts: style: the style the GT facts are rewritten in (one of "
                                "styles.styles)")
    file: str | None = Field(None, description="texts: file: a table (.csv, .parquet, .jsonl) with columns kp_id "
                             "and description, e.g. a filled `tp annotate export` sheet; only its test points "
                             "are scored (not a DVC dep of the row: `dvc add` it and list it in dvc.yaml)")

    @model_validator(mode="after")
    def _consistent(self) -> "EvalRowConfig":
        if self.texts is TextSource.none:
            raise ValueError("a localizer row needs texts (gt, generated, ...); a row without text is a chance row "
                             "(evaluate.chance)")
        if (self.texts is TextSource.generated) != (self.describer is not None):
            raise ValueError("`describer` is needed exactly when texts is 'generated' "
                             f"(texts: {self.texts.value}, describer: {self.describer})")
        if (self.texts is TextSource.style) != (self.style is not None):
            raise ValueError("`style` is needed exactly when texts is 'style' "
                             f"(texts: {self.texts.value}, style: {self.style})")
        if self.style is Style.gt:
            raise ValueError("style: gt is the description itself; use texts: gt")
        if (self.texts is TextSource.file) != (self.file is not None):
            raise ValueError("`file` is needed exactly when texts is 'file' "
                             f"(texts: {self.texts.value}, file: {self.file})")
        return self


class ChanceRowConfig(Section):
    """A row with no text and no model (stage evaluate-chance@<name>): where chance puts the point."""

    label: str
    groups: list[str] = Field(["chance"], description="the tables the row goes to")
    predictor: ChancePredictor

    @property
    def texts(self) -> TextSource:
        return TextSource.none


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
    comparisons: list[tuple[str, str]] = Field(
        default_factory=list, description="pairs of rows [a, b] whose mPCK difference a - b results.md and "
        "metrics.json (`differences`) give with a paired bootstrap interval over the test points both scored "
        "(`metrics.bootstrap`): whether a gap is more than the test set's noise")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of the comparisons' intervals")
    bootstrap_resamples: int = Field(2000, ge=100, description="resamples of each interval (BCa, seeded by seed)")


@register_section("evaluate")
class EvaluateConfig(ScoringConfig):
    """The rows of the paper's tables and the report built from them, in two steps: the describers write every
    test point's text once (describe@<name>, describe-vlm@<name>), then each row's localizer reads its texts
    (evaluate@<row>); chance rows need neither (evaluate-chance@<name>). Retraining a localizer does not
    regenerate any text, and no model change reruns a chance row."""

    describers: dict[str, DescriberConfig] = Field(default_factory=dict, description="Point Descriptors writing "
                                                   "texts (one DVC stage each)")
    vlm_describers: dict[str, VLMDescriberConfig] = Field(
        default_factory=dict, description="external image-text-to-text checkpoints shown the marked point, the "
        "paper's OMG-LLaVA / DAM rows (one DVC stage each; evaluation.vlm_describer)")
    rows: dict[str, EvalRowConfig]
    chance: dict[str, ChanceRowConfig] = Field(default_factory=dict, description="rows without text or model")
    report: ReportConfig = ReportConfig()

    @property
    def table_rows(self) -> dict[str, EvalRowConfig | ChanceRowConfig]:
        """Every row of the tables (localizer rows, then chance rows): name -> its config."""
        return {**self.rows, **self.chance}

    @model_validator(mode="after")
    def _rows(self) -> "EvaluateConfig":
        if not self.rows:
            raise ValueError("evaluate.rows is empty")
        for section in ("describers", "vlm_describers", "rows", "chance"):
            for name in getattr(self, section):
                check_key(name, f"evaluate.{section} name")  # dvc.yaml's foreach pastes it into commands, paths
        for a, b in (("rows", "chance"), ("describers", "vlm_describers")):
            both = sorted(set(getattr(self, a)) & set(getattr(self, b)))
            if both:
                raise ValueError(f"evaluate.{a} and evaluate.{b} both name {both}: each writes "
                                 f"data/eval/{'texts/' if a == 'describers' else ''}<name>.parquet")
        known = set(self.describers) | set(self.vlm_describers)
        for name, row in self.rows.items():
            if row.describer is not None and row.describer not in known:
                raise ValueError(f"evaluate.rows.{name}.describer {row.describer!r} is neither in "
                                 f"evaluate.describers nor in evaluate.vlm_describers (have {sorted(known)})")
        names = set(self.table_rows)
        for field in ("figure_rows", "breakdown_rows"):
            missing = [r for r in getattr(self.report, field) if r not in names]
            if missing:
                raise ValueError(f"evaluate.report.{field} names rows {missing} that evaluate.rows lacks")
        for k, (a, b) in enumerate(self.report.comparisons):
            missing = [r for r in (a, b) if r not in names]
            if missing:
                raise ValueError(f"evaluate.report.comparisons[{k}] [{a}, {b}] names rows {missing} that "
                                 f"evaluate.rows and evaluate.chance lack (have {sorted(names)})")
            if a == b:
                raise ValueError(f"evaluate.report.comparisons[{k}] compares row {a!r} with itself")
        if self.report.reference not in self.rows:
            raise ValueError(f"evaluate.report.reference {self.report.reference!r} is not a row of evaluate.rows")
        return self

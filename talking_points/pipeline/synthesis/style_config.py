"""The `styles` params section: the description styles the localizers are evaluated (and may be trained) on
(`synthesis.styles` writes them). Its own module, so that the training sections can name styles without
depending on the synthesis backends' configs."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from talking_points.pipeline.config import Section, register_section

__all__ = ["Style", "StylesConfig"]


class Style(str, Enum):
    """Ways of writing a keypoint's facts (synthesis.styles)."""

    gt = "gt"  # the synthesized description itself: the style the localizers are trained on
    terse = "terse"  # one clause, as people write: 'the top end of the tail of the left dog of the two'
    reordered = "reordered"  # fine to coarse or mixed order, no level separators
    paraphrase = "paraphrase"  # the description in synonyms that never occur in the training texts
    verbose = "verbose"  # ChatGPT-like: appearance first, the position cues in the middle, filler around them
    sparse = "sparse"  # the training words, each position clause and the look left out at random (fact dropout)


@register_section("styles")
class StylesConfig(Section):
    """The `styles` section: the styles the test descriptions are rewritten in (`tp restyle`, scored by the
    `texts: style` evaluation rows) and the ones no style-robust localizer may train on."""

    seed: int = Field(0, description="seeds every style's choice of forms (per kp_id), and the per-sample style "
                      "drawn for a localizer trained on several (train_localizer.text_styles)")
    styles: list[Style] = Field(
        default_factory=lambda: [Style.terse, Style.reordered, Style.paraphrase, Style.verbose],
        description="styles written for the test split (data/styles/test.parquet); gt is the description itself")
    held_out: list[Style] = Field(
        default_factory=lambda: [Style.terse, Style.paraphrase],
        description="styles kept out of every localizer's training (train_localizer.text_styles may not list "
        "them): the table shows in-style, seen-style and held-out-style mPCK")

    @model_validator(mode="after")
    def _consistent(self) -> "StylesConfig":
        if Style.gt in self.styles:
            raise ValueError("styles.styles lists gt: the GT description is the samples' own column, not a rewrite")
        if Style.gt in self.held_out:
            raise ValueError("styles.held_out lists gt: the training style cannot be held out")
        if stray := [s.value for s in self.held_out if s not in self.styles]:
            raise ValueError(f"styles.held_out {stray} are not written (add them to styles.styles)")
        return self

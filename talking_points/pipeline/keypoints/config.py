"""The `mine` params section: SIFT and the keypoint selection."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.config import Section, register_section
from talking_points.pipeline.data.errors import OnError

__all__ = ["Balance", "SiftConfig", "MineConfig"]


class Balance(str, Enum):
    """How many of each source's mined keypoints `mine` keeps (`sampling.balance`; `per_source` is N)."""

    equal = "equal"  # N from every source (N null: the smallest source's count); the paper's equal mix
    target = "target"  # min(N, mined) from every source: a source with fewer than N keeps all of its own
    proportional = "proportional"  # every source as mined (N null), or N x sources in all, split as mined


class SiftConfig(Section):
    n_features: int = Field(0, ge=0, description="0 = keep all")
    n_octave_layers: int = Field(3, ge=1)
    contrast_threshold: float = Field(0.04, gt=0)
    edge_threshold: float = Field(10.0, gt=0)
    sigma: float = Field(1.6, gt=0)
    precise_upscale: bool = Field(True, description="OpenCV's enable_precise_upscale: without it the doubled "
                                  "first octave shifts every keypoint by +0.25 px in x and y")


@register_section("mine")
class MineConfig(Section):
    top_k: int = Field(1, ge=1, description="keypoints kept per image, highest SIFT response first")
    min_border_dist: float = Field(0.01, ge=0, description="distance between a keypoint and its part's border, "
                                   "as a fraction of the image's shorter side (at least min_border_px)")
    min_border_px: float = Field(2.0, ge=0, description="the least border distance in pixels, whatever the "
                                 "image size (the floor of min_border_dist)")
    min_separation: float = Field(0.05, ge=0, description="min distance between kept keypoints of one image, "
                                  "as a fraction of the image diagonal")
    one_per_part: bool = Field(True, description="keep at most one keypoint per part instance")
    balance: Balance = Field(Balance.equal, description="equal: per_source from every source (null: the smallest "
                             "source's count); target: per_source from every source, all of a smaller one; "
                             "proportional: the sources as mined, capped at per_source x sources in all")
    per_source: int | None = Field(None, ge=1, description="keypoints sampled per source (balance: equal), the "
                                   "target and cap per source (target), or the mean cap (proportional); null = as "
                                   "many as the smallest source has (equal), everything (proportional)")
    patch_radius: int = Field(4, ge=1, description="half-size in pixels of the patch for the local statistics")
    edge_margin: float = Field(0.05, ge=0, le=0.5, description="an object box this close (normalised) to an "
                               "image edge is 'near' that edge")
    workers: int = Field(2, ge=1)
    seed: int = 0
    on_error: OnError = OnError.skip
    sift: SiftConfig = SiftConfig()

    @field_validator("min_border_dist")
    @classmethod
    def _a_fraction(cls, v: float) -> float:
        if not v < 0.5:  # half the shorter side is the farthest any pixel is from the image border
            raise ValueError(f"is a fraction of the image's shorter side, 0 <= min_border_dist < 0.5, got {v} "
                             "(a distance in pixels is min_border_px)")
        return v

    @model_validator(mode="after")
    def _target_needs_a_count(self) -> "MineConfig":
        if self.balance is Balance.target and self.per_source is None:
            raise ValueError("balance: target needs per_source (the keypoints wanted from every source)")
        return self

    def border_px(self, width: int, height: int) -> float:
        """The least border distance in pixels on a `width` x `height` image."""
        return max(self.min_border_px, self.min_border_dist * min(width, height))

"""The `mine` params section: SIFT and the keypoint selection."""

from __future__ import annotations

from pydantic import Field

from talking_points.pipeline.config import Section, register_section
from talking_points.pipeline.data.errors import OnError

__all__ = ["SiftConfig", "MineConfig"]


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
    min_border_dist: float = Field(2.0, ge=0, description="pixels between a keypoint and its part's border")
    min_separation: float = Field(0.05, ge=0, description="min distance between kept keypoints of one image, "
                                  "as a fraction of the image diagonal")
    one_per_part: bool = Field(True, description="keep at most one keypoint per part instance")
    per_source: int | None = Field(None, ge=1, description="keypoints sampled per source; null = as many as the "
                                   "smallest source has, so that sources are equally represented")
    patch_radius: int = Field(4, ge=1, description="half-size in pixels of the patch for the local statistics")
    edge_margin: float = Field(0.05, ge=0, le=0.5, description="an object box this close (normalised) to an "
                               "image edge is 'near' that edge")
    workers: int = Field(2, ge=1)
    seed: int = 0
    on_error: OnError = OnError.skip
    sift: SiftConfig = SiftConfig()

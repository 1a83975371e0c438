"""The `grpo` params section: AP-10K data, the cross-family directions, GRPO training and its evaluation.

    grpo:
      descriptor: models/descriptor      # the SFT descriptor (policy start and KL reference)
      localizer: models/localizer        # the frozen localizer (reward model and evaluator)
      data: {...}                        # AP10KDataConfig: synthetic AP-10K or a real AP-10K json
      directions:                        # one DVC stage each; per-direction overrides of `train`
        bovidae_to_canidae: {}
        canidae_to_bovidae: {}
      train: {...}                       # GRPOTrainConfig: GRPOParams's fields + LoRA, steps, checkpoints
      evaluate: {...}                    # GRPOEvalConfig: greedy generation, batch sizes, examples

`directions` is a mapping (not GRPOParams's list) so that `dvc.yaml` can `foreach` over it; the directions
to run are its keys, and `train.directions` must not be set.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from talking_points.pipeline.config import ConfigError, Section, deep_merge, register_section
from talking_points.pipeline.data.errors import OnError
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.data.keypoint_sets.keypoint_rows import PoseRowsConfig
from talking_points.pipeline.data.keypoint_sets.layouts import PartGranularity
from talking_points.pipeline.data.keypoint_sets.synthetic_ap10k import SyntheticAP10KConfig
from talking_points.pipeline.evaluation.scoring import ScoringConfig
from talking_points.pipeline.models.adaptation import LoraSettings
from talking_points.pipeline.rl.grpo import GRPOParams
from talking_points.pipeline.training.config import OptimiserConfig

__all__ = [
    "AP10KSource",
    "AP10KDataConfig",
    "GRPOTrainConfig",
    "GRPOEvalConfig",
    "GRPOSection",
    "grpo_lora_default",
]


class AP10KSource(str, Enum):
    """Where the AP-10K keypoints come from."""

    synthetic = "synthetic"  # PartWorld quadrupeds written in AP-10K's layout (synthetic_ap10k)
    coco = "coco"  # a real AP-10K annotation json (COCO-keypoint format) and its image folder


class AP10KDataConfig(Section):
    """What `tp ap10k-data` reads or generates, and how it becomes keypoint rows and cross-family splits."""


    source: AP10KSource = AP10KSource.synthetic
    synthetic: SyntheticAP10KConfig = SyntheticAP10KConfig()
    annotations: str | None = Field(None, description="coco: the annotation json, e.g. "
                                    "datasets/ap-10k/annotations/ap10k-train-split1.json")
    images: str | None = Field(None, description="coco: folder the json's file names are relative to, e.g. "
                               "datasets/ap-10k/data")
    source_name: str = Field("ap10k", pattern=r"^[a-z][a-z0-9_]*$", description="image_id prefix")
    granularity: PartGranularity = PartGranularity.coarse
    rows: PoseRowsConfig = PoseRowsConfig()
    split_seed: int = Field(0, description="order of the images in the cross-family splits")
    max_train_images: int | None = Field(None, ge=1, description="cap on the train family's images")
    max_test_images: int | None = Field(None, ge=1, description="cap on the test family's images")
    describe_seed: int = Field(0, description="seed of the grounded synthesis of the reference descriptions")
    workers: int = Field(1, ge=1, description="processes rendering the synthetic images")
    on_error: OnError = OnError.skip

    @model_validator(mode="after")
    def _source_paths(self) -> AP10KDataConfig:
        if self.source is AP10KSource.coco:
            missing = [k for k in ("annotations", "images") if not getattr(self, k)]
            if missing:
                raise ValueError(f"source 'coco' needs {' and '.join(missing)} (paths of a real AP-10K)")
        elif self.source is AP10KSource.synthetic:
            given = [k for k in ("annotations", "images") if getattr(self, k)]
            if given:
                raise ValueError(f"{' and '.join(given)} are only read with source 'coco'; remove them for "
                                 "source 'synthetic'")
        else:
            raise ValueError(f"unknown source {self.source!r}")
        return self


def grpo_lora_default() -> LoraSettings:
    """Fresh GRPO adapters: no dropout (the policy runs in eval mode), nothing trained in full beside them."""
    return LoraSettings(r=8, alpha=16, dropout=0.0, modules_to_save=[])


class GRPOTrainConfig(GRPOParams, OptimiserConfig):
    """GRPOParams's fields (objective, sampling, trainable set) plus the shared optimiser/loop fields
    (`training.config.OptimiserConfig`: lr, batch_size, grad_accum, ...) and LoRA and the reward batches."""

    lr: float = Field(5e-6, gt=0, description="learning rate (AdamW, no weight decay)")
    batch_size: int = Field(10, ge=1, description="keypoints (prompts) per optimiser step; each gives G sequences")
    log_every: int = Field(5, ge=1, description="steps between dvclive points")
    checkpoint_every: int = Field(50, ge=1, description="steps between resumable checkpoints")
    lora: LoraSettings = Field(default_factory=grpo_lora_default,
                               description="the fresh adapters added under trainable lora / lora+last_blocks")
    reward_batch_size: int = Field(64, ge=1, description="texts per batch of the frozen localizer")

    @model_validator(mode="after")
    def _loop(self) -> GRPOTrainConfig:
        if "directions" in self.model_fields_set:
            raise ValueError("directions: set the directions as the keys of grpo.directions, not in "
                             "grpo.train")
        return self


class GRPOEvalConfig(ScoringConfig):
    """How `tp evaluate-grpo` describes and localizes the held-out family's keypoints (the fields shared with
    `evaluate` in `evaluation.config.ScoringConfig`)."""

    examples: int = Field(4, ge=0, description="example texts in the report section")


@register_section("grpo")
class GRPOSection(Section):
    """The whole `grpo` section."""

    descriptor: str = Field("models/descriptor",
                            description="the SFT descriptor folder (policy start, reference)")
    localizer: str = Field("models/localizer", description="the frozen localizer folder (reward, evaluation)")
    trust_remote_code: bool = False
    data: AP10KDataConfig = AP10KDataConfig()
    directions: dict[Direction, dict[str, Any]] = Field(
        default_factory=lambda: {d: {} for d in Direction},
        description="the cross-family settings to run (one DVC stage each), with overrides of `train`")
    train: GRPOTrainConfig = GRPOTrainConfig()
    evaluate: GRPOEvalConfig = GRPOEvalConfig()

    @field_validator("directions", mode="before")
    @classmethod
    def _none_is_empty(cls, directions: Any) -> Any:
        if isinstance(directions, dict):
            return {k: (v if v is not None else {}) for k, v in directions.items()}
        return directions

    @field_validator("directions")
    @classmethod
    def _directions(cls, directions: dict[Direction, dict[str, Any]]) -> dict[Direction, dict[str, Any]]:
        if not directions:
            raise ValueError("directions is empty; list some of " + ", ".join(d.value for d in Direction))
        return directions

    @model_validator(mode="after")
    def _overrides_valid(self) -> GRPOSection:
        for direction in self.directions:
            self.train_config(direction)
        return self

    def train_config(self, direction: Direction) -> GRPOTrainConfig:
        """`train` with the direction's overrides merged in (ValueError naming the direction if invalid)."""
        if direction not in self.directions:
            raise ConfigError(f"grpo.directions has no {direction.value!r} (has "
                              f"{sorted(d.value for d in self.directions)})")
        base = self.train.model_dump(mode="json", exclude_unset=False, exclude={"directions"})
        try:
            return GRPOTrainConfig.model_validate(deep_merge(base, self.directions[direction]))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(["directions", direction.value, *(str(p) for p in first["loc"])])
            raise ValueError(f"{where}: {first['msg']}") from None

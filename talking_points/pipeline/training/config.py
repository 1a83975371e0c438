"""Training hyper-parameters shared by every SFT stage (and the base LM's warm-up)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

__all__ = ["TrainConfig"]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(10, gt=0, description="passes over the training rows (paper: descriptor 10, localizer 15)")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    batch_size: int = Field(8, ge=1, description="rows per optimiser step, over all processes")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)
    seed: int = 0
    log_every: int = Field(10, ge=1, description="optimiser steps between dvclive points")
    checkpoint_every: int = Field(100, ge=1, description="optimiser steps between resumable checkpoints")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")

    @model_validator(mode="after")
    def _batch(self):
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}")
        return self

    @property
    def micro_batch(self) -> int:
        return self.batch_size // self.grad_accum


# ---- params sections of the model stages -------------------------------------------------------------------------
from enum import Enum  # noqa: E402
from typing import Any  # noqa: E402

from talking_points.pipeline.models.build import TinyBaseConfig  # noqa: E402
from talking_points.pipeline.models.descriptor import DescriptorConfig  # noqa: E402
from talking_points.pipeline.models.inference import GenerationConfig  # noqa: E402
from talking_points.pipeline.models.localizer import LocalizerConfig  # noqa: E402


class BaseKind(str, Enum):
    tiny = "tiny"  # build a tiny base from configs, tokenizer trained on the training descriptions
    llava = "llava"  # convert a LLaVA-family checkpoint (local path or hub id)
    pointvlm = "pointvlm"  # an already converted/saved PointVLM base: copy it


class InitModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: BaseKind = BaseKind.tiny
    path: str | None = Field(None, description="checkpoint path or hub id for kind llava / pointvlm")
    trust_remote_code: bool = False
    seed: int = 0
    tiny: TinyBaseConfig = TinyBaseConfig()
    extra_vocabulary: list[str] = Field(default_factory=list,
                                        description="words the tokenizer must learn besides the descriptions'")
    lm_warmup: TrainConfig | None = Field(None, description="language-model warm-up of the tiny LM on the training "
                                          "descriptions (text only); null to skip")
    image_size: tuple[PositiveInt, PositiveInt] | None = Field(None, description="llava: resize images to this "
                                                               "(H, W)")

    @model_validator(mode="after")
    def _path(self):
        if self.kind in (BaseKind.llava, BaseKind.pointvlm) and not self.path:
            raise ValueError(f"init_models.kind {self.kind.value!r} needs init_models.path (a folder or hub id)")
        if self.kind is BaseKind.tiny and self.path:
            raise ValueError("init_models.path is only used with kind llava/pointvlm; remove it for kind tiny")
        return self


class _SFTSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: str = Field("models/base", description="folder of the base model (written by init-models)")
    trust_remote_code: bool = False
    text_column: str = Field("description", description="samples column to train on")
    train: TrainConfig = TrainConfig()
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named overrides of this section (ablations), one DVC stage each")


class TrainDescriptorConfig(_SFTSection):
    model: DescriptorConfig = DescriptorConfig()
    generation: GenerationConfig = GenerationConfig()


class TrainLocalizerConfig(_SFTSection):
    model: LocalizerConfig = LocalizerConfig()

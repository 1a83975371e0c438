"""Training hyper-parameters shared by every SFT stage (and the base LM's warm-up)."""

from __future__ import annotations

from pydantic import Field, PositiveInt, field_validator, model_validator

from talking_points.pipeline.config import Section, check_key, register_section
from talking_points.pipeline.precision import Precision

__all__ = ["OptimiserConfig", "TrainConfig"]


class OptimiserConfig(Section):
    """The optimiser and loop fields every training (SFT, dense pretraining, GRPO) shares, under one name each."""

    batch_size: int = Field(8, ge=1, description="rows (GRPO: keypoints) per optimiser step, over all processes")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step (gradients accumulated); "
                            "batch_size must be a multiple of it")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    lr: float = Field(2e-4, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    grad_clip: float | None = Field(1.0, gt=0, description="clip the gradient norm to this (null: no clipping)")
    seed: int = 0
    log_every: int = Field(10, ge=1, description="optimiser steps between dvclive points")
    checkpoint_every: int = Field(100, ge=1, description="optimiser steps between resumable checkpoints")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")
    deterministic: bool = Field(
        True, description="torch.use_deterministic_algorithms during the run, so that two runs on the same "
        "machine and thread count give bit-identical weights (without it the descriptor SFT drifts by ~1e-8 from "
        "step ~100 on 2 CPU threads; costs some speed); false: PyTorch's default kernels")
    mixed_precision: Precision = Field(
        Precision.auto, description="auto: bf16 where the device runs bfloat16 natively (a GPU with bfloat16, a CPU "
        "with AVX512-BF16 or AMX), fp32 elsewhere (precision.resolve); bf16: forward passes under torch.autocast("
        "bfloat16), weights and optimiser state in float32 (about 1.7x faster training steps on a CPU with "
        "AVX512-BF16, the usual setting on GPUs; on a CPU without it bfloat16 is emulated, many times slower, and "
        "warns); fp32: no autocast")

    @model_validator(mode="after")
    def _batch(self):
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of grad_accum {self.grad_accum}")
        return self

    @property
    def micro_batch(self) -> int:
        return self.batch_size // self.grad_accum


class TrainConfig(OptimiserConfig):
    """An SFT run (and the base LM's warm-up, and the tower's dense pretraining)."""

    epochs: float = Field(10, gt=0, description="passes over the training rows (paper: descriptor 10, localizer 15)")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="fraction of the steps with a linear warm-up")
    group_by_length: bool = Field(
        False, description="batches of rows whose texts have similar lengths (as transformers' TrainingArguments."
        "group_by_length: each run of 50 batches of the epoch's shuffled rows is sorted by length, cut into "
        "batches, and the epoch's batches are shuffled): less padding when the lengths differ a lot, e.g. a mix of "
        "description styles; false: batches of rows in shuffled order")
    lr_multipliers: dict[str, float] = Field(
        default_factory=dict, description="parameter-name prefix -> a multiple of lr for the trainable parameters "
        "whose names start with it (each its own optimiser group, on the same schedule), e.g. {gate.: 20}: heads "
        "a fine-tuning adds, learning from zero beside an adapter it moves gently; a prefix no trainable "
        "parameter has is an error")

    @field_validator("lr_multipliers")
    @classmethod
    def _positive_multipliers(cls, multipliers: dict[str, float]) -> dict[str, float]:
        if bad := {k: v for k, v in multipliers.items() if not v > 0 or not k}:
            raise ValueError(f"lr_multipliers {bad}: each needs a non-empty prefix and a multiplier above 0")
        return multipliers


# ---- params sections of the model stages -------------------------------------------------------------------------
from enum import Enum  # noqa: E402
from typing import Any  # noqa: E402

from talking_points.pipeline.models.build import TinyBaseConfig  # noqa: E402
from talking_points.pipeline.models.decoding import DecodingConfig  # noqa: E402
from talking_points.pipeline.models.descriptor import DescriptorConfig  # noqa: E402
from talking_points.pipeline.models.localizer import LocalizerConfig, LocalizerHead  # noqa: E402
from talking_points.pipeline.synthesis.style_config import Style  # noqa: E402


class BaseKind(str, Enum):
    tiny = "tiny"  # build a tiny base from configs, tokenizer trained on the training descriptions
    llava = "llava"  # convert a LLaVA-family checkpoint (local path or hub id)
    pointvlm = "pointvlm"  # an already converted/saved PointVLM base: copy it


@register_section("init_models")
class InitModelsConfig(Section):

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


class _SFTSection(Section):
    """What both SFT sections hold: the base, the training run and the named variants (ablations)."""

    base: str = Field("models/base", description="folder of the base model (written by init-models)")
    trust_remote_code: bool = False
    text_column: str = Field("description", description="samples column to train on")
    train: TrainConfig = TrainConfig()
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named overrides of this section (ablations), one DVC stage each")

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, variants: dict) -> dict:
        for name in variants:
            check_key(name, "variant name")  # dvc.yaml's foreach pastes it into commands and paths
        return variants


@register_section("train_descriptor")
class TrainDescriptorConfig(_SFTSection):
    model: DescriptorConfig = DescriptorConfig()
    generation: DecodingConfig = DecodingConfig()
    word_dropout: float = Field(
        0.0, ge=0, lt=1, description="probability that a description token of the training *input* is replaced "
        "by <unk> (the labels keep it): without it a small LM learns to guess the last clauses (position in the "
        "part, colour) from the words before them and ignores the image there (training.steps.descriptor_collate)")


class HeatmapLossConfig(Section):
    """A second loss on the heatmap head's heat map (training.steps.heat_cross_entropy)."""

    weight: float = Field(..., gt=0, description="its weight beside the MSE of the point (the MSE is ~0.01 after "
                          "training, the cross-entropy a few nats)")
    sigma: float = Field(0.03, gt=0, le=0.5, description="the target Gaussian's standard deviation, in "
                         "image-normalised units (0.03: about one stride-4 cell of a 192-pixel-wide image times 1.5)")


@register_section("train_localizer")
class TrainLocalizerConfig(_SFTSection):
    model: LocalizerConfig = LocalizerConfig()
    heatmap_loss: HeatmapLossConfig | None = Field(
        None, description="heatmap head: also train the heat map towards a Gaussian at the true point (cross-"
        "entropy), which tells it which cells hold the named part, not only which way the mean should move; "
        "null: the point's MSE alone")
    label_loss: float | None = Field(
        None, gt=0, description="model.heatmap_gate: the weight of the cross-entropy that teaches the gate's heads "
        "the category and the part each row's description names (its own labels, as the tower's classes; rows "
        "whose names the tower lacks are skipped; it trains the heads only, which read the query detached); "
        "null: no gate")
    text_styles: list[Style] = Field(
        default_factory=list, description="train on these description styles (synthesis.styles), one drawn per "
        "sample (seeded by styles.seed and kp_id), instead of text_column alone; gt is the description itself; a "
        "style listed twice is drawn twice as often. "
        "None of styles.held_out may be listed: a style-robust localizer is evaluated on styles it never saw")
    init_from: str | None = Field(
        None, description="a trained localizer folder to start from (its LoRA adapter and heads) instead of the "
        "base alone: fine-tuning. Set it in a `finetuned` entry, whose DVC stage lists the folder as a dependency")
    wise_alpha: float = Field(
        1.0, gt=0.0, le=1.0, description="with init_from: save (1 - wise_alpha) * the starting weights + wise_alpha "
        "* the fine-tuned ones (WiSE-FT, Wortsman et al. 2022; training.weight_interpolation); 1: the fine-tuned "
        "weights as they are")
    finetuned: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named overrides like `variants`, each starting from a trained "
        "localizer (its init_from; one DVC stage each, train-localizer-finetuned@<name>), e.g. a style-robust "
        "localizer fine-tuned from the default one")

    @field_validator("text_styles")
    @classmethod
    def _trainable_styles(cls, styles: list[Style]) -> list[Style]:
        if Style.llm in styles:
            raise ValueError("text_styles lists llm: a chat LLM writes that style for the test split only (tp "
                             "restyle, styles.llm); train on gt, reordered, verbose, sparse, ...")
        return styles

    @field_validator("finetuned")
    @classmethod
    def _finetuned_entries(cls, finetuned: dict) -> dict:
        for name, over in finetuned.items():
            check_key(name, "variant name")
            if not (over or {}).get("init_from"):
                raise ValueError(f"finetuned.{name}: set init_from (the trained localizer folder it starts from)")
        return finetuned

    def model_post_init(self, __context) -> None:
        if self.heatmap_loss is not None and self.model.head is not LocalizerHead.heatmap:
            raise ValueError(f"heatmap_loss trains the heat map of the heatmap head; model.head is "
                             f"{self.model.head.value!r}: set model.head: heatmap or heatmap_loss: null")
        if self.model.heatmap_gate and self.label_loss is None:
            raise ValueError("model.heatmap_gate's heads learn the named category and part from label_loss, and "
                             "without it the gate stays the same on every cell: set label_loss (e.g. 0.1)")
        if self.label_loss is not None and not self.model.heatmap_gate:
            raise ValueError(f"label_loss {self.label_loss} trains the heads of model.heatmap_gate: set "
                             "model.heatmap_gate: true (and model.head: heatmap) or label_loss: null")
        if self.wise_alpha < 1.0 and not self.init_from:
            raise ValueError(f"wise_alpha {self.wise_alpha} interpolates with the weights training started from: "
                             "set it in a train_localizer.finetuned entry (with init_from), or leave it at 1")
        if clash := sorted(set(self.variants) & set(self.finetuned)):
            raise ValueError(f"variant name(s) {clash} are both in variants and in finetuned; one name, one stage")
        if bad := sorted(n for n, over in self.variants.items() if (over or {}).get("init_from")):
            raise ValueError(f"variants {bad} set init_from: move them to train_localizer.finetuned, whose DVC "
                             "stage depends on the folder they start from")

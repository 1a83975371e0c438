"""The `synthesize` params section: which backend writes the descriptions, and the shared vocabulary
thresholds (the model backends' own sections are in `model_config`)."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from talking_points.pipeline.config import Section, register_section
from talking_points.pipeline.data.errors import OnError
from talking_points.pipeline.synthesis.model_config import HFSynthConfig, VLLMSynthConfig

__all__ = ["SynthBackend", "GroundedConfig", "SynthesizeConfig"]


class SynthBackend(str, Enum):
    grounded = "grounded"  # from the mined geometry and patch statistics, no model
    hf = "hf"  # transformers generate, two VLM passes + two LLM passes
    vllm = "vllm"  # the same four passes through vLLM offline inference


class GroundedConfig(Section):
    shuffle_clauses: float = Field(0.3, ge=0, le=1, description="probability of reordering clauses inside a level")
    prompt_version: str = "grounded-v1"


@register_section("synthesize")
class SynthesizeConfig(Section):
    backend: SynthBackend = SynthBackend.grounded
    seed: int = 0
    batch_size: int = Field(256, ge=1, description="rows handed to the backend at a time")
    on_error: OnError = OnError.skip
    dark_below: float = Field(0.3, gt=0, lt=1, description="patch_brightness below this is 'dark'")
    bright_above: float = Field(0.6, gt=0, lt=1, description="patch_brightness at or above this is 'bright'")
    smooth_below: float = Field(0.05, gt=0, lt=1, description="patch_edge_energy below this is 'smooth'")
    busy_above: float = Field(0.15, gt=0, lt=1, description="patch_edge_energy at or above this is 'busy'")
    grounded: GroundedConfig = GroundedConfig()
    hf: HFSynthConfig | None = None  # see synthesis/model_config.py
    vllm: VLLMSynthConfig | None = None

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> "SynthesizeConfig":
        if not self.dark_below < self.bright_above:
            raise ValueError(f"dark_below ({self.dark_below}) must be below bright_above ({self.bright_above})")
        if not self.smooth_below < self.busy_above:
            raise ValueError(f"smooth_below ({self.smooth_below}) must be below busy_above ({self.busy_above})")
        return self

    @model_validator(mode="after")
    def _backend_has_config(self) -> "SynthesizeConfig":
        if self.backend is SynthBackend.grounded:
            pass
        elif self.backend in (SynthBackend.hf, SynthBackend.vllm):
            if getattr(self, self.backend.value) is None:
                raise ValueError(f"backend {self.backend.value!r} needs a 'synthesize.{self.backend.value}' section")
        else:
            raise ValueError(f"unknown backend {self.backend!r}")
        return self


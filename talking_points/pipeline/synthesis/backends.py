"""Every description backend, registered (importing this module imports them; each imports its heavy
libraries, transformers or vLLM, only when it first generates), and `make_backend` for a synthesize config."""

from __future__ import annotations

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.synthesis import grounded, hf_backend, vllm_backend  # noqa: F401 - register them
from talking_points.pipeline.synthesis.base import DescriptionBackend, word_bins
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.registry import BACKENDS, BackendEntry, get_backend

__all__ = ["BACKENDS", "entry_for", "make_backend"]


def entry_for(cfg: SynthesizeConfig) -> BackendEntry:
    return get_backend(getattr(cfg.backend, "value", cfg.backend))


def make_backend(cfg: SynthesizeConfig) -> DescriptionBackend:
    """The backend named by `cfg.backend`, built from its section `synthesize.<backend>`."""
    entry = entry_for(cfg)
    section = getattr(cfg, entry.name, None)
    if section is None:
        raise ConfigError(f"synthesize.backend {entry.name!r} needs a 'synthesize.{entry.name}' section")
    if not isinstance(section, entry.config):
        raise ConfigError(f"synthesize.{entry.name} is a {type(section).__name__}, not {entry.config.__name__}")
    return entry.make(section, word_bins(cfg))

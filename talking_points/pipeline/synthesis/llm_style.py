"""The `llm` description style: the GT description of every test point rewritten by a chat LLM, through the text
pass (`write`) of a model-backed synthesis backend (`hf_backend`, `vllm_backend`), as `styles.llm` configures it.

The hand-written styles (`synthesis.styles`) are generators whose facts are known by construction; an LLM's
rewrite is not, so `tp restyle` measures how many of its texts the parser reads back without a contradiction
(`data/styles/report.json`, `faithful`), and the `texts: style` rows score every one of them as written: an
unfaithful rewrite is the LLM's, not the localizer's, and the report says how often it happens.
"""

from __future__ import annotations

from collections.abc import Sequence

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.synthesis.model_backend import ModelBackend, clean_output, derived_seed
from talking_points.pipeline.synthesis.model_config import SamplingConfig
from talking_points.pipeline.synthesis.style_config import LLMEngine, LLMStyleConfig
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = ["CHUNK", "llm_rewrites", "llm_writer"]

#: prompts per `write` call (and per resumable chunk of `tp restyle`); the hf backend batches within it
CHUNK = 64


def llm_writer(cfg: LLMStyleConfig, bins: WordBins) -> ModelBackend:
    """The synthesis backend `cfg.backend` with `cfg.checkpoint` as its LLM (its VLM is never loaded: only the
    text pass runs)."""
    shared = {"vlm": cfg.checkpoint, "llm": cfg.checkpoint, "dtype": cfg.dtype,
              "trust_remote_code": cfg.trust_remote_code}
    if cfg.backend is LLMEngine.hf:
        from talking_points.pipeline.synthesis.hf_backend import HFBackend
        from talking_points.pipeline.synthesis.model_config import HFSynthConfig

        return HFBackend(HFSynthConfig(**shared, device=cfg.device, text_batch_size=cfg.batch_size), bins)
    elif cfg.backend is LLMEngine.vllm:
        from pydantic import ValidationError

        from talking_points.pipeline.synthesis.model_config import VLLMEngineConfig, VLLMSynthConfig
        from talking_points.pipeline.synthesis.vllm_backend import VLLMBackend

        try:
            engine = VLLMEngineConfig(**cfg.vllm_engine)
        except ValidationError as exc:
            raise ConfigError(f"styles.llm.vllm_engine: {exc}") from None
        return VLLMBackend(VLLMSynthConfig(**shared, llm_engine=engine), bins)
    else:
        raise ValueError(f"unknown styles.llm.backend {cfg.backend!r}")


def llm_rewrites(descriptions: Sequence[str], writer: ModelBackend, cfg: LLMStyleConfig, seed: int) -> list[str]:
    """One rewrite per description (`cfg.prompt` around it), each on one line (`clean_output`); greedy unless
    `cfg.temperature` > 0, then sampled with a seed per chunk derived from `seed`."""
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, do_sample=cfg.temperature > 0,
                              temperature=cfg.temperature if cfg.temperature > 0 else 1.0)
    prompts = [cfg.prompt.format(description=d) for d in descriptions]
    out: list[str] = []
    for s in range(0, len(prompts), CHUNK):
        answers = writer.write(prompts[s : s + CHUNK], sampling, derived_seed(seed, "style/llm", str(s)))
        out += [clean_output(a) for a in answers]
    return out

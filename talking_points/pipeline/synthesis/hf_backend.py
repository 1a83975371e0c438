"""The `hf` backend: the four passes with transformers `generate`, batched with left padding.

The VLM is any image-text-to-text checkpoint (`AutoModelForImageTextToText` + `AutoProcessor`, prompted
through the processor's chat template with one image per turn); the LLM any causal LM with a chat
template (`AutoModelForCausalLM` + `AutoTokenizer`). Both load on first use, so a rerun whose rows all
come from the resume shards loads nothing. Checkpoints that ship their own code load only with
`trust_remote_code: true`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.synthesis.model_backend import ModelBackend
from talking_points.pipeline.synthesis.model_config import Dtype, HFSynthConfig, SamplingConfig
from talking_points.pipeline.synthesis.registry import BackendEntry, register_backend
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = ["HFBackend", "resolve_checkpoint", "generation_config"]

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\")


def resolve_checkpoint(name: str, key: str) -> str:
    """`name` as given, after checking that a name that is clearly a local path exists; hub ids pass."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{key}: {name!r} is a file; give the checkpoint folder (with config.json)")
        return str(path)
    if name.startswith(_PATH_PREFIXES) or name.count("/") > 1:
        raise ConfigError(f"{key}: checkpoint folder {name!r} not found; give an existing folder written by "
                          "save_pretrained, or a hub id such as llava-hf/llava-1.5-7b-hf")
    return name


def _load_error(key: str, name: str, exc: Exception) -> ConfigError:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return ConfigError(
        f"{key}: cannot load {name!r} ({type(exc).__name__}: {first_line}). "
        "Give a local checkpoint folder, or download the hub id first (`hf download <id>`; stages run "
        "with HF_HUB_OFFLINE=1); checkpoints with custom code also need trust_remote_code: true"
    )



def _pad_left(tokenizer: Any) -> None:
    """Batched generation continues every row from its last prompt token: pad on the left."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

def generation_config(model: Any, sampling: SamplingConfig, pad_token_id: int | None) -> Any:
    """The model's own generation config (end-of-turn tokens included) with `sampling` applied."""
    gc = copy.deepcopy(model.generation_config)
    gc.max_new_tokens = sampling.max_new_tokens
    gc.max_length = None
    gc.do_sample = sampling.do_sample
    if sampling.do_sample:
        gc.temperature, gc.top_p, gc.top_k = sampling.temperature, sampling.top_p, sampling.top_k or None
    else:
        gc.temperature = gc.top_p = gc.top_k = None
    gc.repetition_penalty = sampling.repetition_penalty
    if pad_token_id is not None:
        gc.pad_token_id = pad_token_id
    return gc


class HFBackend(ModelBackend):
    """Four passes with transformers; `see` / `write` run in micro-batches of the configured sizes."""

    name = "hf"

    def __init__(self, cfg: HFSynthConfig, bins: WordBins):
        super().__init__(cfg, bins)
        self.cfg: HFSynthConfig = cfg
        self._vision: tuple[Any, Any] | None = None  # (processor, model)
        self._text: tuple[Any, Any] | None = None  # (tokenizer, model)

    # ---------------------------------------------------------------------------------------- loading

    def _load_kwargs(self) -> dict[str, Any]:
        import torch

        c = self.cfg
        kwargs: dict[str, Any] = {"trust_remote_code": c.trust_remote_code}
        if c.dtype is Dtype.auto:
            kwargs["dtype"] = "auto"
        elif c.dtype in (Dtype.float32, Dtype.bfloat16, Dtype.float16):
            kwargs["dtype"] = getattr(torch, c.dtype.value)
        else:
            raise ValueError(f"unknown dtype {c.dtype!r}")
        if c.device_map is not None:
            kwargs["device_map"] = c.device_map
        if c.attn_implementation is not None:
            kwargs["attn_implementation"] = c.attn_implementation
        return kwargs

    def _place(self, model: Any) -> Any:
        if self.cfg.device_map is None:
            import torch

            device = self.cfg.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            model = model.to(device)
        return model.eval()

    def vision_model(self) -> tuple[Any, Any]:
        """(processor, model) of the VLM, loaded on first call."""
        if self._vision is None:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            key, name = "synthesize.hf.vlm", self.cfg.vlm
            path = resolve_checkpoint(name, key)
            try:
                processor = AutoProcessor.from_pretrained(path, trust_remote_code=self.cfg.trust_remote_code)
                model = AutoModelForImageTextToText.from_pretrained(path, **self._load_kwargs())
            except (OSError, ValueError, KeyError) as exc:
                raise _load_error(key, name, exc) from exc
            tokenizer = getattr(processor, "tokenizer", None)
            if tokenizer is None or getattr(processor, "chat_template", None) is None:
                raise ConfigError(f"{key}: {name!r} has no processor with a tokenizer and a chat template; "
                                  "use an image-text-to-text chat checkpoint such as llava-hf/llava-1.5-7b-hf")
            _pad_left(tokenizer)
            self._vision = (processor, self._place(model))
        return self._vision

    def text_model(self) -> tuple[Any, Any]:
        """(tokenizer, model) of the LLM, loaded on first call."""
        if self._text is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            key, name = "synthesize.hf.llm", self.cfg.llm
            path = resolve_checkpoint(name, key)
            try:
                tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.cfg.trust_remote_code)
                model = AutoModelForCausalLM.from_pretrained(path, **self._load_kwargs())
            except (OSError, ValueError, KeyError) as exc:
                raise _load_error(key, name, exc) from exc
            if getattr(tokenizer, "chat_template", None) is None:
                raise ConfigError(f"{key}: the tokenizer of {name!r} has no chat template; use an instruct/chat "
                                  "checkpoint such as meta-llama/Llama-3.3-70B-Instruct")
            _pad_left(tokenizer)
            self._text = (tokenizer, self._place(model))
        return self._text

    # ---------------------------------------------------------------------------------------- generation

    @staticmethod
    def _generate(model: Any, inputs: Any, sampling: SamplingConfig, pad_token_id: int | None,
                  decode: Any) -> list[str]:
        import torch

        inputs = inputs.to(model.device)
        if "pixel_values" in inputs and torch.is_floating_point(inputs["pixel_values"]):
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=generation_config(model, sampling, pad_token_id))
        return decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def see(self, images: Sequence[np.ndarray], prompts: Sequence[str], sampling: SamplingConfig,
            seed: int) -> list[str]:
        import torch
        from PIL import Image

        processor, model = self.vision_model()
        tok = processor.tokenizer
        if sampling.do_sample:
            torch.manual_seed(seed)
        texts = [
            processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
                add_generation_prompt=True, tokenize=False,
            )
            for p in prompts
        ]
        out: list[str] = []
        step = self.cfg.vision_batch_size
        for start in range(0, len(texts), step):
            pil = [Image.fromarray(im) for im in images[start : start + step]]
            inputs = processor(images=pil, text=texts[start : start + step], padding=True, return_tensors="pt")
            out += self._generate(model, inputs, sampling, tok.pad_token_id, processor.batch_decode)
        return out

    def write(self, prompts: Sequence[str], sampling: SamplingConfig, seed: int) -> list[str]:
        import torch

        tokenizer, model = self.text_model()
        if sampling.do_sample:
            torch.manual_seed(seed)
        texts = [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                          tokenize=False)
            for p in prompts
        ]
        out: list[str] = []
        step = self.cfg.text_batch_size
        for start in range(0, len(texts), step):
            inputs = tokenizer(texts[start : start + step], padding=True, return_tensors="pt",
                               add_special_tokens=False)
            out += self._generate(model, inputs, sampling, tokenizer.pad_token_id, tokenizer.batch_decode)
        return out


BACKEND = register_backend(BackendEntry(name="hf", config=HFSynthConfig, make=HFBackend, resumes=True))

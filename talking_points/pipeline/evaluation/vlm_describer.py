"""External describers (`evaluate.vlm_describers`, stage describe-vlm@<name>): any image-text-to-text checkpoint
(a local folder or a hub id already in the cache; e.g. `nvidia/DAM-3B`, `llava-hf/llava-1.5-7b-hf`) is shown each
test image with the point marked (the marker code of the synthesis object pass, `synthesis.visuals.mark_point`) and asked,
with a versioned prompt file, to describe the point so that someone else can find it. Its texts are scored by
the row's localizer like TP's: the paper's OMG-LLaVA and DAM rows (Table 1) on a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data.colours import PALETTE
from talking_points.pipeline.evaluation.vlm_config import VLMDescriberConfig
from talking_points.pipeline.synthesis.hf_backend import generation_config, resolve_checkpoint
from talking_points.pipeline.synthesis.model_config import Dtype, MarkerConfig
from talking_points.pipeline.synthesis.visuals import mark_point

__all__ = ["VLMDescriber", "VLMDescriberConfig", "describe_prompt"]


def _marker_words(marker: MarkerConfig) -> str:
    colour = next((name for name, rgb in PALETTE.items() if tuple(rgb) == tuple(marker.colour)), "coloured")
    return f"{colour} {marker.shape.value}"


def describe_prompt(cfg: VLMDescriberConfig) -> str:
    """The prompt text of `cfg.prompt_version`, with the marker described ('red circle')."""
    name = f"{cfg.prompt_version}.txt"
    if cfg.prompt_dir is not None:
        path = Path(cfg.prompt_dir) / name
        if not path.is_file():
            raise ConfigError(f"vlm describer: prompt file {path} not found")
        text = path.read_text()
    else:
        packaged = resources.files("talking_points.pipeline.evaluation").joinpath("prompts", name)
        if not packaged.is_file():
            raise ConfigError(f"vlm describer: no packaged prompt {cfg.prompt_version!r} (evaluation/prompts/{name})")
        text = packaged.read_text()
    return text.strip().replace("{marker}", _marker_words(cfg.marker))


class VLMDescriber:
    """Loads the checkpoint once; `describe(images, points)` answers in batches of `batch_size`."""

    def __init__(self, cfg: VLMDescriberConfig):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.cfg = cfg
        self.prompt = describe_prompt(cfg)
        path = resolve_checkpoint(cfg.checkpoint, "vlm describer: checkpoint")
        kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
        if cfg.dtype is Dtype.auto:
            kwargs["dtype"] = "auto"
        elif cfg.dtype in (Dtype.float32, Dtype.bfloat16, Dtype.float16):
            kwargs["dtype"] = getattr(torch, cfg.dtype.value)
        else:
            raise ValueError(f"unknown dtype {cfg.dtype!r}")
        try:
            self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
            model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ConfigError(f"vlm describer: cannot load {cfg.checkpoint!r} ({type(exc).__name__}: {first}); give a "
                              "local folder or a hub id already downloaded (`hf download <id>`)") from exc
        tok = getattr(self.processor, "tokenizer", None)
        if tok is None or getattr(self.processor, "chat_template", None) is None:
            raise ConfigError(f"vlm describer: {cfg.checkpoint!r} has no processor with a tokenizer and a chat template")
        tok.padding_side = "left"  # batched generation continues every row from its last prompt token
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(device).eval()
        self.name = cfg.checkpoint

    def describe(self, images: Sequence[np.ndarray], points_px: np.ndarray) -> list[str]:
        """One description per (H, W, 3) uint8 RGB image (its own size) and (x, y) point in pixels."""
        import torch
        from PIL import Image

        if len(images) != len(points_px):
            raise ValueError(f"{len(images)} images but {len(points_px)} points")
        proc, model = self.processor, self.model
        chat = proc.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}],
            add_generation_prompt=True, tokenize=False)
        gc = generation_config(model, self.cfg.sampling, proc.tokenizer.pad_token_id)
        if self.cfg.sampling.do_sample:
            torch.manual_seed(self.cfg.seed)
        out: list[str] = []
        step = self.cfg.batch_size
        for start in range(0, len(images), step):
            marked = [Image.fromarray(mark_point(im, float(x), float(y), self.cfg.marker))
                      for im, (x, y) in zip(images[start : start + step], points_px[start : start + step])]
            inputs = proc(images=marked, text=[chat] * len(marked), padding=True, return_tensors="pt")
            inputs = inputs.to(model.device)
            if "pixel_values" in inputs and torch.is_floating_point(inputs["pixel_values"]):
                inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
            with torch.inference_mode():
                ids = model.generate(**inputs, generation_config=gc)
            texts = proc.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [" ".join(t.split()) for t in texts]
        return out

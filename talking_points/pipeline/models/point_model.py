"""What the descriptor and the localizer share: built on a saved base, saved as adapters + heads.

An artifact folder holds
  point_model.json    kind, the head config, and the base it was built on (path relative to the folder, or an id)
  heads.safetensors   every weight outside the LM (vision backbone, projector, decoder / head)
  lm_adapter/         the LoRA adapter (peft save_pretrained)          when lm_adaptation = lora
  lm/                 the whole fine-tuned LM (save_pretrained)       when lm_adaptation = full
  tokenizer files     (the base's, with the special tokens)
Loading rebuilds the base with `PointVLM.from_pretrained` and puts these on top.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import torch
from peft import set_peft_model_state_dict
from pydantic import BaseModel
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from talking_points.pipeline.models.adaptation import LmAdaptation, base_lm
from talking_points.pipeline.models.base import PointVLM

__all__ = ["PointModel", "load_base"]

META = "point_model.json"


def load_base(path: str | os.PathLike, trust_remote_code: bool = False) -> tuple[PointVLM, PreTrainedTokenizerBase]:
    """A saved base model and its tokenizer (local folder or hub id; hub needs network unless cached)."""
    vlm = PointVLM.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return vlm, tok


class PointModel(nn.Module):
    """Base class: subclasses set `kind`, `config_class` and build their heads in __init__(vlm, cfg)."""

    kind: ClassVar[str]
    config_class: ClassVar[type[BaseModel]]
    cfg: BaseModel
    vlm: PointVLM

    def train(self, mode: bool = True):
        super().train(mode)
        if not getattr(self.cfg, "train_vision", True):
            self.vlm.vision.eval()  # a frozen backbone keeps its BatchNorm statistics
        return self

    @property
    def lm_adaptation(self) -> LmAdaptation:
        return self.cfg.lm_adaptation

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) this model takes its images at: its base's image size."""
        return tuple(self.vlm.config.image_size)

    def head_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if not k.startswith("vlm.lm.")}

    @classmethod
    def from_base(cls, base: str | os.PathLike, cfg: BaseModel, trust_remote_code: bool = False):
        vlm, tok = load_base(base, trust_remote_code)
        model = cls(vlm, cfg)
        model.base_path = str(base)
        return model, tok

    def save_pretrained(self, out_dir: str | os.PathLike, tokenizer: PreTrainedTokenizerBase) -> None:
        """Write the artifact folder (see module docstring). The caller makes it atomic (tables.atomic_dir)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        base = str(getattr(self, "base_path", ""))
        if base and Path(base).exists():
            base = os.path.relpath(Path(base).resolve(), out.resolve())
        meta = {"kind": self.kind, "base": base, "config": json.loads(self.cfg.model_dump_json())}
        (out / META).write_text(json.dumps(meta, indent=2) + "\n")
        save_file(self.head_state(), str(out / "heads.safetensors"))
        mode = self.lm_adaptation
        if mode is LmAdaptation.lora:
            self.vlm.lm.save_pretrained(str(out / "lm_adapter"))
        elif mode is LmAdaptation.full:
            base_lm(self.vlm.lm).save_pretrained(str(out / "lm"))
        elif mode is LmAdaptation.frozen:
            pass
        else:
            raise ValueError(f"unknown LM adaptation {mode!r}")
        tokenizer.save_pretrained(str(out))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, trust_remote_code: bool = False):
        """Load an artifact folder written by `save_pretrained`; returns (model, tokenizer)."""
        path = Path(path)
        meta_file = path / META
        if not meta_file.exists():
            raise FileNotFoundError(f"{path}: not a {cls.kind} artifact ({META} missing)")
        meta = json.loads(meta_file.read_text())
        if meta.get("kind") != cls.kind:
            raise ValueError(f"{path}: holds a {meta.get('kind')!r}, not a {cls.kind!r}")
        base = meta["base"]
        base_dir = path / base
        cfg = cls.config_class.model_validate(meta["config"])
        vlm, _ = load_base(base_dir if base_dir.exists() else base, trust_remote_code)
        mode = cfg.lm_adaptation
        if mode is LmAdaptation.full:
            vlm.lm = AutoModelForCausalLM.from_pretrained(str(path / "lm"))
        model = cls(vlm, cfg)
        if mode is LmAdaptation.lora:
            adapter = path / "lm_adapter"
            # the adapters were injected by __init__; load the saved weights into them
            weights = adapter / "adapter_model.safetensors"
            set_peft_model_state_dict(model.vlm.lm, load_file(str(weights)))
        missing, unexpected = model.load_state_dict(load_file(str(path / "heads.safetensors")), strict=False)
        missing = [k for k in missing if not k.startswith("vlm.lm.")]
        if missing or unexpected:
            raise ValueError(f"{path}/heads.safetensors does not fit the model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        model.base_path = str(base_dir if base_dir.exists() else base)
        tok = AutoTokenizer.from_pretrained(str(path))
        return model, tok

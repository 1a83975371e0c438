"""What the descriptor and the localizer share: built on a saved base, saved as adapters + heads.

An artifact folder is self-contained (copy it anywhere, `from_pretrained` works there):
  point_model.json    kind, the head config, the base ("base": the folder below, or a hub id) and where the
                      base came from ("base_source")
  base/               a copy of the base folder the model was built on (config, weights, tokenizer)   when the
                      base is a local folder; a hub id is kept as a reference, as peft's adapters do
  heads.safetensors   every weight outside the LM (vision backbone, projector, decoder / head)
  lm_adapter/         the LoRA adapter (peft save_pretrained)          when lm_adaptation = lora
  lm/                 the whole fine-tuned LM (save_pretrained)       when lm_adaptation = full
  tokenizer files     (the base's, with the special tokens)
  README.md           the model card, when the caller writes one (training.artifacts.save_run)
Loading rebuilds the base with `PointVLM.from_pretrained` and puts these on top; a missing piece is named.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
BASE_DIR = "base"
#: what a Hugging Face hub id looks like (`name` or `org/name`); anything else is a path
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def load_base(path: str | os.PathLike, trust_remote_code: bool = False) -> tuple[PointVLM, PreTrainedTokenizerBase]:
    """A saved base model and its tokenizer (local folder or hub id; hub needs network unless cached)."""
    vlm = PointVLM.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return vlm, tok


def _sort_adapter_config(path: Path) -> None:
    """peft writes `target_modules` from a set, in an order that changes with Python's hash seed: sorted, the
    same adapter gives the same bytes, so DVC does not see a changed model (and rerun what reads it)."""
    cfg = json.loads(path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


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

    @property
    def adapters_merged(self) -> bool:
        return getattr(self, "_adapters_merged", False)

    def merge_adapters(self) -> "PointModel":
        """For inference only: fold a LoRA adapter into the LM's weights (peft `merge_and_unload`), which gives
        the same predictions to float rounding (localizer on the 1,198 test texts: largest change 6e-7, mPCK
        equal) for about a fifth less time per forward. The model cannot be trained on or saved after it."""
        if self.lm_adaptation is LmAdaptation.lora and not self.adapters_merged:
            self.vlm.lm = self.vlm.lm.merge_and_unload()
            self._adapters_merged = True
        return self

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
        if self.adapters_merged:
            raise ValueError("this model's LoRA adapter was merged into the LM for inference (merge_adapters): "
                             "save the model before merging, or load it again")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        source = str(getattr(self, "base_path", ""))
        base = source
        if source and Path(source).is_dir():  # a local base travels with the model
            shutil.copytree(source, out / BASE_DIR, dirs_exist_ok=True)
            base = BASE_DIR
        meta = {"kind": self.kind, "base": base, "base_source": source,
                "config": json.loads(self.cfg.model_dump_json())}
        (out / META).write_text(json.dumps(meta, indent=2) + "\n")
        save_file(self.head_state(), str(out / "heads.safetensors"))
        mode = self.lm_adaptation
        if mode is LmAdaptation.lora:
            self.vlm.lm.save_pretrained(str(out / "lm_adapter"))
            _sort_adapter_config(out / "lm_adapter" / "adapter_config.json")
        elif mode is LmAdaptation.full:
            base_lm(self.vlm.lm).save_pretrained(str(out / "lm"))
        elif mode is LmAdaptation.frozen:
            pass
        else:
            raise ValueError(f"unknown LM adaptation {mode!r}")
        tokenizer.save_pretrained(str(out))

    @classmethod
    def _base_of(cls, path: Path, meta: dict) -> str:
        """The base to load: the folder inside the artifact, or a hub id; a clear error when it is neither."""
        base = str(meta.get("base", ""))
        if not base:
            raise FileNotFoundError(f"{path}/{META} names no base model")
        inside = path / base
        if inside.is_dir():
            return str(inside)
        if not HUB_ID.fullmatch(base):
            raise FileNotFoundError(
                f"{path}: its base {base!r} is not there ({inside} does not exist). The folder was saved by an "
                f"older version that referred to the base instead of holding it: put the base folder at {inside} "
                "(or rerun the training stage, which now copies it in)")
        return base  # a hub id (org/name): loaded from the local cache (offline) or the hub

    @classmethod
    def _read_meta(cls, path: Path) -> tuple[dict, BaseModel]:
        """The folder's point_model.json and its validated head config, checked to hold this kind with every
        weight file its LM adaptation needs."""
        meta_file = path / META
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such {cls.kind} folder")
        if not meta_file.exists():
            raise FileNotFoundError(f"{path}: not a {cls.kind} artifact ({META} missing)")
        meta = json.loads(meta_file.read_text())
        if meta.get("kind") != cls.kind:
            raise ValueError(f"{path}: holds a {meta.get('kind')!r}, not a {cls.kind!r}")
        cfg = cls.config_class.model_validate(meta["config"])
        mode = cfg.lm_adaptation
        needed = {"heads.safetensors": "the heads' weights", "tokenizer_config.json": "the tokenizer"}
        if mode is LmAdaptation.full:
            needed["lm"] = "the fine-tuned LM"
        elif mode is LmAdaptation.lora:
            needed["lm_adapter/adapter_model.safetensors"] = "the LoRA adapter"
        for name, what in needed.items():
            if not (path / name).exists():
                raise FileNotFoundError(f"{path}: {what} ({name}) is missing; the folder is incomplete")
        return meta, cfg

    def modules_added_to(self, trained: BaseModel) -> tuple[str, ...]:
        """Prefixes of the weights this model holds and a trained model of config `trained` (same kind) lacks:
        heads this config adds, built so that they change nothing until trained (`load_trained` leaves them as
        built). None by default; a subclass names its own."""
        return ()

    def _load_trained_weights(self, path: Path, added: tuple[str, ...] = ()) -> None:
        """The LoRA adapter and the heads of a saved folder into this model (a full LM is loaded by the caller);
        weights under the `added` prefixes may be missing from the folder."""
        if self.lm_adaptation is LmAdaptation.lora:
            weights = path / "lm_adapter" / "adapter_model.safetensors"
            set_peft_model_state_dict(self.vlm.lm, load_file(str(weights)))
        missing, unexpected = self.load_state_dict(load_file(str(path / "heads.safetensors")), strict=False)
        missing = [k for k in missing if not k.startswith(("vlm.lm.", *added))]
        if missing or unexpected:
            raise ValueError(f"{path}/heads.safetensors does not fit the model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    def load_trained(self, path: str | os.PathLike) -> None:
        """Start from the weights of a trained folder of the same kind (fine-tuning it further, e.g. on other
        description styles): its heads, and its LoRA adapter or fine-tuned LM. The folder's LM adaptation must
        be this model's; head shapes must match (a clear error names what does not fit). Heads this model's
        config adds to the folder's (`modules_added_to`) keep their initial weights."""
        path = Path(path)
        their_cfg = self._read_meta(path)[1]
        theirs = their_cfg.lm_adaptation
        if theirs is not self.lm_adaptation:
            raise ValueError(f"{path}: trained with lm_adaptation {theirs.value!r}, this model uses "
                             f"{self.lm_adaptation.value!r}; fine-tuning needs the same")
        if theirs is LmAdaptation.full:
            lm = AutoModelForCausalLM.from_pretrained(str(path / "lm"))
            base_lm(self.vlm.lm).load_state_dict(lm.state_dict())
        self._load_trained_weights(path, self.modules_added_to(their_cfg))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, trust_remote_code: bool = False):
        """Load an artifact folder written by `save_pretrained`; returns (model, tokenizer)."""
        path = Path(path)
        meta, cfg = cls._read_meta(path)
        base = cls._base_of(path, meta)
        try:
            vlm, _ = load_base(base, trust_remote_code)
        except OSError as err:
            raise FileNotFoundError(f"{path}: cannot load its base {base!r}: {err}") from None
        if cfg.lm_adaptation is LmAdaptation.full:
            vlm.lm = AutoModelForCausalLM.from_pretrained(str(path / "lm"))
        model = cls(vlm, cfg)
        model._load_trained_weights(path)  # the adapters were injected by __init__; the saved weights go in
        model.base_path = base
        tok = AutoTokenizer.from_pretrained(str(path))
        return model, tok

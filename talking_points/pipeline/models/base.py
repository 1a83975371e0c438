"""The base vision-language model both the Point Descriptor and the Point Localizer start from.

`PointVLM` = multi-scale vision backbone + projector (image tokens -> LM embedding space) + causal LM.
It is an ordinary transformers `PreTrainedModel`: `save_pretrained` / `from_pretrained` with safetensors,
for the tiny model built locally and for one converted from a real LLaVA-family checkpoint alike.

Prompts carry the image as `n_image_tokens` copies of the `<image>` token (LLaVA-style expansion), and point
features as `<kpt>` / `<region>` tokens; `embed` replaces the embeddings at those positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel

from talking_points.pipeline.models.pixel_decoder import dense_outputs
from talking_points.pipeline.models.positional import grid_centres, sinusoid_2d
from talking_points.pipeline.models.vision import BackboneKind, MultiScaleBackbone, normalize_images

__all__ = ["PointVLMConfig", "PointVLM", "ImageFeatures", "VisionFeatures"]


class PointVLMConfig(PreTrainedConfig):
    model_type = "talking_points_vlm"
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    backbone_kind: str = "cnn"  # cnn | vit
    strides: list[int] | tuple[int, ...] = (8, 16, 32)  # feature maps the point decoder attends to
    feature_channels: list[int] | tuple[int, ...] = ()  # channels of those maps (set when the base is built)
    token_stride: int = 16  # which map becomes the LM's image tokens
    vit_layer: int = -2
    neck_dim: int = 0  # > 0: the cnn carries a pixel decoder of this width (the maps are its levels)
    dense_categories: list[str] | tuple[str, ...] = ()  # classes of the tower's dense heads (pretrain-vision)
    dense_parts: list[str] | tuple[str, ...] = ()
    dense_colours: list[str] | tuple[str, ...] = ()
    dense_textures: list[str] | tuple[str, ...] = ()
    image_size: list[int] | tuple[int, int] = (96, 128)  # (height, width) the images are resized to
    image_mean: list[float] | tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: list[float] | tuple[float, ...] = (0.229, 0.224, 0.225)
    image_pos_embed: bool = True  # add 2-D sinusoids to the image tokens (tiny models need the help)
    image_token_id: int = -1
    seg_token_id: int = -1
    p_open_token_id: int = -1
    p_close_token_id: int = -1
    kpt_token_id: int = -1
    region_token_id: int = -1
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        for key, default in (("vision_config", "mobilenet_v2"), ("text_config", "llama")):
            value = getattr(self, key)
            if isinstance(value, dict):
                value = dict(value)
                model_type = value.pop("model_type", default)
                setattr(self, key, AutoConfig.for_model(model_type, **value))
            elif value is None:
                setattr(self, key, AutoConfig.for_model(default))
        if BackboneKind(self.backbone_kind) and self.token_stride not in tuple(self.strides):
            raise ValueError(f"token_stride {self.token_stride} must be one of strides {list(self.strides)}")
        super().__post_init__(**kwargs)

    @property
    def n_image_tokens(self) -> int:
        h, w = self.image_size
        return (h // self.token_stride) * (w // self.token_stride)

    @property
    def token_grid(self) -> tuple[int, int]:
        h, w = self.image_size
        return h // self.token_stride, w // self.token_stride

    @property
    def lm_hidden_size(self) -> int:
        return int(self.text_config.hidden_size)


@dataclass
class ImageFeatures:
    maps: list[torch.Tensor]  # per stride (B, C_s, H_s, W_s)
    tokens: torch.Tensor  # (B, N, D_lm) projected image tokens


@dataclass
class VisionFeatures:
    """What the vision tower gives one batch of images: the maps at every stride and, where asked for and the
    tower has dense heads, its category and part logits at the finest level. A frozen tower's features can be
    computed once per image and reused (`training.data.PointSamples.cache_vision`)."""

    maps: list[torch.Tensor]  # per stride (B, C_s, H_s, W_s)
    category_logits: torch.Tensor | None = None  # (B, n_categories + 1, H/4, W/4), class 0 = background
    part_logits: torch.Tensor | None = None  # (B, n_parts + 1, H/4, W/4), class 0 = background

    def _each(self, fn) -> "VisionFeatures":
        """`fn` applied to every tensor (maps and logits; absent logits stay absent)."""
        def apply(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        return VisionFeatures([apply(m) for m in self.maps], apply(self.category_logits), apply(self.part_logits))

    def to(self, dtype: torch.dtype, device: torch.device | None = None) -> "VisionFeatures":
        return self._each(lambda t: t.to(device=device, dtype=dtype))

    def rows(self, index: torch.Tensor) -> "VisionFeatures":
        """The features of the images `index` (a row may repeat an image: the tower ran once for it)."""
        return self._each(lambda t: t[index])

    def dense_logits(self, reader: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(category, part) logits; a clear error naming `reader` (the option that reads them) when absent."""
        if self.category_logits is None or self.part_logits is None:
            raise ValueError(f"{reader}: the vision features carry no dense logits")
        return self.category_logits, self.part_logits


class PointVLM(PreTrainedModel):
    config_class = PointVLMConfig
    base_model_prefix = "vlm"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False
    _no_split_modules = ["LlamaDecoderLayer"]

    def __init__(self, config: PointVLMConfig):
        super().__init__(config)
        if not config.feature_channels or len(config.feature_channels) != len(config.strides):
            raise ValueError("PointVLMConfig.feature_channels must give the channels of every stride")
        dense = (dense_outputs(config.dense_categories, config.dense_parts, config.dense_colours,
                               config.dense_textures) if config.dense_categories else None)
        self.vision = MultiScaleBackbone(config.vision_config, config.backbone_kind, list(config.strides),
                                         config.vit_layer, config.neck_dim, dense)
        c_tok = config.feature_channels[list(config.strides).index(config.token_stride)]
        d = config.lm_hidden_size
        self.projector = nn.Sequential(nn.Linear(c_tok, d), nn.GELU(), nn.Linear(d, d))
        self.lm = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # sub-models initialise themselves; only the projector is ours
        if isinstance(module, nn.Linear) and any(module is m for m in self.projector.modules()):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    # ---- inputs -------------------------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0,1] float images (B, 3, H, W) at `config.image_size` -> normalised pixel values."""
        return normalize_images(images, self.config.image_mean, self.config.image_std, self.dtype)

    @property
    def has_dense_heads(self) -> bool:
        return self.vision.heads is not None

    def require_dense_heads(self, option: str) -> None:
        """A clear error when a model `option` reads the tower's dense heads and this base's tower has none."""
        if not self.has_dense_heads:
            raise ValueError(f"{option} needs a base whose tower has dense heads (pretrain-vision); this base's "
                             "tower has none")

    def dense_label_channels(self, option: str) -> int:
        """Channels of the tower's category and part probabilities side by side (each with its background
        class), for a model `option` that reads them (`require_dense_heads`)."""
        self.require_dense_heads(option)
        return len(self.config.dense_categories) + len(self.config.dense_parts) + 2

    def vision_features(self, images: torch.Tensor, with_dense: bool = False) -> VisionFeatures:
        """The tower's features of uint8 (or [0, 1]) images at `config.image_size`; `with_dense` also runs
        the dense category and part heads (a tower pretrained by pretrain-vision)."""
        x = self.normalize(images)
        if with_dense:
            if not self.has_dense_heads:
                raise ValueError("this base's vision tower has no dense heads: the 'object' attention mask and "
                                 "the tower_labels token need a tower pretrained by pretrain-vision "
                                 "(init_models.tiny.pretrained_vision)")
            dense = self.vision.dense(x)
            return VisionFeatures(dense.maps, dense.logits["category"], dense.logits["part"])
        return VisionFeatures(self.vision(x))

    def image_tokens(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The LM's image tokens (B, N, D_lm): the token-stride map, projected, plus 2-D position sinusoids."""
        tok_map = maps[list(self.config.strides).index(self.config.token_stride)]
        b, c, h, w = tok_map.shape
        tokens = self.projector(tok_map.flatten(2).transpose(1, 2))
        if self.config.image_pos_embed:
            pos = sinusoid_2d(grid_centres(h, w, tokens.device), tokens.shape[-1]).to(tokens.dtype)
            tokens = tokens + pos.unsqueeze(0)
        return tokens

    def encode_image(self, pixel_values: torch.Tensor) -> ImageFeatures:
        maps = self.vision(pixel_values)
        return ImageFeatures(maps=maps, tokens=self.image_tokens(maps))

    def embed(
        self,
        input_ids: torch.Tensor,
        image_tokens: torch.Tensor | None = None,
        replacements: dict[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Token embeddings with the `<image>` positions (and any `replacements[token_id]`) filled in.

        Every row must hold exactly as many copies of a placeholder token as its replacement has vectors
        (`image_tokens`: (B, N, D); replacements: token_id -> (B, k, D)).
        """
        embeds = self.lm.get_input_embeddings()(input_ids)
        todo = dict(replacements or {})
        if image_tokens is not None:
            todo[self.config.image_token_id] = image_tokens
        for token_id, values in todo.items():
            where = input_ids == token_id
            counts = where.sum(dim=1)
            if not bool((counts == values.shape[1]).all()):
                raise ValueError(
                    f"token {token_id}: prompts hold {counts.tolist()} placeholder(s) but {values.shape[1]} "
                    "feature vector(s) per row were given"
                )
            embeds = embeds.masked_scatter(where.unsqueeze(-1), values.to(embeds.dtype).reshape(-1, embeds.shape[-1]))
        return embeds


# make AutoConfig / AutoModel (and AutoTokenizer, which reads the config) recognise saved bases
AutoConfig.register(PointVLMConfig.model_type, PointVLMConfig, exist_ok=True)
AutoModel.register(PointVLMConfig, PointVLM, exist_ok=True)

"""The Point Descriptor: image + pixel -> coarse-to-fine description (paper §3.2).

The point decoder's keypoint feature and region feature are projected into the LM's embedding space and
placed at the `<kpt>` / `<region>` placeholders of the prompt, next to the image tokens; the LM is trained
with the standard LM loss on the description tokens only and generates with its KV cache.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from talking_points.pipeline.models.adaptation import PointModelSettings, adapt_lm
from talking_points.pipeline.models.base import PointVLM, VisionFeatures
from talking_points.pipeline.models.local_look import LookEncoder
from talking_points.pipeline.models.point_decoder import (
    INSTANCE_FEATURES,
    AttentionMask,
    PointDecoderConfig,
    PointQueryDecoder,
    class_map_at,
    instance_context,
    logits_at,
    region_at,
    region_geometry,
)
from talking_points.pipeline.models.point_model import PointModel
from talking_points.pipeline.models.prompts import IGNORE, position_ids

__all__ = ["DescriptorConfig", "PointDescriptor", "mlp"]

#: numbers `region_geometry` gives per region (box, centre of mass, the point's place in the box)
REGION_FEATURES = 8


def mlp(dims: list[int], act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class DescriptorConfig(PointModelSettings):
    decoder: PointDecoderConfig = PointDecoderConfig()
    look_crop: int = Field(
        0, ge=0, description="side in pixels of the raw-pixel crop around the point whose embedding is one more "
        "<kpt> token of the prompt (models/local_look.py: the colour and texture a tower trained for category "
        "and part does not encode); 0: off")

    tower_labels: bool = Field(
        False, description="one more <kpt> token: the tower's category and part probabilities at the point "
        "(its dense heads' softmax, sampled bilinearly), projected into the LM; what the segmenter says of the "
        "pixel, as OMG-LLaVA's object queries carry OMG-Seg's classes. Needs a tower from pretrain-vision")

    tower_regions: bool = Field(
        False, description="one more <kpt> token: the box and centre of the object and of the part the tower "
        "segments at the point (`point_decoder.object_mask_at` on its category and part maps) and the point's "
        "place in each: the masks OMG-LLaVA's point prompt yields, as geometry. Needs a tower from pretrain-vision")

    tower_instances: bool = Field(
        False, description="one more <kpt> token: where the other objects the tower segments as the point's "
        "category lie relative to the point's object, and the other parts of the point's part name relative to "
        "its part inside that object (`point_decoder.instance_context`: their share, their share on each side, "
        "their centre): what 'the left one of the two dogs' and 'the second of its four legs' need. Needs a "
        "tower from pretrain-vision")

    def model_post_init(self, __context) -> None:
        if self.look_crop and self.look_crop % 2 == 0:
            raise ValueError(f"look_crop must be odd (a crop centred on the point), got {self.look_crop}")


class PointDescriptor(PointModel):
    kind = "descriptor"
    config_class = DescriptorConfig

    def __init__(self, vlm: PointVLM, cfg: DescriptorConfig):
        super().__init__()
        self.cfg = cfg
        self.vlm = vlm
        d_lm, d = vlm.config.lm_hidden_size, cfg.decoder.dim
        self.decoder = PointQueryDecoder(list(vlm.config.feature_channels), cfg.decoder)
        self.kpt_proj = mlp([d, d_lm, d_lm])
        self.region_proj = mlp([d, d_lm, d_lm])
        self.look = LookEncoder(cfg.look_crop, d, d_lm) if cfg.look_crop else None
        self.labels_proj = mlp([vlm.dense_label_channels("tower_labels"), d, d_lm]) if cfg.tower_labels else None
        self.regions_proj = self.instances_proj = None
        if cfg.tower_regions:
            vlm.require_dense_heads("tower_regions")
            self.regions_proj = mlp([2 * REGION_FEATURES, d, d_lm])
        if cfg.tower_instances:
            vlm.require_dense_heads("tower_instances")
            self.instances_proj = mlp([2 * INSTANCE_FEATURES, d, d_lm])
        vlm.vision.requires_grad_(cfg.train_vision)
        vlm.lm = adapt_lm(vlm.lm, cfg.lm_adaptation, cfg.lora)

    @property
    def kpt_tokens(self) -> int:
        """`<kpt>` placeholders in the prompt: one per decoder query, one each for the local look, the tower's
        labels, the tower's regions and the tower's instances."""
        extra = (self.look, self.labels_proj, self.regions_proj, self.instances_proj)
        return self.cfg.decoder.queries + sum(m is not None for m in extra)

    @property
    def needs_dense(self) -> bool:
        """Whether the model reads the tower's dense logits (the `object` attention mask, `tower_labels`)."""
        c = self.cfg
        return AttentionMask.object in c.decoder.masks or c.tower_labels or c.tower_regions or c.tower_instances

    def vision_features(self, images: torch.Tensor) -> VisionFeatures:
        return self.vlm.vision_features(images, with_dense=self.needs_dense)

    def embed_prompt(self, images: torch.Tensor | None, points: torch.Tensor, input_ids: torch.Tensor,
                     vision: VisionFeatures | None = None) -> torch.Tensor:
        """Input embeddings with the image tokens and the point features in place.

        images: (B, 3, H, W) uint8 (or floats in [0, 1]) at the base's image size, or `vision`: their
        precomputed features (a frozen tower); points: (B, 2) normalised.
        """
        if vision is None:
            vision = self.vision_features(images)
        kp, region = self.decoder(vision.maps, points, vision.category_logits)
        kpt = self.kpt_proj(kp)
        if self.look is not None:
            if images is None:
                raise ValueError("a descriptor with look_crop needs the images, not only their tower features")
            kpt = torch.cat([kpt, self.look(images, points).unsqueeze(1).to(kpt.dtype)], dim=1)
        if any(t is not None for t in (self.labels_proj, self.regions_proj, self.instances_proj)):
            cat_logits, part_logits = vision.dense_logits("tower_labels / tower_regions / tower_instances")
        if self.labels_proj is not None:
            probs = [torch.softmax(logits_at(t, points), dim=-1) for t in (cat_logits, part_logits)]
            kpt = torch.cat([kpt, self.labels_proj(torch.cat(probs, -1).to(kpt.dtype)).unsqueeze(1)], dim=1)
        if self.regions_proj is not None or self.instances_proj is not None:
            with torch.no_grad():  # what the tower segments at the point: the object, the part inside it
                cat_same, part_same = class_map_at(cat_logits, points), class_map_at(part_logits, points)
                obj = region_at(cat_same, points)
                part = region_at(part_same, points, within=obj)
        if self.regions_proj is not None:
            with torch.no_grad():
                geometry = torch.cat([region_geometry(obj, points), region_geometry(part, points)], dim=1)
            kpt = torch.cat([kpt, self.regions_proj((geometry * 2 - 1).to(kpt.dtype)).unsqueeze(1)], dim=1)
        if self.instances_proj is not None:
            with torch.no_grad():  # the other objects of its category; the other parts of its name in the object
                context = torch.cat([instance_context(cat_same, obj), instance_context(part_same & obj, part)],
                                    dim=1)
            kpt = torch.cat([kpt, self.instances_proj((context * 2 - 1).to(kpt.dtype)).unsqueeze(1)], dim=1)
        c = self.vlm.config
        return self.vlm.embed(
            input_ids, self.vlm.image_tokens(vision.maps),
            {c.kpt_token_id: kpt, c.region_token_id: self.region_proj(region)},
        )

    def forward(self, images, points, input_ids, attention_mask, labels=None, vision=None):
        embeds = self.embed_prompt(images, points, input_ids, vision)
        return self.vlm.lm(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
            labels=labels,
        )

    def token_logprobs(self, images, points, input_ids, attention_mask, labels) -> torch.Tensor:
        """log pi(token) of every labelled token: (B, L-1), zero where labels are IGNORE (for GRPO)."""
        logits = self.forward(images, points, input_ids, attention_mask).logits[:, :-1].float()
        target = labels[:, 1:]
        valid = target != IGNORE
        logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return logp * valid

    @torch.no_grad()
    def generate(self, images, points, input_ids, attention_mask, vision=None, **generate_kwargs) -> torch.Tensor:
        """New token ids (B * num_return_sequences, T) for left-padded prompts, with the KV cache; `vision`:
        the images' tower features when already computed."""
        embeds = self.embed_prompt(images, points, input_ids, vision)
        return self.vlm.lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=True,
                                    **generate_kwargs)

"""The Point Localizer: image + description -> pixel (paper §3.3).

One forward pass over "<image>\\nPlease segment region1: {description}\\n<p> keypoint </p> <SEG>"; the last
layer's hidden state at `<SEG>` goes through a text-to-vision projection and an MLP (512-128-2 in the paper)
and a sigmoid: normalised (x, y). Trained with MSE.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from talking_points.pipeline.models.adaptation import PointModelSettings, adapt_lm, base_lm, decoder_of
from talking_points.pipeline.models.base import PointVLM, VisionFeatures
from talking_points.pipeline.models.descriptor import mlp
from talking_points.pipeline.models.point_model import PointModel
from talking_points.pipeline.models.prompts import position_ids, seg_positions

__all__ = ["LocalizerConfig", "PointLocalizer"]


class LocalizerConfig(PointModelSettings):
    proj_dim: int = Field(256, ge=2, description="output of the text-to-vision projection")
    head_dims: list[int] = Field([512, 128], description="hidden sizes of the MLP before the 2 outputs")


class PointLocalizer(PointModel):
    kind = "localizer"
    config_class = LocalizerConfig

    def __init__(self, vlm: PointVLM, cfg: LocalizerConfig):
        super().__init__()
        self.cfg = cfg
        self.vlm = vlm
        d_lm = vlm.config.lm_hidden_size
        self.text2vision = mlp([d_lm, d_lm, cfg.proj_dim], act=nn.ReLU)
        self.head = mlp([cfg.proj_dim, *cfg.head_dims, 2], act=nn.ReLU)
        vlm.vision.requires_grad_(False)
        if cfg.train_vision:  # only the layers below the image tokens' map: the localizer reads nothing else
            for p in vlm.vision.parameters_feeding(tuple(vlm.config.image_size), [vlm.config.token_stride]):
                p.requires_grad_(True)
        vlm.lm = adapt_lm(vlm.lm, cfg.lm_adaptation, cfg.lora)
        # the localizer reads hidden states, never the LM's output head: keep it out of the trainable set
        base_lm(vlm.lm).get_output_embeddings().requires_grad_(False)

    needs_category = False

    def vision_features(self, images: torch.Tensor) -> VisionFeatures:
        return self.vlm.vision_features(images)

    def forward(self, images: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                vision: VisionFeatures | None = None) -> torch.Tensor:
        """Predicted normalised (x, y) per row, (B, 2) in (0, 1); images (or `vision`) as in
        `PointDescriptor.embed_prompt`."""
        if vision is None:
            vision = self.vision_features(images)
        embeds = self.vlm.embed(input_ids, self.vlm.image_tokens(vision.maps))
        hidden = decoder_of(self.vlm.lm)(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        seg = hidden[rows, seg_positions(input_ids, self.vlm.config.seg_token_id)]
        return torch.sigmoid(self.head(self.text2vision(seg)).float())

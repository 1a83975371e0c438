"""The `pretrain_vision` params section."""

from __future__ import annotations

from pydantic import Field

from talking_points.pipeline.config import Section, register_section
from talking_points.pipeline.models.build import TowerConfig
from talking_points.pipeline.training.config import TrainConfig

__all__ = ["PretrainVisionConfig", "DenseLossConfig"]


class DenseLossConfig(Section):
    """Weights of the dense heads' losses. The appearance heads (colour, luma, texture) exist only where their
    weight is above 0: they are off by default, since on the default profile they cost the category and part
    heads accuracy (keypoint part 85.1% -> 73.9%) and the descriptor trained on such a tower localizes worse
    (probe mPCK 70.5 -> 63.4; README, "Design")."""


    category: float = Field(1.0, ge=0, description="per-pixel object-category cross-entropy")
    part: float = Field(1.0, ge=0, description="per-pixel part cross-entropy")
    colour: float = Field(0.0, ge=0, description="per-pixel palette-colour cross-entropy (the local look); "
                          "> 0 here or in luma adds the colour and brightness heads")
    luma: float = Field(0.0, ge=0, description="per-pixel brightness, L1 on 0..1 (the local look); see colour")
    texture: float = Field(0.0, ge=0, description="per-pixel part-texture cross-entropy, where annotated; > 0 "
                           "adds the texture head")
    class_balance: float = Field(0.5, ge=0, le=1, description="class weights ∝ pixel frequency^-class_balance "
                                 "(0: plain cross-entropy; small parts such as ears and beaks need weight, "
                                 "since keypoints are spread over parts, not over pixels)")


@register_section("pretrain_vision")
class PretrainVisionConfig(Section):
    """Dense pretraining of the tiny tower; init-models builds the base on it (init_models.tiny.pretrained_vision).
    Only the train split's images are read for training."""


    enabled: bool = Field(True, description="false: write no tower (a LLaVA base keeps its own vision tower)")
    tower: TowerConfig = TowerConfig(image_size=(144, 192), neck_dim=64)
    train: TrainConfig = TrainConfig(epochs=4, batch_size=16, lr=2e-3, weight_decay=1e-4, warmup_ratio=0.05)
    loss: DenseLossConfig = DenseLossConfig()
    hflip: bool = Field(True, description="flip half of each batch left-right (the labels carry no side)")
    eval_batch_size: int = Field(64, ge=1)
    workers: int = Field(2, ge=1, description="processes painting the images' label maps before training (1: in "
                         "the stage's own process); the maps do not depend on it")

"""A tiny descriptor and localizer (random weights) saved the way the training stages save them, and two
small images: for the inference command and demo tests (built in seconds, no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from talking_points.pipeline.models.adaptation import LoraSettings
from talking_points.pipeline.models.build import TinyBaseConfig, TinyLMConfig, build_tiny_base
from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer
from talking_points.pipeline.models.point_decoder import PointDecoderConfig

__all__ = ["TEXTS", "LIMIT", "build_tiny_point_models"]

TEXTS = ["The point is on the only car; on its front wheel; at the centre of the wheel; in a smooth patch.",
         "The point is on the leftmost dog; on its head; in the upper right of the head; in a dark patch."
         ] * 20
LIMIT = 24  # the models' max_description_tokens


def build_tiny_point_models(root: Path) -> dict[str, Path]:
    """root/{base, descriptor, localizer} and two 80x48 images root/a.png, root/b.jpg."""
    cfg = TinyBaseConfig(image_size=(64, 64), vision_init="scratch", depth_multiplier=0.35, vocab_size=300,
                         lm=TinyLMConfig(hidden_size=64, layers=2, heads=2, intermediate_size=128))
    vlm, tok = build_tiny_base(TEXTS, cfg, seed=0)
    vlm.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    desc, tok = PointDescriptor.from_base(root / "base", DescriptorConfig(
        decoder=PointDecoderConfig(dim=32, layers=2, heads=2), max_description_tokens=LIMIT))
    desc.save_pretrained(root / "descriptor", tok)
    loc, tok = PointLocalizer.from_base(root / "base", LocalizerConfig(
        proj_dim=16, head_dims=[32, 16], max_description_tokens=LIMIT,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0)))
    loc.save_pretrained(root / "localizer", tok)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(root / name)
    return {"root": root, "base": root / "base", "descriptor": root / "descriptor", "localizer": root / "localizer",
            "a": root / "a.png", "b": root / "b.jpg"}

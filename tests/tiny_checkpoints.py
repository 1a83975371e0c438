"""Tiny, randomly initialised VLM and LLM checkpoints, and keypoint rows over small random images, for the
model-backed synthesis tests, benchmark and offline smoke runs (no download: everything is built here).

The VLM is a `LlavaForConditionalGeneration` (a 2-layer CLIP vision tower, a 2-layer Llama) with a
`LlavaProcessor`; the LLM a 2-layer `LlamaForCausalLM`. Both share one byte-level BPE tokenizer trained
on the prompt templates and the descriptions' vocabulary, with a plain chat template. Their outputs are
gibberish; they exercise loading, chat templating, batching and decoding exactly as real checkpoints do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from talking_points.pipeline.data.colours import NAMES
from talking_points.pipeline.keypoints.geometry import LONE_PART
from talking_points.pipeline.synthesis.model_config import PROMPTS_DIR

__all__ = ["CHAT_TEMPLATE", "IMAGE_TOKEN", "build_tokenizer", "build_tiny_checkpoints", "demo_keypoints"]

IMAGE_TOKEN = "<image>"
#: 'role: text' lines; an image part of a turn becomes the image token
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}" + IMAGE_TOKEN + "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)
_SPECIAL = ["<pad>", "<s>", "</s>", IMAGE_TOKEN]
_WORDS = (
    "the point is on a an of in at near its which left right top bottom upper lower centre center middle "
    "image picture scene side part end corner edge border far very slightly just above below first second "
    "third only single two three four largest smallest dark bright medium smooth textured busy striped dotted "
    "patch area look looks pixels dog cat horse person head tail leg ear body"
).split()


def _corpus() -> list[str]:
    texts = [p.read_text() for p in PROMPTS_DIR.rglob("*.txt")]
    return texts + [" ".join(_WORDS + list(NAMES))] * 4


def build_tokenizer(vocab_size: int = 600):
    """A byte-level BPE fast tokenizer with pad / bos / eos / image tokens and `CHAT_TEMPLATE`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_checkpoints(folder: str | os.PathLike, seed: int = 0, init_range: float = 0.3) -> tuple[Path, Path]:
    """Write a tiny VLM (folder/vlm) and LLM (folder/llm) with `save_pretrained`; returns both folders.

    `init_range` is the weights' init std: large enough that greedy decoding has clear winners (so batched
    and one-by-one decoding agree despite float rounding)."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    tokenizer = build_tokenizer()
    # head_dim 32 (64 / 2 heads): the smallest head size vLLM's CPU attention supports
    text = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, initializer_range=init_range, tie_word_embeddings=False,
    )
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32, initializer_range=init_range)
    torch.manual_seed(seed)
    vlm_cfg = LlavaConfig(vision_config=vision, text_config=LlamaConfig(**text),
                          image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), image_seq_length=4,
                          initializer_range=init_range)
    vlm = LlavaForConditionalGeneration(vlm_cfg).eval()
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                               num_additional_image_tokens=1)
    vlm_dir, llm_dir = folder / "vlm", folder / "llm"
    vlm.save_pretrained(vlm_dir)
    processor.save_pretrained(vlm_dir)
    llm = LlamaForCausalLM(LlamaConfig(**text)).eval()
    llm.save_pretrained(llm_dir)
    tokenizer.save_pretrained(llm_dir)
    return vlm_dir, llm_dir


def _third(value: float, names: tuple[str, str, str]) -> str:
    return names[0] if value < 1 / 3 else names[1] if value < 2 / 3 else names[2]


def demo_keypoints(folder: str | os.PathLike, n: int, seed: int = 0, size: tuple[int, int] = (64, 48),
                   per_image: int = 2) -> pd.DataFrame:
    """`n` consistent KEYPOINTS rows (absolute image paths) over random PNG images written into `folder`."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    H, V = ("left", "center", "right"), ("top", "middle", "bottom")
    rows = []
    for i in range(n):
        stem = f"img{i // per_image}"
        file = folder / f"{stem}.png"
        if not file.exists():
            cv2.imwrite(str(file), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        n_same = int(rng.integers(1, 4))
        cx, cy, pcx, pcy, kx, ky = (float(v) for v in rng.uniform(0.05, 0.95, 6))
        x, y = float(rng.uniform(1, w - 1)), float(rng.uniform(1, h - 1))
        iid = f"demo/{stem}"
        rows.append(dict(
            kp_id=f"{iid}#k{i}", image_id=iid, source="demo", file=str(file), width=w, height=h,
            object_id=f"{iid}#o0", category=["dog", "cat", "horse"][i % 3], part_id=f"{iid}#o0p0",
            part=["head", "tail", "left front leg"][i % 3], x=x, y=y, x_norm=x / w, y_norm=y / h,
            response=0.05, sift_size=3.0, border_dist=4.0,
            obj_x0=max(0.0, cx - 0.1), obj_y0=max(0.0, cy - 0.1), obj_x1=min(1.0, cx + 0.1),
            obj_y1=min(1.0, cy + 0.1), obj_cx=cx, obj_cy=cy, obj_area_frac=0.1,
            obj_h_pos=_third(cx, H), obj_v_pos=_third(cy, V), obj_edge="none", n_objects=n_same,
            n_same=n_same, order_lr=int(rng.integers(1, n_same + 1)), order_tb=int(rng.integers(1, n_same + 1)),
            order_size=int(rng.integers(1, n_same + 1)), part_x0=0.1, part_y0=0.1, part_x1=0.2, part_y1=0.2,
            part_cx_in_obj=pcx, part_cy_in_obj=pcy, part_h_in_obj=_third(pcx, H), part_v_in_obj=_third(pcy, V),
            part_area_frac=0.2, n_parts=4, **LONE_PART,
            order_sep_lr=float("nan"), order_sep_tb=float("nan"), order_sep_size=float("nan"), kp_in_part_x=kx, kp_in_part_y=ky, kp_h_in_part=_third(kx, H),
            kp_v_in_part=_third(ky, V), patch_r=0.5, patch_g=0.3, patch_b=0.2,
            patch_colour=str(NAMES[i % len(NAMES)]), patch_brightness=float(rng.uniform(0, 1)),
            patch_edge_energy=float(rng.uniform(0, 0.3)), part_colour=None, part_texture=None,
        ))
    return pd.DataFrame(rows)

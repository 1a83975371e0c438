"""`tp init-models`: build (or convert) the base vision-language model both point models start from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import torch
import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.models.build import build_tiny_base, convert_llava
from talking_points.pipeline.training.checkpoints import checkpoint_for
from talking_points.pipeline.training.config import BaseKind, InitModelsConfig
from talking_points.pipeline.training.loop import fit
from talking_points.pipeline.training.steps import lm_collate, lm_step
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage, write_json


class _Texts(torch.utils.data.Dataset):
    def __init__(self, texts: list[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"text": self.texts[i]}


@stage
def main(
    train: Path = typer.Option(Path("data/split/train.parquet"), help="training samples (tokenizer + LM warm-up)"),
    out: Path = typer.Option(Path("models/base"), help="output folder of the base model"),
    live: Path = typer.Option(Path("reports/train/base_lm"), help="dvclive folder of the LM warm-up"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Build the base model: a tiny MobileNetV2 + Llama with a BPE tokenizer trained on the training descriptions
    (default), or a LLaVA-family checkpoint converted to the same format (init_models.kind: llava).

    Saved with save_pretrained; every later stage loads it with from_pretrained like any checkpoint.
    """
    cfg = load_section("init_models", params, InitModelsConfig)
    ckpt = checkpoint_for(out)
    if cfg.kind is BaseKind.tiny:
        samples = read_table(train, schema.SAMPLES, "train split")
        texts = _texts(samples) + list(cfg.extra_vocabulary)
        vlm, tok = build_tiny_base(texts, cfg.tiny, seed=cfg.seed)
        counts = {"vocab": len(tok), "params_M": sum(p.numel() for p in vlm.parameters()) / 1e6}
        if cfg.lm_warmup is not None:
            result = fit(vlm.lm, lm_step, _Texts(texts), lm_collate(tok), cfg.lm_warmup, ckpt, live,
                         description="LM warm-up", fingerprint=digest(cfg, train))
            counts["warmup_steps"] = result.steps
            if result.history:
                counts["warmup_loss_first"] = result.history[0]["loss"]
                counts["warmup_loss_last"] = result.history[-1]["loss"]
    elif cfg.kind is BaseKind.llava:
        vlm, tok = convert_llava(cfg.path, cfg.image_size, trust_remote_code=cfg.trust_remote_code)
        counts = {"vocab": len(tok), "params_M": sum(p.numel() for p in vlm.parameters()) / 1e6}
    elif cfg.kind is BaseKind.pointvlm:
        from talking_points.pipeline.models.point_model import load_base

        vlm, tok = load_base(cfg.path, cfg.trust_remote_code)
        counts = {"vocab": len(tok), "params_M": sum(p.numel() for p in vlm.parameters()) / 1e6}
    else:
        raise ValueError(f"unknown init_models.kind {cfg.kind!r}")
    with atomic_dir(out) as tmp:
        vlm.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json({"kind": cfg.kind.value, **counts}, tmp / "build.json")
    shutil.rmtree(ckpt, ignore_errors=True)
    print_counts("init-models", counts)
    console.print(f"base model saved to {out}")


def _texts(samples: pd.DataFrame) -> list[str]:
    """Every text the models will read or write: descriptions, templates, and the prompts' own words."""
    prompts = ["Describe the point", "Please segment region1:", "keypoint"]
    return list(samples["description"]) + list(samples["template"]) + prompts

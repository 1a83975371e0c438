"""`tp train-descriptor` / `tp train-localizer`: supervised fine-tuning of the two point models."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
import typer

from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.feature_store import FeatureStore
from talking_points.pipeline.models.inference import prompt_format
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.synthesis.base import word_bins
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.style_config import StylesConfig
from talking_points.pipeline.synthesis.styles import mixed_styles
from talking_points.pipeline.training.artifacts import run_summary, save_run
from talking_points.pipeline.training.checkpoints import checkpoint_for
from talking_points.pipeline.training.config import TrainDescriptorConfig, TrainLocalizerConfig
from talking_points.pipeline.training.data import PointSamples
from talking_points.pipeline.training.loop import fit
from talking_points.pipeline.training.model_card import CardFacts, data_facts, model_card
from talking_points.pipeline.training.steps import (
    GATE_LABELS,
    RANK_COLUMNS,
    descriptor_collate,
    descriptor_step,
    gate_labels,
    localizer_collate,
    localizer_step,
)
from talking_points.pipeline.training.weight_interpolation import interpolate_weights
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage

KINDS = {  # section, its config, the model, collate(prompt format, config), step(config)
    "descriptor": ("train_descriptor", TrainDescriptorConfig, PointDescriptor,
                   lambda fmt, cfg: descriptor_collate(fmt, cfg.text_column, cfg.word_dropout),
                   lambda cfg: descriptor_step),
    "localizer": ("train_localizer", TrainLocalizerConfig, PointLocalizer,
                  lambda fmt, cfg: localizer_collate(fmt, cfg.text_column),
                  lambda cfg: partial(localizer_step, heatmap_loss=cfg.heatmap_loss, label_loss=cfg.label_loss)),
}


def _run(kind: str, variant: str | None, train: Path, out: Path | None, live: Path | None, params: Path) -> None:
    section, cfg_cls, model_cls, collate_fn, step_fn = KINDS[kind]
    cfg = load_section(section, params, cfg_cls, variant)
    name = variant or kind
    out = out or Path("models") / name
    live = live or Path("reports/train") / name
    ckpt = checkpoint_for(out)
    torch.manual_seed(cfg.train.seed)
    model, tok = model_cls.from_base(cfg.base, cfg.model, cfg.trust_remote_code)
    init_from = getattr(cfg, "init_from", None)
    wise = getattr(cfg, "wise_alpha", 1.0)
    start = None
    if init_from:  # fine-tuning a trained model (train_localizer.finetuned)
        model.load_trained(init_from)
        if wise < 1.0:  # WiSE-FT's other end: the trainable weights as training starts (heads it adds: as built)
            start = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
        console.print(f"{name}: starting from the trained weights of {init_from}", markup=False)
    samples = read_table(train, schema.SAMPLES, "train split")
    if kind == "localizer" and cfg.text_styles:
        samples = _styled(samples, cfg, params)
    label_columns = ()
    if kind == "localizer" and cfg.label_loss is not None:  # the gate's targets: the rows' own labels
        ranks = cfg.model.heatmap_instance_gate
        samples = gate_labels(samples, model.vlm.config.dense_categories, model.vlm.config.dense_parts, ranks)
        label_columns = GATE_LABELS + (RANK_COLUMNS if ranks else ())
    data = PointSamples(samples, model.input_size, (cfg.text_column,), label_columns)
    if not cfg.model.train_vision:  # frozen tower: its features once per image, not once per step
        data.cache_vision(model, FeatureStore.from_env(), progress=f"{name}: frozen vision features")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    console.print(f"{kind} {name}: {len(data)} rows, {n_train / 1e6:.2f}M trainable parameters", markup=False)
    lengths = ([len(ids) for ids in tok(samples[cfg.text_column].astype(str).tolist()).input_ids]
               if cfg.train.group_by_length else None)
    result = fit(model, step_fn(cfg), data, collate_fn(prompt_format(model, tok), cfg), cfg.train, ckpt, live,
                 description=f"train {name}", fingerprint=digest(cfg, train, Path(cfg.base),
                                                                     *([Path(init_from)] if init_from else [])),
                 lengths=lengths)
    if start is not None:  # WiSE-FT: part of the way back towards the weights it started from
        model.load_state_dict(interpolate_weights(start, model.state_dict(), wise))
        console.print(f"{name}: saved (1 - {wise}) x {init_from} + {wise} x the fine-tuned weights (WiSE-FT)",
                      markup=False)
    tuning = _tuning_fields(cfg)
    summary = run_summary(result.steps, result.resumed_from, result.history, kind=kind, variant=name,
                          rows=len(data), trainable_params=n_train, mixed_precision=result.precision, **tuning)
    card = model_card(CardFacts(kind=kind, name=name, base_source=str(cfg.base),
                                config=json.loads(model.cfg.model_dump_json()), training=summary,
                                train_params={**cfg.train.model_dump(mode="json"), **tuning},
                                data=data_facts(samples, train),
                                profile_note=f"params: {params} (section {section}, variant {name})"))
    save_run(model, tok, out, summary, ckpt, card)
    last = {f"last {k}": v for k, v in summary.get("last", {}).items()}
    print_counts(f"train {name}", {"steps": result.steps, **last})


def _tuning_fields(cfg) -> dict:
    """What a localizer's section sets beyond `train` and `model` that shapes the weights (train.json and the
    model card): the starting weights, WiSE-FT, the heat-map and label losses, the styles of the training texts."""
    fields = {"init_from": getattr(cfg, "init_from", None), "heatmap_loss": getattr(cfg, "heatmap_loss", None),
              "label_loss": getattr(cfg, "label_loss", None),
              "text_styles": [s.value for s in getattr(cfg, "text_styles", [])] or None}
    if fields["init_from"]:
        fields["wise_alpha"] = cfg.wise_alpha
    if fields["heatmap_loss"] is not None:
        fields["heatmap_loss"] = fields["heatmap_loss"].model_dump(mode="json")
    return {k: v for k, v in fields.items() if v is not None}


def _styled(samples, cfg: TrainLocalizerConfig, params: Path):
    """The samples with text_column replaced by one text per sample in a style drawn from cfg.text_styles."""
    styles = load_section("styles", params, StylesConfig)
    if held := sorted(s.value for s in set(cfg.text_styles) & set(styles.held_out)):
        raise ConfigError(f"{params}: train_localizer.text_styles lists {held}, held out of training by "
                          "styles.held_out (drop them from text_styles, or from held_out)")
    bins = word_bins(load_section("synthesize", params, SynthesizeConfig))
    texts = mixed_styles(samples, cfg.text_styles, styles.seed, bins)
    console.print(f"training texts in styles {[s.value for s in cfg.text_styles]}", markup=False)
    return samples.assign(**{cfg.text_column: texts})


_VARIANT = typer.Option(None, help="name of an entry of <section>.variants (an ablation) or, for the localizer, of "
                        "train_localizer.finetuned (a fine-tuning of a trained localizer) to apply")
_TRAIN = typer.Option(Path("data/split/train.parquet"), help="training samples")
_OUT = typer.Option(None, help="output folder (default: models/<variant or kind>)")
_LIVE = typer.Option(None, help="dvclive folder (default: reports/train/<variant or kind>)")


@stage
def descriptor(variant: str = _VARIANT, train: Path = _TRAIN, out: Path = _OUT, live: Path = _LIVE,
               params: Path = PARAMS_OPTION) -> None:
    """Fine-tune the Point Descriptor (point decoder + projections + LM) on image/point -> description.

    Resumes from OUT.ckpt after an interruption; logs loss curves with dvclive; saves adapters + heads to OUT.
    """
    _run("descriptor", variant, train, out, live, params)


@stage
def localizer(variant: str = _VARIANT, train: Path = _TRAIN, out: Path = _OUT, live: Path = _LIVE,
              params: Path = PARAMS_OPTION) -> None:
    """Fine-tune the Point Localizer (LM + text-to-vision projection + MLP head) on image/description -> point.

    Resumes from OUT.ckpt after an interruption; logs MSE and PCK@0.1 with dvclive; saves to OUT.
    """
    _run("localizer", variant, train, out, live, params)

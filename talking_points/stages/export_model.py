"""`tp export-model MODEL --out DIR`: a copy of a trained model folder to hand on or push to the Hub, whose model
card holds the model's test metrics (the training stage writes the card before any evaluation, and a DVC
output is never edited in place)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

from talking_points.pipeline.atomic import atomic_dir
from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.evaluation.config import EvaluateConfig
from talking_points.pipeline.evaluation.model_index import card_with_results, model_results
from talking_points.stages.common import PARAMS_OPTION, console, stage


@stage
def main(
    model: Path = typer.Argument(..., help="a trained model folder, e.g. models/descriptor"),
    out: Path = typer.Option(..., help="the copy's folder (must not exist)"),
    metrics: Path = typer.Option(Path("reports/metrics.json"), help="the evaluation's metrics (tp report)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Copy MODEL to OUT (self-contained: its base is inside) with the test results of every evaluation row that
    used it (as a describer's descriptor or as a row's localizer) in README.md: a table in '## Evaluation' and
    Hugging Face's `model-index` metadata."""
    if not (model / "point_model.json").is_file():
        raise FileNotFoundError(f"{model}: not a trained model folder (point_model.json missing)")
    if not (model / "README.md").is_file():
        raise FileNotFoundError(f"{model}: no model card (README.md); retrain it with this version of the stage")
    if out.exists():
        raise ConfigError(f"--out {out} exists; give a new folder")
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics}: no evaluation metrics; run `dvc repro` (or `tp report`) first")
    cfg = load_section("evaluate", params, EvaluateConfig)
    evaluation = json.loads(metrics.read_text()).get("evaluation", {})
    results = model_results(model, cfg, evaluation)
    card = card_with_results((model / "README.md").read_text(), out.name, results,
                             f"{cfg.report.profile} profile", str(metrics))
    with atomic_dir(out) as tmp:
        shutil.copytree(model, tmp, dirs_exist_ok=True)
        (tmp / "README.md").write_text(card)
    rows = ", ".join(f"{r.row} ({r.role}, mPCK {r.metrics['mpck']:.1f})" for r in results) or "none"
    console.print(f"export-model: {model} -> {out}; test results of rows: {rows}", markup=False)

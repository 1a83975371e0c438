"""`tp report`: reports/metrics.json, results.md, the plots and the qualitative figure from the saved
predictions of every evaluation row and of evaluate-grpo (no model is run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data.tables import atomic_path
from talking_points.pipeline.evaluation import report as rep
from talking_points.pipeline.evaluation.config import EvaluateConfig
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage, write_json


def _curves_png(runs: dict[str, Path], path: Path, logs: Path, log_loss: bool = True) -> None:
    """The runs' dvclive curves as a PNG; an empty file (the declared DVC plot exists) when there are none."""
    with atomic_path(path) as tmp:
        if not rep.plot_training_curves(runs, tmp, log_loss=log_loss):
            console.print(f"no training logs under {logs}; {path.name} is empty")
            tmp.write_bytes(b"")

@stage
def main(
    predictions: Path = typer.Option(Path("data/eval"), help="folder of the rows' prediction parquets"),
    train_logs: Path = typer.Option(Path("reports/train"), help="folder of the training runs' dvclive logs"),
    out: Path = typer.Option(Path("reports"), help="reports folder"),
    grpo: Path = typer.Option(Path("reports/grpo"), help="folder of evaluate-grpo's <direction>.json metrics and "
                              "the GRPO runs' dvclive logs (live_<direction>); absent: no GRPO part"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write reports/metrics.json, reports/results.md, reports/plots/{pck_curves,training_curves,grpo_curves}.png
    and reports/figures/qualitative.png from the saved predictions (no model is run)."""
    cfg = load_section("evaluate", params, EvaluateConfig)
    preds = {}
    for name in cfg.rows:
        f = predictions / f"{name}.parquet"
        if not f.exists():
            raise FileNotFoundError(f"{f}: predictions of row {name!r} missing; run `tp evaluate {name}` first")
        preds[name] = pd.read_parquet(f)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    extra = [f.read_text() for f in sorted(out.glob("sections/*.md"))]
    with atomic_path(out / "plots" / "pck_curves.png") as tmp:
        rep.plot_pck_curves(preds, cfg.rows, tmp)
    runs = {d.name: d for d in sorted(train_logs.glob("*")) if d.is_dir()}
    _curves_png(runs, out / "plots" / "training_curves.png", train_logs)
    with atomic_path(out / "figures" / "qualitative.png") as tmp:
        examples = rep.qualitative_figure(preds, cfg.rows, cfg.report.figure_rows, cfg.report.examples,
                                          cfg.report.seed, tmp)
    grpo_runs = {d.name.removeprefix("live_"): d for d in sorted(grpo.glob("live_*")) if d.is_dir()}
    _curves_png(grpo_runs, out / "plots" / "grpo_curves.png", grpo, log_loss=False)
    metrics = rep.metrics_dict(preds, cfg.rows)
    grpo_metrics = {f.stem: json.loads(f.read_text()) for f in sorted(grpo.glob("*.json"))}
    if grpo_metrics:
        metrics["grpo"] = grpo_metrics
    write_json(metrics, out / "metrics.json")
    md = rep.results_markdown(preds, cfg.rows, cfg.report.breakdown_rows, examples[:3], extra)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(md)
    summary = rep.summary_table(preds, cfg.rows)
    print_counts("report", {r["Method"]: f"{r['mPCK']:.1f}" for r in summary.to_dict("records")})

"""`tp report`: reports/metrics.json, results.md, the plots and the qualitative figure from the saved
predictions of every evaluation row and of evaluate-grpo (no model is run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
import yaml

from talking_points.pipeline.config import load_section, variant_names
from talking_points.pipeline.data.tables import atomic_path
from talking_points.pipeline.evaluation import report as rep
from talking_points.pipeline.evaluation.config import EvaluateConfig
from talking_points.pipeline.synthesis.style_config import StylesConfig
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, stage, write_json


def _curves_png(runs: dict[str, Path], path: Path, logs: Path, kinds: dict[str, str], title: str,
                log_loss: bool = True) -> None:
    """The runs' dvclive curves as a PNG; an empty file (the declared DVC plot exists) when there are none."""
    with atomic_path(path) as tmp:
        if not rep.plot_training_curves(runs, tmp, kinds, log_loss=log_loss, title=title):
            console.print(f"no training logs under {logs}; {path.name} is empty")
            tmp.write_bytes(b"")

def _run_kinds(params: Path) -> dict[str, str]:
    """Training run (reports/train/<name>) -> the kind of its loss: every variant of train_descriptor and
    train_localizer (`variants` and `finetuned`), the tower (vision) and the LM warm-up (base_lm)."""
    raw = yaml.safe_load(Path(params).read_text()) or {}
    kinds = {"vision": "vision", "base_lm": "base_lm"}
    for section, kind in (("train_descriptor", "descriptor"), ("train_localizer", "localizer")):
        kinds.update(dict.fromkeys(variant_names(raw.get(section)), kind))
    return kinds


@stage
def main(
    predictions: Path = typer.Option(Path("data/eval"), help="folder of the rows' prediction parquets"),
    train_logs: Path = typer.Option(Path("reports/train"), help="folder of the training runs' dvclive logs"),
    out: Path = typer.Option(Path("reports"), help="reports folder"),
    grpo: Path = typer.Option(Path("reports/grpo"), help="folder of evaluate-grpo's <direction>.json metrics and "
                              "the GRPO runs' dvclive logs (live_<direction>); absent: no GRPO part"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write reports/metrics.json, reports/results.md, reports/plots/{pck_curves,training_curves,grpo_curves,
    style_robustness}.png
    and reports/figures/qualitative.png from the saved predictions (no model is run)."""
    cfg = load_section("evaluate", params, EvaluateConfig)
    preds = {}
    rows = cfg.table_rows
    for name in rows:
        f = predictions / f"{name}.parquet"
        if not f.exists():
            command = "evaluate" if name in cfg.rows else "evaluate-chance"
            raise FileNotFoundError(f"{f}: predictions of row {name!r} missing; run `tp {command} {name}` first")
        preds[name] = pd.read_parquet(f)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    extra = [f.read_text() for f in sorted(out.glob("sections/*.md"))]
    profile = rep.profile_line(cfg.report.profile, cfg.report.profile_note, len(preds[cfg.report.reference]))
    short = rep.profile_line(cfg.report.profile, "", len(preds[cfg.report.reference]))
    with atomic_path(out / "plots" / "pck_curves.png") as tmp:
        rep.plot_pck_curves(preds, rows, tmp, short)
    runs = {d.name: d for d in sorted(train_logs.glob("*")) if d.is_dir()}
    _curves_png(runs, out / "plots" / "training_curves.png", train_logs, _run_kinds(params),
                f"training curves · {cfg.report.profile} profile")
    with atomic_path(out / "figures" / "qualitative.png") as tmp:
        examples = rep.qualitative_figure(preds, rows, cfg.report.figure_rows, cfg.report.examples,
                                          cfg.report.seed, tmp, f"test examples · {short}")
    grpo_runs = {d.name.removeprefix("live_"): d for d in sorted(grpo.glob("live_*")) if d.is_dir()}
    _curves_png(grpo_runs, out / "plots" / "grpo_curves.png", grpo, dict.fromkeys(grpo_runs, "grpo"),
                f"GRPO curves · {cfg.report.profile} profile", log_loss=False)
    held_out = [s.value for s in load_section("styles", params, StylesConfig).held_out]
    styles = rep.style_table(rep.summary_table(preds, rows), rows, held_out, cfg.report.reference)
    with atomic_path(out / "plots" / "style_robustness.png") as tmp:
        if len(styles):
            rep.plot_style_robustness(styles, tmp, short)
        else:
            tmp.write_bytes(b"")  # the declared DVC plot exists; no style rows in this profile
    r = cfg.report
    diffs = rep.differences(preds, r.comparisons, r.confidence, r.bootstrap_resamples, r.seed)
    metrics = rep.metrics_dict(preds, rows, diffs)  # GRPO's are evaluate-grpo's, reports/grpo/<direction>.json
    write_json(metrics, out / "metrics.json")
    md = rep.results_markdown(preds, rows, r.breakdown_rows, examples[:3], extra, profile, held_out, diffs)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(md)
    summary = rep.summary_table(preds, rows)
    print_counts("report", {r["Method"]: f"{r['mPCK']:.1f}" for r in summary.to_dict("records")})

"""`tp evaluate-chance NAME`: a chance row of the tables (no text, no model): the image centre, or a seeded
uniform point, for every test point."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.evaluation.config import EvaluateConfig
from talking_points.pipeline.evaluation.predict import chance_points, prediction_frame
from talking_points.pipeline.metrics.pck import pck_table
from talking_points.stages.common import PARAMS_OPTION, print_counts, stage


@stage
def main(
    name: str = typer.Argument(..., help="a key of evaluate.chance"),
    test: Path = typer.Option(Path("data/split/test.parquet"), help="test samples"),
    out: Path = typer.Option(None, help="predictions parquet (default: data/eval/<name>.parquet)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write the chance row's predictions (ids, truth, prediction, distance) to OUT atomically."""
    cfg = load_section("evaluate", params, EvaluateConfig)
    if name not in cfg.chance:
        raise ConfigError(f"{params}: evaluate.chance has no {name!r} (has {sorted(cfg.chance)})")
    row = cfg.chance[name]
    out = out or Path("data/eval") / f"{name}.parquet"
    samples = read_table(test, schema.SAMPLES, "test split")
    samples = (samples.iloc[: cfg.limit] if cfg.limit else samples).reset_index(drop=True)
    pred = chance_points(row.predictor, samples["kp_id"].astype(str).tolist(), cfg.seed)
    preds = prediction_frame(samples, [""] * len(samples), pred)
    with atomic_path(out) as tmp:
        preds.to_parquet(tmp, index=False)
    t = pck_table(preds).iloc[0]
    print_counts(f"evaluate-chance {name} ({row.label})",
                 {"rows": len(preds), "PCK@0.1": round(t["PCK@0.1"], 1), "PCK@0.2": round(t["PCK@0.2"], 1),
                  "mPCK": round(t["mPCK"], 1)})

"""`tp evaluate ROW`: one localizer row of the paper's tables: each test point's text (its describer's, written
by `tp evaluate-describe`; the GT description, the template, the object-level part, the GT facts in another
style (`tp restyle`); or a file of descriptions written elsewhere) read by the row's localizer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.evaluation.config import EvaluateConfig, TextSource
from talking_points.pipeline.evaluation.predict import prediction_frame, read_style, read_texts, texts_for
from talking_points.pipeline.evaluation.text_files import read_description_file
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.metrics.pck import pck_table
from talking_points.pipeline.models.inference import FeatureStore, localize
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.training.data import ImagesBySize
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, resumable_predictions, stage

_TEST = typer.Option(Path("data/split/test.parquet"), help="test samples")


@stage
def main(
    row: str = typer.Argument(..., help="row name, a key of evaluate.rows"),
    test: Path = _TEST,
    texts_dir: Path = typer.Option(Path("data/eval/texts"), "--texts", help="folder of the describers' texts"),
    styles: Path = typer.Option(Path("data/styles/test.parquet"), help="the restyled test texts (tp restyle)"),
    out: Path = typer.Option(None, help="predictions parquet (default: data/eval/<row>.parquet)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Score one evaluation row: the row's localizer places every test point from its text.

    Finished rows (evaluate.chunk_size at a time) wait in .<OUT>.resume next to OUT: an interrupted run
    resumes there. Writes the per-row predictions (ids, truth, text, prediction, distance) to OUT atomically.
    """
    cfg = load_section("evaluate", params, EvaluateConfig)
    if row not in cfg.rows:
        where = " (a chance row: `tp evaluate-chance`)" if row in cfg.chance else ""
        raise ConfigError(f"{params}: evaluate.rows has no {row!r}{where} (has {sorted(cfg.rows)})")
    rcfg = cfg.rows[row]
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    out = out or Path("data/eval") / f"{row}.parquet"
    samples = read_table(test, schema.SAMPLES, "test split")
    samples = (samples.iloc[: cfg.limit] if cfg.limit else samples).reset_index(drop=True)
    written, source = None, None
    if rcfg.texts is TextSource.generated:
        source = texts_dir / f"{rcfg.describer}.parquet"
        if not source.exists():
            raise FileNotFoundError(f"{source}: texts of describer {rcfg.describer!r} missing; run "
                                    f"`tp evaluate-describe {rcfg.describer}` (or `dvc repro`) first")
        written = read_texts(str(source), samples["kp_id"], rcfg.describer)
    elif rcfg.texts is TextSource.style:
        source = styles
        written = read_style(str(styles), samples["kp_id"], rcfg.style.value)
    elif rcfg.texts is TextSource.file:  # descriptions written elsewhere: only the points they describe
        source = Path(rcfg.file)
        written = read_description_file(rcfg.file, samples["kp_id"])
        samples = samples[samples["kp_id"].isin(written.index)].reset_index(drop=True)
        console.print(f"evaluate {row}: {len(samples)} test points described in {rcfg.file}", markup=False)
    model, tok = PointLocalizer.from_pretrained(rcfg.localizer)
    model.merge_adapters()  # inference only: LoRA folded into the LM
    store = FeatureStore.from_env()

    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        texts = texts_for(rcfg, chunk, written)
        images = ImagesBySize(chunk["file"].tolist()).at(model.input_size)
        pred = localize(model, tok, images, texts, cfg.localizer_batch_size, precision=cfg.mixed_precision,
                        store=store)
        return prediction_frame(chunk, texts, pred)

    job = digest("evaluate", rcfg, cfg.localizer_batch_size, cfg.mixed_precision, Path(rcfg.localizer),
                 *([source] if source else []))
    preds = resumable_predictions(out, samples, job, compute, cfg.chunk_size, f"evaluate {row}")
    t = pck_table(preds).iloc[0]
    print_counts(f"evaluate {row} ({rcfg.label})",
                 {"rows": len(preds), "PCK@0.1": round(t["PCK@0.1"], 1), "PCK@0.2": round(t["PCK@0.2"], 1),
                  "mPCK": round(t["mPCK"], 1)})

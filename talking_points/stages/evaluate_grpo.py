"""`tp evaluate-grpo DIRECTION`: the zero-shot (SFT) and the GRPO descriptor on the held-out family, scored
by the same frozen localizer, next to the GT descriptions (paper Tables 2 and 7)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.data.tables import atomic_path, read_table
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.feature_store import FeatureStore
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.rl.ap10k_data import split_file
from talking_points.pipeline.rl.config import GRPOSection
from talking_points.pipeline.rl.evaluation import (
    examples,
    grpo_gain,
    method_metrics,
    method_table,
    score_methods,
    section_markdown,
)
from talking_points.stages.common import (
    AP10K_DATA_OPTION,
    DIRECTION_ARGUMENT,
    PARAMS_OPTION,
    print_counts,
    resumable_predictions,
    stage,
    write_json,
)


@stage
def main(
    direction: Direction = DIRECTION_ARGUMENT,
    data_dir: Path = AP10K_DATA_OPTION,
    model: Path = typer.Option(None, help="GRPO descriptor (default: models/grpo_<direction>)"),
    out: Path = typer.Option(None, help="predictions parquet (default: data/grpo_eval/<direction>.parquet)"),
    metrics: Path = typer.Option(None, help="metrics json (default: reports/grpo/<direction>.json)"),
    section_out: Path = typer.Option(None, "--section", help="report section (default: "
                                     "reports/sections/grpo_<direction>.md)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Zero-shot SFT descriptor vs GRPO descriptor on the direction's held-out family: each writes a
    description of every test keypoint (grpo.evaluate.generation), the frozen localizer places it; the
    grounded GT descriptions are scored too, as a reference.

    Finished rows wait in .<OUT>.resume next to OUT: an interrupted run resumes there. Writes the predictions
    (a `method` column), the metrics json (PCK@0.1/0.2, mPCK, mean words, four-level fraction per method) and
    the markdown section that `tp report` appends to reports/results.md.
    """
    section = load_section("grpo", params, GRPOSection)
    ecfg = section.evaluate
    if ecfg.threads:
        torch.set_num_threads(ecfg.threads)
    d = direction.value
    model = model or Path("models") / f"grpo_{d}"
    out = out or Path("data/grpo_eval") / f"{d}.parquet"
    metrics = metrics or Path("reports/grpo") / f"{d}.json"
    section_out = section_out or Path("reports/sections") / f"grpo_{d}.md"
    samples = read_table(split_file(data_dir, direction, "test"), schema.SAMPLES, f"{d} test")
    samples = samples.iloc[: ecfg.limit].reset_index(drop=True) if ecfg.limit else samples.reset_index(drop=True)
    descriptors = {key: PointDescriptor.from_pretrained(folder, section.trust_remote_code)
                   for key, folder in (("zero_shot", section.descriptor), ("grpo", model))}
    localizer = PointLocalizer.from_pretrained(section.localizer, section.trust_remote_code)
    for m, _ in (*descriptors.values(), localizer):  # inference only: LoRA folded into the LMs
        m.merge_adapters()
    job = digest("evaluate-grpo", ecfg.generation, ecfg.localizer_batch_size, Path(section.descriptor),
                 Path(model), Path(section.localizer))
    store = FeatureStore.from_env()
    preds = resumable_predictions(out, samples, job,
                                  lambda chunk: score_methods(chunk, descriptors, localizer, ecfg, store),
                                  ecfg.chunk_size, f"evaluate-grpo {d}")
    table = method_table(preds)
    train_file = Path(model) / "train.json"
    train_info = json.loads(train_file.read_text()) if train_file.exists() else {}
    gain = grpo_gain(preds)
    write_json(method_metrics(table, train_info.get("steps"), gain), metrics)
    with atomic_path(section_out) as tmp:
        tmp.write_text(section_markdown(direction, table, train_info, examples(preds, ecfg.examples, ecfg.seed),
                                        gain))
    print_counts(f"evaluate-grpo {d}",
                 {f"{r['method']} mPCK": round(r["mPCK"], 1) for r in table.to_dict("records")})

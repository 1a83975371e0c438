"""`tp restyle`: the test descriptions rewritten in the styles of `styles.styles` (terse, reordered, paraphrase,
verbose, and llm where `styles.llm` names a chat LLM), from the same facts, for the `texts: style` evaluation
rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table
from talking_points.pipeline.progress import track
from talking_points.pipeline.resume import RowStore, row_fingerprints
from talking_points.pipeline.synthesis.base import word_bins
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.llm_style import CHUNK, llm_rewrites, llm_writer
from talking_points.pipeline.synthesis.model_backend import derived_seed
from talking_points.pipeline.synthesis.parse import check_faithful
from talking_points.pipeline.synthesis.style_config import Style, StylesConfig
from talking_points.pipeline.synthesis.styles import readable, restyle_frame
from talking_points.stages.common import PARAMS_OPTION, print_counts, stage, write_json


@stage
def main(
    test: Path = typer.Option(Path("data/split/test.parquet"), help="test samples"),
    out: Path = typer.Option(Path("data/styles"), help="output folder"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Rewrite every test description in each style of styles.styles.

    Writes OUT/test.parquet (kp_id and one column per style) and OUT/report.json (per style: the fraction of
    texts whose facts the parser reads back without a contradiction, mean words, an example), atomically. The
    llm style's finished chunks wait in .<OUT>.resume beside OUT until then: a killed run resumes there.
    """
    cfg = load_section("styles", params, StylesConfig)
    bins = word_bins(load_section("synthesize", params, SynthesizeConfig))
    samples = read_table(test, schema.SAMPLES, "test split")
    table = restyle_frame(samples, [s for s in cfg.styles if s is not Style.llm], cfg.seed, bins)
    if Style.llm in cfg.styles:  # StylesConfig: styles.llm is set
        table[Style.llm.value] = llm_texts(samples, cfg, bins, out)
        table = table[["kp_id", *(s.value for s in cfg.styles)]]
    rows = samples.to_dict(orient="records")
    report = {"rows": len(table), "held_out": [s.value for s in cfg.held_out], "styles": {}}
    for style in cfg.styles:
        texts = table[style.value]
        faithful = sum(not check_faithful(r, readable(t, style), bins=bins) for r, t in zip(rows, texts))
        report["styles"][style.value] = {
            "faithful": round(faithful / max(len(texts), 1), 4),
            "words_mean": round(float(texts.str.split().str.len().mean()), 1) if len(texts) else None,
            "example": texts.iloc[0] if len(texts) else None,
        }
    with atomic_dir(out) as tmp:
        table.to_parquet(tmp / "test.parquet", index=False)
        write_json(report, tmp / "report.json")
    if Style.llm in cfg.styles:
        RowStore(out).clear()  # the llm rows are in OUT now
    print_counts("restyle", {"rows": len(table), **{f"{s} faithful": v["faithful"]
                                                    for s, v in report["styles"].items()}})


def llm_job(cfg: StylesConfig) -> str:
    """What besides the row decides its llm text (keys the resume shards): the LLM's params and the seed."""
    return json.dumps({"llm": cfg.llm.model_dump(mode="json"), "seed": cfg.seed}, sort_keys=True)


def llm_texts(samples: pd.DataFrame, cfg: StylesConfig, bins, out: Path) -> list[str]:
    """The llm style of every sample, `CHUNK` rows at a time; finished chunks wait in .<OUT>.resume beside OUT,
    so a killed run asks the model only for the rest (a chunk's sampling seed comes from its first kp_id)."""
    writer = llm_writer(cfg.llm, bins)
    rows = samples[["kp_id", "description"]].astype(str).reset_index(drop=True)

    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        seed = derived_seed(cfg.seed, "style/llm", chunk["kp_id"].iloc[0])
        texts = llm_rewrites(chunk["description"].tolist(), writer, cfg.llm, seed)
        return pd.DataFrame({"kp_id": chunk["kp_id"].tolist(), Style.llm.value: texts})

    with RowStore(out) as store:
        done, resumed = store.run(rows, row_fingerprints(rows, llm_job(cfg)), compute, CHUNK,
                                  lambda it, n: track(it, "llm style", total=n, unit="chunk"))
    if resumed:
        print_counts("llm style", {"rows resumed": resumed, "rows asked": len(rows) - resumed})
    return done[Style.llm.value].tolist()

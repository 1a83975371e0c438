"""`tp restyle`: the test descriptions rewritten in the styles of `styles.styles` (terse, reordered, paraphrase,
verbose, and llm where `styles.llm` names a chat LLM), from the same facts, for the `texts: style` evaluation
rows."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import atomic_dir, read_table
from talking_points.pipeline.synthesis.base import word_bins
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.llm_style import llm_rewrites, llm_writer
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
    texts whose facts the parser reads back without a contradiction, mean words, an example), atomically.
    """
    cfg = load_section("styles", params, StylesConfig)
    bins = word_bins(load_section("synthesize", params, SynthesizeConfig))
    samples = read_table(test, schema.SAMPLES, "test split")
    table = restyle_frame(samples, [s for s in cfg.styles if s is not Style.llm], cfg.seed, bins)
    if Style.llm in cfg.styles:  # the whole split through the model at once (StylesConfig: styles.llm is set)
        table[Style.llm.value] = llm_rewrites(samples["description"].astype(str).tolist(),
                                              llm_writer(cfg.llm, bins), cfg.llm, cfg.seed, progress="llm style")
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
    print_counts("restyle", {"rows": len(table), **{f"{s} faithful": v["faithful"]
                                                    for s, v in report["styles"].items()}})

"""The synthesize step: keypoint rows -> checked descriptions, per-pass outputs and a report.

Rows are checked first (`facts.row_facts`, then the backend's `check_row`, e.g. that the image file is
there); a bad row becomes `BadInput` naming its kp_id (or file) and is skipped or raised according to
`SynthesizeConfig.on_error`. The good rows go to the configured backend in batches of `batch_size`; each
output row carries `valid` from the backend's faithfulness check.

With `resume_for` (the model-backed backends), every finished batch is written at once to the output's
resume folder (`pipeline.resume.RowStore`, keyed by kp_id and a fingerprint of the keypoint row and the
backend's settings) and rows already there under the same settings are taken from it, not generated again,
so a crashed run resumes where it stopped; the folder is kept, so a rerun with some rows changed
regenerates only those. A backend with `drop_invalid` has its invalid rows left
out of the descriptions (the report still counts them).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from talking_points.pipeline.data.errors import BadInput, SkipLog
from talking_points.pipeline.data.schema import DESCRIPTIONS
from talking_points.pipeline.data.tables import validate
from talking_points.pipeline.progress import track
from talking_points.pipeline.resume import FINGERPRINT, KEY, RowStore, row_fingerprints
from talking_points.pipeline.synthesis.backends import make_backend
from talking_points.pipeline.synthesis.base import (
    DESCRIPTION_COLUMNS,
    PASS_COLUMNS,
    DescriptionBackend,
    word_bins,
)
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = ["PASSES", "SynthesisResult", "usable_rows", "synthesize", "length_stats"]

#: the per-pass intermediate table (raw output of every pass, for inspection and for resuming model runs)
PASSES = pa.schema(
    [pa.field("kp_id", pa.string(), nullable=False)]
    + [pa.field(name, pa.string(), nullable=False) for name in PASS_COLUMNS]
    + [pa.field("backend", pa.string(), nullable=False)]
)
#: a resume shard of synthesis: the DESCRIPTIONS columns, the validation problems (JSON list, for the
#: report) and the resume keys
SHARD = pa.schema(list(DESCRIPTIONS) + [pa.field("issues", pa.string(), nullable=False),
                                        pa.field(KEY, pa.string(), nullable=False),
                                        pa.field(FINGERPRINT, pa.string(), nullable=False)])
_EXAMPLES = 3


@dataclass
class SynthesisResult:
    descriptions: pd.DataFrame  # DESCRIPTIONS columns
    passes: pd.DataFrame  # PASSES columns
    skips: SkipLog
    report: dict


def usable_rows(
    keypoints: pd.DataFrame, bins: WordBins, skips: SkipLog, check: Callable[[dict], None] | None = None
) -> pd.DataFrame:
    """The rows that pass `row_facts` (and `check`, when given) and whose kp_id is not a repeat; the others
    go to `skips`."""
    keep, seen = [], set()
    for i, row in enumerate(keypoints.to_dict("records")):
        try:
            f = row_facts(row, bins)
            if f.kp_id in seen:
                raise BadInput(f.kp_id, "duplicate kp_id", "the keypoint appears more than once")
            if check is not None:
                check(row)
        except BadInput as err:
            skips.handle(err)
            continue
        seen.add(f.kp_id)
        keep.append(i)
    return keypoints.iloc[keep].reset_index(drop=True)


def length_stats(texts: pd.Series) -> dict:
    """Word-count distribution of `texts` (min, quantiles, mean, max, share within 30-60 words)."""
    if len(texts) == 0:
        return {"count": 0}
    words = texts.str.split().str.len().to_numpy()
    q = np.percentile(words, [5, 25, 50, 75, 95])
    return {
        "count": int(len(words)),
        "min": int(words.min()),
        "p5": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": int(words.max()),
        "mean": float(words.mean()),
        "within_30_60": float(((words >= 30) & (words <= 60)).mean()),
    }


def _issue_summary(issues: list[tuple[str, list[str]]]) -> dict:
    kinds: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for kp_id, problems in issues:
        for problem in problems:
            kind = problem.split(":", 1)[0]
            kinds[kind] += 1
            ex = examples.setdefault(kind, [])
            if len(ex) < _EXAMPLES:
                ex.append(f"{kp_id}: {problem}")
    return {"by_kind": dict(kinds), "examples": examples}


def _shard_table(table: pa.Table, what: str) -> pa.Table:
    return validate(table, SHARD, what)


def synthesize(
    keypoints: pd.DataFrame,
    cfg: SynthesizeConfig,
    backend: DescriptionBackend | None = None,
    resume_for: str | os.PathLike | None = None,
) -> SynthesisResult:
    """Describe every usable keypoint row with the configured (or given) backend; with `resume_for` (the
    output path), finished batches wait in its resume folder and rows already there are reused (see the
    module docstring)."""
    backend = backend or make_backend(cfg)
    bins = word_bins(cfg)
    skips = SkipLog(policy=cfg.on_error)
    rows = usable_rows(keypoints, bins, skips, check=backend.check_row)

    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        out, problems = backend.describe_checked(chunk, cfg.seed)
        return out.assign(issues=[json.dumps(list(p)) for p in problems])

    def progress(items, n):
        return track(items, f"synthesize ({backend.name})", total=n, unit="batch")

    if resume_for is None:
        starts = range(0, len(rows), cfg.batch_size)
        frames = [compute(rows.iloc[s : s + cfg.batch_size]) for s in progress(starts, len(starts))]
        done = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*DESCRIPTION_COLUMNS,
                                                                                         "issues"])
        resumed = 0
    else:
        with RowStore(resume_for, validate=_shard_table) as store:
            fingerprints = row_fingerprints(rows, backend.fingerprint(cfg.seed))
            done, resumed = store.run(rows, fingerprints, compute, cfg.batch_size, progress)
    ordered = [({k: rec[k] for k in DESCRIPTION_COLUMNS}, json.loads(rec["issues"]))
               for rec in done.to_dict("records")]
    issues = [(rec["kp_id"], p) for rec, p in ordered if p]
    descriptions = pd.DataFrame([rec for rec, _ in ordered], columns=list(DESCRIPTION_COLUMNS))
    if len(descriptions):
        descriptions["valid"] = descriptions["valid"].astype(bool)
    valid_fraction = float(descriptions["valid"].mean()) if len(descriptions) else None
    dropped = 0
    if backend.drop_invalid and len(descriptions):
        dropped = int((~descriptions["valid"]).sum())
        descriptions = descriptions[descriptions["valid"]].reset_index(drop=True)
    passes = descriptions[["kp_id", *PASS_COLUMNS, "backend"]].copy()
    report = {
        "rows_in": int(len(keypoints)),
        "rows_out": int(len(descriptions)),
        "rows_generated": len(rows) - resumed,
        "rows_resumed": resumed,
        "dropped_invalid": dropped,
        "backend": backend.name,
        "model": backend.model,
        "prompt_version": backend.prompt_version,
        "seed": cfg.seed,
        "sampling": backend.sampling(cfg.seed),
        "valid_fraction": valid_fraction,
        "invalid": _issue_summary(issues),
        "words": length_stats(descriptions["description"]),
        "template_words": length_stats(descriptions["template"]),
        "level_words_median": {
            c: (float(descriptions[c].str.split().str.len().median()) if len(descriptions) else None)
            for c in ("level_object", "level_part", "level_point", "level_local")
        },
        **skips.as_dict(),
    }
    return SynthesisResult(descriptions=descriptions, passes=passes, skips=skips, report=report)

"""The end of a training run (SFT or GRPO): the run's summary, the model folder written atomically with it,
and the run's step checkpoint removed (only once the model is safely in place)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from talking_points.pipeline.data.tables import atomic_dir

__all__ = ["run_summary", "save_run"]


def run_summary(steps: int, resumed_from: int, history: list[dict[str, float]], **fields) -> dict:
    """`fields` + the step count, where the run resumed, and the first and last logged metrics."""
    summary = {**fields, "steps": steps, "resumed_from": resumed_from}
    if history:
        summary.update(first=dict(history[0]), last=dict(history[-1]))
    return summary


def save_run(model, tokenizer, out: str | Path, summary: dict, checkpoint_dir: str | Path,
             card: str | None = None) -> None:
    """`model.save_pretrained` + train.json (+ the model card as README.md) into `out` (atomic), then delete
    `checkpoint_dir`."""
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, tokenizer)
        (tmp / "train.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
        if card is not None:
            (tmp / "README.md").write_text(card)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)

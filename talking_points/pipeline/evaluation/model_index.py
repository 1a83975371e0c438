"""A model folder's test metrics, for its model card: the evaluation rows that used the model (as a describer's
Point Descriptor or as a row's localizer), read from `reports/metrics.json`, as a markdown table and as Hugging
Face's `model-index` metadata. The training stage writes the card before any evaluation, so `tp export-model`
adds these to a copy of the folder (a DVC output is never edited in place)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from talking_points.pipeline.evaluation.config import EvaluateConfig

__all__ = ["RowResult", "card_with_results", "model_results"]


@dataclass(frozen=True)
class RowResult:
    row: str  # the evaluation row (a key of evaluate.rows)
    label: str  # its name in the tables
    role: str  # how the model took part: "describer" (its texts) or "localizer" (it placed the points)
    partner: str  # the other model of the row (the localizer, or where the texts came from)
    metrics: dict  # pck@0.1, pck@0.2, mpck (in %), n, and for text rows category_named, part_named (fractions)


def _same(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def model_results(folder: str | Path, cfg: EvaluateConfig, metrics: dict) -> list[RowResult]:
    """Every row of `metrics` (the `evaluation` part of reports/metrics.json) that used `folder`."""
    found = []
    for name, row in cfg.rows.items():
        if name not in metrics:
            continue
        describer = cfg.describers.get(row.describer) if row.describer else None
        if describer is not None and _same(describer.descriptor, folder):
            found.append(RowResult(name, row.label, "describer", f"scored by `{row.localizer}`", metrics[name]))
        elif _same(row.localizer, folder):
            source = (f"texts of `{describer.descriptor}`" if describer is not None
                      else f"texts: {row.describer or row.texts.value}")
            found.append(RowResult(name, row.label, "localizer", source, metrics[name]))
    return found


def _results_table(results: list[RowResult]) -> list[str]:
    lines = ["| row | this model as | with | PCK@0.1 | PCK@0.2 | mPCK | n | object named | part named |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.metrics
        named = [f"{100 * m[k]:.1f}%" if m.get(k) is not None else "" for k in ("category_named", "part_named")]
        lines.append(f"| {r.label} (`{r.row}`) | {r.role} | {r.partner} | {m['pck@0.1']:.1f} | {m['pck@0.2']:.1f} "
                     f"| **{m['mpck']:.1f}** | {m['n']} | {named[0]} | {named[1]} |")
    return lines


def _model_index(name: str, results: list[RowResult], dataset: str) -> list[dict]:
    """Hugging Face's `model-index` (the card metadata the Hub shows as evaluation results)."""
    return [{"name": name, "results": [
        {"task": {"type": "keypoint-detection", "name": r.label},
         "dataset": {"type": "talking-points-test-split", "name": dataset, "split": "test"},
         "metrics": [{"type": k, "name": k.upper() if k.startswith("pck") else "mPCK", "value": r.metrics[k]}
                     for k in ("pck@0.1", "pck@0.2", "mpck")]}
        for r in results]}]


def card_with_results(card: str, name: str, results: list[RowResult], dataset: str, source: str) -> str:
    """`card` (a model card as the training stage writes it: YAML front matter, then markdown with an
    '## Evaluation' section) with the test results in that section and in the metadata's `model-index`."""
    if not card.startswith("---\n") or "\n---\n" not in card[4:]:
        raise ValueError("the model card has no YAML front matter (it must start with '---')")
    front, body = card[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front) or {}
    if results:
        meta["model-index"] = _model_index(name, results, dataset)
    head, sep, rest = body.partition("## Evaluation\n")
    if not sep:
        raise ValueError("the model card has no '## Evaluation' section")
    after = rest[rest.find("\n## "):] if "\n## " in rest else ""
    if results:
        section = [f"The test split of the {dataset}, from `{source}` (mPCK: mean of PCK@0.1 and PCK@0.2 on "
                   "image-normalised coordinates, in %; named: the fraction of texts that name the point's object "
                   "and part, read back by the description parser).", "", *_results_table(results)]
    else:
        section = [f"No evaluation row of `{source}` used this model."]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + head + sep + "\n" + "\n".join(section) + "\n" \
        + after

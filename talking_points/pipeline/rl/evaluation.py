"""Evaluating GRPO across animal families: the zero-shot (SFT) and the GRPO descriptor describe every
held-out keypoint, the frozen localizer places each text, the grounded GT descriptions are scored as a
reference; per-method tables, seeded examples and the report section (paper Tables 2 and 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.evaluation.predict import prediction_frame
from talking_points.pipeline.evaluation.report import md_table, text_stats
from talking_points.pipeline.metrics.bootstrap import PairedDifference, paired_difference
from talking_points.pipeline.metrics.pck import pck_table
from talking_points.pipeline.models.inference import FeatureStore, describe, localize
from talking_points.pipeline.rl.config import GRPOEvalConfig
from talking_points.pipeline.training.data import ImagesBySize

__all__ = ["METHODS", "score_methods", "method_table", "grpo_gain", "method_metrics", "examples",
           "section_markdown"]

#: the rows of the evaluation table: key -> label
METHODS = {
    "zero_shot": "Zero-shot (SFT descriptor)",
    "grpo": "After RL (GRPO, localizer reward)",
    "gt": "GT description (grounded synthesis; reference)",
}


def score_methods(chunk: pd.DataFrame, descriptors: dict[str, tuple], localizer: tuple,
                  cfg: GRPOEvalConfig, store: FeatureStore | None = None) -> pd.DataFrame:
    """Predictions of every method on `chunk` (SAMPLES rows): `descriptors` maps a METHODS key to (model,
    tokenizer); the GT texts are the rows' descriptions. Each model gets the images at its own input size;
    the frozen towers' features come from `store` where it holds them (`models.feature_store`)."""
    images = ImagesBySize(chunk["file"].tolist())
    points = chunk[["x_norm", "y_norm"]].to_numpy(np.float32)
    texts = {key: describe(m, tok, images.at(m.input_size), points, cfg.generation,
                           precision=cfg.mixed_precision, store=store)
             for key, (m, tok) in descriptors.items()}
    texts["gt"] = chunk["description"].astype(str).tolist()
    loc, loc_tok = localizer
    # every method's texts in one pass of the localizer: its tower runs once per distinct image, not per method
    at_size = images.at(loc.input_size)
    every = [text for t in texts.values() for text in t]
    pred = localize(loc, loc_tok, np.concatenate([at_size] * len(texts)), every, cfg.localizer_batch_size,
                    precision=cfg.mixed_precision, store=store)
    n = len(chunk)
    return pd.concat([prediction_frame(chunk, t, pred[k * n:(k + 1) * n]).assign(method=key)
                      for k, (key, t) in enumerate(texts.items())], ignore_index=True)


def method_table(preds: pd.DataFrame) -> pd.DataFrame:
    """One line per method (in METHODS order): PCK@0.1, PCK@0.2, mPCK (%), n, mean words, % four levels."""
    lines = []
    for key, label in METHODS.items():
        part = preds[preds["method"] == key]
        if part.empty:
            continue
        t = pck_table(part).iloc[0]
        stats = text_stats(part)
        lines.append({"method": key, "Method": label, "PCK@0.1": t["PCK@0.1"], "PCK@0.2": t["PCK@0.2"],
                      "mPCK": t["mPCK"], "n": int(t["n"]), "mean words": stats["words_mean"],
                      "% four levels": 100 * stats["four_levels"]})
    return pd.DataFrame(lines)


def grpo_gain(preds: pd.DataFrame) -> PairedDifference | None:
    """mPCK(GRPO) - mPCK(zero-shot) over the keypoints both described, with its paired bootstrap interval
    (`metrics.bootstrap`); None without both methods."""
    by = {m: preds[preds["method"] == m] for m in ("grpo", "zero_shot")}
    if any(t.empty for t in by.values()):
        return None
    return paired_difference(by["grpo"], by["zero_shot"])


def method_metrics(table: pd.DataFrame, grpo_steps: int | None, gain: PairedDifference | None = None) -> dict:
    """The DVC metrics of one direction: numbers only, PCK and n per method, and GRPO's gain in mPCK over the
    zero-shot descriptor (`grpo_gain`: the difference over the keypoints both described) with its bootstrap
    interval; text lengths and labels are in the section."""
    methods = {r["method"]: {"pck@0.1": round(r["PCK@0.1"], 2), "pck@0.2": round(r["PCK@0.2"], 2),
                             "mpck": round(r["mPCK"], 2), "n": r["n"]} for r in table.to_dict("records")}
    out = {"grpo_steps": grpo_steps, "methods": methods}
    if gain is not None:
        out["gain"] = round(gain.diff, 2)
        out["gain_ci"] = [round(gain.low, 2), round(gain.high, 2)]
    return out


def examples(preds: pd.DataFrame, n: int, seed: int) -> list[dict]:
    """`n` seeded test keypoints with every method's text and error."""
    ids = preds["kp_id"].drop_duplicates()
    chosen = ids.sample(min(n, len(ids)), random_state=seed).tolist() if n else []
    out = []
    for kp in chosen:
        rows = preds[preds["kp_id"] == kp].set_index("method")
        first = rows.iloc[0]
        out.append({"kp_id": kp, "category": first["category"], "part": first["part"],
                    "texts": [(METHODS[m], rows.at[m, "text"], float(rows.at[m, "dist"]))
                              for m in METHODS if m in rows.index]})
    return out


def section_markdown(direction: Direction, table: pd.DataFrame, train_info: dict, exs: list[dict],
                     gain: PairedDifference | None = None) -> str:
    """The report section of one direction: the paper's Table 2/7 layout, GRPO's gain with its bootstrap
    interval (`grpo_gain`), text statistics, examples."""
    train_family, test_family = (f.value for f in direction.families)
    n_test = int(table["n"].iloc[0]) if len(table) else 0
    lines = [f"## AP-10K cross-family adaptation: {train_family} → {test_family} (paper Table 2/7 layout)\n",
             f"GRPO on {train_family} ({train_info.get('rows', '?')} keypoints, "
             f"{train_info.get('steps', '?')} steps, trainable {train_info.get('trainable', '?')}); "
             f"tested on {test_family} ({n_test} keypoints). Every description is localized by the same "
             "frozen Point Localizer; PCK in %.\n",
             md_table(table, ["Method", "PCK@0.1", "PCK@0.2", "mPCK"]),
             *([f"GRPO minus zero-shot: {gain.text()} mPCK over the {gain.n} keypoints (paired bootstrap over "
                "the keypoints; an interval holding 0 is within the test set's noise).\n"] if gain else []),
             "Mean words per description and % with all four levels (object, part, point, local look) found "
             "by the description parser:\n",
             md_table(table, ["Method", "mean words", "% four levels"])]
    if exs:
        lines.append(f"### Examples ({test_family})\n")
        for ex in exs:
            lines.append(f"**{ex['kp_id']}** ({ex['category']}, {ex['part']})\n")
            lines.extend(f"- *{label}* (error {d:.3f}): {text}" for label, text, d in ex["texts"])
            lines.append("")
    return "\n".join(lines) + "\n"

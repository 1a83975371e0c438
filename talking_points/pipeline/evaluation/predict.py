"""Predictions of one evaluation row: the text each test point gets, and where a localizer puts it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from talking_points.pipeline.evaluation.config import EvalRowConfig, Predictor, TextSource
from talking_points.pipeline.metrics.pck import normalised_distance

__all__ = ["KEEP_COLUMNS", "texts_for", "chance_points", "prediction_frame"]

#: sample columns copied into every prediction row, so any table can be recomputed from the predictions alone
KEEP_COLUMNS = ["kp_id", "image_id", "source", "file", "width", "height", "category", "part", "x_norm", "y_norm"]

Describer = Callable[[np.ndarray, np.ndarray], list[str]]


def texts_for(row: EvalRowConfig, samples: pd.DataFrame, images: np.ndarray | None,
              describe: Describer | None, written: pd.Series | None = None) -> list[str]:
    """The text of every sample under `row` (empty strings for text-free rows); `written`: kp_id -> text of a
    `texts: file` row (`text_files.read_description_file`), holding every sample's kp_id."""
    if row.texts is TextSource.gt:
        return samples["description"].astype(str).tolist()
    if row.texts is TextSource.template:
        return samples["template"].astype(str).tolist()
    if row.texts is TextSource.object_level:
        return samples["level_object"].astype(str).tolist()
    if row.texts in (TextSource.generated, TextSource.vlm):
        if describe is None or images is None:
            raise ValueError(f"texts '{row.texts.value}' needs a describer and the images")
        return describe(images, samples[["x_norm", "y_norm"]].to_numpy(np.float32))
    if row.texts is TextSource.file:
        if written is None:
            raise ValueError("texts 'file' needs the file's descriptions")
        missing = [k for k in samples["kp_id"] if k not in written.index]
        if missing:
            raise ValueError(f"{row.file}: no description for kp_id {missing[0]!r} (and {len(missing) - 1} more)")
        return written.loc[samples["kp_id"]].astype(str).tolist()
    if row.texts is TextSource.none:
        return [""] * len(samples)
    raise ValueError(f"unknown text source {row.texts!r}")


def chance_points(predictor: Predictor, kp_ids: list[str], seed: int) -> np.ndarray:
    """(N, 2) normalised chance predictions; 'uniform' is seeded per kp_id so chunking does not change it."""
    if predictor is Predictor.centre:
        return np.full((len(kp_ids), 2), 0.5)
    if predictor is Predictor.uniform:
        out = np.empty((len(kp_ids), 2))
        for i, k in enumerate(kp_ids):
            digest = hashlib.sha256(f"{seed}:{k}".encode()).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest[:8], "little")).random(2)
        return out
    raise ValueError(f"{predictor!r} is not a chance predictor")


def prediction_frame(samples: pd.DataFrame, texts: list[str], pred: np.ndarray) -> pd.DataFrame:
    """One row per sample: ids, truth, text, normalised prediction and its distance to the truth."""
    pred = np.asarray(pred, np.float64)
    out = samples[KEEP_COLUMNS].reset_index(drop=True).copy()
    out["text"] = texts
    out["x_pred"], out["y_pred"] = pred[:, 0], pred[:, 1]
    out["dist"] = normalised_distance(pred, out[["x_norm", "y_norm"]].to_numpy())
    return out

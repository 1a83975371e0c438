"""Predictions of the evaluation rows: the text each test point gets, and where a localizer (or chance) puts it."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.evaluation.config import ChancePredictor, EvalRowConfig, TextSource
from talking_points.pipeline.metrics.pck import normalised_distance

__all__ = ["KEEP_COLUMNS", "TEXT_COLUMNS", "texts_for", "chance_points", "prediction_frame", "read_texts",
           "read_style"]

#: sample columns copied into every prediction row, so any table can be recomputed from the predictions alone
KEEP_COLUMNS = ["kp_id", "image_id", "source", "file", "width", "height", "category", "part", "x_norm", "y_norm"]
#: the columns of a describer's texts (data/eval/texts/<describer>.parquet)
TEXT_COLUMNS = ["kp_id", "text"]


def _texts_by_kp_id(path: str, table: pd.DataFrame, column: str, kp_ids: pd.Series, what: str, rerun: str
                    ) -> pd.Series:
    """kp_id -> `column` of `table` (read from `path`), which must hold a text for every one of `kp_ids`; BadInput
    naming the file, the number missing and the first otherwise."""
    texts = pd.Series(table[column].astype(str).to_numpy(), index=table["kp_id"].astype(str).to_numpy())
    absent = ~kp_ids.astype(str).isin(texts.index)
    if absent.any():
        raise BadInput(path, f"{what} for {int(absent.sum())} test points (first {kp_ids[absent].iloc[0]!r}); {rerun}")
    return texts


def read_texts(path: str, kp_ids: pd.Series, describer: str) -> pd.Series:
    """kp_id -> text of a describer's table, which must hold a text for every one of `kp_ids`; BadInput naming
    the file and the first missing kp_id otherwise (written for another test split or `evaluate.limit`)."""
    table = pd.read_parquet(path)
    missing = [c for c in TEXT_COLUMNS if c not in table.columns]
    if missing:
        raise BadInput(path, f"texts of describer {describer!r} lack columns {missing}")
    return _texts_by_kp_id(path, table, "text", kp_ids, f"describer {describer!r} wrote no text",
                           f"rerun `tp evaluate-describe {describer}` on this test split")


def read_style(path: str, kp_ids: pd.Series, style: str) -> pd.Series:
    """kp_id -> text in `style` of the restyled test table (`tp restyle`), which must hold every one of `kp_ids`."""
    table = pd.read_parquet(path)
    if style not in table.columns:
        raise BadInput(path, f"no column {style!r}: add it to styles.styles and rerun `tp restyle`")
    return _texts_by_kp_id(path, table, style, kp_ids, f"no {style} text", "rerun `tp restyle` on this test split")


def texts_for(row: EvalRowConfig, samples: pd.DataFrame, written: pd.Series | None = None) -> list[str]:
    """The text of every sample under `row`; `written`: kp_id -> text of a `texts: generated` row (its describer's
    table, `read_texts`) or of a `texts: file` row (`text_files.read_description_file`), holding every sample."""
    if row.texts is TextSource.gt:
        return samples["description"].astype(str).tolist()
    elif row.texts is TextSource.template:
        return samples["template"].astype(str).tolist()
    elif row.texts is TextSource.object_level:
        return samples["level_object"].astype(str).tolist()
    elif row.texts in (TextSource.generated, TextSource.file, TextSource.style):
        if written is None:
            raise ValueError(f"texts '{row.texts.value}' needs the written texts (describer table, file or styles)")
        ids = samples["kp_id"].astype(str)
        missing = ids[~ids.isin(written.index)]
        if len(missing):
            source = row.file or row.describer or f"style {row.style.value}"
            raise ValueError(f"{source}: no description for kp_id {missing.iloc[0]!r} (and "
                             f"{len(missing) - 1} more)")
        return written.loc[ids].astype(str).tolist()
    elif row.texts is TextSource.none:
        return [""] * len(samples)
    else:
        raise ValueError(f"unknown text source {row.texts!r}")


def chance_points(predictor: ChancePredictor, kp_ids: list[str], seed: int) -> np.ndarray:
    """(N, 2) normalised chance predictions; 'uniform' is seeded per kp_id so chunking does not change it."""
    if predictor is ChancePredictor.centre:
        return np.full((len(kp_ids), 2), 0.5)
    elif predictor is ChancePredictor.uniform:
        out = np.empty((len(kp_ids), 2))
        for i, k in enumerate(kp_ids):
            digest = hashlib.sha256(f"{seed}:{k}".encode()).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest[:8], "little")).random(2)
        return out
    else:
        raise ValueError(f"{predictor!r} is not a chance predictor")


def prediction_frame(samples: pd.DataFrame, texts: list[str], pred: np.ndarray) -> pd.DataFrame:
    """One row per sample: ids, truth, text, normalised prediction and its distance to the truth."""
    pred = np.asarray(pred, np.float64)
    out = samples[KEEP_COLUMNS].reset_index(drop=True).copy()
    out["text"] = texts
    out["x_pred"], out["y_pred"] = pred[:, 0], pred[:, 1]
    out["dist"] = normalised_distance(pred, out[["x_norm", "y_norm"]].to_numpy())
    return out

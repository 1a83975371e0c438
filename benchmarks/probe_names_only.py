"""Probe: is the held-out terse style hard for its wording, or because it leaves out the position words?

    python benchmarks/probe_names_only.py --localizer models/localizer_multistyle

Scores one localizer on the test split's points written four ways: the GT description; the terse style
(`data/styles/test.parquet`); terse behind the training opener ("The point is on the horse's mane."); and
the training templates' own words with every optional clause left out — `sparse` with nothing kept ("The point
is on the horse; on its mane."): the instance and the part, named as in training, and no position. If the
last scores like terse, the wording is not what costs the points. Beside each mPCK: the share of predicted
points inside the named object's box and inside the named part's box (did it find the object at all?), and the
mPCK of the points whose object is the only one of its category in the image and of those with others beside
it (where "the left dog of the two" has to be resolved).
"""

from __future__ import annotations

import argparse
import os
from unittest import mock

import numpy as np
import pandas as pd

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.metrics.bootstrap import point_mpck  # noqa: E402
from talking_points.pipeline.metrics.pck import normalised_distance  # noqa: E402
from talking_points.pipeline.synthesis import styles  # noqa: E402
from talking_points.pipeline.synthesis.facts import row_facts  # noqa: E402
from talking_points.pipeline.synthesis.style_config import Style  # noqa: E402
from talking_points.pipeline.synthesis.vocabulary import WordBins  # noqa: E402


def names_only(rows: pd.DataFrame, seed: int, bins: WordBins) -> list[str]:
    """The rows as `sparse` texts with every optional clause dropped (instance and part named, nothing else)."""
    with mock.patch.dict(styles.SPARSE_KEEP, {k: 0.0 for k in styles.SPARSE_KEEP}):
        return [styles.restyle(r, Style.sparse, seed, bins) for r in rows.to_dict(orient="records")]


def inside(pred: np.ndarray, rows: pd.DataFrame, box: str) -> np.ndarray:
    """Whether each predicted point lies in the row's `box` ("obj" or "part": normalised x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (rows[f"{box}_{c}"].to_numpy(np.float64) for c in ("x0", "y0", "x1", "y1"))
    return (pred[:, 0] >= x0) & (pred[:, 0] <= x1) & (pred[:, 1] >= y0) & (pred[:, 1] <= y1)


def with_opener(text: str) -> str:
    return "The point is on " + text[:1].lower() + text[1:].rstrip(".") + "."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--localizer", default="models/localizer_multistyle")
    ap.add_argument("--test", default="data/split/test.parquet")
    ap.add_argument("--styles", default="data/styles/test.parquet")
    ap.add_argument("--seed", type=int, default=0, help="styles.seed")
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()

    from talking_points.pipeline.models.inference import localize
    from talking_points.pipeline.models.localizer import PointLocalizer
    from talking_points.pipeline.training.data import ImagesBySize

    rows = pd.read_parquet(a.test)
    terse = pd.read_parquet(a.styles).set_index("kp_id").loc[rows["kp_id"], "terse"].tolist()
    model, tok = PointLocalizer.from_pretrained(a.localizer)
    model.merge_adapters()
    images = ImagesBySize(rows["file"].tolist()).at(model.input_size)
    truth = rows[["x_norm", "y_norm"]].to_numpy(np.float64)
    variants = {
        "gt description": rows["description"].astype(str).tolist(),
        "terse (held out)": terse,
        "terse behind the training opener": [with_opener(t) for t in terse],
        "training words, names only": names_only(rows, a.seed, WordBins()),
    }
    alone = np.array([row_facts(r, WordBins()).n_same == 1 for r in rows.to_dict(orient="records")])
    print(f"{a.localizer}, {len(rows)} test points (mPCK; % of points in the object's / the part's box; mPCK where "
          f"the object is alone in its category ({alone.sum()}) / has others beside it ({(~alone).sum()})):")
    for name, texts in variants.items():
        pred = localize(model, tok, images, texts, a.batch_size)
        found = f"{inside(pred, rows, 'obj').mean():4.0%} / {inside(pred, rows, 'part').mean():4.0%}"
        score = point_mpck(normalised_distance(pred, truth))
        print(f"  {name:34s} {score.mean():5.1f}  {found}  {score[alone].mean():5.1f} / {score[~alone].mean():5.1f}"
              f"   e.g. {texts[0]!r}")


if __name__ == "__main__":
    main()

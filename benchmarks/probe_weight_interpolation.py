"""Probe: interpolate a fine-tuned localizer's weights with the weights it started from (WiSE-FT, Wortsman et
al. 2022, "Robust fine-tuning of zero-shot models") and score every interpolation on the test split's texts in
each style (and optionally a describer's texts), without touching the pipeline's outputs.

    python benchmarks/probe_weight_interpolation.py --start models/localizer --tuned models/localizer_multistyle \
        --alphas 0 0.5 0.7 1 --texts data/eval/texts/tp.parquet

alpha 0 is the starting model, 1 the fine-tuned one. Prints one line per (alpha, style): PCK@0.1, PCK@0.2, mPCK.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.metrics.pck import mpck, normalised_distance  # noqa: E402
from talking_points.pipeline.models.inference import FeatureStore, localize  # noqa: E402
from talking_points.pipeline.models.localizer import PointLocalizer  # noqa: E402
from talking_points.pipeline.training.data import ImagesBySize  # noqa: E402
from talking_points.pipeline.training.weight_interpolation import interpolate_weights  # noqa: E402


def split_texts(test_path: str, styles_path: str, text_paths: list[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The test split and, by name, the texts of its rows in order: `gt` (the descriptions), every style of
    `styles_path`, and each describer's texts (named by file)."""
    test = read_table(test_path, schema.SAMPLES, "test split").reset_index(drop=True)
    ids = test["kp_id"].astype(str)
    texts = {"gt": test["description"].astype(str).tolist()}
    styles = pd.read_parquet(styles_path).set_index("kp_id")
    texts.update({s: styles.loc[ids, s].astype(str).tolist() for s in styles.columns})
    for path in text_paths:
        texts[os.path.basename(path)] = pd.read_parquet(path).set_index("kp_id").loc[ids, "text"].astype(str).tolist()
    return test, texts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", default="models/localizer")
    ap.add_argument("--tuned", default="models/localizer_multistyle")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--test", default="data/split/test.parquet")
    ap.add_argument("--styles", default="data/styles/test.parquet")
    ap.add_argument("--texts", nargs="*", default=[], help="describers' texts (parquet: kp_id, text)")
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    test, texts = split_texts(a.test, a.styles, a.texts)
    model, tok = PointLocalizer.from_pretrained(a.tuned)
    start, _ = PointLocalizer.from_base(model.base_path, model.cfg)  # heads the tuned one added: as built
    start.load_trained(a.start)
    start_sd, tuned_sd = start.state_dict(), {k: v.clone() for k, v in model.state_dict().items()}
    del start
    images = ImagesBySize(test["file"].tolist()).at(model.input_size)
    store = FeatureStore.from_env()
    truth = test[["x_norm", "y_norm"]].to_numpy()
    for alpha in a.alphas:
        model.load_state_dict(interpolate_weights(start_sd, tuned_sd, alpha))
        line = []
        t0 = time.perf_counter()
        for name, tx in texts.items():
            d = normalised_distance(localize(model, tok, images, tx, a.batch, store=store), truth)
            line.append(f"{name} {mpck(d) * 100:.1f}")
        print(f"alpha {alpha:.2f}: " + ", ".join(line) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

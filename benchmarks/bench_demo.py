"""Latency of one demo click on trained models: the descriptor's greedy description of the clicked pixel and
the localizer reading it back (what `tp demo` does per click), and of one edited-text localization. The
models are loaded once, as in the app. Prints min / median / max over the clicks.

    python benchmarks/bench_demo.py --descriptor models/descriptor --localizer models/localizer \
        --samples data/split/test.parquet [--n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.demo.handlers import DemoModels, describe_click, localize_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--descriptor", default="models/descriptor")
    ap.add_argument("--localizer", default="models/localizer")
    ap.add_argument("--samples", default="data/split/test.parquet")
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    t0 = time.perf_counter()
    models = DemoModels.load(a.descriptor, a.localizer)
    print(f"models loaded in {time.perf_counter() - t0:.2f} s")
    rows = pd.read_parquet(a.samples).sample(a.n + 1, random_state=0)
    images = {f: np.asarray(Image.open(f).convert("RGB")) for f in rows["file"].unique()}
    first = rows.iloc[0]
    describe_click(models, images[first["file"]], float(first["x"]), float(first["y"]))  # warm-up
    clicks, edits, words = [], [], []
    for r in rows.iloc[1:].itertuples():
        answer = describe_click(models, images[r.file], float(r.x), float(r.y))
        clicks.append(answer.seconds)
        words.append(len(answer.text.split()))
        edits.append(localize_text(models, images[r.file], r.description, (float(r.x), float(r.y))).seconds)
    for name, xs in (("click (describe + localize)", clicks), ("edited text (localize)", edits)):
        print(f"{name}: median {statistics.median(xs):.3f} s, min {min(xs):.3f} s, max {max(xs):.3f} s "
              f"over {len(xs)}")
    print(f"description length: median {statistics.median(words)} words")


if __name__ == "__main__":
    main()

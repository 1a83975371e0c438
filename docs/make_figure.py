"""Draw docs/figure.png for the README: test images with their keypoint and its description.

Usage (after `dvc repro split`): python docs/make_figure.py [--samples data/split/test.parquet] [--n 3]
"""

from __future__ import annotations

import argparse
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", default="data/split/test.parquet")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default="docs/figure.png")
    a = ap.parse_args()
    df = pd.read_parquet(a.samples)
    if df.empty:
        raise SystemExit(f"{a.samples} has no rows")
    repeated = df[df["n_same"] > 1] if "n_same" in df.columns else df.iloc[:0]
    pool = repeated if len(repeated) >= a.n else df  # scenes where instance order matters, if there are enough
    n = min(a.n, len(pool))
    df = pool.sample(n, random_state=a.seed)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 5.2), squeeze=False)
    for ax, r in zip(axes[0], df.itertuples()):
        ax.imshow(Image.open(r.file).convert("RGB"))
        ax.plot(r.x, r.y, "o", ms=11, mfc="none", mec="white", mew=3)
        ax.plot(r.x, r.y, "o", ms=11, mfc="none", mec="red", mew=1.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{r.category} / {r.part}", fontsize=9)
        ax.text(0, -0.03, textwrap.fill(r.description, 58), transform=ax.transAxes, va="top", fontsize=7.5)
    fig.tight_layout()
    fig.savefig(a.out, dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()

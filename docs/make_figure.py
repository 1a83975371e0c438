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
    df = df[df["n_same"] > 1].sample(a.n, random_state=a.seed)  # scenes where instance order matters
    fig, axes = plt.subplots(1, a.n, figsize=(4.4 * a.n, 5.2))
    for ax, r in zip(axes, df.itertuples()):
        ax.imshow(Image.open(r.file).convert("RGB"))
        ax.plot(r.x, r.y, "o", ms=11, mfc="none", mec="white", mew=3)
        ax.plot(r.x, r.y, "o", ms=11, mfc="none", mec="red", mew=1.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{r.category} / {r.part}", fontsize=9)
        ax.text(0, -0.03, textwrap.fill(r.description, 58), transform=ax.transAxes, va="top", fontsize=7.5)
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)


if __name__ == "__main__":
    main()

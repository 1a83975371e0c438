"""Probe helper: one descriptor's greedy texts for given test points, as a predictions parquet that
`benchmarks/cross_judge.py` reads. Written against the API that run 4's commit (6ff8bad) and today's share, so
that it runs with ANOTHER commit's code and models (PYTHONPATH at that worktree):

    cd ../other && PYTHONPATH=$PWD python -P $MAIN/benchmarks/describe_points.py \\
        --descriptor models/descriptor --rows $RUN/data/eval/tp.parquet --root $RUN --out /tmp/other_tp.parquet
    cd $RUN && python benchmarks/cross_judge.py partworld /tmp/other_tp.parquet \\
        --predictions data/eval/tp.parquet --methods tp

`--rows`: any parquet with kp_id, file, x_norm, y_norm (an evaluation row's predictions, a split); `--root`:
the folder its relative image paths are under.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--descriptor", required=True)
    ap.add_argument("--rows", required=True)
    ap.add_argument("--root", default=".", help="folder the rows' relative image paths are under")
    ap.add_argument("--out", required=True)
    ap.add_argument("--method", default="tp", help="the method name written in the output")
    ap.add_argument("--batch-size", type=int, default=64)
    a = ap.parse_args()

    from talking_points.pipeline.models.descriptor import PointDescriptor
    from talking_points.pipeline.models.inference import describe
    from talking_points.pipeline.training.data import ImagesBySize
    try:
        from talking_points.pipeline.models.decoding import DecodingConfig
    except ImportError:  # before DecodingConfig had a module of its own
        from talking_points.pipeline.models.inference import DecodingConfig

    rows = pd.read_parquet(a.rows)
    files = [str(Path(a.root) / f) for f in rows["file"]]
    model, tok = PointDescriptor.from_pretrained(a.descriptor)
    images = ImagesBySize(files).at(model.input_size)
    texts = describe(model, tok, images, rows[["x_norm", "y_norm"]].to_numpy(np.float32),
                     DecodingConfig(max_new_tokens=96, batch_size=a.batch_size))
    keep = [c for c in ("kp_id", "image_id", "file", "width", "height", "category", "part", "x_norm", "y_norm")
            if c in rows]
    rows[keep].assign(text=texts, method=a.method).to_parquet(a.out)
    print(f"{len(texts)} texts -> {a.out}")


if __name__ == "__main__":
    main()

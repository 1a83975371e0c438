"""Probe: are two runs' AP-10K descriptors different, or only their judges? Re-score another run's
evaluate-grpo predictions (its texts) with THIS run's frozen localizer, paired with this run's own predictions
on the same keypoints.

Every evaluate-grpo figure is "descriptor texts, placed by one localizer"; two runs differ in both, so their
mPCK cannot say which one changed. This script holds the judge fixed:

    # the other run, e.g. an older commit, in a worktree of its own (its own code and models)
    git worktree add ../other <commit> && cd ../other
    dvc repro train-descriptor@descriptor train-localizer@localizer ap10k-data
    tp evaluate-grpo bovidae_to_canidae --model models/descriptor --out /tmp/other_b2c.parquet \\
        --metrics /tmp/other_b2c.json --section /tmp/other_b2c.md      # 'grpo' = the SFT descriptor here
    # back in this run's folder
    python benchmarks/cross_judge.py bovidae_to_canidae /tmp/other_b2c.parquet \\
        canidae_to_bovidae /tmp/other_c2b.parquet                     # (the same two lines run there for it)

For each method (`--methods`, default zero_shot and gt): this run's mPCK, the other run's texts placed by
this run's localizer (on this run's images of the same keypoints), and the paired difference (this − other,
bootstrap interval over the keypoints). The keypoints must be the same (kp_id and coordinates); the script
stops otherwise. The same for a main-table row (`tp evaluate`'s predictions have no `method` column):
`partworld <other run's texts of the same test points> --predictions data/eval/tp.parquet --methods tp`.
Several pairs are also pooled.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.metrics.bootstrap import mpck_difference, point_mpck  # noqa: E402
from talking_points.pipeline.metrics.pck import normalised_distance  # noqa: E402


def rows_of(preds: pd.DataFrame, method: str) -> pd.DataFrame:
    """The rows of `method` by kp_id; all rows of a file without a `method` column (one `tp evaluate` row)."""
    return (preds[preds["method"] == method] if "method" in preds else preds).set_index("kp_id")


def paired_rows(ours: pd.DataFrame, other: pd.DataFrame, method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's and the other run's rows of `method`, on the same keypoints in the same order. Raises
    ValueError when the keypoints differ (ids or coordinates)."""
    a, b = rows_of(ours, method), rows_of(other, method)
    if set(a.index) != set(b.index):
        raise ValueError(f"{method}: the runs scored different keypoints ({len(a.index.difference(b.index))} "
                         f"only here, {len(b.index.difference(a.index))} only in the other run)")
    b = b.loc[a.index]
    moved = np.abs(a[["x_norm", "y_norm"]].to_numpy() - b[["x_norm", "y_norm"]].to_numpy()).max(initial=0.0)
    if moved > 1e-6:
        raise ValueError(f"{method}: same kp_ids but keypoints moved by up to {moved:.4f} (normalised)")
    return a, b


def line(name: str, dist_mine: np.ndarray, dist_theirs: np.ndarray) -> str:
    d = mpck_difference(dist_mine, dist_theirs)
    return (f"  {name:28s} {point_mpck(dist_mine).mean():5.1f} / {point_mpck(dist_theirs).mean():5.1f}   "
            f"{d.diff:+.2f} ({d.low:+.2f} to {d.high:+.2f}), n {d.n}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="+", metavar="DIRECTION OTHER",
                    help="a direction and the other run's evaluate-grpo predictions for it; several pairs are "
                         "also pooled (all their keypoints)")
    ap.add_argument("--predictions", nargs="+", default=None,
                    help="this run's, one per pair (default: data/grpo_eval/<direction>.parquet)")
    ap.add_argument("--localizer", default="models/localizer")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=["zero_shot", "gt"],
                    help="methods to compare (the other run's 'grpo' is whatever its --model was)")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give DIRECTION OTHER pairs")
    pairs = list(zip(a.pairs[::2], a.pairs[1::2]))
    ours_files = a.predictions or [f"data/grpo_eval/{d}.parquet" for d, _ in pairs]
    if len(ours_files) != len(pairs):
        ap.error(f"--predictions: one file per pair ({len(pairs)}), got {len(ours_files)}")

    from talking_points.pipeline.models.inference import localize
    from talking_points.pipeline.models.localizer import PointLocalizer
    from talking_points.pipeline.training.data import ImagesBySize

    model, tok = PointLocalizer.from_pretrained(a.localizer)
    model.merge_adapters()
    print(f"judge {a.localizer}; mPCK of this run's texts / the other run's texts, paired difference "
          "this - other (95% bootstrap interval over the keypoints)")
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {m: [] for m in a.methods}
    for (direction, other_file), ours_file in zip(pairs, ours_files):
        ours, other = pd.read_parquet(ours_file), pd.read_parquet(other_file)
        for method in a.methods:
            mine, theirs = paired_rows(ours, other, method)
            images = ImagesBySize(mine["file"].tolist()).at(model.input_size)
            pred = localize(model, tok, images, theirs["text"].tolist(), a.batch_size)
            dists = (mine["dist"].to_numpy(), normalised_distance(pred, mine[["x_norm", "y_norm"]].to_numpy()))
            pooled[method].append(dists)
            print(line(f"{direction} {method}", *dists), flush=True)
    if len(pairs) > 1:
        for method, parts in pooled.items():
            print(line(f"pooled {method}", *(np.concatenate(p) for p in zip(*parts))))


if __name__ == "__main__":
    main()

"""Probe: where the describers lose points on the held-out AP-10K family (evaluate-grpo's predictions), without
touching the pipeline's outputs.

    python benchmarks/probe_grpo_errors.py bovidae_to_canidae
    python benchmarks/probe_grpo_errors.py bovidae_to_canidae --swap-levels   # also re-localizes (about 1 min)

Per method (zero-shot, GRPO, GT texts): how often the localizer's point lands outside the keypoint's own animal
(its box, 1% margin) — the text sent it to another animal or off the animal — and the mPCK of the points that
stay inside, split by the number of animals and species in the image. With --swap-levels, the zero-shot texts
are scored again with one level (object, part, point, local look) replaced by the GT description's: which
level's words cost the most.
"""

from __future__ import annotations

import argparse
import os

import pandas as pd

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.metrics.bootstrap import point_mpck  # noqa: E402
from talking_points.pipeline.metrics.pck import normalised_distance  # noqa: E402


def outside_own_box(preds: pd.DataFrame, rows: pd.DataFrame, margin: float = 0.01) -> pd.Series:
    """True where the prediction falls outside the keypoint's object box (normalised obj_x0..obj_y1)."""
    r = rows.loc[preds.index]
    return ~((preds.x_pred >= r.obj_x0 - margin) & (preds.x_pred <= r.obj_x1 + margin)
             & (preds.y_pred >= r.obj_y0 - margin) & (preds.y_pred <= r.obj_y1 + margin))


def swap_level(text: str, reference: str, level: int) -> str:
    """`text` with its `level`-th '; '-separated level replaced by the reference's (unchanged unless both have
    four levels)."""
    a, b = text.rstrip(". ").split("; "), reference.rstrip(". ").split("; ")
    if len(a) != 4 or len(b) != 4:
        return text
    a[level] = b[level]
    return "; ".join(a) + "."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("direction")
    ap.add_argument("--predictions", default=None, help="default: data/grpo_eval/<direction>.parquet")
    ap.add_argument("--rows", default=None, help="default: data/ap10k/<direction>/test.parquet")
    ap.add_argument("--localizer", default="models/localizer")
    ap.add_argument("--swap-levels", action="store_true")
    a = ap.parse_args()
    ev = pd.read_parquet(a.predictions or f"data/grpo_eval/{a.direction}.parquet")
    rows = pd.read_parquet(a.rows or f"data/ap10k/{a.direction}/test.parquet").set_index("kp_id")
    species = rows.groupby("image_id")["category"].nunique()
    rows = rows.assign(n_species=rows["image_id"].map(species))
    for method, preds in ev.groupby("method", sort=False):
        preds = preds.set_index("kp_id")
        out = outside_own_box(preds, rows)
        score = pd.Series(point_mpck(preds["dist"].to_numpy()), index=preds.index)
        r = rows.loc[preds.index].assign(outside=out, score=score)
        print(f"{method:9s} mPCK {score.mean():5.1f} | outside its own animal {100 * out.mean():5.1f}% | "
              f"mPCK inside {score[~out].mean():5.1f}, outside {score[out].mean():5.1f}")
        by = r.groupby(["n_objects", "n_species"]).agg(outside=("outside", "mean"), mpck=("score", "mean"),
                                                        n=("score", "size"))
        by["outside"] *= 100
        print("  " + by.round(1).to_string().replace("\n", "\n  "))
    if a.swap_levels:
        from talking_points.pipeline.models.inference import localize
        from talking_points.pipeline.models.localizer import PointLocalizer
        from talking_points.pipeline.training.data import ImagesBySize

        model, tok = PointLocalizer.from_pretrained(a.localizer)
        model.merge_adapters()
        zero = ev[ev["method"] == "zero_shot"].reset_index(drop=True)
        gt = ev[ev["method"] == "gt"].set_index("kp_id").loc[zero["kp_id"], "text"].tolist()
        images = ImagesBySize(zero["file"].tolist()).at(model.input_size)
        truth = zero[["x_norm", "y_norm"]].to_numpy()

        def mpck_of(texts: list[str]) -> float:
            pred = localize(model, tok, images, texts, 64)
            return float(point_mpck(normalised_distance(pred, truth)).mean())

        print(f"zero-shot texts re-localized: {mpck_of(zero['text'].tolist()):.1f}")
        for k, level in enumerate(("object", "part", "point", "local look")):
            swapped = [swap_level(t, g, k) for t, g in zip(zero["text"], gt)]
            print(f"  with the GT description's {level} level: {mpck_of(swapped):.1f}")


if __name__ == "__main__":
    main()

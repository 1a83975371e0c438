"""Probe: read the heatmap localizer's point another way than its soft-argmax over the whole map, without
retraining, and score each readout on the test split's texts in every style (and optionally describers' texts).

    python benchmarks/probe_heatmap_readout.py models/localizer models/localizer_multistyle \
        --texts data/eval/texts/tp.parquet [--windows 6 10 14] [--mass 4]

Readouts (cells of the heat map's grid; the model's own is `expectation`):
- `expectation`: the soft-argmax over every cell, as `PointLocalizer.forward`;
- `peak_w<r>`: the soft-argmax over the cells within r cells of the map's highest cell;
- `mass<k>_w<r>`: the same around the cell with the most probability within k cells of it.
A map with mass on two objects (two dogs, or the named one and a guess) puts the expectation between them; the
windowed readouts take one mode. Prints one line per (localizer, text set): mPCK per readout.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from probe_weight_interpolation import split_texts  # noqa: E402  (benchmarks/ is the script's path)

from talking_points.pipeline.metrics.pck import mpck, normalised_distance  # noqa: E402
from talking_points.pipeline.models.inference import FeatureStore, prompt_format  # noqa: E402
from talking_points.pipeline.models.localizer import PointLocalizer, densest_soft_argmax, soft_argmax  # noqa: E402
from talking_points.pipeline.training.data import ImagesBySize  # noqa: E402


def readouts(logits: torch.Tensor, centres: torch.Tensor, windows: list[int], mass: list[int]
             ) -> dict[str, torch.Tensor]:
    """Every readout of the (B, S) heat-map logits on the (S, 2) row-major cell centres, by name (`peak_w<r>` is
    `densest_soft_argmax` with mass reach 0, what `heatmap_readout: densest` computes)."""
    out = {"expectation": soft_argmax(logits, centres)}
    out.update({f"peak_w{r}": densest_soft_argmax(logits, centres, 0, r) for r in windows})
    for k in mass:
        out.update({f"mass{k}_w{r}": densest_soft_argmax(logits, centres, k, r) for r in windows})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("localizers", nargs="+")
    ap.add_argument("--test", default="data/split/test.parquet")
    ap.add_argument("--styles", default="data/styles/test.parquet")
    ap.add_argument("--texts", nargs="*", default=[], help="describers' texts (parquet: kp_id, text)")
    ap.add_argument("--windows", type=int, nargs="+", default=[6, 10, 14])
    ap.add_argument("--mass", type=int, nargs="*", default=[4])
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    test, texts = split_texts(a.test, a.styles, a.texts)
    truth = test[["x_norm", "y_norm"]].to_numpy()
    store = FeatureStore.from_env()
    for path in a.localizers:
        model, tok = PointLocalizer.from_pretrained(path)
        model.eval()
        vision = store.features(model, ImagesBySize(test["file"].tolist()).at(model.input_size))
        fmt = prompt_format(model, tok)
        for name, tx in texts.items():
            preds: dict[str, list[torch.Tensor]] = {}
            with torch.no_grad():
                for s in range(0, len(tx), a.batch):
                    b = fmt.localizer_batch(tx[s:s + a.batch], padding_side="right")
                    rows = vision.rows(torch.arange(s, min(s + a.batch, len(tx))))
                    heat = model.heat(None, b.input_ids, b.attention_mask, vision=rows.to(model.vlm.dtype, "cpu"))
                    for k, v in readouts(heat.logits.float(), heat.centres.float(), a.windows, a.mass).items():
                        preds.setdefault(k, []).append(v)
            scores = [f"{k} {mpck(normalised_distance(torch.cat(v).numpy(), truth)) * 100:.1f}"
                      for k, v in preds.items()]
            print(f"{path} {name}: " + ", ".join(scores), flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

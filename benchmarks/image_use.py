"""Where in its descriptions does a trained descriptor use the image and the point?

Teacher-forced on the GT descriptions of the first N test rows, each description token's log-probability is
computed three ways: with the row's own image and point, with another row's image (same point), and with
another row's point (same image). The gain (own − other, in nats per token) is averaged per tenth of the
description (decile 0: its first words, the object; decile 9: its last, the local look). A gain near zero
means the model writes those words from the words before them, whatever it is shown.

    python benchmarks/image_use.py models/descriptor [--n 128]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.models.descriptor import PointDescriptor  # noqa: E402
from talking_points.pipeline.models.inference import prompt_format  # noqa: E402
from talking_points.pipeline.models.prompts import IGNORE  # noqa: E402
from talking_points.pipeline.training.data import PointSamples  # noqa: E402
from talking_points.pipeline.training.steps import descriptor_collate  # noqa: E402


def token_logprobs(model, batch: dict, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    logits = model(images, points, batch["input_ids"], batch["attention_mask"]).logits[:, :-1].float()
    target = batch["labels"][:, 1:]
    return torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("descriptor", help="a descriptor folder (e.g. models/descriptor)")
    ap.add_argument("--test", default="data/split/test.parquet")
    ap.add_argument("--n", type=int, default=128, help="first N test rows (one batch)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the permutation that pairs rows")
    a = ap.parse_args()
    model, tok = PointDescriptor.from_pretrained(a.descriptor)
    model.eval()
    test = read_table(a.test, schema.SAMPLES).iloc[: a.n].reset_index(drop=True)
    rows = PointSamples(test, model.input_size, ("description",))
    batch = descriptor_collate(prompt_format(model, tok))([rows[i] for i in range(len(rows))])
    other = torch.as_tensor(np.random.default_rng(a.seed).permutation(len(test)))
    images, points = batch["image"], batch["point"]
    with torch.no_grad():
        own = token_logprobs(model, batch, images, points)
        gain_image = own - token_logprobs(model, batch, images[other], points)
        gain_point = own - token_logprobs(model, batch, images, points[other])
    valid = batch["labels"][:, 1:] != IGNORE
    per_decile: dict[int, list[tuple[float, float, float]]] = {d: [] for d in range(10)}
    for i in range(len(test)):
        idx = torch.nonzero(valid[i]).flatten()
        for j, k in enumerate(idx.tolist()):
            per_decile[min(9, j * 10 // len(idx))].append(
                (float(own[i, k]), float(gain_image[i, k]), float(gain_point[i, k])))
    print(f"{a.descriptor}: first {len(test)} test rows, GT descriptions teacher-forced (nats per token)")
    print("decile  log p  gain from own image  gain from own point")
    for d, vals in per_decile.items():
        v = np.asarray(vals)
        print(f"{d:6d} {v[:, 0].mean():6.2f} {v[:, 1].mean():20.3f} {v[:, 2].mean():20.3f}")


if __name__ == "__main__":
    main()

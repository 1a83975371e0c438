"""A quick probe of one point-model setting: train a descriptor or a localizer with params overrides (usually a
short schedule) and score it on the first test rows, without touching the pipeline's outputs.

    python benchmarks/probe_point_models.py localizer --set '{train: {epochs: 1}, model: {head: regression}}'
    python benchmarks/probe_point_models.py descriptor --set '{train: {epochs: 1}, model: {decoder: {sigma: 0.1}}}'

The descriptor is scored by what its texts name (object category and part, read back by the description parser);
the localizer by PCK@0.1 / PCK@0.2 / mPCK on the GT descriptions. Prints one line of figures with the training
time. The README's design measurements were made with this script.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
import yaml

os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from talking_points.pipeline.config import deep_merge  # noqa: E402
from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.metrics.pck import normalised_distance  # noqa: E402
from talking_points.pipeline.models.inference import describe, localize, prompt_format  # noqa: E402
from talking_points.pipeline.models.localizer import PointLocalizer  # noqa: E402
from talking_points.pipeline.synthesis.parse import normalise_name, parse_description  # noqa: E402
from talking_points.pipeline.training.data import PointSamples  # noqa: E402
from talking_points.pipeline.training.loop import fit  # noqa: E402
from talking_points.stages.train import KINDS  # noqa: E402  (section, config, model, collate, step per kind)


def pck_line(pred: np.ndarray, test) -> str:
    d = normalised_distance(pred, test[["x_norm", "y_norm"]].to_numpy())
    p1, p2 = (d < 0.1).mean() * 100, (d < 0.2).mean() * 100
    return f"PCK@0.1 {p1:.1f}  PCK@0.2 {p2:.1f}  mPCK {(p1 + p2) / 2:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=sorted(KINDS))
    ap.add_argument("--set", default="{}", help="YAML overrides of the params section (merged like a variant)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--train", default="data/split/train.parquet")
    ap.add_argument("--test", default="data/split/test.parquet")
    ap.add_argument("--n", type=int, default=400, help="first N test rows scored")
    ap.add_argument("--localizer", default=None, help="descriptor: also score its texts with this localizer")
    ap.add_argument("--save-texts", default=None, help="descriptor: write its texts (kp_id, text) to this parquet")
    ap.add_argument("--texts", default=None, help="localizer: also score these texts (a parquet with kp_id, text, "
                    "e.g. data/eval/texts/tp.parquet) on the same rows")
    ap.add_argument("--save-model", default=None, help="also save the trained model to this folder")
    a = ap.parse_args()
    section, cfg_cls, model_cls, collate_fn, step_fn = KINDS[a.kind]
    over = yaml.safe_load(a.set) or {}
    cfg = cfg_cls.model_validate(deep_merge(yaml.safe_load(open(a.params))[section], over))
    torch.manual_seed(cfg.train.seed)
    model, tok = model_cls.from_base(cfg.base, cfg.model)
    data = PointSamples(read_table(a.train, schema.SAMPLES), model.input_size, (cfg.text_column,))
    if not cfg.model.train_vision:
        data.cache_vision(model)
    t = time.perf_counter()
    result = fit(model, step_fn, data, collate_fn(prompt_format(model, tok), cfg), cfg.train,
                 tempfile.mkdtemp(prefix="probe-"))
    seconds = time.perf_counter() - t
    if a.save_model:
        model.save_pretrained(a.save_model, tok)
    test = read_table(a.test, schema.SAMPLES).iloc[: a.n].reset_index(drop=True)
    held = PointSamples(test, model.input_size)
    images = np.stack([held[i]["image"].numpy() for i in range(len(held))])
    if a.kind == "descriptor":
        texts = describe(model, tok, images, test[["x_norm", "y_norm"]].to_numpy(np.float32), cfg.generation)
        if a.save_texts:
            import pandas as pd

            pd.DataFrame({"kp_id": test["kp_id"], "text": texts}).to_parquet(a.save_texts)
        facts = [parse_description(x, category=c, part=p) for x, c, p in zip(texts, test["category"], test["part"])]
        cat = np.mean([f.category == normalise_name(c) for f, c in zip(facts, test["category"])]) * 100
        part = np.mean([f.part == normalise_name(p) for f, p in zip(facts, test["part"])]) * 100
        colour = np.mean([c in f.colours for f, c in zip(facts, test["patch_colour"])]) * 100
        figures = f"category named {cat:.1f}%  part named {part:.1f}%  patch colour named {colour:.1f}%"
        if a.localizer:
            loc, loc_tok = PointLocalizer.from_pretrained(a.localizer)
            loc_held = PointSamples(test, loc.input_size)
            loc_images = np.stack([loc_held[i]["image"].numpy() for i in range(len(test))])
            figures += "  " + pck_line(localize(loc, loc_tok, loc_images, texts, 64), test)
    else:
        figures = "GT texts: " + pck_line(localize(model, tok, images, test["description"].tolist(), 64), test)
        if a.texts:
            import pandas as pd

            texts = pd.read_parquet(a.texts).set_index("kp_id").loc[test["kp_id"], "text"].tolist()
            figures += f"; {a.texts}: " + pck_line(localize(model, tok, images, texts, 64), test)
    print(f"{a.kind} {json.dumps(over)}: {result.steps} steps in {seconds:.0f} s; first {len(test)} test rows: "
          f"{figures}", flush=True)


if __name__ == "__main__":
    main()

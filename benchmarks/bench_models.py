"""Throughput of the point models on a trained (or freshly built) model folder: training samples/s of each
model (the configured one, and with the vision tower trained end to end and no feature cache, for the
frozen-tower speed-up), descriptor generation batched vs one-by-one, localizer inference. Prints figures and
ratios. With `--feature-pass data/split/train.parquet` it also times what every training stage with a frozen
tower does before its first step: decode the distinct images and run the tower over them once
(`PointSamples.cache_vision`), per model kind, and the feature cache's cold (compute and write) and warm (read)
times (`models.feature_store`).

    python benchmarks/bench_models.py --base models/base --samples data/split/test.parquet [--n 64]
    python benchmarks/bench_models.py --feature-pass data/split/train.parquet
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TP_NO_PROGRESS", "1")

from talking_points.pipeline.config import load_section  # noqa: E402
from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.models.descriptor import PointDescriptor  # noqa: E402
from talking_points.pipeline.models.inference import (  # noqa: E402
    DecodingConfig,
    FeatureStore,
    describe,
    localize,
    prompt_format,
)
from talking_points.pipeline.models.localizer import PointLocalizer  # noqa: E402
from talking_points.pipeline.precision import Precision, autocast  # noqa: E402
from talking_points.pipeline.training.config import TrainDescriptorConfig, TrainLocalizerConfig  # noqa: E402
from talking_points.pipeline.training.data import PointSamples  # noqa: E402
from talking_points.pipeline.training.steps import (  # noqa: E402
    descriptor_collate,
    descriptor_step,
    localizer_collate,
    localizer_step,
)


def train_rate(model, collate, step, data, batch: int, steps: int, precision: Precision = Precision.fp32) -> float:
    """Training samples/s of `step` on one fixed batch (forward under `precision`, as training.loop.fit runs it)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    b = collate([data[i] for i in range(batch)])
    for _ in range(2):  # warm-up
        with autocast(precision, "cpu"):
            loss, _ = step(model, b)
        loss.backward()
        opt.zero_grad()
    t = time.perf_counter()
    for _ in range(steps):
        with autocast(precision, "cpu"):
            loss, _ = step(model, b)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return batch * steps / (time.perf_counter() - t)


def feature_pass(base: str, params: str, table: str) -> None:
    """Seconds to decode `table`'s distinct images and to run each configured model's frozen tower over them."""
    rows = read_table(table, schema.SAMPLES)
    for kind, cls, section, cfg_cls in (("descriptor", PointDescriptor, "train_descriptor", TrainDescriptorConfig),
                                        ("localizer", PointLocalizer, "train_localizer", TrainLocalizerConfig)):
        model, _ = cls.from_base(base, load_section(section, params, cfg_cls).model)
        model.eval()
        t = time.perf_counter()
        data = PointSamples(rows, model.input_size)
        decode = time.perf_counter() - t
        t = time.perf_counter()
        data.cache_vision(model)
        tower = time.perf_counter() - t
        print(f"  {kind:10s} {data.n_images} images: decode {decode:5.1f} s, tower pass {tower:5.1f} s "
              f"({data.n_images / tower:.0f} images/s), threads {torch.get_num_threads()}")
        with tempfile.TemporaryDirectory() as folder:  # the feature cache: the first stage writes, the next read
            store = FeatureStore(Path(folder))
            t = time.perf_counter()
            data.cache_vision(model, store)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            data.cache_vision(model, store)
            warm = time.perf_counter() - t
            size = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**30
        print(f"  {kind:10s} feature cache: cold {cold:5.1f} s (tower + write {size:.2f} GiB), warm {warm:5.1f} s "
              f"(read): {tower / warm:.0f}x faster than the tower pass")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--samples", default="data/split/test.parquet")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--n", type=int, default=64, help="rows for the inference figures")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--feature-pass", default=None, help="time only the frozen-feature pass over this table's images")
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.feature_pass:
        feature_pass(a.base, a.params, a.feature_pass)
        return
    rows = read_table(a.samples, schema.SAMPLES).iloc[: a.n]
    dcfg = load_section("train_descriptor", a.params, TrainDescriptorConfig)
    lcfg = load_section("train_localizer", a.params, TrainLocalizerConfig)
    desc, tok = PointDescriptor.from_base(a.base, dcfg.model)
    loc, _ = PointLocalizer.from_base(a.base, lcfg.model)
    data = PointSamples(rows, desc.input_size)
    images = np.stack([data[i]["image"].numpy() for i in range(len(data))])
    points = rows[["x_norm", "y_norm"]].to_numpy(np.float32)
    print(f"threads {torch.get_num_threads()}, base {a.base}, image {desc.input_size}")
    for kind, model, cfg, collate, step in (
            ("descriptor", desc, dcfg, descriptor_collate, descriptor_step),
            ("localizer", loc, lcfg, localizer_collate, localizer_step)):
        cached = PointSamples(rows, model.input_size)
        if not cfg.model.train_vision:  # as the training stage does: the frozen tower's features once per image
            cached.cache_vision(model)
        r = train_rate(model, collate(prompt_format(model, tok)), step, cached, a.batch, a.steps,
                       cfg.train.mixed_precision)
        print(f"  train {kind:10s} (configured)    {r:8.2f} samples/s (batch {a.batch}, train_vision "
              f"{cfg.model.train_vision}{', cached features' if not cfg.model.train_vision else ''}, "
              f"{cfg.train.mixed_precision.value})")
        if cfg.train.mixed_precision is not Precision.fp32:
            r32 = train_rate(model, collate(prompt_format(model, tok)), step, cached, a.batch, a.steps)
            print(f"  train {kind:10s} (fp32)          {r32:8.2f} samples/s   {cfg.train.mixed_precision.value} is "
                  f"{r / r32:.2f}x")
        if not cfg.model.train_vision:
            torch.manual_seed(0)
            trained, _ = type(model).from_base(a.base, cfg.model.model_copy(update={"train_vision": True}))
            r2 = train_rate(trained, collate(prompt_format(trained, tok)), step, data, a.batch, a.steps)
            print(f"  train {kind:10s} (vision trained) {r2:8.2f} samples/s   frozen+cached is {r / r2:.2f}x")
    gen = DecodingConfig(max_new_tokens=a.max_new_tokens, batch_size=a.n)
    t = time.perf_counter()
    describe(desc, tok, images, points, gen)
    batched = a.n / (time.perf_counter() - t)
    k = min(a.n, 16)
    t = time.perf_counter()
    for i in range(k):
        describe(desc, tok, images[i : i + 1], points[i : i + 1], gen.model_copy(update={"batch_size": 1}))
    single = k / (time.perf_counter() - t)
    print(f"  describe, batched ({a.n})          {batched:8.2f} samples/s")
    print(f"  describe, one by one             {single:8.2f} samples/s   ratio {batched / single:.1f}x")
    t = time.perf_counter()
    localize(loc, tok, images, rows["description"].tolist(), batch_size=a.n)
    print(f"  localize, batched ({a.n})          {a.n / (time.perf_counter() - t):8.2f} samples/s")


if __name__ == "__main__":
    main()

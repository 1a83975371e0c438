"""How far the default pipeline's training steps are from this CPU's arithmetic limit.

For each model that trains in the default `dvc repro` (the vision tower of `pretrain-vision`, the descriptor, the
localizer) it counts the floating-point operations of one training step (forward and backward,
`torch.utils.flop_counter.FlopCounterMode`: matrix products and convolutions), times the step on a fixed batch as
the training loop runs it (float32, cached tower features where the stage caches them), and prints the achieved
GFLOP/s beside what this machine's float32 matrix product reaches (`torch.mm` of 2048 x 2048, and of the tiny
LM's shapes: 2,048 tokens by its 192-wide hidden state). The ratio says how much a faster kernel could still
give: a step at 60% of the matrix product's rate cannot run more than 1.7x faster by better code alone; it
needs fewer operations (fewer steps, smaller models) or other hardware.

    python benchmarks/bench_compute_bound.py --base models/base --vision models/vision \
        --samples data/split/train.parquet [--batch 16 --steps 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

os.environ.setdefault("TP_NO_PROGRESS", "1")

from talking_points.pipeline.config import load_section  # noqa: E402
from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.tables import read_table  # noqa: E402
from talking_points.pipeline.models.descriptor import PointDescriptor  # noqa: E402
from talking_points.pipeline.models.inference import prompt_format  # noqa: E402
from talking_points.pipeline.models.localizer import PointLocalizer  # noqa: E402
from talking_points.pipeline.models.tower import load_tower  # noqa: E402
from talking_points.pipeline.training.config import TrainDescriptorConfig, TrainLocalizerConfig  # noqa: E402
from talking_points.pipeline.training.data import PointSamples  # noqa: E402
from talking_points.pipeline.training.steps import (  # noqa: E402
    descriptor_collate,
    descriptor_step,
    localizer_collate,
    localizer_step,
)
from talking_points.pipeline.vision_pretraining.config import DenseLossConfig  # noqa: E402
from talking_points.pipeline.vision_pretraining.labels import IGNORE, MAPS  # noqa: E402
from talking_points.pipeline.vision_pretraining.train import DenseTower, dense_step  # noqa: E402


def matmul_gflops(m: int = 2048, k: int = 2048, n: int = 2048, reps: int = 10) -> float:
    """float32 GFLOP/s of an (m x k) @ (k x n) matrix product on this machine's threads (best of `reps`)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def training_step(model: torch.nn.Module, step, batch: dict) -> Callable[[], None]:
    """One training step as the loop runs it, `step(model, batch)` + backward + AdamW, as a call (the model in
    training mode)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()

    def once() -> None:
        loss, _ = step(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return once


def step_figures(model: torch.nn.Module, step, batch: dict, steps: int) -> tuple[float, float]:
    """(GFLOP of one training step, median seconds of it) for `training_step`."""
    once = training_step(model, step, batch)
    counter = FlopCounterMode(display=False)
    with counter:
        once()
    once()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return counter.get_total_flops() / 1e9, statistics.median(times)


#: the matrix products among torch's operators (what `FlopCounterMode` counts, with the convolutions)
PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def op_shares(model: torch.nn.Module, step, batch: dict, steps: int = 3, top: int = 8) -> list[tuple[str, float]]:
    """The operators taking the most CPU time (own time, `torch.profiler`) in `steps` training steps, as shares,
    with the matrix products summed first as "matrix products"."""
    from torch.profiler import ProfilerActivity, profile

    once = training_step(model, step, batch)
    once()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            once()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    products = sum(e.self_cpu_time_total for e in events if e.key in PRODUCTS) / total
    others = sorted(((e.key, e.self_cpu_time_total / total) for e in events if e.key not in PRODUCTS),
                    key=lambda kv: -kv[1])
    return [("matrix products", products), *others[:top]]


def tower_batch(spec, batch: int, seed: int = 0) -> dict:
    """A batch of random images and label maps at the tower's input size (the step's work does not depend on the
    values)."""
    g = torch.Generator().manual_seed(seed)
    h, w = spec.image_size
    classes = {"category": len(spec.categories) + 1, "part": len(spec.parts) + 1,
               "colour": max(len(spec.colours), 1), "texture": max(len(spec.textures), 1), "luma": 256}
    out = {"image": torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8, generator=g)}
    for k in MAPS:
        out[k] = torch.randint(0, classes[k], (batch, h, w), dtype=torch.uint8, generator=g)
    out["texture"][:, : h // 2] = IGNORE
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--vision", default="models/vision")
    ap.add_argument("--samples", default="data/split/train.parquet")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--compile", action="store_true", help="also time each model under torch.compile (inductor)")
    ap.add_argument("--ops", action="store_true", help="also print where the LM models' steps spend their time")
    a = ap.parse_args()
    torch.manual_seed(0)
    peak = matmul_gflops()
    print(f"threads {torch.get_num_threads()}; float32 torch.mm 2048 x 2048: {peak:.1f} GFLOP/s")
    for m, k, n in ((2048, 192, 192), (2048, 192, 512), (2048, 512, 192)):  # the tiny LM's products, a batch
        print(f"  ({m} x {k}) @ ({k} x {n}), the tiny LM's: {matmul_gflops(m, k, n):.1f} GFLOP/s")
    print(f"{'model':12s} {'GFLOP/step':>11s} {'s/step':>8s} {'GFLOP/s':>8s} {'of mm':>6s}")

    def show(name: str, gflop: float, sec: float) -> None:
        print(f"{name:12s} {gflop:11.1f} {sec:8.3f} {gflop / sec:8.1f} {gflop / sec / peak:6.0%}", flush=True)

    tower, spec = load_tower(a.vision, [4, 8, 24])
    show("tower", *step_figures(DenseTower(tower, spec), dense_step(DenseLossConfig(), hflip=True),
                                tower_batch(spec, a.batch), a.steps))

    rows = read_table(a.samples, schema.SAMPLES).sample(n=a.batch, random_state=0)
    for name, cls, section, cfg_cls, collate, step in (
            ("descriptor", PointDescriptor, "train_descriptor", TrainDescriptorConfig, descriptor_collate,
             descriptor_step),
            ("localizer", PointLocalizer, "train_localizer", TrainLocalizerConfig, localizer_collate,
             localizer_step)):
        cfg = load_section(section, a.params, cfg_cls)
        model, tok = cls.from_base(a.base, cfg.model)
        data = PointSamples(rows, model.input_size)
        if not cfg.model.train_vision:  # as the training stage: the frozen tower's features once per image
            data.cache_vision(model)
        batch = collate(prompt_format(model, tok))([data[i] for i in range(len(data))])
        tokens = int(batch["attention_mask"].sum())
        gflop, sec = step_figures(model, step, batch, a.steps)
        show(name, gflop, sec)
        print(f"{'':12s} ({tokens} tokens in the batch, {np.prod(batch['input_ids'].shape)} with the padding)")
        if a.ops:
            print(f"{'':12s} " + ", ".join(f"{k} {v:.0%}" for k, v in op_shares(model, step, batch)))
        if a.compile:  # the same step with the model's forward compiled (fused elementwise work, same products)
            model.forward = torch.compile(model.forward)
            show(f"{name}+comp", gflop, step_figures(model, step, batch, a.steps)[1])


if __name__ == "__main__":
    main()

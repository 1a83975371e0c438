"""benchmarks/bench_compute_bound.py: the operations it counts for a training step, and the batch it builds for
the tower."""

from __future__ import annotations

import pytest
import torch
from benchmark_modules import load_benchmark
from torch import nn

bench = load_benchmark("bench_compute_bound")


def test_a_step_counts_the_forward_and_the_backward_products():
    torch.manual_seed(0)
    model = nn.Linear(64, 32, bias=False)
    batch = {"x": torch.randn(8, 64)}
    before = model.weight.detach().clone()

    def step(m, b):
        return m(b["x"]).pow(2).mean(), {}

    gflop, seconds = bench.step_figures(model, step, batch, steps=2)
    # forward x @ W.T: 2 * 8 * 64 * 32; backward: the weight's gradient, the same product (x needs none)
    assert gflop == pytest.approx(2 * (2 * 8 * 64 * 32) / 1e9, rel=0, abs=1e-15)
    assert seconds > 0
    assert not torch.equal(model.weight, before)  # the steps it timed trained the model


def test_the_tower_batch_has_every_label_map_at_the_input_size():
    class Spec:
        image_size = (12, 16)
        categories, parts, colours, textures = ["dog", "cat"], ["head", "leg", "tail"], [], []

    batch = bench.tower_batch(Spec(), batch=3)
    assert batch["image"].shape == (3, 3, 12, 16) and batch["image"].dtype == torch.uint8
    for name in bench.MAPS:
        assert batch[name].shape == (3, 12, 16)
    assert int(batch["category"].max()) <= 2 and int(batch["part"].max()) <= 3
    assert (batch["texture"][:, :6] == bench.IGNORE).all()


def test_the_operator_shares_put_the_products_first_and_sum_to_at_most_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 8))
    batch = {"x": torch.randn(32, 64)}
    shares = bench.op_shares(model, lambda m, b: (m(b["x"]).pow(2).mean(), {}), batch, steps=2, top=5)
    assert shares[0][0] == "matrix products" and shares[0][1] > 0.0
    assert len(shares) == 6 and all(v >= 0 for _, v in shares) and sum(v for _, v in shares) <= 1.0 + 1e-9
    assert not any(k in bench.PRODUCTS for k, _ in shares[1:])

"""Mixed precision (talking_points.pipeline.precision): the training loop runs its forward passes under bf16
autocast with float32 weights, and learns; fp32 leaves autocast off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from talking_points.pipeline import precision as precision_module
from talking_points.pipeline.precision import Precision, autocast, check_supported, resolve
from talking_points.pipeline.training.config import TrainConfig
from talking_points.pipeline.training.loop import fit


class _Points(torch.utils.data.Dataset):
    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=g)
        self.y = self.x @ torch.linspace(-1, 1, 8) + 0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def _collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_fit_runs_the_forward_pass_in_the_configured_precision_and_learns(tmp_path, precision, dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    seen = []

    def step(m, batch):
        out = m(batch["x"]).squeeze(-1)
        seen.append(out.dtype)
        return ((out.float() - batch["y"]) ** 2).mean(), {}

    cfg = TrainConfig(max_steps=60, batch_size=16, lr=1e-2, log_every=1, checkpoint_every=1000,
                      mixed_precision=precision)
    result = fit(model, step, _Points(), _collate, cfg, tmp_path / "ckpt")
    assert set(seen) == {dtype}  # the products ran in bf16 (or not)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the loop
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    assert result.precision == precision  # what train.json records


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_where_the_device_runs_it_natively(monkeypatch, native):
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: native)
    want = Precision.bf16 if native else Precision.fp32
    assert resolve(Precision.auto, "cpu") is want
    assert resolve(Precision.bf16, "cpu") is Precision.bf16 and resolve(Precision.fp32, "cpu") is Precision.fp32
    with autocast(Precision.auto, "cpu"):
        assert nn.Linear(4, 4)(torch.randn(2, 4)).dtype == (torch.bfloat16 if native else torch.float32)
    check_supported(Precision.auto, "cpu")  # auto never picks an emulated precision: nothing to warn about
    assert TrainConfig().mixed_precision is Precision.auto



def test_autocast_and_the_support_check():
    lin = nn.Linear(4, 4)
    with autocast(Precision.bf16, "cpu"):
        assert lin(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast(Precision.fp32, "cpu"):
        assert lin(torch.randn(2, 4)).dtype == torch.float32
    check_supported(Precision.fp32, "cpu")  # never warns
    with pytest.raises(ValueError, match="unknown precision"):
        autocast("fp8", "cpu")
    with pytest.raises(ValueError):
        TrainConfig(mixed_precision="fp16")  # not offered: it would need a gradient scaler

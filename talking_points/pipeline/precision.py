"""Mixed precision: the one switch every training loop and every batched inference reads.

`bf16` runs the forward passes under `torch.autocast` with bfloat16 (matrix products and convolutions in
bfloat16, reductions, softmax and losses in float32; weights, gradients and optimiser state stay float32),
the usual setting on GPUs and, on a CPU with AVX512-BF16 (the 2-core machine this project is developed on),
about 1.7x faster per training step than float32 (benchmarks/bench_models.py). `fp32` turns it off. On a
CPU without bfloat16 instructions autocast still runs, but emulated and far slower than float32 (an AMD EPYC
Zen 3 without AVX512: pretrain-vision's steps about 10x slower than fp32's), and `check_supported` warns.
`auto` (the default) resolves to bf16 where the device runs bfloat16 natively (a GPU with bfloat16; a CPU with
AVX512-BF16 or AMX, as oneDNN reports it) and to fp32 elsewhere (`resolve`): most laptop CPUs (Apple silicon,
AMD before Zen 4, Intel consumer chips) take fp32. The two give slightly different weights, so a run records
the precision it resolved to (train.json `mixed_precision`).
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from enum import Enum

__all__ = ["Precision", "autocast", "check_supported", "native_bf16", "resolve"]


class Precision(str, Enum):
    fp32 = "fp32"  # everything in float32
    bf16 = "bf16"  # forward passes under torch.autocast(bfloat16); weights and optimiser state in float32
    auto = "auto"  # bf16 where the device runs bfloat16 natively, fp32 elsewhere (`resolve`)


def _device_type(device) -> str:
    import torch  # here, not at import: the configs that hold a Precision must not import torch

    return torch.device(device).type


def native_bf16(device) -> bool:
    """Whether `device` (a torch.device or its name) runs bfloat16 natively: a GPU with bfloat16 support, a CPU
    with AVX512-BF16 / AMX (oneDNN's check)."""
    import torch

    kind = _device_type(device)
    if kind == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    elif kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve(precision: Precision, device) -> Precision:
    """`auto` as bf16 or fp32 on `device` (`native_bf16`); bf16 and fp32 as they are."""
    if precision is Precision.auto:
        return Precision.bf16 if native_bf16(device) else Precision.fp32
    elif precision in (Precision.bf16, Precision.fp32):
        return precision
    else:
        raise ValueError(f"unknown precision {precision!r}")


def check_supported(precision: Precision, device) -> None:
    """Warn when `precision` is slow (or emulated) on `device` (a torch.device or its name)."""
    kind = _device_type(device)
    if precision in (Precision.fp32, Precision.auto):
        return
    elif precision is Precision.bf16:
        if kind not in ("cuda", "cpu") or native_bf16(device):
            return
        if kind == "cuda":
            warnings.warn("mixed_precision bf16: this GPU has no bfloat16 support; set mixed_precision: fp32",
                          stacklevel=2)
        else:
            warnings.warn("mixed_precision bf16: this CPU has no bfloat16 instructions (AVX512), so bfloat16 is "
                          "emulated and slower than float32; set mixed_precision: auto (or fp32) in params.yaml",
                          stacklevel=2)
    else:
        raise ValueError(f"unknown precision {precision!r}")


def autocast(precision: Precision, device) -> AbstractContextManager:
    """The context the forward passes run in: torch.autocast for `bf16`, nothing for `fp32` (`auto`: as it
    resolves on `device`)."""
    import torch

    precision = resolve(precision, device)
    if precision is Precision.fp32:
        return nullcontext()
    elif precision is Precision.bf16:
        return torch.autocast(_device_type(device), dtype=torch.bfloat16)
    else:
        raise ValueError(f"unknown precision {precision!r}")

"""benchmarks/gpu_check.py on the CPU: its tiny run prints and writes every figure, the 7B model it builds on
a GPU has LLaVA-1.5-7B's shapes and the requested LoRA rank (checked on the meta device, nothing allocated), a
batch that runs out of memory is split into micro-batches, and failures exit non-zero with a clear message.
No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
FIGURES = {"descriptor_train", "localizer_train", "describe", "localize", "grpo_step"}


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TP_NO_PROGRESS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_the_tiny_run_prints_and_writes_every_figure(tmp_path):
    # the GPU run's dtype and autocast on the tiny shapes, from another folder than the repository
    out = tmp_path / "figures.json"
    cmd = [sys.executable, str(SCRIPT), "--tiny", "--threads", "1", "--warmup", "1", "--steps", "1",
           "--lora-r", "16", "--dtype", "bfloat16", "--precision", "bf16", "--json", str(out)]
    run = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("gpu_check: OK, 5 figures")
    data = json.loads(out.read_text())
    assert data["failures"] == [] and set(data["figures"]) == FIGURES
    for key, fig in data["figures"].items():
        assert math.isfinite(fig["value"]) and fig["value"] > 0, (key, fig)
        printed = [line for line in lines if line.strip().startswith(fig["label"] + " ")]
        assert len(printed) == 1, (key, lines)
        assert f"{fig['value']:.3f} {fig['unit']}" in printed[0]
        assert (f"paper ≈ {fig['paper']:.2f}" if fig["paper"] else "paper: no figure") in printed[0]
    figs = data["figures"]
    assert figs["descriptor_train"]["paper"] == pytest.approx(4.3, abs=0.05)
    assert figs["localizer_train"]["paper"] == pytest.approx(1.1, abs=0.05)
    assert figs["describe"]["paper"] == figs["localize"]["paper"] == 0.35
    assert figs["descriptor_train"]["unit"] == "samples/s" and figs["grpo_step"]["unit"] == "s/step"
    # the rank asked for is the one the adapters have (read off their weights)
    assert data["info"]["descriptor_lora_r"] == data["info"]["localizer_lora_r"] == 16
    assert figs["descriptor_train"]["lora_r"] == figs["localizer_train"]["lora_r"] == 16
    assert figs["descriptor_train"]["batch"] == figs["localizer_train"]["batch"] == 8
    assert figs["describe"]["new_tokens"] == 96  # every description generated to full length
    assert (figs["grpo_step"]["group_size"], figs["grpo_step"]["batch"]) == (3, 10)
    assert data["info"]["dtype"] == "bfloat16" and data["info"]["precision"] == "bf16"


def test_the_7b_model_has_llava_15_7b_shapes_and_the_requested_lora_rank(gpu_check):
    summary = gpu_check.meta_summary(gpu_check.LLAVA_7B, lora_r=512)
    assert summary["llava_params"] == pytest.approx(7.063e9, rel=1e-3)  # llava-1.5-7b-hf: 7,063,427,072
    assert summary["lm"] == {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                             "intermediate_size": 11008}
    assert summary["vision"] == {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                                 "intermediate_size": 4096, "image_size": 336, "patch_size": 14}
    assert summary["image_tokens"] == 576  # (336 / 14)^2
    assert summary["tokenizer"] == summary["lm_vocab"] == 32002 + 5  # LLaVA-1.5's tokens + the point tokens
    assert summary["descriptor_lora_r"] == 512 and summary["q_proj_lora_A"] == [512, 4096]
    assert summary["descriptor_trainable"] > 1.2e9  # r-512 adapters on every projection of 32 blocks
    assert summary["devices"] == ["meta"]  # built where the default device says: on a GPU, all on the GPU


def test_a_batch_that_runs_out_of_memory_is_split_into_micro_batches(gpu_check):
    def trial(fits_from: int, tried: list[int]):
        def run(accum: int) -> None:
            tried.append(accum)
            if accum < fits_from:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return run

    tried, released = [], []
    assert gpu_check.with_accumulation(8, trial(4, tried), lambda: released.append(True)) == 4
    assert tried == [1, 2, 4] and len(released) == 2
    tried = []
    assert gpu_check.with_accumulation(10, trial(3, tried), lambda: None) == 5  # GRPO: divisors of the batch
    assert tried == [1, 2, 5]
    with pytest.raises(torch.cuda.OutOfMemoryError):  # even one sample at a time does not fit
        gpu_check.with_accumulation(2, trial(3, []), lambda: None)

    def broken(accum: int) -> None:
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):  # other errors are not retried
        gpu_check.with_accumulation(8, broken, lambda: pytest.fail("released after a non-memory error"))


def test_a_failing_phase_is_reported_and_exits_non_zero(gpu_check, monkeypatch, capsys, tmp_path):
    def broken(size: int = 0):
        raise RuntimeError("no tokenizer today")

    monkeypatch.setattr(gpu_check, "build_tokenizer", broken)
    out = tmp_path / "figures.json"
    assert gpu_check.main(["--tiny", "--device", "cpu", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "FAILED tokenizer: RuntimeError: no tokenizer today" in printed
    assert printed.splitlines()[-1].startswith("gpu_check: FAILED")
    failures = json.loads(out.read_text())["failures"]
    assert failures == [{"phase": "tokenizer", "error": "RuntimeError: no tokenizer today"}]


def test_without_pydantic_it_says_how_to_install_the_carried_wheels(tmp_path):
    code = ("import runpy, sys; sys.modules['pydantic'] = None; sys.argv = ['gpu_check.py', '--tiny']; "
            f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot import the project" in run.stderr and "pydantic" in run.stderr
    assert "--no-index" in run.stderr and "--find-links .whl" in run.stderr

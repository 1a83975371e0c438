"""The SFT training loop under a 2-process DDP launch (gloo on CPU) equals the single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "ddp_fit.py"


def launch(args: list[str], out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run(args + [str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    single.mkdir()
    ddp.mkdir()
    launch([sys.executable], single)
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this python")
    launch([str(torchrun), "--standalone", "--nproc_per_node", "2"], ddp)
    one = json.loads((single / "rank0.json").read_text())
    r0, r1 = (json.loads((ddp / f"rank{i}.json").read_text()) for i in (0, 1))
    assert one["world"] == 1 and r0["world"] == r1["world"] == 2 and r0["backend"] == "gloo"
    assert r0["w"] == r1["w"] and r0["b"] == r1["b"]  # replicas stay identical
    assert r0["w"] == pytest.approx(one["w"], abs=1e-5) and r0["b"] == pytest.approx(one["b"], abs=1e-5)

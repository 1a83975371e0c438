"""The SFT training loop: under a 2-process DDP launch (gloo on CPU) it equals the single-process run; its optimiser
groups (lr_multipliers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from talking_points.pipeline.training.config import TrainConfig
from talking_points.pipeline.training.loop import param_groups

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


def test_model_card_has_hub_metadata_and_every_section():
    import pandas as pd
    import yaml

    from talking_points.pipeline.training.model_card import CardFacts, data_facts, model_card

    samples = pd.DataFrame({"image_id": ["a", "a", "b"], "source": ["partworld"] * 3,
                            "category": ["dog", "dog", "car"]})
    facts = CardFacts(kind="localizer", name="localizer", base_source="models/base",
                      config={"lm_adaptation": "lora", "train_vision": False, "proj_dim": 256},
                      training={"steps": 12, "resumed_from": 0, "trainable_params": 820_000,
                                "last": {"loss": 0.25, "step": 12}},
                      train_params={"epochs": 4, "lr": 5e-4}, data=data_facts(samples, "data/split/train.parquet"))
    card = model_card(facts)
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "talking-points" and "point-localizer" in meta["tags"]
    for section in ("# localizer", "## Model description", "## Training data", "## Training procedure",
                    "## Evaluation", "## How to use", "## Limitations"):
        assert section in body, section
    assert "PointLocalizer.from_pretrained" in body and "820,000" in body and "loss 0.25" in body
    assert "- rows: 3" in body and "- images: 2" in body and "`partworld`" in body and "the 2 categories" in body
    with pytest.raises(ValueError, match="unknown model kind"):
        model_card(CardFacts(kind="segmenter", name="x", base_source="b", config={}, training={}, train_params={}))


def test_weight_interpolation_runs_from_the_start_to_the_fine_tuned_weights():
    import torch

    from talking_points.pipeline.training.weight_interpolation import interpolate_weights

    start = {"w": torch.zeros(2, 2), "b": torch.ones(3), "steps": torch.tensor(1), "odd": torch.zeros(4)}
    tuned = {"w": torch.full((2, 2), 2.0), "b": torch.full((3,), 3.0), "steps": torch.tensor(9),
             "odd": torch.ones(5), "new": torch.full((2,), 7.0)}
    half = interpolate_weights(start, tuned, 0.5)
    assert torch.equal(half["w"], torch.ones(2, 2)) and torch.equal(half["b"], torch.full((3,), 2.0))
    assert half["steps"].item() == 9 and torch.equal(half["odd"], tuned["odd"]) and torch.equal(half["new"], tuned["new"])
    assert all(torch.equal(interpolate_weights(start, tuned, 1.0)[k], v) for k, v in tuned.items())
    assert torch.equal(interpolate_weights(start, tuned, 0.0)["w"], start["w"])
    import pytest

    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate_weights(start, tuned, 1.5)


def test_param_groups_give_each_prefix_its_multiple_of_the_learning_rate():
    model = torch.nn.ModuleDict({"gate_a": torch.nn.Linear(2, 2), "gate_b": torch.nn.Linear(2, 1),
                                 "body": torch.nn.Linear(2, 2), "frozen": torch.nn.Linear(2, 2)})
    model["frozen"].requires_grad_(False)
    groups = param_groups(model, 1e-3, {"gate_": 20.0})
    assert [g["lr"] for g in groups] == [1e-3, 2e-2]
    assert [sum(p.numel() for p in g["params"]) for g in groups] == [6, 9]
    assert len(param_groups(model, 1e-3, {})) == 1
    with pytest.raises(ValueError, match=r"lr_multipliers \['frozen'\]: no trainable parameter"):
        param_groups(model, 1e-3, {"frozen": 2.0})
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(torch.nn.Linear(2, 2).requires_grad_(False), 1e-3, {})
    with pytest.raises(ValueError, match="multiplier above 0"):
        TrainConfig(lr_multipliers={"gate_": 0.0})

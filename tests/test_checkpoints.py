"""Step checkpoints (training.checkpoints) through the SFT loop (training.loop.fit) on a tiny linear model:
resume ends at the same weights, a changed run starts over, the curves survive a resume, bad state is dropped."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn

from talking_points.pipeline.fingerprints import digest, path_digest
from talking_points.pipeline.training.checkpoints import StepCheckpoint
from talking_points.pipeline.training.config import TrainConfig
from talking_points.pipeline.training.loop import fit


class Rows(torch.utils.data.Dataset):
    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class Interrupted(Exception):
    pass


def step_dying_at(n: int | None):
    calls = []

    def step(model: nn.Module, batch: dict):
        calls.append(1)
        if n is not None and len(calls) > n:
            raise Interrupted
        loss = ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
        return loss, {}

    return step


CFG = TrainConfig(max_steps=8, batch_size=4, lr=0.02, warmup_ratio=0.0, log_every=1, checkpoint_every=3)


def train(ckpt, live=None, cfg=CFG, die_at=None, fingerprint="data-v1"):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    result = fit(model, step_dying_at(die_at), Rows(), collate, cfg, ckpt, live, fingerprint=fingerprint)
    return result, model.weight.detach().clone()


def test_a_killed_run_resumes_to_the_same_weights_and_full_curves(tmp_path):
    with pytest.raises(Interrupted):
        train(tmp_path / "ckpt", tmp_path / "live", die_at=7)  # checkpoint at step 6, dies in step 8
    state = json.loads((tmp_path / "ckpt/state.json").read_text())
    assert state["step"] == 6 and [h["step"] for h in state["history"]] == [1, 2, 3, 4, 5, 6]
    # DVC removes a stage's outputs before it reruns it: the dvclive folder is gone, or a kill left it broken
    (tmp_path / "live" / "metrics.json").write_text("")
    resumed, w = train(tmp_path / "ckpt", tmp_path / "live")
    straight, ref = train(tmp_path / "fresh", tmp_path / "live_fresh")
    assert (resumed.resumed_from, straight.resumed_from) == (6, 0)
    assert torch.allclose(w, ref, atol=1e-6)
    assert [h["step"] for h in resumed.history] == list(range(1, 9))
    assert all(a == pytest.approx(b) for a, b in zip(resumed.history, straight.history))
    # the dvclive curve holds every step, as the uninterrupted run's does
    curve = (tmp_path / "live/plots/metrics/loss.tsv").read_text().splitlines()
    assert curve == (tmp_path / "live_fresh/plots/metrics/loss.tsv").read_text().splitlines()
    assert len(curve) == 1 + 8


@pytest.mark.parametrize("change", [{"cfg": CFG.model_copy(update={"lr": 0.01})}, {"fingerprint": "data-v2"}],
                         ids=["lr", "data"])
def test_a_changed_run_discards_the_checkpoint(tmp_path, caplog, change):
    with pytest.raises(Interrupted):
        train(tmp_path / "ckpt", die_at=7)
    with caplog.at_level(logging.WARNING):
        again, w = train(tmp_path / "ckpt", **change)
    assert again.resumed_from == 0 and "of another run" in caplog.text
    straight, ref = train(tmp_path / "fresh", **change)
    assert torch.allclose(w, ref, atol=1e-6)


@pytest.mark.parametrize("state", ["", "{not json", json.dumps({"step": 3}),
                                   json.dumps({"step": 3, "dir": "step-0000003", "fingerprint": "x"})])
def test_unreadable_or_foreign_state_is_dropped(tmp_path, caplog, state):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt/state.json").write_text(state)
    with caplog.at_level(logging.WARNING):
        assert StepCheckpoint(tmp_path / "ckpt", "y").restore() is None
    assert not (tmp_path / "ckpt").exists() and caplog.text


def test_a_state_naming_a_missing_folder_is_dropped(tmp_path):
    ckpt = StepCheckpoint(tmp_path / "ckpt", "fp")
    ckpt.save(2, lambda folder: (folder / "w.bin").write_bytes(b"1"), [{"step": 1, "loss": 1.0}])
    assert ckpt.restore().step == 2
    (tmp_path / "ckpt/step-0000002/w.bin").unlink()
    (tmp_path / "ckpt/step-0000002").rmdir()
    assert ckpt.restore() is None


def test_digests_follow_content(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/a.txt").write_text("one")
    before = path_digest(tmp_path / "d")
    assert before == path_digest(tmp_path / "d") and digest(CFG, tmp_path / "d") == digest(CFG, tmp_path / "d")
    (tmp_path / "d/a.txt").write_text("two")
    assert path_digest(tmp_path / "d") != before
    assert digest(CFG) != digest(CFG.model_copy(update={"lr": 1.0}))
    assert path_digest(tmp_path / "missing") == ""


def test_a_checkpoint_beside_a_finished_output_is_swept(tmp_path):
    """DVC deletes a stage's outputs before running it and restores them from its run cache without running
    it: a checkpoint next to an existing output is a leftover (a killed run, then a restore)."""
    from talking_points.pipeline.training.checkpoints import checkpoint_for, sweep_finished

    models = tmp_path / "models"
    (models / "localizer").mkdir(parents=True)
    (models / "localizer/train.json").write_text("{}")
    for name in ("localizer", "descriptor"):  # descriptor: killed, its output not there -> kept for resuming
        StepCheckpoint(checkpoint_for(models / name), "fp").save(3, lambda f: (f / "w").write_bytes(b"1"), [])
    assert sweep_finished(models) == [models / "localizer.ckpt"]
    assert not (models / "localizer.ckpt").exists() and (models / "descriptor.ckpt/state.json").exists()
    assert sweep_finished(tmp_path / "absent") == []


@pytest.mark.parametrize("deterministic", [True, False])
def test_fit_runs_under_the_configs_kernels_and_restores_the_process_settings(tmp_path, deterministic):
    seen = []

    def step(model, batch):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()))
        return nn.functional.mse_loss(model(batch["x"]).squeeze(-1), batch["y"]), {}

    threads = torch.get_num_threads()
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-2, threads=1, deterministic=deterministic)
    assert not torch.are_deterministic_algorithms_enabled()
    fit(nn.Linear(4, 1), step, Rows(), collate, cfg, tmp_path / "ckpt")
    assert seen and all(s == (deterministic, 1) for s in seen), seen
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads

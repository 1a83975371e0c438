"""The GRPO loop (talking_points.pipeline.rl.loop) and its stages (ap10k-data, grpo, evaluate-grpo) on a tiny base:
trainable sets, the frozen reference, learning from a reward, resume, export, and the stages end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.models.adaptation import LoraSettings
from talking_points.pipeline.models.build import TinyBaseConfig, TinyLMConfig, build_tiny_base
from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
from talking_points.pipeline.models.inference import prompt_format
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer
from talking_points.pipeline.models.point_decoder import PointDecoderConfig
from talking_points.pipeline.rl import loop
from talking_points.pipeline.rl.config import GRPOSection, GRPOTrainConfig
from talking_points.pipeline.training.data import PointSamples
from talking_points.pipeline.training.steps import descriptor_collate, descriptor_step

# two descriptions that differ in one word: the SFT descriptor learns to say either, half the time each
A = "the point is on the head of the dog"
B = "the point is on the tail of the dog"
N_PROMPTS = 4


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    cfg = TinyBaseConfig(image_size=(64, 64), vision_init="scratch", depth_multiplier=0.35, vocab_size=300,
                         lm=TinyLMConfig(hidden_size=64, layers=2, heads=2, intermediate_size=128))
    vlm, tok = build_tiny_base([A, B] * 20, cfg, seed=0)
    out = tmp_path_factory.mktemp("base")
    vlm.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def descriptor_cfg(mode: str = "full") -> DescriptorConfig:
    return DescriptorConfig(decoder=PointDecoderConfig(dim=32, layers=2, heads=2), max_description_tokens=48,
                            lm_adaptation=mode, lora=LoraSettings(r=4, alpha=8, dropout=0.0))


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> pd.DataFrame:
    """N_PROMPTS keypoints, one per image file (64 x 64 PNGs)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_PROMPTS):
        file = folder / f"{i}.png"
        cv2.imwrite(str(file), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        x, y = rng.uniform(0.1, 0.9, 2)
        rows.append({"file": str(file), "x_norm": float(x), "y_norm": float(y)})
    return pd.DataFrame(rows)


def _batch(data: PointSamples) -> tuple[torch.Tensor, torch.Tensor]:
    items = [data[i] for i in range(len(data))]
    return torch.stack([it["image"] for it in items]), torch.stack([it["point"] for it in items])


@pytest.fixture(scope="module")
def sft_dir(base_dir, prompts, tmp_path_factory) -> Path:
    """An SFT descriptor (LM fully fine-tuned, the tiny default) trained to say A or B about every prompt."""
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg("full"))
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    items = [{"image": images[i % N_PROMPTS], "point": points[i % N_PROMPTS],
              "description": A if i < N_PROMPTS else B} for i in range(2 * N_PROMPTS)]
    batch = descriptor_collate(prompt_format(model, tok))(items)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(40):
        loss, _ = descriptor_step(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("sft") / "descriptor"
    model.save_pretrained(out, tok)
    return out


def train_cfg(**kw) -> GRPOTrainConfig:
    base = dict(group_size=4, batch_size=N_PROMPTS, max_new_tokens=12, lr=3e-3, beta=0.04, log_every=1,
                checkpoint_every=100, trainable="lora", lora=LoraSettings(r=4, alpha=8, dropout=0.0,
                                                                          modules_to_save=[]))
    return GRPOTrainConfig(**{**base, **kw})


def varied_locate(rows: np.ndarray, texts: list[str]) -> np.ndarray:
    """A fake localizer whose point depends on the text, so that a group's rewards differ."""
    return np.array([[(len(t) % 7) / 7, (len(t.split()) % 5) / 5] for t in texts], np.float32)


def head_locate(points: np.ndarray):
    """A fake localizer that finds the keypoint only when the text says 'head'."""
    def locate(rows: np.ndarray, texts: list[str]) -> np.ndarray:
        found = ["head" in t.split() for t in texts]
        hits = [points[r] if ok else [0.0, 0.0] for r, ok in zip(rows, found, strict=True)]
        return np.array(hits, np.float32)

    return locate


def text_logprob(model: PointDescriptor, tok, images, points, text: str) -> torch.Tensor:
    """log π(text | image, point) per prompt, under the model as it is (adapters active)."""
    b = prompt_format(model, tok).descriptor_batch([text] * len(points))
    with torch.no_grad():
        return model.token_logprobs(images, points, b.input_ids, b.attention_mask, b.labels).sum(dim=1)


# --------------------------------------------------------------------------------------------- unit pieces


def test_valid_mask_and_completion_inputs():
    eos, pad = 2, 0
    tokens = torch.tensor([[5, eos, pad, pad], [5, 6, 7, 8], [eos, pad, pad, pad]])
    mask = loop._valid_mask(tokens, eos)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    ids, attention = loop.completion_inputs([9, 9, 9], tokens, mask)
    assert ids.tolist()[0] == [9, 9, 9, 5, eos, pad, pad]
    assert attention.tolist()[2] == [1, 1, 1, 1, 0, 0, 0]
    # steps walk through epochs of seeded permutations, every prompt once per epoch
    rows = [loop.step_rows(10, 3, seed=0, step=s) for s in range(6)]
    assert sorted(sum(rows[:3], [])) == sorted(set(sum(rows[:3], []))) and len(sum(rows[:3], [])) == 9
    assert rows[:3] != rows[3:] and loop.step_rows(10, 3, 0, 4) == rows[4]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        GRPOTrainConfig(batch_size=4, grad_accum=3)
    with pytest.raises(ValueError, match="directions.bovidae_to_canidae"):
        GRPOSection.model_validate({"directions": {"bovidae_to_canidae": {"group_size": 1}}})
    with pytest.raises(ValueError, match="grpo.directions"):
        GRPOSection.model_validate({"train": {"directions": ["bovidae_to_canidae"]}})
    with pytest.raises(ValueError, match="annotations and images"):
        GRPOSection.model_validate({"data": {"source": "coco"}})
    section = GRPOSection.model_validate({"directions": {"canidae_to_bovidae": {"lr": 1e-3}}})
    assert list(section.directions) == [Direction.canidae_to_bovidae]
    assert section.train_config(Direction.canidae_to_bovidae).lr == 1e-3
    with pytest.raises(ConfigError, match="has no 'bovidae_to_canidae'"):
        section.train_config(Direction.bovidae_to_canidae)


# ------------------------------------------------------------------------------------- trainable sets


def _expected(name: str, mode: str) -> bool:
    in_last_block = "vlm.lm." in name and ".layers.1." in name  # the tiny LM has 2 blocks; n_last_blocks = 1
    adapter = "lora_" in name
    if mode == "lora":
        return adapter
    if mode == "lora+last_blocks":
        return adapter or in_last_block
    if mode == "last_blocks":
        return in_last_block
    if mode == "full":
        return True
    raise ValueError(mode)


@pytest.mark.parametrize("mode", ["lora", "lora+last_blocks", "last_blocks", "full"])
def test_only_the_trainable_set_gets_gradients_and_changes(sft_dir, prompts, mode):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_pretrained(sft_dir)
    cfg = train_cfg(trainable=mode, n_last_blocks=1, lr=1e-2)
    policy = loop.prepare_policy(model, cfg)
    names = {n for n, _ in model.named_parameters()}
    assert set(policy.trainable) == {n for n in names if _expected(n, mode)}
    assert all(p.requires_grad == (n in policy.trainable) for n, p in model.named_parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    grads: dict[str, torch.Tensor | None] = {}

    class Recorder(torch.optim.AdamW):
        def step(self, closure=None):
            grads.update({n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()})
            return super().step(closure)

    opt = Recorder(list(policy.trainable.values()), lr=cfg.lr)
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    metrics = loop.grpo_step(policy, prompt_format(model, tok), tok, images, points, np.arange(N_PROMPTS),
                             varied_locate, cfg, opt)
    assert metrics["reward_group_std"] > 0
    frozen_names = names - set(policy.trainable)
    assert all(grads[n] is None for n in frozen_names)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters() if n in frozen_names)
    moved = [n for n, p in policy.trainable.items() if not torch.equal(before[n], p)]
    with_grad = [n for n in policy.trainable if grads[n] is not None and grads[n].abs().sum() > 0]
    assert with_grad and set(with_grad) <= set(moved)
    if "lora" in mode:  # B starts at zero: the first step moves every B (A gets its gradient from step 2 on)
        assert all(n in moved for n in policy.trainable if "lora_B" in n)
    if "last_blocks" in mode:
        assert any(".layers.1." in n and "lora_" not in n for n in moved)


# ------------------------------------------------------------------------------------------ reference


@pytest.mark.parametrize("mode", ["lora", "lora+last_blocks", "full"])
def test_reference_is_the_sft_descriptor_and_training_leaves_it_unchanged(sft_dir, prompts, mode):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_pretrained(sft_dir)
    sft, _ = PointDescriptor.from_pretrained(sft_dir)
    sft.eval()
    cfg = train_cfg(trainable=mode, n_last_blocks=1, lr=1e-2, temperature=1.0)
    policy = loop.prepare_policy(model, cfg)
    fmt = prompt_format(model, tok)
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    comp = loop.sample_completions(model, fmt, tok, images, points, cfg)
    args = (fmt.descriptor_prefix(), images, points, comp.tokens, comp.mask, cfg.temperature)
    ref0 = loop.reference_logprobs(policy, *args)
    with torch.no_grad():
        pol0 = loop.policy_logprobs(policy, *args)
    valid = comp.mask.bool()
    # before any step the policy is the SFT descriptor: KL exactly zero, reference = policy
    assert torch.allclose(pol0[valid], ref0[valid], atol=1e-6)
    # and the reference agrees with the SFT descriptor loaded on its own (its own log-prob API)
    ids, attention = loop.completion_inputs(fmt.descriptor_prefix(), comp.tokens, comp.mask)
    imgs, pts = images.repeat_interleave(cfg.group_size, 0), points.repeat_interleave(cfg.group_size, 0)
    labels = torch.where(attention.bool(), ids, torch.full_like(ids, -100))
    labels[:, : len(fmt.descriptor_prefix())] = -100
    own = sft.token_logprobs(imgs, pts, ids, attention, labels)[:, -comp.tokens.shape[1] :]
    assert torch.allclose(own[valid], ref0[valid], atol=1e-5)

    opt = torch.optim.AdamW(list(policy.trainable.values()), lr=cfg.lr)
    for step in range(3):
        torch.manual_seed(step)
        loop.grpo_step(policy, fmt, tok, images, points, np.arange(N_PROMPTS), varied_locate, cfg, opt)
    ref3 = loop.reference_logprobs(policy, *args)
    with torch.no_grad():
        pol3 = loop.policy_logprobs(policy, *args)
    assert torch.equal(ref3, ref0)
    assert (pol3[valid] - ref0[valid]).abs().max() > 1e-3  # the policy did move


def test_an_sft_lora_descriptor_is_merged_before_new_adapters(base_dir, prompts, tmp_path):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg("lora"))
    with torch.no_grad():  # an SFT adapter that is not zero
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "lora_sft", tok)
    sft, _ = PointDescriptor.from_pretrained(tmp_path / "lora_sft")
    policy_model, _ = PointDescriptor.from_pretrained(tmp_path / "lora_sft")
    policy = loop.prepare_policy(policy_model, train_cfg(trainable="lora"))
    sft.eval()
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    expected = text_logprob(sft, tok, images, points, A)
    assert torch.allclose(text_logprob(policy.model, tok, images, points, A), expected, atol=1e-4)
    assert all("lora_" in n for n in policy.trainable)


# -------------------------------------------------------------------------------------------- learning


def test_grpo_raises_the_probability_of_the_rewarded_description(sft_dir, prompts, tmp_path):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_pretrained(sft_dir)
    data = PointSamples(prompts, (64, 64), ())
    images, points = _batch(data)
    model.eval()
    def gap() -> torch.Tensor:
        a, b = (text_logprob(model, tok, images, points, text) for text in (A, B))
        return (a - b).mean()

    gap_before = gap()
    cfg = train_cfg(max_steps=8, lr=3e-3, beta=0.0)
    policy = loop.prepare_policy(model, cfg)
    result = loop.train_grpo(policy, tok, prompt_format(model, tok), data, head_locate(points.numpy()), cfg,
                             tmp_path / "ckpt", tmp_path / "live")
    gap_after = gap()
    assert result.steps == 8 and len(result.history) == 8
    assert gap_after > gap_before + 0.3, (float(gap_before), float(gap_after))
    # reward goes up on average, and the curves are logged
    first, last = result.history[:3], result.history[-3:]
    assert np.mean([h["reward_mean"] for h in last]) > np.mean([h["reward_mean"] for h in first])
    for metric in ("reward_mean", "reward_std", "kl", "length_tokens", "length_words"):
        tsv = tmp_path / "live" / "plots" / "metrics" / f"{metric}.tsv"
        assert tsv.exists() and len(pd.read_csv(tsv, sep="\t")) == 8


# ---------------------------------------------------------------------------------------------- resume


class Interrupted(RuntimeError):
    pass


def test_resume_after_an_interruption_ends_at_the_same_step_and_weights(sft_dir, prompts, tmp_path, caplog):
    data = PointSamples(prompts, (64, 64), ())
    cfg = train_cfg(max_steps=4, checkpoint_every=2, batch_size=2, group_size=2, max_new_tokens=8)

    def run(ckpt: Path, fail_at: int | None = None):
        torch.manual_seed(0)
        model, tok = PointDescriptor.from_pretrained(sft_dir)
        policy = loop.prepare_policy(model, cfg)
        calls = []

        def locate(rows, texts):
            calls.append(1)
            if fail_at is not None and len(calls) > fail_at:
                raise Interrupted
            return varied_locate(rows, texts)

        result = loop.train_grpo(policy, tok, prompt_format(model, tok), data, locate, cfg, ckpt)
        return result, {n: p.detach().clone() for n, p in policy.trainable.items()}

    with pytest.raises(Interrupted):
        run(tmp_path / "ckpt", fail_at=3)  # steps 0, 1, 2 done, checkpoint at 2, dies in step 3
    assert (tmp_path / "ckpt" / "state.json").exists()
    resumed, weights = run(tmp_path / "ckpt")
    assert (resumed.resumed_from, resumed.steps) == (2, 4)
    straight, reference = run(tmp_path / "fresh")
    assert (straight.resumed_from, straight.steps) == (0, 4)
    assert all(torch.allclose(weights[n], reference[n], atol=1e-6) for n in weights)
    # the resumed run's history (its curves) starts at step 1 like the straight run's
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history] == [1, 2, 3, 4]
    # a changed run (another lr) does not resume the old checkpoint: it is discarded with a warning
    assert (tmp_path / "ckpt" / "state.json").exists()
    model, tok = PointDescriptor.from_pretrained(sft_dir)
    other = cfg.model_copy(update={"lr": cfg.lr / 2})
    policy = loop.prepare_policy(model, other)
    with caplog.at_level(logging.WARNING):
        changed = loop.train_grpo(policy, tok, prompt_format(model, tok), data, varied_locate, other,
                                  tmp_path / "ckpt")
    assert (changed.resumed_from, changed.steps) == (0, 4)
    assert "of another run" in caplog.text


def test_micro_batches_give_the_same_gradient(sft_dir, prompts):
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    grads = []
    for accum in (1, N_PROMPTS):  # the whole batch at once vs one prompt per backward pass
        torch.manual_seed(0)
        model, tok = PointDescriptor.from_pretrained(sft_dir)
        cfg = train_cfg(grad_accum=accum, grad_clip=None, trainable="full")
        policy = loop.prepare_policy(model, cfg)
        seen: dict[str, torch.Tensor] = {}
        grads.append(seen)

        class Recorder(torch.optim.SGD):
            def __init__(self, named: dict[str, torch.nn.Parameter], into: dict[str, torch.Tensor]):
                super().__init__(list(named.values()), lr=0.0)
                self.named, self.into = named, into

            def step(self, closure=None):
                self.into.update({n: p.grad.clone() for n, p in self.named.items() if p.grad is not None})

        torch.manual_seed(1)
        fmt = prompt_format(model, tok)
        loop.grpo_step(policy, fmt, tok, images, points, np.arange(N_PROMPTS), varied_locate, cfg,
                       Recorder(policy.trainable, seen))
    assert set(grads[0]) == set(grads[1]) and grads[0]
    # exact up to float32 rounding: the point decoder pads each batch's gathered keys to the batch's longest
    # row, so a micro-batch of one sums its softmax over fewer (blocked) entries; parameters whose gradient
    # nearly cancels (the vision tower's early BatchNorm shifts, amplified by its small running variances) then
    # differ on the scale of the largest gradient (measured: 3e-4 of it), not their own. A wrong split (a
    # missing 1/n, a group seen twice) changes gradients by tens of percent.
    scale = max(float(g.abs().max()) for g in grads[0].values())
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=2e-3 * scale, rtol=1e-4) for n in grads[0])


# ---------------------------------------------------------------------------------------------- export


def test_exported_descriptor_loads_and_matches_the_policy(sft_dir, prompts, tmp_path):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_pretrained(sft_dir)
    cfg = train_cfg(trainable="lora+last_blocks", n_last_blocks=1, lr=1e-2)
    policy = loop.prepare_policy(model, cfg)
    images, points = _batch(PointSamples(prompts, (64, 64), ()))
    opt = torch.optim.AdamW(list(policy.trainable.values()), lr=cfg.lr)
    fmt = prompt_format(model, tok)
    for step in range(2):
        torch.manual_seed(step)
        loop.grpo_step(policy, fmt, tok, images, points, np.arange(N_PROMPTS), varied_locate, cfg, opt)
    trained = text_logprob(model, tok, images, points, A)
    loop.export_descriptor(policy).save_pretrained(tmp_path / "grpo", tok)
    loaded, _ = PointDescriptor.from_pretrained(tmp_path / "grpo")
    loaded.eval()
    assert loaded.cfg.lm_adaptation.value == "full"
    assert torch.allclose(text_logprob(loaded, tok, images, points, A), trained, atol=1e-4)
    sft, _ = PointDescriptor.from_pretrained(sft_dir)
    sft.eval()
    assert not torch.allclose(text_logprob(sft, tok, images, points, A), trained, atol=1e-3)


# ---------------------------------------------------------------------------------------------- stages


def test_stages_end_to_end_on_a_tiny_synthetic_ap10k(sft_dir, base_dir, tmp_path, monkeypatch):
    from talking_points.stages import ap10k_data, evaluate_grpo, grpo

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    loc, tok = PointLocalizer.from_base(base_dir, LocalizerConfig(proj_dim=16, head_dims=[32, 16],
                                                                  max_description_tokens=48))
    loc.save_pretrained(tmp_path / "models" / "localizer", tok)
    params = {"grpo": {
        "descriptor": str(sft_dir), "localizer": "models/localizer",
        "data": {"source": "synthetic", "synthetic": {"n_images": 6, "seed": 0, "width": 96, "height": 72}},
        "directions": {"bovidae_to_canidae": {}, "canidae_to_bovidae": {}},
        "train": {"group_size": 2, "batch_size": 2, "max_steps": 2, "max_new_tokens": 8, "lr": 1e-3,
                  "checkpoint_every": 1, "log_every": 1},
        "evaluate": {"generation": {"max_new_tokens": 8, "batch_size": 8}, "limit": 6, "chunk_size": 4,
                     "examples": 2},
    }}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    p = Path("params.yaml")
    assert load_section("grpo", p, GRPOSection).train.max_steps == 2
    d = Direction.bovidae_to_canidae
    ap10k_data.main(Path("data/ap10k"), p)
    report = yaml.safe_load(Path("data/ap10k/report.json").read_text())
    assert set(report["keypoints_per_family"]) == {"Bovidae", "Canidae"}
    train = pd.read_parquet(f"data/ap10k/{d.value}/train.parquet")
    test = pd.read_parquet(f"data/ap10k/{d.value}/test.parquet")
    assert not set(train["image_id"]) & set(test["image_id"])
    assert all(Path(f).exists() and "tmp" not in f for f in train["file"])  # paths point at the final folder
    assert set(train["category"]) <= {"antelope", "argali sheep", "bison", "buffalo", "cow", "sheep"}

    grpo.main(d, Path("data/ap10k"), None, None, p)
    out = Path("models") / f"grpo_{d.value}"
    info = yaml.safe_load((out / "train.json").read_text())
    assert info["steps"] == 2 and not Path(f"models/grpo_{d.value}.ckpt").exists()
    PointDescriptor.from_pretrained(out)  # loadable like any descriptor
    assert Path(f"reports/grpo/live_{d.value}/plots/metrics/reward_mean.tsv").exists()

    evaluate_grpo.main(d, Path("data/ap10k"), None, None, None, None, p)
    preds = pd.read_parquet(f"data/grpo_eval/{d.value}.parquet")
    assert preds.groupby("method").size().to_dict() == {"zero_shot": 6, "grpo": 6, "gt": 6}
    metrics = yaml.safe_load(Path(f"reports/grpo/{d.value}.json").read_text())
    assert set(metrics["methods"]) == {"zero_shot", "grpo", "gt"} and metrics["grpo_steps"] == 2
    md = Path(f"reports/sections/grpo_{d.value}.md").read_text()
    assert "| Method | PCK@0.1 | PCK@0.2 | mPCK |" in md and "Bovidae → Canidae" in md
    assert "After RL" in md and "Zero-shot" in md


def test_data_stage_names_a_missing_family(tmp_path, monkeypatch, capsys):
    import typer

    from talking_points.stages import ap10k_data as stage

    monkeypatch.chdir(tmp_path)
    params = {"grpo": {"data": {"synthetic": {"n_images": 2, "width": 64, "height": 64,
                                              "families": ["Bovidae"]}}}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(typer.Exit):
        stage.main(Path("data/ap10k"), Path("params.yaml"))
    assert not Path("data/ap10k").exists()  # nothing half-written
    err = " ".join(capsys.readouterr().err.split())
    assert "grpo.data gives no cross-family split" in err and "Canidae" in err


def test_evaluate_stage_gives_each_model_its_own_input_size(sft_dir, tmp_path, monkeypatch):
    """A descriptor and a localizer built on bases with different image sizes (64x64 vs 64x96) each get the
    images at their own size in `tp evaluate` (they used to share the descriptor's, which the localizer
    rejects)."""
    from talking_points.stages import ap10k_data
    from talking_points.stages import evaluate as eval_stage
    from talking_points.stages import evaluate_describe as describe_stage

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    cfg = TinyBaseConfig(image_size=(64, 96), vision_init="scratch", depth_multiplier=0.35, vocab_size=300,
                         lm=TinyLMConfig(hidden_size=64, layers=2, heads=2, intermediate_size=128))
    vlm, tok = build_tiny_base([A, B] * 20, cfg, seed=0)
    vlm.save_pretrained(tmp_path / "wide_base")
    tok.save_pretrained(tmp_path / "wide_base")
    loc, loc_tok = PointLocalizer.from_base(tmp_path / "wide_base", LocalizerConfig(
        proj_dim=16, head_dims=[32, 16], max_description_tokens=48))
    loc.save_pretrained(tmp_path / "models" / "wide_localizer", loc_tok)
    assert tuple(PointDescriptor.from_pretrained(sft_dir)[0].vlm.config.image_size) == (64, 64)

    params = {
        "grpo": {"descriptor": str(sft_dir), "localizer": "models/wide_localizer",
                 "data": {"source": "synthetic",
                          "synthetic": {"n_images": 6, "seed": 0, "width": 96, "height": 72}},
                 "directions": {"bovidae_to_canidae": {}}},
        "evaluate": {"limit": 5, "chunk_size": 4, "generation": {"max_new_tokens": 8, "batch_size": 8},
                     "describers": {"square": {"descriptor": str(sft_dir)}},
                     "rows": {"mixed": {"label": "descriptor 64x64 -> localizer 64x96", "texts": "generated",
                                        "describer": "square", "localizer": "models/wide_localizer"}},
                     "report": {"reference": "mixed", "figure_rows": ["mixed"], "breakdown_rows": ["mixed"]}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    ap10k_data.main(Path("data/ap10k"), Path("params.yaml"))  # a small samples table with real image files
    test = Path("data/ap10k/bovidae_to_canidae/test.parquet")
    n = min(5, len(pd.read_parquet(test)))
    describe_stage.main("square", test, Path("data/eval/texts/square.parquet"), Path("params.yaml"))
    eval_stage.main("mixed", test, Path("data/eval/texts"), Path("data/styles/test.parquet"),
                    Path("data/eval/mixed.parquet"), Path("params.yaml"))
    preds = pd.read_parquet("data/eval/mixed.parquet")
    assert len(preds) == n and preds["text"].str.len().gt(0).all()
    assert preds[["x_pred", "y_pred"]].apply(lambda c: c.between(0, 1)).all().all()


def test_images_by_size_decodes_once_per_size(prompts):
    from talking_points.pipeline.data.errors import BadInput
    from talking_points.pipeline.training.data import ImagesBySize

    images = ImagesBySize(prompts["file"].tolist())
    square, wide = images.at((64, 64)), images.at((32, 48))
    assert square.shape == (N_PROMPTS, 3, 64, 64) and wide.shape == (N_PROMPTS, 3, 32, 48)
    assert square.dtype == np.uint8 and images.at((64, 64)) is square  # decoded once
    with pytest.raises(BadInput, match="missing.png"):
        ImagesBySize(["missing.png"]).at((8, 8))

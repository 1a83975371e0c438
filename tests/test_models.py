"""The two point models on a tiny base built here: learning, parameter groups, masks, padding, artifacts."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_points.pipeline.models.adaptation import LmAdaptation, LoraSettings
from talking_points.pipeline.models.build import TinyBaseConfig, TinyLMConfig, build_tiny_base
from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
from talking_points.pipeline.models.inference import (
    DecodingConfig,
    FeatureStore,
    describe,
    distinct_images,
    localize,
    prompt_format,
)
from talking_points.pipeline.models.local_look import point_crop
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer
from talking_points.pipeline.models.point_decoder import AttentionMask, PointDecoderConfig, gaussian_key_mask
from talking_points.pipeline.models.prompts import IGNORE, seg_positions
from talking_points.pipeline.training.steps import (
    descriptor_collate,
    descriptor_step,
    heat_cross_entropy,
    localizer_collate,
    localizer_step,
)

TEXTS = [
    "The point is on the leftmost dog, near the bottom edge; on its head, in the upper right of the head; "
    "slightly left of the head's centre; in a small dark, dotted patch.",
    "The point is on the only car; on its front wheel; at the centre of the wheel; in a smooth black patch.",
    "The point is on the second cat from the right; on its tail; near the tip of the tail; in a bright patch.",
] * 30


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    cfg = TinyBaseConfig(image_size=(64, 64), vision_init="scratch", depth_multiplier=0.35, vocab_size=300,
                         lm=TinyLMConfig(hidden_size=64, layers=2, heads=2, intermediate_size=128))
    vlm, tok = build_tiny_base(TEXTS, cfg, seed=0)
    out = tmp_path_factory.mktemp("base")
    vlm.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def descriptor_cfg(**kw) -> DescriptorConfig:
    return DescriptorConfig(decoder=PointDecoderConfig(dim=32, layers=2, heads=2, **kw.pop("decoder", {})),
                            max_description_tokens=48, **kw)


def localizer_cfg(**kw) -> LocalizerConfig:
    return LocalizerConfig(proj_dim=16, head_dims=[32, 16], max_description_tokens=48,
                           lora=LoraSettings(r=4, alpha=8, dropout=0.0), **kw)


def batch(n: int = 4, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8)
    points = torch.rand(n, 2, generator=g) * 0.8 + 0.1
    return [{"index": i, "image": images[i], "point": points[i], "description": TEXTS[i]} for i in range(n)]


def groups_of(model, names: list[str]) -> dict[str, list[torch.nn.Parameter]]:
    out = {n: [] for n in names}
    for pname, p in model.named_parameters():
        if p.requires_grad:
            g = next((n for n in names if n in pname), None)
            assert g is not None, f"trainable parameter {pname} belongs to no expected group"
            out[g].append(p)
    return out


@pytest.mark.parametrize("kind", ["descriptor", "localizer"])
def test_every_trainable_group_changes_after_a_step(base_dir, kind):
    torch.manual_seed(0)
    if kind == "descriptor":
        model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="lora", train_vision=True,
                                                                        look_crop=5))
        names = ["decoder.", "kpt_proj.", "region_proj.", "look.", "lora_", "modules_to_save", "vlm.vision.",
                 "vlm.projector."]
        collate, step = descriptor_collate(prompt_format(model, tok)), descriptor_step
    else:
        model, tok = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="lora", train_vision=True))
        names = ["text2vision.", "modules_to_save", "lora_", "head.", "vlm.vision.", "vlm.projector."]
        collate, step = localizer_collate(prompt_format(model, tok)), localizer_step
    groups = groups_of(model, names)
    assert all(groups.values()), {k: len(v) for k, v in groups.items()}
    before = {k: [p.detach().clone() for p in ps] for k, ps in groups.items()}
    opt = torch.optim.AdamW([p for ps in groups.values() for p in ps], lr=1e-3, weight_decay=0.0)
    model.train()
    # two steps: LoRA's B starts at zero, so A only receives gradient from the second step on
    for _ in range(2):
        loss, _ = step(model, collate(batch()))
        loss.backward()
        opt.step()
        opt.zero_grad()
    for k, ps in groups.items():
        changed = sum(not torch.equal(a, p.detach()) for a, p in zip(before[k], ps))
        assert changed == len(ps), f"{kind}: {len(ps) - changed} of {len(ps)} parameters of group {k} did not change"
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad and "lora_" not in n]
    assert any("vlm.lm" in n for n in frozen), "LoRA should leave the LM's base weights frozen"


@pytest.mark.parametrize("kind", ["descriptor", "localizer"])
def test_loss_falls_on_a_fixed_batch(base_dir, kind):
    torch.manual_seed(0)
    if kind == "descriptor":
        model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
        collate, step = descriptor_collate(prompt_format(model, tok)), descriptor_step
    else:
        model, tok = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="lora"))
        collate, step = localizer_collate(prompt_format(model, tok)), localizer_step
    b = collate(batch(4, seed=1))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        loss, _ = step(model, b)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    # the descriptor memorises 4 texts; the localizer's MSE starts near 0.05 (sigmoid outputs near the centre)
    limit = 0.3 if kind == "descriptor" else 0.6
    assert losses[-1] < limit * losses[0], f"{kind} loss {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_gaussian_mask_shape_and_no_empty_rows():
    keys = [torch.tensor([[x, y] for y in (0.25, 0.75) for x in (0.25, 0.75)]),
            torch.tensor([[0.5, 0.5]])]
    pts = torch.tensor([[0.25, 0.25], [0.99, 0.01], [5.0, 5.0]])  # last one far outside the image
    mask = gaussian_key_mask(pts, keys, sigma=0.01, threshold=0.5)
    assert mask.shape == (3, 5) and mask.dtype == torch.bool
    assert mask.any(dim=1).all()  # never an empty row
    assert mask[0].tolist() == [True, False, False, False, True]  # only the key on the point + nearest coarse key
    radius = 0.1 * math.sqrt(2 * math.log(1 / 0.1))  # sigma 0.1, threshold 0.1: ~0.215
    wide = gaussian_key_mask(torch.tensor([[0.25, 0.25]]), keys, sigma=0.1, threshold=0.1)
    d = (keys[0] - torch.tensor([0.25, 0.25])).norm(dim=1)
    assert wide[0, :4].tolist() == (d <= radius).tolist()


def test_descriptor_has_no_nans_with_a_tiny_sigma_or_points_off_the_image(base_dir):
    model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(decoder={"sigma": 1e-4, "threshold": 0.99}))
    b = descriptor_collate(prompt_format(model, tok))(batch(3))
    b["point"] = torch.tensor([[0.5, 0.5], [-0.5, 1.5], [1.0, 0.0]])
    out = model(b["image"], b["point"], b["input_ids"], b["attention_mask"], b["labels"])
    assert torch.isfinite(out.loss) and torch.isfinite(out.logits).all()


def test_attention_mask_switch_changes_the_point_features(base_dir):
    torch.manual_seed(0)
    with_mask, _ = PointDescriptor.from_base(base_dir, descriptor_cfg())
    torch.manual_seed(0)
    without, _ = PointDescriptor.from_base(base_dir, descriptor_cfg(decoder={"attention_mask": "none"}))
    assert without.cfg.decoder.attention_mask is AttentionMask.none
    with_mask.eval(), without.eval()
    imgs = torch.stack([it["image"] for it in batch(2)])
    feats = with_mask.vlm.encode_image(with_mask.vlm.normalize(imgs))
    pts = torch.tensor([[0.2, 0.2], [0.8, 0.7]])
    with torch.no_grad():
        a = with_mask.decoder(feats.maps, pts)[0]
        b = without.decoder(feats.maps, pts)[0]
    assert not torch.allclose(a, b, atol=1e-5)


def test_word_dropout_replaces_description_inputs_only(base_dir):
    model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
    fmt = prompt_format(model, tok)
    items = batch(4)
    plain = descriptor_collate(fmt)(items)
    torch.manual_seed(0)
    dropped = descriptor_collate(fmt, word_dropout=0.5)(items)
    assert torch.equal(plain["labels"], dropped["labels"]) and torch.equal(plain["attention_mask"],
                                                                           dropped["attention_mask"])
    changed = plain["input_ids"] != dropped["input_ids"]
    described = plain["labels"] != IGNORE
    assert not (changed & ~described).any(), "a prompt or padding token was dropped"
    assert (dropped["input_ids"][changed] == tok.unk_token_id).all()
    rate = float(changed[described].float().mean())
    assert 0.35 < rate < 0.65, rate
    with pytest.raises(ValueError, match="word_dropout"):
        descriptor_collate(fmt, word_dropout=1.0)


def test_point_crop_reads_the_pixels_around_the_point():
    img = torch.arange(3 * 6 * 8, dtype=torch.float32).reshape(1, 3, 6, 8)
    col, row = 5, 2
    point = torch.tensor([[(col + 0.5) / 8, (row + 0.5) / 6]])  # pixel centres as the tables put them
    crop = point_crop(img / 255.0, point, 3)[0] * 255.0
    assert torch.allclose(crop, img[0, :, row - 1 : row + 2, col - 1 : col + 2], atol=1e-3)
    as_uint8 = point_crop(img.clamp(max=255).to(torch.uint8), point, 3)[0] * 255.0
    assert torch.allclose(as_uint8, img[0, :, row - 1 : row + 2, col - 1 : col + 2].clamp(max=255), atol=1e-3)
    corner = point_crop(img / 255.0, torch.tensor([[0.5 / 8, 0.5 / 6]]), 3)[0] * 255.0  # border pixels repeat
    assert torch.allclose(corner[:, 0, 0], img[0, :, 0, 0], atol=1e-3)
    assert torch.allclose(corner[:, 2, 2], img[0, :, 1, 1], atol=1e-3)


def test_look_crop_sees_a_change_at_the_point_only(base_dir):
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full", look_crop=3))
    model.eval()
    b = descriptor_collate(prompt_format(model, tok))(batch(1))
    vision = model.vision_features(b["image"])  # fixed tower features: only the look can see the edit
    col, row = (b["point"][0] * 64).long().tolist()
    near, far = b["image"].clone(), b["image"].clone()
    near[0, :, row, col] = 255 - near[0, :, row, col]
    far[0, :, (row + 32) % 64, (col + 32) % 64] = 0
    with torch.no_grad():
        ref, a, c = (model.embed_prompt(im, b["point"], b["input_ids"], vision) for im in (b["image"], near, far))
    assert not torch.allclose(ref, a)
    assert torch.equal(ref, c)
    with pytest.raises(ValueError, match="look_crop must be odd"):
        descriptor_cfg(look_crop=4)


@pytest.mark.parametrize("mode", ["lora", "full", "frozen"])
def test_save_load_round_trip_is_exact(base_dir, tmp_path, mode):
    torch.manual_seed(0)
    desc, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation=mode, look_crop=3))
    loc, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation=mode))
    for m in (desc, loc):  # move every trainable weight away from its initial value first
        with torch.no_grad():
            for p in m.parameters():
                if p.requires_grad:
                    p.add_(0.01 * torch.randn_like(p))
    desc.save_pretrained(tmp_path / "saved" / "d", tok)
    loc.save_pretrained(tmp_path / "saved" / "l", tok)
    # handed to a colleague: the folders alone, somewhere else (the base travels inside them)
    shutil.move(tmp_path / "saved", tmp_path / "elsewhere")
    desc2, tok2 = PointDescriptor.from_pretrained(tmp_path / "elsewhere" / "d")
    loc2, _ = PointLocalizer.from_pretrained(tmp_path / "elsewhere" / "l")
    assert Path(desc2.base_path) == tmp_path / "elsewhere" / "d" / "base"
    assert Path(loc2.base_path) == tmp_path / "elsewhere" / "l" / "base"
    b = descriptor_collate(prompt_format(desc, tok))(batch(2))
    lb = localizer_collate(prompt_format(loc, tok))(batch(2))
    for m in (desc, desc2, loc, loc2):
        m.eval()
    with torch.no_grad():
        assert torch.equal(desc(b["image"], b["point"], b["input_ids"], b["attention_mask"]).logits,
                           desc2(b["image"], b["point"], b["input_ids"], b["attention_mask"]).logits)
        assert torch.equal(loc(lb["image"], lb["input_ids"], lb["attention_mask"]),
                           loc2(lb["image"], lb["input_ids"], lb["attention_mask"]))
    assert tok2.convert_ids_to_tokens(desc2.vlm.config.seg_token_id) == "<SEG>"
    if mode == "lora":  # peft writes target_modules from a set: sorted, the bytes do not depend on the hash seed
        written = json.loads((tmp_path / "elsewhere" / "l" / "lm_adapter" / "adapter_config.json").read_text())
        assert written["target_modules"] == sorted(written["target_modules"]) and len(written["target_modules"]) > 1


def test_merged_adapters_predict_the_same_and_refuse_to_be_saved(base_dir, tmp_path):
    torch.manual_seed(0)
    loc, tok = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="lora"))
    with torch.no_grad():  # a trained adapter: B is zero at initialisation
        for n, p in loc.named_parameters():
            if "lora_" in n:
                p.add_(0.05 * torch.randn_like(p))
    lb = localizer_collate(prompt_format(loc, tok))(batch(3))
    loc.eval()
    with torch.no_grad():
        before = loc(lb["image"], lb["input_ids"], lb["attention_mask"])
        assert loc.merge_adapters() is loc and loc.adapters_merged
        after = loc(lb["image"], lb["input_ids"], lb["attention_mask"])
    assert not any("lora_" in n for n, _ in loc.named_parameters())
    assert torch.allclose(before, after, atol=1e-5)
    with pytest.raises(ValueError, match="merged into the LM for inference"):
        loc.save_pretrained(tmp_path / "l", tok)
    full, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="full"))
    assert not full.merge_adapters().adapters_merged  # nothing to fold


def test_a_model_folder_names_what_it_lacks(base_dir, tmp_path):
    desc, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
    desc.save_pretrained(tmp_path / "d", tok)
    meta = json.loads((tmp_path / "d" / "point_model.json").read_text())
    assert meta["base"] == "base" and meta["base_source"] == str(base_dir)
    shutil.rmtree(tmp_path / "d" / "lm")
    with pytest.raises(FileNotFoundError, match=r"the fine-tuned LM \(lm\) is missing"):
        PointDescriptor.from_pretrained(tmp_path / "d")
    desc.save_pretrained(tmp_path / "old", tok)  # a folder saved before the base travelled inside
    shutil.rmtree(tmp_path / "old" / "base")
    meta = json.loads((tmp_path / "old" / "point_model.json").read_text())
    (tmp_path / "old" / "point_model.json").write_text(json.dumps({**meta, "base": "../base"}))
    with pytest.raises(FileNotFoundError, match=r"its base '../base' is not there .*put the base folder at"):
        PointDescriptor.from_pretrained(tmp_path / "old")
    with pytest.raises(FileNotFoundError, match="no such descriptor folder"):
        PointDescriptor.from_pretrained(tmp_path / "nothing")


def test_seg_position_and_prediction_under_left_and_right_padding(base_dir):
    loc, tok = PointLocalizer.from_base(base_dir, localizer_cfg())
    loc.eval()
    fmt = prompt_format(loc, tok)
    texts = ["the head of the dog", TEXTS[0]]  # very different lengths, so one row is padded
    right, left = fmt.localizer_batch(texts, padding_side="right"), fmt.localizer_batch(texts, padding_side="left")
    seg = loc.vlm.config.seg_token_id
    for b in (right, left):
        pos = seg_positions(b.input_ids, seg)
        assert (b.input_ids[torch.arange(2), pos] == seg).all()
    assert (seg_positions(right.input_ids, seg) != seg_positions(left.input_ids, seg)).any()
    imgs = torch.stack([it["image"] for it in batch(2)])
    with torch.no_grad():
        a, c = loc(imgs, right.input_ids, right.attention_mask), loc(imgs, left.input_ids, left.attention_mask)
        single = loc(imgs[:1], *[t[:1, : int(right.attention_mask[0].sum())] for t in (right.input_ids,
                                                                                        right.attention_mask)])
    assert torch.allclose(a, c, atol=1e-5)
    assert torch.allclose(a[:1], single, atol=1e-5)


def test_batched_generation_matches_one_by_one(base_dir):
    torch.manual_seed(0)
    desc, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
    items = batch(3, seed=2)
    imgs = torch.stack([it["image"] for it in items]).numpy()
    pts = torch.stack([it["point"] for it in items]).numpy()
    gen = DecodingConfig(max_new_tokens=12, batch_size=3)
    batched = describe(desc, tok, imgs, pts, gen)
    single = [describe(desc, tok, imgs[i : i + 1], pts[i : i + 1], gen.model_copy(update={"batch_size": 1}))[0]
              for i in range(3)]
    assert batched == single and len(batched) == 3


def test_inference_api_shapes(base_dir):
    loc, tok = PointLocalizer.from_base(base_dir, localizer_cfg())
    items = batch(5)
    imgs = torch.stack([it["image"] for it in items]).numpy()
    pred = localize(loc, tok, imgs, [it["description"] for it in items], batch_size=2)
    assert pred.shape == (5, 2) and ((pred > 0) & (pred < 1)).all()


def test_invalid_configs_fail_with_the_field_named():
    with pytest.raises(ValueError, match="divisible"):
        TinyLMConfig(hidden_size=65, heads=2)
    with pytest.raises(ValueError, match="token_stride"):
        TinyBaseConfig(token_stride=4)
    with pytest.raises(ValueError):
        DescriptorConfig(lm_adaptation="sometimes")
    assert LmAdaptation("frozen") is LmAdaptation.frozen


def test_tower_labels_need_a_tower_with_dense_heads(base_dir):
    with pytest.raises(ValueError, match="tower_labels needs a base whose tower has dense heads"):
        PointDescriptor.from_base(base_dir, descriptor_cfg(tower_labels=True))
    with pytest.raises(ValueError, match="heatmap_dense needs a base whose tower has dense heads"):
        PointLocalizer.from_base(base_dir, localizer_cfg(head="heatmap", heatmap_dense=True))


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_fine_tuning_starts_from_the_trained_weights(base_dir, tmp_path, mode):
    torch.manual_seed(0)
    trained, tok = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation=mode))
    with torch.no_grad():  # a "trained" localizer: every trainable weight moved
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    trained.save_pretrained(tmp_path / "trained", tok)
    fresh, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation=mode))
    b = localizer_collate(prompt_format(trained, tok))(batch(2))
    for m in (trained, fresh):
        m.eval()
    with torch.no_grad():
        want = trained(b["image"], b["input_ids"], b["attention_mask"])
        assert not torch.allclose(fresh(b["image"], b["input_ids"], b["attention_mask"]), want)
        fresh.load_trained(tmp_path / "trained")
        assert torch.equal(fresh(b["image"], b["input_ids"], b["attention_mask"]), want)
    assert any(p.requires_grad for p in fresh.parameters())  # and it trains on from there
    other, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="frozen"))
    with pytest.raises(ValueError, match="fine-tuning needs the same"):
        other.load_trained(tmp_path / "trained")
    desc, _ = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation=mode))
    with pytest.raises(ValueError, match="not a 'descriptor'"):
        desc.load_trained(tmp_path / "trained")


def test_heat_cross_entropy_is_least_at_the_gaussian_around_the_point():
    from talking_points.pipeline.models.positional import grid_centres

    centres = grid_centres(12, 16, torch.device("cpu"))
    point = torch.tensor([[0.3, 0.6], [0.8, 0.2]])
    d2 = ((centres.unsqueeze(0) - point.unsqueeze(1)) ** 2).sum(-1)
    best = -d2 / (2 * 0.05**2)
    at_best = heat_cross_entropy(best, centres, point, 0.05)
    for other in (torch.zeros_like(best), best.flip(0), best * 3, best / 3):
        assert heat_cross_entropy(other, centres, point, 0.05) > at_best + 1e-3
    want = torch.softmax(best, -1)
    assert torch.isclose(at_best, -(want * torch.log_softmax(best, -1)).sum(-1).mean(), atol=1e-5)  # its entropy


def test_the_heatmap_loss_trains_the_heat_map_towards_the_point(base_dir):
    """heatmap_loss: the step adds the heat map's cross-entropy, which falls with training while the heat map
    gathers around the true points (its mass within 0.1 of the point grows)."""
    from talking_points.pipeline.models.positional import grid_centres
    from talking_points.pipeline.training.config import HeatmapLossConfig

    torch.manual_seed(0)
    model, tok = PointLocalizer.from_base(base_dir, localizer_cfg(head="heatmap", heatmap_stride=8))
    b = localizer_collate(prompt_format(model, tok))(batch(4, seed=1))
    hl = HeatmapLossConfig(weight=0.1, sigma=0.05)
    plain_loss, plain = localizer_step(model, b)
    loss, logs = localizer_step(model, b, hl)
    assert "heat_ce" not in plain and logs["heat_ce"] > 0
    assert torch.isclose(loss, plain_loss + 0.1 * logs["heat_ce"], rtol=1e-4)

    def mass_near_point() -> float:
        with torch.no_grad():
            heat = model.heat(b["image"], b["input_ids"], b["attention_mask"])
        near = (heat.centres.unsqueeze(0) - b["point"].unsqueeze(1)).norm(dim=-1) < 0.1
        return float((torch.softmax(heat.logits, -1) * near).sum(-1).mean())

    heat = model.heat(b["image"], b["input_ids"], b["attention_mask"])
    centres = heat.centres
    assert heat.labels is None  # no heatmap_gate
    assert centres.shape == (64, 2) and torch.equal(grid_centres(8, 8, torch.device("cpu")), centres)
    before, ces = mass_near_point(), []
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(30):
        loss, logs = localizer_step(model, b, hl)
        loss.backward()
        opt.step()
        opt.zero_grad()
        ces.append(logs["heat_ce"])
    model.eval()
    assert ces[-1] < 0.8 * ces[0], ces
    assert mass_near_point() > before + 0.1, (before, mass_near_point())
    regression, _ = PointLocalizer.from_base(base_dir, localizer_cfg(head="regression"))
    with pytest.raises(ValueError, match="'regression' head has no heat map"):
        regression.heat(b["image"], b["input_ids"], b["attention_mask"])


def test_inference_runs_the_tower_once_per_distinct_image_with_the_same_results(base_dir, monkeypatch):
    torch.manual_seed(0)
    desc, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
    loc, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="full"))
    g = torch.Generator().manual_seed(1)
    distinct = torch.randint(0, 256, (3, 3, 64, 64), generator=g, dtype=torch.uint8).numpy()
    images = distinct[[0, 0, 1, 2, 2, 2, 1]]  # rows share images, as keypoints of one image do
    points = (torch.rand(7, 2, generator=g) * 0.8 + 0.1).numpy()
    texts = [TEXTS[i % 3] for i in range(7)]
    assert distinct_images(images).tolist() == [0, 0, 2, 3, 3, 3, 2]
    towers = []
    for model in (desc, loc):
        original = model.vision_features
        monkeypatch.setattr(model, "vision_features", lambda x, f=original: towers.append(len(x)) or f(x))
    gen = DecodingConfig(max_new_tokens=8, batch_size=4)
    got_texts = describe(desc, tok, images, points, gen)
    got_points = localize(loc, tok, images, texts, batch_size=4)
    assert towers == [3, 3]  # the 3 distinct images of the 7 rows, once per model (batches of 4 rows after)
    monkeypatch.undo()
    one_by_one = [describe(desc, tok, images[i : i + 1], points[i : i + 1], gen)[0] for i in range(7)]
    assert got_texts == one_by_one
    each = np.concatenate([localize(loc, tok, images[i : i + 1], texts[i : i + 1]) for i in range(7)])
    assert np.allclose(got_points, each, atol=1e-5)


def test_inference_from_a_warm_feature_store_gives_the_same_results_without_the_tower(base_dir, tmp_path,
                                                                                    monkeypatch):
    torch.manual_seed(0)
    desc, tok = PointDescriptor.from_base(base_dir, descriptor_cfg(lm_adaptation="full"))
    loc, _ = PointLocalizer.from_base(base_dir, localizer_cfg(lm_adaptation="full"))
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (2, 3, 64, 64), generator=g, dtype=torch.uint8).numpy()[[0, 1, 1]]
    points = (torch.rand(3, 2, generator=g) * 0.8 + 0.1).numpy()
    store, gen = FeatureStore(tmp_path), DecodingConfig(max_new_tokens=8, batch_size=2)
    cold_texts = describe(desc, tok, images, points, gen, store=store)
    cold_points = localize(loc, tok, images, TEXTS[:3], batch_size=2, store=store)
    towers = []
    for model in (desc, loc):
        original = model.vision_features
        monkeypatch.setattr(model, "vision_features", lambda x, f=original: towers.append(len(x)) or f(x))
    assert describe(desc, tok, images, points, gen, store=store) == cold_texts
    assert np.array_equal(localize(loc, tok, images, TEXTS[:3], batch_size=2, store=store), cold_points)
    assert towers == []  # the descriptor's entry (with dense logits where it reads them) served both


def test_densest_readout_takes_one_mode_where_the_expectation_falls_between_two():
    from talking_points.pipeline.models.localizer import densest_soft_argmax, grid_shape, soft_argmax
    from talking_points.pipeline.models.positional import grid_centres

    centres = grid_centres(16, 16, torch.device("cpu"))
    assert grid_shape(centres) == (16, 16)
    logits = torch.full((1, 16, 16), -30.0)
    logits[0, 2:5, 2:5] = 0.0  # a blob of 9 cells at the top left
    logits[0, 11, 12] = 0.6  # one brighter cell at the bottom right, less mass than the blob
    logits = logits.flatten(1)
    blob, spot = centres.view(16, 16, 2)[2:5, 2:5].reshape(-1, 2).mean(0), centres.view(16, 16, 2)[11, 12]
    mean = soft_argmax(logits, centres)[0]
    assert (mean - blob).norm() > 0.1 and (mean - spot).norm() > 0.1  # between the two, on neither
    assert torch.allclose(densest_soft_argmax(logits, centres, 1, 3)[0], blob, atol=1e-4)  # the most mass
    assert torch.allclose(densest_soft_argmax(logits, centres, 0, 3)[0], spot, atol=1e-4)  # the highest cell
    wide = densest_soft_argmax(logits, centres, 0, 16)[0]  # a window over the whole map is the expectation
    assert torch.allclose(wide, mean, atol=1e-5)


def test_the_readout_is_saved_only_when_set_and_read_only_in_evaluation(base_dir):
    import json

    plain = localizer_cfg(head="heatmap", heatmap_stride=8)
    assert not {"heatmap_readout", "heatmap_window", "heatmap_mass_reach"} & set(json.loads(plain.model_dump_json()))
    densest = localizer_cfg(head="heatmap", heatmap_stride=8, heatmap_readout="densest", heatmap_window=2,
                            heatmap_mass_reach=0)
    saved = json.loads(densest.model_dump_json())  # what point_model.json holds
    assert {k: saved[k] for k in ("heatmap_readout", "heatmap_window", "heatmap_mass_reach")} == {
        "heatmap_readout": "densest", "heatmap_window": 2, "heatmap_mass_reach": 0}
    densest = LocalizerConfig.model_validate(saved)
    assert densest.heatmap_readout.value == "densest" and (densest.heatmap_window, densest.heatmap_mass_reach) == (2, 0)
    with pytest.raises(ValueError, match="heatmap_readout 'densest' reads a heat map; head is 'regression'"):
        localizer_cfg(head="regression", heatmap_readout="densest")
    torch.manual_seed(0)
    model, tok = PointLocalizer.from_base(base_dir, densest)
    b = localizer_collate(prompt_format(model, tok))(batch(4, seed=1))
    args = (b["image"], b["input_ids"], b["attention_mask"])
    with torch.no_grad():
        heat = model.heat(*args)
        model.train()
        trained = model(*args)
        model.eval()
        read = model(*args)
    from talking_points.pipeline.models.localizer import densest_soft_argmax, soft_argmax

    assert torch.allclose(trained, soft_argmax(heat.logits, heat.centres), atol=1e-6)
    assert torch.allclose(read, densest_soft_argmax(heat.logits, heat.centres, 0, 2), atol=1e-6)
    assert not torch.allclose(read, trained, atol=1e-3)  # the random map's expectation is not its peak's window

"""Dense pretraining of the vision tower (pretrain-vision) and what the point models do with it: label maps,
class weights, learning on generated scenes without reading a test image, the tower inside a base, the frozen
tower in training, the feature cache, the `object` attention mask and the heatmap localizer head."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from benchmark_modules import load_benchmark
from PIL import Image

from talking_points.pipeline.data import colours, masks
from talking_points.pipeline.data import partworld as pw
from talking_points.pipeline.data.ingest import ingest_source
from talking_points.pipeline.keypoints.mine import IngestedSource
from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.models.build import TinyBaseConfig, TinyLMConfig, TowerConfig, build_tiny_base
from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
from talking_points.pipeline.models.inference import prompt_format
from talking_points.pipeline.models.label_gate import TextStates, attention_pool, attention_weights, gate_map
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer, soft_argmax
from talking_points.pipeline.models.point_decoder import (
    PointDecoderConfig,
    PointQueryDecoder,
    class_map_at,
    instance_context,
    object_key_mask,
    object_mask_at,
    region_geometry,
)
from talking_points.pipeline.models.positional import grid_centres
from talking_points.pipeline.models.region_keys import RANK_CLASSES, RANK_LAYOUT, rank_class, rank_classes
from talking_points.pipeline.models.tower import load_tower, save_tower
from talking_points.pipeline.training.config import InitModelsConfig, TrainConfig, TrainLocalizerConfig
from talking_points.pipeline.training.data import PointSamples
from talking_points.pipeline.training.steps import (
    GATE_LABELS,
    RANK_COLUMNS,
    descriptor_collate,
    descriptor_step,
    gate_labels,
    localizer_collate,
    localizer_step,
    rank_label_loss,
)
from talking_points.pipeline.vision_pretraining import pretrain as pretrain_module
from talking_points.pipeline.vision_pretraining.config import DenseLossConfig, PretrainVisionConfig
from talking_points.pipeline.vision_pretraining.labels import IGNORE, LabelSet, colour_map, label_maps
from talking_points.pipeline.vision_pretraining.train import class_weights

SIZE = (48, 64)
TOWER = TowerConfig(image_size=SIZE, vision_init="scratch", depth_multiplier=0.35, neck_dim=32)


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> str:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return masks.encode(m)


def test_label_maps_paint_categories_parts_looks_and_ignore_unlabelled_pixels():
    h, w = 20, 30
    objects = pd.DataFrame({"object_id": ["i#o0", "i#o1"], "image_id": ["i", "i"], "category": ["dog", "car"],
                            "mask_rle": [_rect(h, w, 2, 10, 2, 12), _rect(h, w, 12, 18, 15, 28)]})
    parts = pd.DataFrame({"part_id": ["i#o0p0", "i#o1p0"], "object_id": ["i#o0", "i#o1"], "image_id": ["i", "i"],
                          "part": ["head", "wheels"], "texture": ["striped", None],
                          "mask_rle": [_rect(h, w, 2, 6, 2, 12), _rect(h, w, 12, 18, 15, 28)]})
    labels = LabelSet.from_tables(objects, parts)
    assert labels.categories == ("car", "dog") and labels.parts == ("head", "wheels")
    assert labels.textures == ("striped",)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, :] = colours.PALETTE["green"]
    rgb[2:6, 2:12] = colours.PALETTE["red"]
    maps = label_maps(rgb, objects, parts, labels)
    cat, part, tex = maps["category"], maps["part"], maps["texture"]
    assert cat[0, 0] == 0 and part[0, 0] == 0 and tex[0, 0] == IGNORE  # background
    assert cat[4, 5] == labels.category_index("dog") == 2 and part[4, 5] == labels.part_index("head") == 1
    assert tex[4, 5] == 0 and tex[15, 20] == IGNORE  # the head is striped; the wheels' texture is unknown
    assert cat[8, 5] == 2 and part[8, 5] == IGNORE  # dog pixel no part covers
    assert cat[15, 20] == 1 and part[15, 20] == 2
    assert colours.NAMES[maps["colour"][4, 5]] == "red" and colours.NAMES[maps["colour"][0, 0]] == "green"
    assert maps["luma"][4, 5] == round(0.299 * 200 + 0.587 * 30 + 0.114 * 35)
    assert labels.category_index("zebra") == IGNORE  # unseen in training: not scored
    small = label_maps(rgb, objects, parts, labels, size=(10, 15))
    assert small["category"].shape == (10, 15) and set(np.unique(small["category"])) <= {0, 1, 2}
    # the colour map names every pixel exactly as the patch statistics do
    noise = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    named = colour_map(noise)
    assert all(colours.NAMES[named[y, x]] == colours.name_of(noise[y, x]) for y in range(6) for x in range(7))


def test_class_weights_favour_rare_classes_and_keep_a_pixel_mean_of_one():
    maps = np.array([0] * 90 + [1] * 9 + [2] * 1 + [IGNORE] * 50, np.uint8)
    w = class_weights(maps, 4, balance=0.5)
    assert w[2] > w[1] > w[0]
    freq = np.array([0.9, 0.09, 0.01])
    assert abs(float((w[:3].numpy() * freq).sum()) - 1.0) < 1e-5
    assert w[3] == w[:3].max()  # absent class: the largest weight
    assert torch.allclose(class_weights(maps, 4, balance=0.0)[:3], torch.ones(3))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> IngestedSource:
    cfg = pw.PartWorldConfig(n_images=64, seed=3, width=SIZE[1], height=SIZE[0], max_instances=2,
                             categories=["dog", "car", "tree"])
    folder = tmp_path_factory.mktemp("pw")
    res = ingest_source("pw", cfg, image_dir=folder)
    return IngestedSource("pw", folder, res.images, res.objects, res.parts)


def _keypoints(src: IngestedSource, image_ids: list[str]) -> pd.DataFrame:
    """One point per part: the part mask's pixel nearest its median (inside the part), with that pixel's
    colour name and brightness and the part's texture (as the mined patch columns)."""
    rows = []
    cats = dict(zip(src.objects["object_id"], src.objects["category"]))
    images = src.images.set_index("image_id")
    for part in src.parts[src.parts["image_id"].isin(image_ids)].itertuples():
        w, h, file = images.loc[part.image_id, ["width", "height", "file"]]
        rgb = np.asarray(Image.open(file).convert("RGB"))
        ys, xs = np.nonzero(masks.decode(part.mask_rle, h, w))
        i = np.argmin((ys - np.median(ys)) ** 2 + (xs - np.median(xs)) ** 2)
        px = rgb[ys[i], xs[i]]
        rows.append({"image_id": part.image_id, "x_norm": (xs[i] + 0.5) / w, "y_norm": (ys[i] + 0.5) / h,
                     "category": cats[part.object_id], "part": part.part, "part_texture": part.texture,
                     "patch_colour": colours.name_of(px), "patch_brightness": float(px @ [0.299, 0.587, 0.114]) / 255})
    return pd.DataFrame(rows)


def test_label_maps_painted_by_worker_processes_are_the_same_arrays(scenes, tmp_path):
    from talking_points.pipeline.data.errors import BadInput
    from talking_points.pipeline.vision_pretraining.data import dense_images

    labels = LabelSet.from_tables(scenes.objects, scenes.parts)
    images = scenes.images.iloc[:20]
    here = dense_images(images, scenes.objects, scenes.parts, labels, SIZE)
    pooled = dense_images(images, scenes.objects, scenes.parts, labels, SIZE, workers=2)
    assert here.image_ids == pooled.image_ids and np.array_equal(here.images, pooled.images)
    assert all(np.array_equal(here.maps[k], pooled.maps[k]) for k in here.maps)
    broken = images.assign(width=images["width"] + 1)  # an images table that disagrees with its files
    with pytest.raises(BadInput, match="mask size disagrees with image"):  # raised in a worker, named here
        dense_images(broken, scenes.objects, scenes.parts, labels, SIZE, workers=2)


def test_pretrain_learns_and_never_reads_a_test_image(scenes, tmp_path, monkeypatch):
    ids = sorted(scenes.images["image_id"])
    train_ids, test_ids = ids[:48], ids[48:]
    seen: list[str] = []
    original = pretrain_module.dense_images

    def spy(images, *args, **kwargs):
        out = original(images, *args, **kwargs)
        seen.append(list(images["image_id"]))
        return out

    monkeypatch.setattr(pretrain_module, "dense_images", spy)
    cfg = PretrainVisionConfig(tower=TOWER, loss=DenseLossConfig(colour=0.25, luma=2.0, texture=0.25),
                               train=TrainConfig(epochs=60, batch_size=8, lr=1e-2, warmup_ratio=0.05, log_every=4,
                                                 checkpoint_every=1000), eval_batch_size=16)
    test_kp = _keypoints(scenes, test_ids)
    res = pretrain_module.pretrain_tower([scenes], pd.DataFrame({"image_id": train_ids}), test_kp, cfg,
                                         tmp_path / "ckpt")
    # the training set is the train split's images and nothing else; the test images are read once, to measure
    assert seen[0] == train_ids and sorted(res.train_image_ids) == train_ids
    assert not set(res.train_image_ids) & set(test_ids) and sorted(seen[1]) == test_ids
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.6 * losses[0], losses
    m = res.metrics
    assert m["keypoints"] == len(test_kp) > 20
    assert m["keypoint_category_acc"] > m["keypoint_category_majority"] + 0.15, m
    assert m["keypoint_part_acc"] > m["keypoint_part_majority"] + 0.15, m
    # the (optional) colour head learns: its pixel accuracy on the training batches rises (at 76 test keypoints
    # its keypoint accuracy is too noisy to compare with the majority colour)
    first, last = res.history[0]["colour_pixel_acc"], res.history[-1]["colour_pixel_acc"]
    assert last > first + 0.1 and "keypoint_colour_acc" in m, (first, last)
    brightness = test_kp["patch_brightness"]
    assert m["keypoint_luma_mae"] < (brightness - brightness.mean()).abs().mean(), m  # beats the mean
    assert m["category_pixel_acc"] > 0.8 and 0 < m["part_miou"] <= 1
    # the artifact round-trips exactly
    save_tower(tmp_path / "tower", res.tower, res.spec)
    again, spec = load_tower(tmp_path / "tower", [4, 8, 16])
    x = torch.randn(2, 3, *SIZE)
    again.eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(res.tower(x), again(x)))
    assert spec.model_dump(mode="json") == res.spec.model_dump(mode="json")


def test_pretraining_is_the_same_in_every_run(scenes, tmp_path):
    """The tower's random layers (pixel decoder, heads) are drawn from the train seed, not from whatever state
    torch's global generator is in: two runs give bitwise the same tower (an unseeded draw made two full runs
    of one commit differ in every model)."""
    ids = sorted(scenes.images["image_id"])
    cfg = PretrainVisionConfig(tower=TOWER, train=TrainConfig(epochs=1, batch_size=8, lr=3e-3,
                                                              checkpoint_every=1000))
    towers = []
    for run, noise in enumerate((1, 2)):
        torch.manual_seed(noise)  # another global state, as in another process
        res = pretrain_module.pretrain_tower([scenes], pd.DataFrame({"image_id": ids[:16]}),
                                             _keypoints(scenes, ids[48:]), cfg, tmp_path / f"ckpt{run}")
        towers.append(res.tower.state_dict())
    assert towers[0].keys() == towers[1].keys()
    assert all(torch.equal(towers[0][k], towers[1][k]) for k in towers[0])


TEXTS = ["The point is on the only dog; on its head; at the centre of the head; in a dark patch.",
         "The point is on the left car of the two; on its wheels; near the bottom; in a black patch."] * 20


@pytest.fixture(scope="module")
def tower_base(scenes, tmp_path_factory):
    """A base built on a (briefly) pretrained tower, the way init-models builds the default one."""
    ids = sorted(scenes.images["image_id"])
    cfg = PretrainVisionConfig(tower=TOWER, train=TrainConfig(epochs=2, batch_size=8, lr=3e-3,
                                                              checkpoint_every=1000))
    root = tmp_path_factory.mktemp("towerbase")
    res = pretrain_module.pretrain_tower([scenes], pd.DataFrame({"image_id": ids[:48]}),
                                         _keypoints(scenes, ids[48:]), cfg, root / "ckpt")
    save_tower(root / "vision", res.tower, res.spec)
    tiny = TinyBaseConfig(strides=[4, 8, 16], token_stride=16, vocab_size=300, pretrained_vision=str(root / "vision"),
                          lm=TinyLMConfig(hidden_size=64, layers=2, heads=2, intermediate_size=128))
    vlm, tok = build_tiny_base(TEXTS, tiny)
    vlm.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    samples = scenes.images.iloc[:8].assign(x_norm=0.5, y_norm=0.5, description=TEXTS[:8])
    return root / "base", res.tower, samples


def test_tiny_config_takes_the_tower_architecture_from_the_tower_only():
    with pytest.raises(ValueError, match="image_size"):
        TinyBaseConfig(pretrained_vision="models/vision", image_size=(96, 128))
    with pytest.raises(ValueError, match="divisible"):
        TinyBaseConfig(image_size=(100, 128), strides=[8, 16, 32])
    with pytest.raises(ValueError):
        TowerConfig(image_size=(0, -64))
    with pytest.raises(ValueError):
        TinyBaseConfig(image_size=(0, -64))
    with pytest.raises(ValueError):
        InitModelsConfig.model_validate({"kind": "llava", "path": "x", "image_size": [0, -64]})
    assert TinyBaseConfig().tower == TowerConfig()


def test_base_carries_the_pretrained_tower_exactly(tower_base):
    base, tower, _ = tower_base
    desc, _ = PointDescriptor.from_base(base, DescriptorConfig(decoder=PointDecoderConfig(dim=16, layers=1, heads=2)))
    assert desc.vlm.has_dense_heads
    ours, theirs = desc.vlm.vision.state_dict(), tower.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("kind", ["descriptor", "localizer", "localizer_dense"])
def test_frozen_tower_is_bitwise_unchanged_and_everything_trainable_moves(tower_base, kind):
    base, _, samples = tower_base
    torch.manual_seed(0)
    if kind == "descriptor":
        model, tok = PointDescriptor.from_base(base, DescriptorConfig(
            decoder=PointDecoderConfig(dim=16, layers=1, heads=2, sigma=0.05), lm_adaptation="full"))
        collate, step = descriptor_collate(prompt_format(model, tok)), descriptor_step
    else:
        model, tok = PointLocalizer.from_base(base, LocalizerConfig(
            proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="full",
            heatmap_dense=kind == "localizer_dense"))
        collate, step = localizer_collate(prompt_format(model, tok)), localizer_step
    assert not model.cfg.train_vision  # the default
    data = PointSamples(samples, model.input_size)
    data.cache_vision(model)
    vision_before = {k: v.clone() for k, v in model.vlm.vision.state_dict().items()}  # BatchNorm stats too
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("vlm.vision.") for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    model.train()
    assert not model.vlm.vision.training
    for _ in range(2):
        loss, _ = step(model, collate([data[i] for i in range(4)]))
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = model.vlm.vision.state_dict()
    assert all(torch.equal(vision_before[k], after[k]) for k in vision_before)
    named = dict(model.named_parameters())
    unchanged = [n for n, v in trainable.items() if torch.equal(v, named[n].detach())]
    assert not unchanged, unchanged


def test_cached_features_give_the_loss_of_running_the_tower(tower_base):
    base, _, samples = tower_base
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_base(base, DescriptorConfig(
        decoder=PointDecoderConfig(dim=16, layers=1, heads=2, attention_mask="object"), lm_adaptation="full",
        tower_labels=True))
    model.eval()
    plain, cached = PointSamples(samples, model.input_size), PointSamples(samples, model.input_size)
    cached.cache_vision(model, dtype=torch.float32)
    collate = descriptor_collate(prompt_format(model, tok))
    b_plain, b_cached = collate([plain[i] for i in range(4)]), collate([cached[i] for i in range(4)])
    assert {"vision_maps", "vision_category", "vision_part"} <= set(b_cached) and "vision_maps" not in b_plain
    with torch.no_grad():
        a, _ = descriptor_step(model, b_plain)
        b, _ = descriptor_step(model, b_cached)
    assert torch.allclose(a, b, atol=1e-5)


def test_tower_labels_token_reads_the_dense_heads_at_the_point_only(tower_base):
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = DescriptorConfig(decoder=PointDecoderConfig(dim=16, layers=1, heads=2), lm_adaptation="full")
    plain, _ = PointDescriptor.from_base(base, cfg)
    model, tok = PointDescriptor.from_base(base, cfg.model_copy(update={"tower_labels": True}))
    assert model.kpt_tokens == plain.kpt_tokens + 1 and model.needs_dense and not plain.needs_dense
    model.eval()
    b = descriptor_collate(prompt_format(model, tok))([PointSamples(samples, model.input_size)[i] for i in range(2)])
    vision = model.vision_features(b["image"])
    assert vision.part_logits is not None and vision.part_logits.shape[1] == len(model.vlm.config.dense_parts) + 1
    h, w = vision.part_logits.shape[-2:]
    near, far = (VisionFeatures(vision.maps, vision.category_logits, vision.part_logits.clone()) for _ in range(2))
    row, col = (b["point"][:, 1] * h).long(), (b["point"][:, 0] * w).long()  # the points' own cells
    near.part_logits[torch.arange(2), 1, row, col] += 20.0
    far.part_logits[torch.arange(2), 1, (row + h // 2) % h, (col + w // 2) % w] += 20.0
    with torch.no_grad():
        ref, a, c = (model.embed_prompt(None, b["point"], b["input_ids"], v) for v in (vision, near, far))
    assert not torch.allclose(ref, a)  # what the tower says at the point reaches the prompt
    assert torch.equal(ref, c)  # what it says elsewhere does not (through this token: the maps are unchanged)


def _descriptor_with_one_tower_token(tower_base, **token):
    """A descriptor with one tower token switched on (`token`), a batch of two rows and their features."""
    base, _, samples = tower_base
    torch.manual_seed(0)
    model, tok = PointDescriptor.from_base(base, DescriptorConfig(
        decoder=PointDecoderConfig(dim=16, layers=1, heads=2), lm_adaptation="full", **token))
    assert model.kpt_tokens == 2 and model.needs_dense
    model.eval()
    b = descriptor_collate(prompt_format(model, tok))([PointSamples(samples, model.input_size)[i] for i in range(2)])
    return model, b, model.vision_features(b["image"])


def test_tower_regions_token_sees_the_segmented_part_grow(tower_base):
    model, b, vision = _descriptor_with_one_tower_token(tower_base, tower_regions=True)
    cat, part = vision.category_logits.clone(), vision.part_logits.clone()
    cat[:, 1] = 50.0  # one object covers the image
    small, large = part.clone(), part.clone()
    h, w = part.shape[-2:]
    small[:, 1] = -50.0
    small[:, 1, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1] = 50.0  # part 1: a 2x2 block at the point
    large[:, 1] = -50.0
    large[:, 1, h // 2 - 4 : h // 2 + 4, w // 2 - 4 : w // 2 + 4] = 50.0  # the same part, larger
    with torch.no_grad():
        a, c = (model.embed_prompt(None, b["point"], b["input_ids"], VisionFeatures(vision.maps, cat, p))
                for p in (small, large))
    assert not torch.allclose(a, c)


def _class_1_in_a_corner(like: torch.Tensor, top: bool) -> torch.Tensor:
    """Dense logits shaped `like` (B, C, h, w): class 1 sure over the top-left (`top`) or the bottom-right
    quarter, the background (class 0) sure everywhere else."""
    h, w = like.shape[-2:]
    logits = torch.full_like(like, -50.0)
    logits[:, 0] = 50.0
    rows, cols = (slice(0, h // 4), slice(0, w // 4)) if top else (slice(-h // 4, None), slice(-w // 4, None))
    logits[:, 0, rows, cols], logits[:, 1, rows, cols] = -50.0, 50.0
    return logits


def test_heatmap_dense_keys_follow_where_the_tower_segments_the_part(tower_base):
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="full")
    plain, _ = PointLocalizer.from_base(base, cfg)
    model, tok = PointLocalizer.from_base(base, cfg.model_copy(update={"heatmap_dense": True}))
    assert model.needs_dense and not plain.needs_dense
    model.eval()
    b = localizer_collate(prompt_format(model, tok))([PointSamples(samples, model.input_size)[i] for i in range(2)])
    vision = model.vision_features(b["image"])
    assert vision.part_logits is not None and plain.vision_features(b["image"]).part_logits is None
    with torch.no_grad():  # a strong weight on part 1's channel: the heat goes where the tower puts part 1
        model.key_dense.weight.zero_()
        model.key_dense.bias.zero_()
        model.key_dense.weight[:, len(model.vlm.config.dense_categories) + 2] = 100.0
        query = model.text2vision[-1]
        query.weight.zero_()
        query.bias.fill_(1.0)
        preds = []
        for top in (True, False):  # part 1 over the top-left quarter, then the bottom-right one
            feats = VisionFeatures(vision.maps, vision.category_logits, _class_1_in_a_corner(vision.part_logits, top))
            preds.append(model(None, b["input_ids"], b["attention_mask"], feats))
    assert (preds[0] < 0.25).all() and (preds[1] > 0.75).all()


def test_heatmap_gate_is_a_constant_until_its_heads_name_a_class_then_follows_the_tower(tower_base):
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="full", heatmap_gate=True)
    model, tok = PointLocalizer.from_base(base, cfg)
    plain, _ = PointLocalizer.from_base(base, cfg.model_copy(update={"heatmap_gate": False}))
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing and {k.split(".")[0] for k in unexpected} == {"gate"}
    assert model.needs_dense and not plain.needs_dense
    for m in (model, plain):
        m.eval()
    b = localizer_collate(prompt_format(model, tok))([PointSamples(samples, model.input_size)[i] for i in range(2)])
    vision = model.vision_features(b["image"])
    args = (None, b["input_ids"], b["attention_mask"], vision)
    with torch.no_grad():
        gated, ungated = model.heat(*args), plain.heat(*args)
    n_cat, n_part = len(model.vlm.config.dense_categories), len(model.vlm.config.dense_parts)
    assert [t.shape for t in gated.labels] == [(2, n_cat + 1), (2, n_part + 1)] and ungated.labels is None
    shift = gated.logits - ungated.logits  # uniform heads: one number added to every cell of a row
    assert shift.std(dim=-1).max() < 1e-4 and not torch.allclose(shift, torch.zeros_like(shift))
    assert torch.allclose(model(*args), plain(*args), atol=1e-5)
    with torch.no_grad():  # the query says nothing by itself; the category head names class 1
        model.text2vision[-1].weight.zero_()
        model.text2vision[-1].bias.zero_()
        model.gate.category.bias[1] = 30.0
        preds = []
        for top in (True, False):  # class 1 over the top-left quarter, then the bottom-right one
            cat = _class_1_in_a_corner(vision.category_logits, top)
            preds.append(model(None, b["input_ids"], b["attention_mask"],
                               VisionFeatures(vision.maps, cat, vision.part_logits)))
    assert (preds[0] < 0.35).all() and (preds[1] > 0.65).all()  # the quarter and the gate's reach past it


def test_gate_map_reaches_a_few_cells_past_the_outline_and_stays_a_distribution():
    logits = torch.full((1, 3, 16, 16), -20.0)
    logits[0, 0] = 20.0  # background everywhere but class 1 over rows and columns 4-11
    logits[0, 0, 4:12, 4:12], logits[0, 1, 4:12, 4:12] = -20.0, 20.0
    near = gate_map(logits, (16, 16), reach=2)
    assert torch.allclose(near.sum(1), torch.ones(1, 16, 16))
    assert torch.allclose(near[0, 1, 6:10, 6:10], torch.ones(4, 4))  # deep inside: class 1 alone
    rim = near[0, 1, 2:14, 2:14]  # within 2 cells of the outline, inside or out: half class 1, half background
    assert torch.allclose(rim[rim < 1], torch.full((12 * 12 - 16,), 0.5))
    assert float(near[0, 1, :2].max()) < 1e-6 and float(near[0, 1, :, 14:].max()) < 1e-6  # beyond reach: nothing
    assert torch.allclose(gate_map(logits, (16, 16), reach=0), torch.softmax(logits, 1))
    assert gate_map(logits, (8, 8)).shape == (1, 3, 8, 8)


def test_attention_pool_is_the_mean_of_the_text_tokens_until_scores_pick_one():
    features = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    text = torch.tensor([[True, True, False, False], [True, True, True, True]])
    even = attention_pool(features, text, torch.zeros(2, 4, 2))
    assert even.shape == (2, 2, 3)
    assert torch.allclose(even[0, 0], features[0, :2].mean(0)) and torch.allclose(even[1, 1], features[1].mean(0))
    scores = torch.zeros(2, 4, 2)
    scores[:, 1, 0] = 50.0  # the first head looks at token 1 alone
    scores[0, 3, 1] = 1e4  # a padding token scores high and is still not read
    picked = attention_pool(features, text, scores)
    assert torch.allclose(picked[:, 0], features[:, 1], atol=1e-4)
    assert torch.allclose(picked[0, 1], features[0, :2].mean(0))


def test_text_states_put_the_embeddings_and_the_hidden_states_on_one_scale():
    gen = torch.Generator().manual_seed(0)
    embeds, hidden = 0.02 * torch.randn(2, 5, 8, generator=gen), 30.0 * torch.randn(2, 5, 8, generator=gen)
    states = TextStates(embeds, hidden, torch.ones(2, 5, dtype=torch.bool))
    features = states.features()
    assert features.shape == (2, 5, 16)
    for half in (features[..., :8], features[..., 8:]):  # each normalised: mean 0, variance 1 per token
        assert torch.allclose(half.mean(-1), torch.zeros(2, 5), atol=1e-5)
        assert torch.allclose(half.var(-1, unbiased=False), torch.ones(2, 5), atol=0.15)  # layer_norm's eps
    assert float(features[..., 8:].abs().mean() / features[..., :8].abs().mean()) < 1.2  # not 1500 times


def test_label_loss_teaches_the_gate_heads_the_category_and_part_each_text_names(tower_base):
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="lora", heatmap_gate=True)
    model, tok = PointLocalizer.from_base(base, cfg)
    cats, parts = list(model.vlm.config.dense_categories), list(model.vlm.config.dense_parts)
    assert {"dog", "car"} <= set(cats) and {"head", "wheel"} <= set(parts)
    named = samples.assign(category=["dog", "car"] * 4, part=["head", "wheel"] * 4)  # what TEXTS[0] / [1] name
    labelled = gate_labels(named, cats, parts)
    assert labelled[GATE_LABELS[0]].tolist() == [cats.index("dog") + 1, cats.index("car") + 1] * 4
    assert labelled[GATE_LABELS[1]].tolist() == [parts.index("head") + 1, parts.index("wheel") + 1] * 4
    data = PointSamples(labelled, model.input_size, ("description",), GATE_LABELS)
    b = localizer_collate(prompt_format(model, tok))([data[i] for i in range(8)])
    assert b[GATE_LABELS[0]].dtype == torch.long and b[GATE_LABELS[0]].shape == (8,)
    plain_loss, plain_logs = localizer_step(model, b)
    loss, logs = localizer_step(model, b, label_loss=0.5)
    assert "category_ce" not in plain_logs and logs["category_ce"] > 0 and logs["part_ce"] > 0
    assert torch.isclose(loss, plain_loss + 0.5 * (logs["category_ce"] + logs["part_ce"]), rtol=1e-4)
    # the heads learn each text's labels from the states they read (detached: states that tell the texts apart,
    # as a trained localizer's do; the fixture's random LM gives its two texts nearly the same ones). The naming
    # token sits at a different place in every row among tokens of noise, and each head has to find its own
    gate = model.gate
    gen = torch.Generator().manual_seed(0)
    dim, length = gate.category.in_features // 2, 12  # the heads read the embeddings and the hidden states
    embeds, hidden = torch.randn(8, length, dim, generator=gen), torch.randn(8, length, dim, generator=gen)
    at = torch.randint(2, length - 2, (8,), generator=gen)
    rows = torch.arange(8)
    cat_word, part_word = torch.randn(2, dim, generator=gen), torch.randn(2, dim, generator=gen)
    embeds[rows, at] += 3.0 * cat_word[rows % 2]  # the category's word: dog, car, dog, ...
    embeds[rows, at + 1] += 3.0 * part_word[rows % 2]  # the part's after it
    text = torch.ones(8, length, dtype=torch.bool)
    text[:, -2:] = False  # the padding: whatever it holds is not read
    embeds[:, -2:] += 50.0 * cat_word[0]
    states = TextStates(embeds, hidden, text)
    tower = (torch.zeros(8, len(cats) + 1, 4, 4), torch.zeros(8, len(parts) + 1, 4, 4))
    opt = torch.optim.AdamW(gate.parameters(), lr=3e-2)
    ces = []
    for _ in range(80):
        ce = sum(F.cross_entropy(logits, b[c]) for logits, c in zip(gate(states, *tower, (4, 4))[1], GATE_LABELS))
        ce.backward()
        opt.step()
        opt.zero_grad()
        ces.append(float(ce.detach()))
    assert ces[-1] < 0.1 * ces[0], " ".join(f"{c:.2f}" for c in ces)
    cat_logits, part_logits = gate(states, *tower, (4, 4))[1]
    assert torch.equal(cat_logits.argmax(-1), b[GATE_LABELS[0]]) and torch.equal(part_logits.argmax(-1),
                                                                                  b[GATE_LABELS[1]])
    features = states.features()
    weights = attention_weights(text, gate.attend(features))
    assert float(weights[rows, at, 0].mean()) > 3 / length and float(weights[:, -2:].max()) == 0.0
    # rows whose names the tower lacks are skipped; a batch of only such rows adds nothing (not NaN)
    skipped = dict(b, **{c: torch.full_like(b[c], -100) for c in GATE_LABELS})
    loss, logs = localizer_step(model, skipped, label_loss=0.5)
    assert torch.isfinite(loss) and "category_ce" not in logs
    assert torch.isclose(loss, localizer_step(model, skipped)[0], rtol=1e-5)
    unknown = gate_labels(named.assign(part=["hoof", "wheel"] * 4), cats, parts)
    assert unknown[GATE_LABELS[1]].tolist()[:2] == [-100, parts.index("wheel") + 1]
    with pytest.raises(ValueError, match="none of the samples' categories"):
        gate_labels(named.assign(category="zebra"), cats, parts)
    with pytest.raises(KeyError, match="'part'"):
        gate_labels(named.drop(columns="part"), cats, parts)


def test_the_label_loss_trains_the_gate_heads_and_leaves_the_point_query_alone(tower_base):
    """The heads read the text's pooled states detached for their cross-entropy (moving the LM with it cost the
    robust localizer 9 points in style); the localization loss still reaches the LM through the gate."""
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="lora", heatmap_gate=True)
    model, tok = PointLocalizer.from_base(base, cfg)
    labelled = gate_labels(samples.assign(category="dog", part="head"), list(model.vlm.config.dense_categories),
                           list(model.vlm.config.dense_parts))
    data = PointSamples(labelled, model.input_size, ("description",), GATE_LABELS)
    b = localizer_collate(prompt_format(model, tok))([data[i] for i in range(4)])
    with torch.no_grad():  # heads that name something, so that the gate depends on the text
        for head in (model.gate.category, model.gate.part, model.gate.attend):
            head.weight.normal_(0.0, 1.0)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    named = model.heat(b["image"], b["input_ids"], b["attention_mask"]).labels
    labels_only = sum(F.cross_entropy(logits, b[c]) for logits, c in zip(named, GATE_LABELS))
    grads = torch.autograd.grad(labels_only, list(trainable.values()), allow_unused=True)
    moved = {n for (n, _), g in zip(trainable.items(), grads) if g is not None and float(g.abs().max()) > 0}
    assert moved == {"gate.category.weight", "gate.category.bias", "gate.part.weight", "gate.part.bias",
                     "gate.attend.weight"}  # and nothing of the LM: its embeddings and states are read detached
    heat = model.heat(b["image"], b["input_ids"], b["attention_mask"])
    grads = torch.autograd.grad(heat.logits.logsumexp(-1).sum() - heat.logits[:, 0].sum(),
                                list(trainable.values()), allow_unused=True)
    moved = {n for (n, _), g in zip(trainable.items(), grads) if g is not None and float(g.abs().max()) > 0}
    assert {"gate.category.weight", "gate.strength"} <= moved and any("lora" in n for n in moved)


def test_the_gate_and_its_label_loss_come_together():
    gate = {"head": "heatmap", "heatmap_gate": True}
    with pytest.raises(ValueError, match="set label_loss"):
        TrainLocalizerConfig(model=gate)
    with pytest.raises(ValueError, match="set model.heatmap_gate: true"):
        TrainLocalizerConfig(model={"head": "heatmap"}, label_loss=0.1)
    assert TrainLocalizerConfig(model=gate, label_loss=0.1).label_loss == 0.1
    with pytest.raises(ValueError):
        TrainLocalizerConfig(model=gate, label_loss=0.0)


def _class_1_left_and_right(like: torch.Tensor) -> torch.Tensor:
    """Dense logits shaped `like` (B, C, h, w): class 1 sure over two blobs in the middle rows, one in the left
    quarter and one in the right quarter (two dogs, each one part), the background sure everywhere else."""
    h, w = like.shape[-2:]
    logits = torch.full_like(like, -50.0)
    logits[:, 0] = 50.0
    rows = slice(3 * h // 8, 5 * h // 8)
    for cols in (slice(0, w // 4), slice(-w // 4, None)):
        logits[:, 0, rows, cols], logits[:, 1, rows, cols] = -50.0, 50.0
    return logits


def _instance_gated(base, lm_adaptation: str):
    """A tiny heatmap localizer with the label gate and its instance heads (seeded)."""
    torch.manual_seed(0)
    return PointLocalizer.from_base(base, LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8,
                                                          lm_adaptation=lm_adaptation, heatmap_gate=True,
                                                          heatmap_instance_gate=True))


def test_heatmap_instance_gate_puts_the_point_on_the_instance_its_heads_name(tower_base):
    base, _, samples = tower_base
    model, tok = _instance_gated(base, "full")
    model.eval()
    b = localizer_collate(prompt_format(model, tok))([PointSamples(samples, model.input_size)[i] for i in range(2)])
    vision = model.vision_features(b["image"])
    two = VisionFeatures(vision.maps, *(_class_1_left_and_right(t) for t in (vision.category_logits,
                                                                             vision.part_logits)))
    with torch.no_grad():
        heat = model.heat(None, b["input_ids"], b["attention_mask"], two)
        assert [t.shape for t in heat.labels[2:]] == [(2, RANK_CLASSES)] * 2
        model.text2vision[-1].weight.zero_()  # the query says nothing by itself; the category head names class 1
        model.text2vision[-1].bias.zero_()
        model.gate.category.bias[1] = 30.0
        both = model(None, b["input_ids"], b["attention_mask"], two)
        assert (both[:, 0] - 0.5).abs().max() < 0.1  # mass on both dogs: the expectation between them
        preds = []
        for from_end in (0, 1):  # the object head names the first from the left, then the first from the right
            model.gate.instances.object.bias.zero_()
            model.gate.instances.object.bias[rank_class("lr", from_end, 1, 2)] = 30.0
            preds.append(model(None, b["input_ids"], b["attention_mask"], two))
    assert (preds[0][:, 0] < 0.3).all() and (preds[1][:, 0] > 0.7).all()


def test_the_instance_heads_learn_which_rank_each_text_names_from_the_classes_its_instance_has(tower_base):
    """Partial labels: the leftmost of two dogs also has a rank by height and by size, drawn at random here; the
    head learns the class the texts that say 'left' have in common, on the left-to-right axis."""
    base, _, samples = tower_base
    model, _ = _instance_gated(base, "lora")
    gate = model.gate
    gen = torch.Generator().manual_seed(0)
    rows, dim, length = 32, gate.category.in_features // 2, 10
    embeds, hidden = torch.randn(rows, length, dim, generator=gen), torch.randn(rows, length, dim, generator=gen)
    lr = torch.randint(1, 3, (rows,), generator=gen)  # 1: 'the left dog', 2: 'the right dog'
    side_word = torch.randn(2, dim, generator=gen)
    at = torch.randint(0, length, (rows,), generator=gen)
    embeds[torch.arange(rows), at] += 3.0 * side_word[lr - 1]
    ranks = torch.stack([lr, *torch.randint(1, 3, (2, rows), generator=gen)], -1)  # height and size: at random
    has = rank_classes(torch.full((rows,), 2), ranks)
    states = TextStates(embeds, hidden, torch.ones(rows, length, dtype=torch.bool))
    tower = tuple(torch.zeros(rows, head.out_features, 4, 4) for head in (gate.category, gate.part))
    opt = torch.optim.AdamW(gate.instances.parameters(), lr=3e-2)
    losses = []
    for _ in range(60):
        loss = rank_label_loss(gate(states, *tower, (4, 4))[1][2], has)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0], " ".join(f"{x:.2f}" for x in losses)
    named = gate(states, *tower, (4, 4))[1][2].argmax(-1)
    assert has[torch.arange(rows), named].all()  # a class the row's dog has ...
    assert all(RANK_LAYOUT[c][0] == 0 for c in named.tolist())  # ... on the axis the words give, not height or size
    # a row without a label (count missing) adds nothing: the loss is its labelled rows' mean
    logits = torch.randn(3, RANK_CLASSES, generator=gen)
    partial = has[:3].clone()
    partial[1] = False
    assert torch.isclose(rank_label_loss(logits, partial), rank_label_loss(logits[[0, 2]], partial[[0, 2]]))
    assert torch.isclose(rank_label_loss(logits[:1], has[:1]),
                         logits[0].logsumexp(-1) - logits[0, has[0]].logsumexp(-1))


def test_the_label_loss_teaches_the_instance_heads_from_the_samples_rank_columns(tower_base):
    base, _, samples = tower_base
    model, tok = _instance_gated(base, "lora")
    cats, parts = list(model.vlm.config.dense_categories), list(model.vlm.config.dense_parts)
    ranked = samples.assign(category="dog", part="head", n_same=[2, 2, 1, 3, 2, 2, 1, 1],
                            order_lr=[1, 2, 1, 3, 1, 2, 1, 1], order_tb=1, order_size=[2, 1, 1, 2, 1, 2, 1, 1],
                            n_same_part=[1, 2, 4, 1, 1, 1, 1, None],
                            part_order_lr=1, part_order_tb=1, part_order_size=1)
    labelled = gate_labels(ranked, cats, parts, ranks=True)
    assert all(labelled[c].dtype == np.int64 for c in RANK_COLUMNS) and labelled["n_same_part"].iloc[-1] == -100
    data = PointSamples(labelled, model.input_size, ("description",), GATE_LABELS + RANK_COLUMNS)
    b = localizer_collate(prompt_format(model, tok))([data[i] for i in range(8)])
    half, _ = localizer_step(model, b, label_loss=0.5)
    loss, logs = localizer_step(model, b, label_loss=1.0)
    assert logs["n_same_rank_nll"] > 0 and logs["n_same_part_rank_nll"] > 0
    heads = ("category_ce", "part_ce", "n_same_rank_nll", "n_same_part_rank_nll")
    assert torch.isclose(loss - half, torch.tensor(0.5 * sum(logs[k] for k in heads)), rtol=1e-4)
    with pytest.raises(KeyError, match="'n_same'.*gate_labels"):
        localizer_step(model, {k: v for k, v in b.items() if k != "n_same"}, label_loss=1.0)
    with pytest.raises(KeyError, match="'order_tb'.*heatmap_instance_gate"):
        gate_labels(ranked.drop(columns="order_tb"), cats, parts, ranks=True)


def test_the_instance_gate_is_an_option_of_the_label_gate_and_added_to_a_gated_localizer_by_fine_tuning(tower_base):
    with pytest.raises(ValueError, match="set heatmap_gate: true"):
        LocalizerConfig(head="heatmap", heatmap_instance_gate=True)
    gated = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=8, lm_adaptation="lora", heatmap_gate=True)
    assert "heatmap_instance_gate" not in gated.model_dump_json()  # folders saved before it: what a rerun writes
    both = gated.model_copy(update={"heatmap_instance_gate": True})
    assert LocalizerConfig.model_validate_json(both.model_dump_json()).heatmap_instance_gate
    model, _ = PointLocalizer.from_base(tower_base[0], both)
    assert model.modules_added_to(gated) == ("gate.instances.",) and model.modules_added_to(both) == ()
    plain = gated.model_copy(update={"heatmap_gate": False})
    assert model.modules_added_to(plain) == ("gate.",)


@pytest.mark.parametrize("option, prefix", [("heatmap_dense", "key_dense"), ("heatmap_regions", "key_regions"),
                                            ("heatmap_gate", "gate")])
def test_a_trained_localizer_gains_keys_by_fine_tuning_from_its_own_predictions(tower_base, tmp_path, option,
                                                                                prefix):
    """heatmap_dense / heatmap_regions / heatmap_gate on a localizer trained without it (train_localizer.
    finetuned): the new keys (the gate's heads) start at zero, so the fine-tuning starts from the trained
    localizer's own predictions, and they learn."""
    base, _, samples = tower_base
    torch.manual_seed(0)
    cfg = LocalizerConfig(proj_dim=16, head="heatmap", heatmap_stride=4, lm_adaptation="lora")
    trained, tok = PointLocalizer.from_base(base, cfg)
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    trained.save_pretrained(tmp_path / "trained", tok)
    added, _ = PointLocalizer.from_base(base, cfg.model_copy(update={option: True}))
    assert added.needs_dense
    assert added.modules_added_to(cfg) == (f"{prefix}.",) and added.modules_added_to(added.cfg) == ()
    added.load_trained(tmp_path / "trained")
    b = localizer_collate(prompt_format(added, tok))([PointSamples(samples, added.input_size)[i] for i in range(4)])
    for m in (trained, added):
        m.eval()
    with torch.no_grad():
        assert torch.allclose(added(b["image"], b["input_ids"], b["attention_mask"]),
                              trained(b["image"], b["input_ids"], b["attention_mask"]), atol=1e-6)
    added.train()
    loss, _ = localizer_step(added, b)
    loss.backward()
    grads = [p.grad for p in getattr(added, prefix).parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0  # zero weights, but they learn
    added.save_pretrained(tmp_path / "added", tok)
    plain, _ = PointLocalizer.from_base(base, cfg)  # the other way round, the new keys would be dropped
    with pytest.raises(ValueError, match=rf"does not fit the model: missing \[\], unexpected \['{prefix}"):
        plain.load_trained(tmp_path / "added")


@pytest.mark.parametrize("option", ["heatmap_dense", "heatmap_regions", "heatmap_gate"])
def test_heatmap_dense_and_regions_need_the_heatmap_head_and_a_tower_with_dense_heads(option):
    with pytest.raises(ValueError, match=f"{option} reads the tower's labels"):
        LocalizerConfig(head="regression", **{option: True})


def test_region_geometry_of_a_known_mask_and_a_part_kept_inside_its_object():
    region = torch.zeros(1, 6, 8, dtype=torch.bool)
    region[0, 1:4, 2:6] = True  # rows 1-3, columns 2-5
    point = torch.tensor([[3.5 / 8, 2.5 / 6]])
    got = region_geometry(region, point)[0]
    want = torch.tensor([2 / 8, 1 / 6, 6 / 8, 4 / 6, 4 / 8, 2.5 / 6, (3.5 - 2) / 4, (2.5 - 1) / 3])
    assert torch.allclose(got, want)
    # part logits: class 1 covers two touching objects; `within` keeps the part to the point's object
    part = torch.full((1, 2, 6, 8), -5.0)
    part[0, 1, 1:4, 1:7] = 5.0
    obj = torch.zeros(1, 6, 8, dtype=torch.bool)
    obj[0, :, :4] = True
    assert object_mask_at(part, point)[0].sum() == 18
    inside = object_mask_at(part, point, within=obj)[0]
    assert inside.sum() == 9 and not inside[:, 4:].any()
    # the descriptor's region token moves with the part's extent
    assert not torch.allclose(region_geometry(inside[None], point), region_geometry(region, point))


def _scene_with(objects: list[tuple[slice, slice]], h: int = 12, w: int = 16) -> torch.Tensor:
    """Category logits (1, 3, h, w): class 1 painted over each (rows, cols) box, background elsewhere."""
    logits = torch.full((1, 3, h, w), -5.0)
    logits[0, 0] = 5.0
    for rows, cols in objects:
        logits[0, 0, rows, cols], logits[0, 1, rows, cols] = -5.0, 5.0
    return logits


def test_instance_context_says_where_the_other_objects_of_the_class_lie():
    left, mid, right = (slice(4, 8), slice(1, 4)), (slice(4, 8), slice(6, 9)), (slice(4, 8), slice(11, 14))
    point_mid = torch.tensor([[7.5 / 16, 6 / 12]])

    def context(objects, point):
        logits = _scene_with(objects)
        return instance_context(class_map_at(logits, point), object_mask_at(logits, point))[0]

    only = context([mid], point_mid)
    assert only[0] == 0 and only[1] == 0 and torch.allclose(only[6:], torch.tensor([0.5, 0.5]))
    three = context([left, mid, right], point_mid)  # the middle one of three: as many others left as right
    assert three[1] == 1 and torch.isclose(three[0], torch.tensor(2 / 3))
    assert torch.isclose(three[2], torch.tensor(0.5)) and torch.isclose(three[3], torch.tensor(0.5))
    leftmost = context([left, mid, right], torch.tensor([[2.5 / 16, 6 / 12]]))
    assert leftmost[2] == 0 and leftmost[3] == 1 and leftmost[6] > 0.5  # all others to its right
    stray = _scene_with([mid])
    stray[0, 1, 0, 0], stray[0, 0, 0, 0] = 5.0, -5.0  # one stray cell of the class is not another object
    assert instance_context(class_map_at(stray, point_mid), object_mask_at(stray, point_mid))[0, 1] == 0


def test_tower_instances_token_tells_one_object_from_two(tower_base):
    model, b, vision = _descriptor_with_one_tower_token(tower_base, tower_instances=True)
    h, w = vision.category_logits.shape[-2:]
    one, two = vision.category_logits.clone(), vision.category_logits.clone()
    rows, cols = slice(h // 2 - 2, h // 2 + 2), slice(w // 2 - 2, w // 2 + 2)  # an object of class 1 at the point
    for t in (one, two):
        t[:] = -50.0
        t[:, 0] = 50.0
        t[:, 0, rows, cols], t[:, 1, rows, cols] = -50.0, 50.0
    two[:, 0, :4, :4], two[:, 1, :4, :4] = -50.0, 50.0  # a second object of the class in the corner
    with torch.no_grad():
        a, c = (model.embed_prompt(None, b["point"], b["input_ids"], VisionFeatures(vision.maps, t, vision.part_logits))
                for t in (one, two))
    assert not torch.allclose(a, c)


def test_object_mask_keys_lie_inside_the_segmented_object_and_no_row_is_empty():
    # a known scene: a dog on the left, a car on the right (category classes 1 and 2 of the tower's logits)
    scene = pw.render_scene(pw.SceneSpec(192, 144, pw.BackgroundSpec(), (
        pw.InstanceSpec("dog", 50.0, 100.0, 0.3, "right", 0), pw.InstanceSpec("car", 140.0, 100.0, 0.3, "left", 1))))
    h, w = 36, 48  # the tower's finest level
    logits = torch.full((1, 3, h, w), -5.0)
    logits[0, 0] = 5.0
    masks_small = []
    for cls, inst in enumerate(scene.instances, start=1):
        small = torch.nn.functional.interpolate(torch.tensor(inst.mask, dtype=torch.float32)[None, None], (h, w))
        logits[0, cls][small[0, 0] > 0.5] = 10.0
        masks_small.append(small[0, 0] > 0.5)
    dog = masks_small[0]
    ys, xs = np.nonzero(dog.numpy())
    on_dog = torch.tensor([[(xs[len(xs) // 2] + 0.5) / w, (ys[len(ys) // 2] + 0.5) / h]], dtype=torch.float32)
    points = torch.cat([on_dog, torch.tensor([[0.02, 0.02]])])  # the second point is on the background
    logits = logits.expand(2, -1, -1, -1)
    region = object_mask_at(logits, points)
    assert torch.equal(region[0], dog)  # the whole dog, nothing of the car
    assert region[1].sum() == 1 and region[1, 0, 0]  # background point: its own cell only
    shapes = [(36, 48), (18, 24), (6, 8)]
    allowed = object_key_mask(region, shapes)
    assert allowed.any(dim=1).all()
    offset = 0
    for kh, kw in shapes:  # every allowed key's cell overlaps the dog's mask
        cells = dog.reshape(kh, h // kh, kw, w // kw).any(dim=3).any(dim=1).flatten()
        got = allowed[0, offset : offset + kh * kw]
        assert got.any() and not (got & ~cells).any()
        offset += kh * kw


#: the decoder as nn.MultiheadAttention computes it: every key projected, masked attention over all keys; the
#: baseline of benchmarks/bench_point_decoder.py, loaded from there so that the benchmark times what is tested
_reference_decoder = load_benchmark("bench_point_decoder").projected_keys


@pytest.mark.parametrize("mask, sigma", [("gaussian", 0.05), ("gaussian", [0.02, 0.1]), ("object", 0.05),
                                         ("none", 0.05), (["gaussian", "object"], 0.05)])
def test_factorised_attention_equals_the_masked_attention_over_projected_keys(mask, sigma):
    torch.manual_seed(0)
    dec = PointQueryDecoder([8, 6, 8], PointDecoderConfig(dim=32, layers=2, heads=2, sigma=sigma,
                                                          attention_mask=mask)).eval()
    q_n = dec.cfg.queries
    assert q_n == (len(sigma) if isinstance(sigma, list) else len(mask) if isinstance(mask, list) else 1)
    maps = [torch.randn(3, 8, 36, 48), torch.randn(3, 6, 18, 24), torch.randn(3, 8, 6, 8)]
    logits = torch.randn(3, 4, 36, 48).repeat_interleave(2, -1).repeat_interleave(2, -2)[..., :36, :48]
    pts = torch.rand(3, 2)
    with torch.no_grad():
        fast = dec(maps, pts, logits)[0]
        allowed = dec.allowed_keys(maps, pts, logits)  # (B, queries, S)
        if mask == "none":
            assert allowed is None
        else:
            assert allowed.shape == (3, q_n, 36 * 48 + 18 * 24 + 48) and allowed.any(-1).all()
            if q_n == 2 and isinstance(sigma, list):  # the narrow query sees a subset of what the wide one sees
                assert (allowed[:, 0] <= allowed[:, 1]).all() and (allowed[:, 0].sum(1) < allowed[:, 1].sum(1)).all()
        ref = _reference_decoder(dec, maps, pts, allowed)
    assert torch.allclose(ref, fast, atol=2e-5), (ref - fast).abs().max()
    # and the gradients agree: the factorised form trains the same parameters the same way
    dec.train()
    grads = []
    for fn in (lambda: dec(maps, pts, logits)[0], lambda: _reference_decoder(dec, maps, pts, dec.allowed_keys(maps, pts, logits))):
        dec.zero_grad()
        (fn() ** 2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in dec.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(dec.parameters()))
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-4, rtol=1e-4), n


def test_soft_argmax_points_at_the_peak():
    centres = grid_centres(4, 4)
    logits = torch.full((2, 16), -50.0)
    logits[0, 5] = 50.0  # cell (row 1, col 1)
    assert torch.allclose(soft_argmax(logits, centres)[0], torch.tensor([0.375, 0.375]))
    assert torch.allclose(soft_argmax(torch.zeros(1, 16), centres), torch.tensor([[0.5, 0.5]]))

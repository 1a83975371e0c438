"""The real-checkpoint path on a tiny LLaVA built here: `convert_llava` is exact (the converted base gives the
checkpoint's own vision features, projector outputs and LM logits), and both point models train with LoRA
on its ViT features, save and load."""

from __future__ import annotations

import pytest
import torch

from talking_points.pipeline.models.adaptation import LoraSettings
from talking_points.pipeline.models.build import convert_llava
from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
from talking_points.pipeline.models.inference import prompt_format
from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer
from talking_points.pipeline.models.point_decoder import PointDecoderConfig
from talking_points.pipeline.training.steps import (
    descriptor_collate,
    descriptor_step,
    localizer_collate,
    localizer_step,
)
from tests.tiny_checkpoints import build_tiny_checkpoints

TEXT = "The point is on the only dog; on its head; at the centre of the head; in a small dark patch."


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    root = tmp_path_factory.mktemp("llava")
    vlm_dir, _ = build_tiny_checkpoints(root / "ckpt")
    calls = []
    with pytest.MonkeyPatch.context() as mp:  # record how the checkpoint is opened
        for cls in (LlavaForConditionalGeneration, AutoTokenizer):
            original = cls.from_pretrained.__func__

            def spy(klass, *args, _original=original, **kwargs):
                calls.append(kwargs.get("trust_remote_code"))
                return _original(klass, *args, **kwargs)

            mp.setattr(cls, "from_pretrained", classmethod(spy))
        vlm, tok = convert_llava(str(vlm_dir))
    assert calls and all(c is False for c in calls), calls  # trust_remote_code stays off
    vlm.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    return vlm_dir, root / "base"


def test_the_converted_base_reproduces_the_checkpoint(llava):
    from transformers import LlavaForConditionalGeneration

    vlm_dir, base = llava
    original = LlavaForConditionalGeneration.from_pretrained(vlm_dir).eval()
    ours = PointDescriptor.from_base(base, DescriptorConfig())[0].vlm.eval()
    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 28, 28)
    layer = original.config.vision_feature_layer
    with torch.no_grad():
        want = original.model.vision_tower(pixels, output_hidden_states=True).hidden_states[layer][:, 1:]
        got = ours.vision(pixels)[0].flatten(2).transpose(1, 2)  # the patch-stride map, CLS dropped
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(ours.projector(want), original.model.multi_modal_projector(want), atol=1e-6)
        vocab = original.config.text_config.vocab_size
        ids = torch.randint(3, vocab, (2, 12))
        hidden = original.model.language_model(input_ids=ids).last_hidden_state
        assert torch.allclose(ours.lm(input_ids=ids).logits[..., :vocab], original.lm_head(hidden), atol=1e-5)
    assert not ours.config.image_pos_embed and ours.config.backbone_kind == "vit"


@pytest.mark.parametrize("kind", ["descriptor", "localizer"])
def test_point_models_train_with_lora_on_vit_features_and_round_trip(llava, tmp_path, kind):
    _, base = llava
    torch.manual_seed(0)
    lora = LoraSettings(r=4, alpha=8, dropout=0.0)
    if kind == "descriptor":
        model, tok = PointDescriptor.from_base(base, DescriptorConfig(
            decoder=PointDecoderConfig(dim=32, layers=1, heads=2), lm_adaptation="lora", lora=lora,
            max_description_tokens=32))
        collate, step = descriptor_collate(prompt_format(model, tok)), descriptor_step
    else:
        model, tok = PointLocalizer.from_base(base, LocalizerConfig(
            head="regression", proj_dim=16, head_dims=[32, 16], lm_adaptation="lora", lora=lora,
            max_description_tokens=32))
        collate, step = localizer_collate(prompt_format(model, tok)), localizer_step
    items = [{"index": i, "image": torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8),
              "point": torch.tensor([0.3 + 0.4 * i, 0.6]), "description": TEXT} for i in range(2)]
    batch = collate(items)
    vision = {n: p.detach().clone() for n, p in model.vlm.vision.named_parameters()}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable) and not any(n.startswith("vlm.vision.") for n in trainable)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(2):  # LoRA's B starts at zero: A moves from the second step on
        loss, _ = step(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.equal(p, vision[n]) for n, p in model.vlm.vision.named_parameters()), "the tower moved"
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])]
    assert len(moved) == len(trainable), set(trainable) - set(moved)
    model.save_pretrained(tmp_path / kind, tok)
    cls = PointDescriptor if kind == "descriptor" else PointLocalizer
    again, _ = cls.from_pretrained(tmp_path / kind)
    model.eval()
    again.eval()
    with torch.no_grad():
        if kind == "descriptor":
            a = model(batch["image"], batch["point"], batch["input_ids"], batch["attention_mask"]).logits
            b = again(batch["image"], batch["point"], batch["input_ids"], batch["attention_mask"]).logits
        else:
            a = model(batch["image"], batch["input_ids"], batch["attention_mask"])
            b = again(batch["image"], batch["input_ids"], batch["attention_mask"])
    assert torch.equal(a, b)


def test_a_vlm_row_describes_marked_points_in_batches(llava):
    import numpy as np

    from talking_points.pipeline.evaluation.config import EvaluateConfig
    from talking_points.pipeline.evaluation.vlm_describer import (
        VLMDescriber,
        VLMDescriberConfig,
        describe_prompt,
    )

    vlm_dir, _ = llava
    cfg = VLMDescriberConfig(checkpoint=str(vlm_dir), batch_size=3, sampling={"max_new_tokens": 6})
    assert "red circle" in describe_prompt(cfg) and "{marker}" not in describe_prompt(cfg)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (30 + 4 * i, 40, 3), dtype=np.uint8) for i in range(5)]
    points = np.array([[5.0 + 6 * i, 10.0 + i] for i in range(5)])
    texts = VLMDescriber(cfg).describe(images, points)
    assert len(texts) == 5 and all(isinstance(t, str) for t in texts)
    one_by_one = VLMDescriber(cfg.model_copy(update={"batch_size": 1})).describe(images, points)
    assert texts == one_by_one  # left padding: a batch answers as each image alone
    cfg = EvaluateConfig(vlm_describers={"vlm": {"checkpoint": str(vlm_dir)}},
                         rows={"vlm": {"label": "VLM", "texts": "generated", "describer": "vlm", "localizer": "m"}},
                         report={"reference": "vlm", "figure_rows": [], "breakdown_rows": []})
    assert cfg.vlm_describers["vlm"].checkpoint == str(vlm_dir) and not cfg.vlm_describers["vlm"].trust_remote_code
    with pytest.raises(ValueError, match="evaluate.describers and evaluate.vlm_describers both name"):
        EvaluateConfig(vlm_describers={"vlm": {"checkpoint": str(vlm_dir)}}, describers={"vlm": {"descriptor": "d"}},
                       rows={"vlm": {"label": "VLM", "texts": "generated", "describer": "vlm", "localizer": "m"}},
                       report={"reference": "vlm", "figure_rows": [], "breakdown_rows": []})
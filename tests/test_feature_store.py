"""The frozen towers' feature cache (models.feature_store): hits equal misses, keys, dense entries, bounds."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.models.feature_store import ENV_DIR, ENV_GB, FeatureStore, default_root
from talking_points.pipeline.training.data import PointSamples


class _VLM(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.vision = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6))
        self.config = SimpleNamespace(image_mean=[0.5] * 3, image_std=[0.25] * 3, image_size=[16, 16])

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32


class _Model(nn.Module):
    """What FeatureStore.features needs of a point model: vlm, needs_dense, vision_features (counted)."""

    def __init__(self, dense: bool, seed: int = 0):
        super().__init__()
        self.vlm = _VLM(seed)
        self.needs_dense = dense
        self.calls: list[int] = []

    def vision_features(self, images: torch.Tensor) -> VisionFeatures:
        self.calls.append(len(images))
        m = self.vlm.vision(images.float() / 255)
        maps = [m, F.avg_pool2d(m, 2)]
        return VisionFeatures(maps, m[:, :2], m[:, 2:]) if self.needs_dense else VisionFeatures(maps)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 16, 16), dtype=np.uint8)


def _equal(a: VisionFeatures, b: VisionFeatures) -> bool:
    same = len(a.maps) == len(b.maps) and all(torch.equal(x, y) for x, y in zip(a.maps, b.maps))
    for x, y in ((a.category_logits, b.category_logits), (a.part_logits, b.part_logits)):
        same = same and ((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)))
    return same


def test_a_hit_is_exactly_the_computation_and_runs_no_tower(tmp_path):
    model, images = _Model(dense=True), _images(5)
    store = FeatureStore(tmp_path)
    first = store.features(model, images, batch_size=2)
    assert model.calls == [2, 2, 1] and len(list(tmp_path.glob("*.safetensors"))) == 1
    again = store.features(model, images, batch_size=2)
    assert model.calls == [2, 2, 1]  # served from the entry
    plain = FeatureStore(None).features(model, images, batch_size=2)
    assert _equal(first, again) and _equal(first, plain)
    assert first.maps[0].dtype == torch.float16 and first.category_logits is not None


def test_rows_sharing_an_image_get_its_features_and_the_tower_runs_once_per_distinct_image(tmp_path):
    model, distinct = _Model(dense=False), _images(3)
    rows = distinct[[0, 2, 2, 1, 0]]
    feats = FeatureStore(tmp_path).features(model, rows)
    assert model.calls == [3]
    alone = FeatureStore(None).features(model, distinct)
    assert torch.equal(feats.maps[1], alone.maps[1][[0, 2, 2, 1, 0]])


def test_the_key_covers_weights_images_batch_and_dtype(tmp_path):
    store, images = FeatureStore(tmp_path), _images(4)
    model = _Model(dense=False)
    store.features(model, images)
    for changed in (dict(images=_images(4, seed=1)), dict(batch_size=2), dict(dtype=torch.float32)):
        before = len(model.calls)
        store.features(model, **{"images": images, **changed})
        assert len(model.calls) > before, changed
    other = _Model(dense=False, seed=1)  # other tower weights
    store.features(other, images)
    assert other.calls
    bn = _Model(dense=False)  # the same weights but another BatchNorm statistic (a buffer)
    bn.vlm.vision[1].running_mean += 1
    store.features(bn, images)
    assert bn.calls


def test_a_dense_entry_serves_a_model_without_dense_heads_but_not_the_reverse(tmp_path):
    store, images = FeatureStore(tmp_path), _images(4)
    plain = _Model(dense=False)
    only_maps = store.features(plain, images)
    dense = _Model(dense=True)  # same weights: a descriptor on the localizer's base
    with_logits = store.features(dense, images)
    assert dense.calls == [4] and with_logits.category_logits is not None  # recomputed, and rewritten ...
    plain.calls.clear()
    served = store.features(plain, images)
    assert plain.calls == [] and served.category_logits is None  # ... serving the maps-only model too
    assert _equal(served, only_maps)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1


def test_least_recently_used_entries_go_beyond_the_bound(tmp_path):
    model = _Model(dense=False)
    entry = 4 * (6 * 8 * 8 + 6 * 4 * 4) * 2  # bytes of the float16 maps of 4 images
    store = FeatureStore(tmp_path, max_bytes=int(2.5 * entry))
    sets = [_images(4, seed=s) for s in range(4)]
    for images in sets[:2]:
        store.features(model, images)
    store.features(model, sets[0])  # used again: now the most recent
    store.features(model, sets[2])  # a third entry: the least recently used (sets[1]) goes
    model.calls.clear()
    store.features(model, sets[0])
    store.features(model, sets[2])
    assert model.calls == []
    store.features(model, sets[1])
    assert model.calls == [4]
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    small = FeatureStore(tmp_path / "small", max_bytes=entry // 2)  # an entry above the bound is not kept
    small.features(model, sets[3])
    assert not list((tmp_path / "small").glob("*.safetensors"))


def test_a_damaged_entry_is_recomputed_with_a_warning(tmp_path, caplog):
    model, images = _Model(dense=False), _images(3)
    store = FeatureStore(tmp_path)
    good = store.features(model, images)
    (entry,) = tmp_path.glob("*.safetensors")
    entry.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING):
        again = store.features(model, images)
    assert "unreadable" in caplog.text and model.calls == [3, 3]
    assert _equal(good, again)


def test_the_environment_picks_the_folder_the_bound_or_off(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "c"))
    monkeypatch.setenv(ENV_GB, "0.5")
    assert FeatureStore.from_env() == FeatureStore(tmp_path / "c", 2**29)
    monkeypatch.setenv(ENV_DIR, "off")
    assert FeatureStore.from_env().root is None
    monkeypatch.delenv(ENV_DIR)
    monkeypatch.delenv(ENV_GB)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert FeatureStore.from_env().root == default_root() == tmp_path / "xdg" / "talking_points" / "features"
    monkeypatch.setenv(ENV_GB, "five")
    with pytest.raises(ValueError, match=f"{ENV_GB}='five' is not a number"):
        FeatureStore.from_env()
    monkeypatch.setenv(ENV_GB, "-1")
    with pytest.raises(ValueError, match="cannot be negative"):
        FeatureStore.from_env()


def test_training_samples_take_their_features_from_the_store(tmp_path):
    import cv2
    import pandas as pd

    files = []
    for i, im in enumerate(_images(3)):
        f = tmp_path / f"{i}.png"
        cv2.imwrite(str(f), im.transpose(1, 2, 0))
        files.append(str(f))
    rows = pd.DataFrame({"file": [files[0], files[1], files[1], files[2]], "x_norm": 0.5, "y_norm": 0.5,
                         "description": "text"})
    model, store = _Model(dense=True), FeatureStore(tmp_path / "cache")
    cold, warm = PointSamples(rows, (16, 16)), PointSamples(rows, (16, 16))
    cold.cache_vision(model, store)
    warm.cache_vision(model, store)
    assert model.calls == [3]
    for i in range(len(rows)):
        a, b = cold[i], warm[i]
        assert all(torch.equal(x, y) for x, y in zip(a["vision_maps"], b["vision_maps"]))
        assert torch.equal(a["vision_part"], b["vision_part"])
    assert Path(store.root).is_dir()

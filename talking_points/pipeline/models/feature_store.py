"""A frozen vision tower's features of a set of images, computed once and kept on disk for the next stage.

Every training stage with a frozen tower runs it once over the training images, and every evaluation row and
describer once over the test images: the default pipeline's six trainings and twenty-odd evaluation processes
would run the same tower over the same images again and again. `FeatureStore.features` keys what the tower
gives a set of images by the tower's weights and the images' pixels (and everything else that decides the
numbers: batch size, stored dtype, torch version), so a hit is exactly what the computation would give, and
stage outputs do not depend on whether the store was warm. It is a cache in the sense of Hugging Face's
datasets cache: nothing to track or push, safe to delete at any time, bounded in size (least recently used
entries go first).

    TP_FEATURE_CACHE     folder of the entries (default $XDG_CACHE_HOME/talking_points/features, i.e.
                         ~/.cache/talking_points/features); "off" keeps nothing between calls
    TP_FEATURE_CACHE_GB  size bound of that folder in GiB (default 5)
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.models.base import VisionFeatures
from talking_points.pipeline.progress import track

__all__ = ["ENV_DIR", "ENV_GB", "FeatureStore", "default_root", "distinct_images", "tower_digest"]

log = logging.getLogger(__name__)

ENV_DIR = "TP_FEATURE_CACHE"
ENV_GB = "TP_FEATURE_CACHE_GB"
DEFAULT_GB = 5.0
_FORMAT = "1"  # bump when the entries' layout or the features' computation changes
_SUFFIX = ".safetensors"


def default_root() -> Path:
    """$XDG_CACHE_HOME/talking_points/features (XDG_CACHE_HOME defaults to ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "talking_points" / "features"


def _image_digests(images: np.ndarray) -> list[bytes]:
    """A content digest of every image of (N, ...)."""
    return [hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest() for im in images]


def _first_copies(digests: list[bytes]) -> np.ndarray:
    first: dict[bytes, int] = {}
    return np.array([first.setdefault(d, i) for i, d in enumerate(digests)], dtype=np.int64)


def distinct_images(images: np.ndarray) -> np.ndarray:
    """(N,) int: for every image of (N, ...) the index of its first identical copy (by content)."""
    return _first_copies(_image_digests(images))


def _update_tensor(h, name: str, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def tower_digest(vlm) -> str:
    """Hex digest of what decides a `PointVLM`'s vision features: the tower's weights and buffers (dense
    heads included), the pixel normalisation and the input size."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(vlm.vision.state_dict().items()):
        _update_tensor(h, name, t)
    c = vlm.config
    h.update(repr((list(c.image_mean), list(c.image_std), list(c.image_size), str(vlm.dtype))).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class FeatureStore:
    """Where `features` keeps its entries (`root`; None: nothing is kept between calls) and how much it may
    keep (`max_bytes`; least recently used entries are deleted beyond it)."""

    root: Path | None
    max_bytes: int = int(DEFAULT_GB * 2**30)

    @classmethod
    def from_env(cls) -> "FeatureStore":
        """The store TP_FEATURE_CACHE and TP_FEATURE_CACHE_GB describe (module docstring); a clear error for
        a size that is not a non-negative number."""
        where = os.environ.get(ENV_DIR, "").strip()
        raw = os.environ.get(ENV_GB, "").strip()
        try:
            gb = float(raw) if raw else DEFAULT_GB
        except ValueError:
            raise ValueError(f"{ENV_GB}={raw!r} is not a number of GiB (e.g. {DEFAULT_GB:g})") from None
        if gb < 0:
            raise ValueError(f"{ENV_GB}={raw!r}: a size bound cannot be negative")
        if where.lower() in ("off", "0", "false", "no"):
            return cls(None)
        return cls(Path(where).expanduser() if where else default_root(), int(gb * 2**30))

    # ---- the one entry point --------------------------------------------------------------------------------
    def features(self, model, images: np.ndarray, batch_size: int = 64, dtype: torch.dtype = torch.float16,
                 progress: str | None = None) -> VisionFeatures:
        """The frozen tower's features of every image of `images` ((N, 3, H, W) uint8 at the model's input
        size), on the CPU as `dtype`: the tower runs once per distinct image, `batch_size` images at a time
        (`model.vision_features`: its dense logits too where the model reads them). Served from the store
        when an entry of the same tower, images, batch size and dtype is there; written there otherwise."""
        digests = _image_digests(images)  # once: for finding the copies and for the entry's key
        keep, inverse = np.unique(_first_copies(digests), return_inverse=True)
        distinct = np.ascontiguousarray(images[keep])
        dense = bool(model.needs_dense)
        path = self._path(model, [digests[i] for i in keep], distinct.shape, batch_size, dtype)
        feats = self._load(path, dense) if path else None
        if feats is None:
            feats = _compute(model, distinct, batch_size, dtype, progress)
            if path:
                self._save(path, feats)
        elif progress:
            log.info("%s: %d images from the feature cache %s", progress, len(distinct), path)
        if not dense:
            feats = VisionFeatures(feats.maps)
        if len(keep) == len(images) and (keep == np.arange(len(images))).all():
            return feats
        return feats.rows(torch.as_tensor(inverse.reshape(-1)))

    # ---- entries --------------------------------------------------------------------------------------------
    def _path(self, model, image_digests: list[bytes], shape: tuple[int, ...], batch_size: int,
              dtype: torch.dtype) -> Path | None:
        """The entry of these images (their content digests, in order, and the array's shape) under this tower."""
        if self.root is None:
            return None
        h = hashlib.blake2b(digest_size=20)
        h.update(repr((_FORMAT, torch.__version__, tower_digest(model.vlm), shape, batch_size, str(dtype))).encode())
        h.update(b"".join(image_digests))
        return self.root / f"{h.hexdigest()}{_SUFFIX}"

    def _load(self, path: Path, dense: bool) -> VisionFeatures | None:
        """The entry at `path` (None: absent, without the dense logits asked for, or unreadable, then deleted)."""
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != _FORMAT or (dense and meta.get("dense") != "1"):
                    return None
                n_maps = int(meta["maps"])
                maps = [f.get_tensor(f"map.{i}") for i in range(n_maps)]
                cat = f.get_tensor("category") if meta.get("dense") == "1" else None
                part = f.get_tensor("part") if meta.get("dense") == "1" else None
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged entry is recomputed, never trusted
            log.warning("feature cache entry %s unreadable (%s): recomputing it", path, exc)
            path.unlink(missing_ok=True)
            return None
        _touch(path)
        return VisionFeatures(maps, cat, part)

    def _save(self, path: Path, feats: VisionFeatures) -> None:
        tensors = {f"map.{i}": m.contiguous() for i, m in enumerate(feats.maps)}
        dense = feats.category_logits is not None and feats.part_logits is not None
        if dense:
            tensors.update(category=feats.category_logits.contiguous(), part=feats.part_logits.contiguous())
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        if size > self.max_bytes:
            log.info("feature cache: an entry of %.2f GiB exceeds %s; not kept", size / 2**30, ENV_GB)
            return
        try:
            with atomic_path(path, suffix=_SUFFIX) as tmp:
                save_file(tensors, str(tmp), metadata={"format": _FORMAT, "maps": str(len(feats.maps)),
                                                       "dense": "1" if dense else "0"})
        except OSError as exc:  # a full or read-only disk costs speed, not the stage
            log.warning("feature cache: could not write %s (%s)", path, exc)
            return
        _touch(path)
        self._evict(keep=path)

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used entries until the folder fits `max_bytes` (never `keep`)."""
        entries = []
        for p in self.root.glob(f"*{_SUFFIX}"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if p == keep:
                continue
            p.unlink(missing_ok=True)
            total -= size


def _touch(path: Path) -> None:
    """Mark an entry most recently used: its mtime set from the clock in nanoseconds (a file's own timestamps
    come from a coarser kernel clock, which can give two entries written in a row the same time)."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        pass


@torch.no_grad()
def _compute(model, images: np.ndarray, batch_size: int, dtype: torch.dtype, progress: str | None
             ) -> VisionFeatures:
    """`model.vision_features` over `images` in batches (eval mode, restored after), stacked on the CPU."""
    if not len(images):
        raise ValueError("no images to compute vision features of")
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    parts: list[VisionFeatures] = []
    starts = range(0, len(images), batch_size)
    try:
        with torch.autocast(dev.type, enabled=False):  # the numbers must not depend on the caller's context
            for s in track(starts, progress, total=len(starts), unit="batch") if progress else starts:
                f = model.vision_features(torch.from_numpy(images[s : s + batch_size]).to(dev))
                parts.append(f.to(dtype, torch.device("cpu")))
            maps = [torch.cat(level) for level in zip(*(p.maps for p in parts))]
            dense = parts[0].category_logits is not None
            cat = torch.cat([p.category_logits for p in parts]) if dense else None
            part = torch.cat([p.part_logits for p in parts]) if dense else None
    finally:
        model.train(was)
    return VisionFeatures(maps, cat, part)

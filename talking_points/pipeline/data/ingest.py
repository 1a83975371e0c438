"""Ingestion: run one adapter over its samples and build the images / objects / parts tables."""

from __future__ import annotations

import hashlib
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from talking_points.pipeline.data.adapters.base import SourceConfigBase
from talking_points.pipeline.data.adapters.registry import get_adapter
from talking_points.pipeline.data.errors import BadInput, OnError, SkipLog
from talking_points.pipeline.data.records import record_rows
from talking_points.pipeline.parallel import process_pool
from talking_points.pipeline.progress import track

__all__ = ["DUPLICATE_IMAGE_ID", "IngestResult", "file_sha256", "ingest_source"]

DUPLICATE_IMAGE_ID = "duplicate image id"


@dataclass
class IngestResult:
    images: pd.DataFrame
    objects: pd.DataFrame
    parts: pd.DataFrame
    skips: SkipLog
    #: sha256 over (image_id, sha256 of the image file's bytes) of the kept images, in order: the tables hold
    #: only the images' paths, so this is what makes the stage's output change when an image file does
    image_digest: str = ""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one(args: tuple[str, SourceConfigBase, str, str | None, str | None, OnError]):
    """Load one sample and turn it into rows. Returns (rows | None, SkipLog, sha256 of the image file | None);
    the digest is None for generated images (their PNGs are part of the stage's output already)."""
    source, cfg, key, image_dir, image_ref_dir, policy = args
    adapter = get_adapter(cfg.adapter)
    skips = SkipLog(policy=policy)
    digest = None
    try:
        rec = adapter.load_sample(cfg, key)
        if rec.pixels is not None:
            if image_dir is None:
                raise ValueError("generated records need an image directory")
            name = f"{rec.stem}.png"
            Image.fromarray(np.ascontiguousarray(rec.pixels)).save(os.path.join(image_dir, name), compress_level=1)
            file = os.path.join(image_ref_dir or image_dir, name)
        elif rec.file is not None:
            file = str(rec.file)
            digest = file_sha256(file)  # ingest decodes every image anyway: the bytes are in the page cache
        else:
            raise BadInput(rec.origin or key, "record has neither a file nor pixels")
        rows = record_rows(rec, source, file, skips)
    except BadInput as err:
        skips.handle(err)
        return None, skips, None
    except Exception as exc:  # a corrupt file or malformed json: name the sample, never a bare traceback
        err = BadInput(key, "unreadable sample", f"{type(exc).__name__}: {exc}")
        if policy is OnError.strict:
            raise err from exc
        skips.handle(err)
        return None, skips, None
    return rows, skips, digest


def ingest_source(
    source: str,
    cfg: SourceConfigBase,
    image_dir: str | Path | None,
    image_ref_dir: str | Path | None = None,
    on_error: OnError = OnError.skip,
    workers: int = 1,
) -> IngestResult:
    """Ingest every sample of `cfg`'s dataset. Generated images are written as PNG under `image_dir`.

    The `file` column of generated images points into `image_ref_dir` (default: `image_dir`), so a stage can
    write into a temporary folder that is renamed into place afterwards. Two samples with one image_id (two
    files with one stem) are a DUPLICATE_IMAGE_ID BadInput for the second: the first, in key order, is kept.
    """
    adapter = get_adapter(cfg.adapter)
    keys = adapter.list_samples(cfg)
    if cfg.limit is not None:
        keys = keys[: cfg.limit]
    if not keys:
        raise BadInput(source, "no samples found", f"adapter {cfg.adapter!r} listed nothing; check the paths in params")
    if image_dir is not None:
        Path(image_dir).mkdir(parents=True, exist_ok=True)
    ref = None if image_ref_dir is None else str(image_ref_dir)
    jobs = [(source, cfg, k, None if image_dir is None else str(image_dir), ref, on_error) for k in keys]
    skips = SkipLog(policy=on_error)
    images, objects, parts = [], [], []
    first_file: dict[str, str] = {}  # image_id -> the file of the sample that took it
    digest = hashlib.sha256()
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(process_pool(workers))
            # a strict stop cancels the samples still queued instead of loading them all first
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            results = pool.map(_one, jobs, chunksize=max(1, len(jobs) // (workers * 16)))
        else:
            results = map(_one, jobs)
        for rows, sub, file_digest in track(results, f"ingest {source}", total=len(jobs), unit="img"):
            if rows is not None and rows[0]["image_id"] in first_file:
                # two files with one stem (a.jpg and a.png, or one name in two folders) would give two rows
                # of one image_id, which every later join takes for one image: keep the first, in key order
                iid = rows[0]["image_id"]
                skips.handle(BadInput(rows[0]["file"], DUPLICATE_IMAGE_ID,
                                      f"image_id {iid!r} is already taken by {first_file[iid]}"))
                continue
            skips.merge(sub)
            if rows is not None:
                first_file[rows[0]["image_id"]] = rows[0]["file"]
                if file_digest is not None:
                    digest.update(f"{rows[0]['image_id']}\t{file_digest}\n".encode())
                images.append(rows[0])
                objects.extend(rows[1])
                parts.extend(rows[2])
    if not images:
        raise BadInput(source, "every sample was bad", str(skips.as_dict()["by_reason"]))
    return IngestResult(pd.DataFrame(images), pd.DataFrame(objects), pd.DataFrame(parts), skips,
                        digest.hexdigest())

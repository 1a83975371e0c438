"""Mining: ingested sources -> the keypoints table (SIFT points inside parts, with geometry and local look).

Per image (`mine_image`): read the image, decode its part masks, detect SIFT keypoints, keep those on a
part and far enough from its border (`selection`; `min_border_dist` of the image's shorter side, at least
`min_border_px` pixels), choose up to `top_k` of them, and fill every column of
`schema.KEYPOINTS` (`geometry`, `patch`). Kept keypoints are numbered in selection order (strongest
first): `kp_id = "<image_id>#k<k>"`. An image where no keypoint survives is skipped with a counted
reason (`NoKeypoint`), which is not an error; a missing, unreadable or truncated image, or masks that
disagree with the image, are `BadInput` handled by the `on_error` policy.

Per run (`mine_sources`): every image of every source, in table order, in `workers` processes (the
result does not depend on the number of workers), then balanced sampling across sources (`sampling`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from talking_points.pipeline.data import masks, schema
from talking_points.pipeline.data.errors import BadInput, SkipLog
from talking_points.pipeline.data.images import read_rgb
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.keypoints import geometry, patch, selection, sift
from talking_points.pipeline.keypoints.config import MineConfig
from talking_points.pipeline.keypoints.sampling import balance, discard_warnings
from talking_points.pipeline.parallel import process_pool
from talking_points.pipeline.progress import track

__all__ = [
    "NoKeypoint",
    "IngestedSource",
    "ImageJob",
    "MineResult",
    "read_ingested",
    "image_jobs",
    "read_image",
    "mine_image",
    "mine_sources",
]


class NoKeypoint(str, Enum):
    """Why an image gave no keypoint (a counted skip, not an error)."""

    no_parts = "no annotated parts"
    no_sift = "no SIFT keypoints"
    off_parts = "no keypoint inside a part"
    near_border = "no keypoint far enough from a part border"


@dataclass(frozen=True)
class IngestedSource:
    """The three tables of one ingested source folder."""

    name: str
    folder: Path
    images: pd.DataFrame
    objects: pd.DataFrame
    parts: pd.DataFrame


@dataclass(frozen=True)
class ImageJob:
    """Everything needed to mine one image; `objects` / `parts` are its table rows in table order."""

    folder: str
    path: str  # the image file, resolved against the root
    image: dict[str, Any]
    objects: list[dict[str, Any]]
    parts: list[dict[str, Any]]


@dataclass
class MineResult:
    keypoints: pd.DataFrame  # balanced across sources, schema.KEYPOINTS columns
    report: dict[str, Any]  # 'warnings': source -> why, for those that balancing cut by more than half
    skips: SkipLog  # bad input over all sources
    mined: dict[str, int] = field(default_factory=dict)  # keypoints per source before balancing


def read_ingested(folder: str | os.PathLike) -> IngestedSource:
    """Read and validate an ingested source folder (images / objects / parts parquet)."""
    folder = Path(folder)
    images = read_table(folder / "images.parquet", schema.IMAGES)
    objects = read_table(folder / "objects.parquet", schema.OBJECTS)
    parts = read_table(folder / "parts.parquet", schema.PARTS)
    names = images["source"].unique().tolist()
    if len(names) != 1:
        raise BadInput(folder / "images.parquet", "not one source", f"source column holds {names}")
    return IngestedSource(str(names[0]), folder, images, objects, parts)


def _records_by_image(table: pd.DataFrame) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in table.to_dict(orient="records"):
        out.setdefault(row["image_id"], []).append(row)
    return out


def image_jobs(src: IngestedSource, root: str | os.PathLike) -> list[ImageJob]:
    """One job per image of `src`, in table order; relative image files are resolved against `root`."""
    objects = _records_by_image(src.objects)
    parts = _records_by_image(src.parts)
    jobs = []
    for image in src.images.to_dict(orient="records"):
        file = Path(image["file"])
        path = file if file.is_absolute() else Path(root) / file
        iid = image["image_id"]
        jobs.append(ImageJob(str(src.folder), str(path), image, objects.get(iid, []), parts.get(iid, [])))
    return jobs


def read_image(path: str, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file as stored (`data.images.read_rgb`: EXIF orientation ignored,
    like the masks), which must be `width` x `height` (the images table's size, i.e. the masks' size).

    BadInput as `read_rgb` (missing, corrupt or unreadable file), or 'mask size disagrees with image'.
    """
    rgb = read_rgb(path)
    if rgb.shape[:2] != (height, width):
        raise BadInput(
            path,
            "mask size disagrees with image",
            f"image file is {rgb.shape[1]}x{rgb.shape[0]}, its masks (images table) are {width}x{height}",
        )
    return rgb


def _part_mask(job: ImageJob, part: dict, height: int, width: int) -> np.ndarray:
    where = f"{job.folder}/parts.parquet [{part['part_id']}]"
    try:
        mask = masks.decode(part["mask_rle"], height, width)
    except Exception as exc:  # pycocotools raises ValueError/TypeError on a malformed or oversized RLE
        raise BadInput(where, "corrupt mask", f"cannot decode at {width}x{height}: {exc}") from None
    if masks.area(mask) != part["area"]:
        raise BadInput(
            where, "corrupt mask", f"decodes to {masks.area(mask)} pixels at {width}x{height}, table says {part['area']}"
        )
    return mask


def _optional(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def mine_image(job: ImageJob, cfg: MineConfig) -> tuple[list[dict], NoKeypoint | None]:
    """Keypoint rows (schema.KEYPOINTS columns) of one image, or no rows and the reason. Raises BadInput."""
    image = job.image
    width, height = int(image["width"]), int(image["height"])
    if not job.parts:
        return [], NoKeypoint.no_parts
    rgb = read_image(job.path, width, height)
    objects = {o["object_id"]: o for o in job.objects}
    for part in job.parts:
        if part["object_id"] not in objects:
            raise BadInput(f"{job.folder}/parts.parquet [{part['part_id']}]", "part of an unknown object",
                           f"object {part['object_id']!r} is not in objects.parquet")
    part_masks = [_part_mask(job, p, height, width) for p in job.parts]

    cands = sift.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cfg.sift)
    if not len(cands):
        return [], NoKeypoint.no_sift
    col, row = sift.pixel_of(cands.x, cands.y, width, height)
    part = selection.part_labels(part_masks, (height, width))[row, col]
    on_part = part != selection.BACKGROUND
    if not on_part.any():
        return [], NoKeypoint.off_parts
    dist = np.zeros(len(cands), dtype=np.float64)
    for p in np.unique(part[on_part]):
        here = part == p
        dist[here] = selection.border_distance(part_masks[p])[row[here], col[here]]
    ok = np.flatnonzero(on_part & (dist >= cfg.border_px(width, height)))  # a fraction of the shorter side
    if not ok.size:
        return [], NoKeypoint.near_border
    min_sep_px = cfg.min_separation * math.hypot(width, height)
    kept = ok[selection.select(cands.take(ok), part[ok], cfg.top_k, cfg.one_per_part, min_sep_px)]

    edges = patch.edge_magnitude(rgb)
    obj_cols = geometry.object_columns(job.objects, width, height, cfg.edge_margin)
    repeated = geometry.part_order_columns(job.parts)
    n_parts = Counter(p["object_id"] for p in job.parts)
    rows = []
    for k, i in enumerate(kept):
        prow = job.parts[part[i]]
        obj = objects[prow["object_id"]]
        rows.append(
            {
                "kp_id": f"{image['image_id']}#k{k}",
                "image_id": image["image_id"],
                "source": image["source"],
                "file": image["file"],
                "width": width,
                "height": height,
                "object_id": obj["object_id"],
                "category": obj["category"],
                "part_id": prow["part_id"],
                "part": prow["part"],
                "response": float(cands.response[i]),
                "sift_size": float(cands.size[i]),
                "border_dist": float(dist[i]),
                **geometry.point_columns(float(cands.x[i]), float(cands.y[i]), prow, width, height),
                **obj_cols[obj["object_id"]],
                **geometry.part_columns(prow, obj, n_parts[obj["object_id"]], width, height),
                **repeated[prow["part_id"]],
                **patch.patch_stats(rgb, edges, part_masks[part[i]], int(col[i]), int(row[i]), cfg.patch_radius),
                "part_colour": _optional(prow.get("colour")),
                "part_texture": _optional(prow.get("texture")),
            }
        )
    return rows, None


@dataclass(frozen=True)
class _Outcome:
    rows: list[dict]
    empty: NoKeypoint | None
    bad: BadInput | None  # handled in the parent, where the on_error policy and the skip log live


def _run(job: ImageJob, cfg: MineConfig) -> _Outcome:
    try:
        rows, empty = mine_image(job, cfg)
    except BadInput as err:
        return _Outcome([], None, err)
    return _Outcome(rows, empty, None)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the processes are the parallelism; OpenCV threads on top would oversubscribe


def _mine_one_source(
    src: IngestedSource, cfg: MineConfig, root: Path, pool: ProcessPoolExecutor | None, skips: SkipLog
) -> tuple[list[dict], dict[str, Any]]:
    jobs = image_jobs(src, root)
    run = partial(_run, cfg=cfg)
    if pool is None:
        outcomes = map(run, jobs)
    else:
        outcomes = pool.map(run, jobs, chunksize=max(1, min(32, len(jobs) // (cfg.workers * 16))))
    own = SkipLog(policy=cfg.on_error)
    empty: Counter[str] = Counter()
    rows: list[dict] = []
    with_kp = 0
    for out in track(outcomes, f"mine {src.name}", total=len(jobs), unit="img"):
        if out.bad is not None:
            own.handle(out.bad)  # raises under the strict policy
        elif out.empty is not None:
            empty[out.empty.value] += 1
        else:
            with_kp += 1
            rows.extend(out.rows)
    skips.merge(own)
    report = {
        "folder": str(src.folder),
        "images": len(jobs),
        "images_with_keypoints": with_kp,
        "keypoints_mined": len(rows),
        "no_keypoints": dict(empty),
        **own.as_dict(),
    }
    return rows, report


def mine_sources(
    folders: Sequence[str | os.PathLike], cfg: MineConfig, root: str | os.PathLike | None = None
) -> MineResult:
    """Mine every image of the ingested source `folders` and balance the sources (`mine.balance`, see `sampling`).

    Relative image files are resolved against `root` (default: the working directory, i.e. the repo root).
    """
    if not folders:
        raise ValueError("no ingested source folders given")
    root = Path.cwd() if root is None else Path(root)
    sources = [read_ingested(f) for f in folders]
    seen: dict[str, Path] = {}
    for src in sources:
        if src.name in seen:
            raise BadInput(src.folder, "duplicate source", f"{src.name!r} is also in {seen[src.name]}")
        seen[src.name] = src.folder
    skips = SkipLog(policy=cfg.on_error)
    reports: dict[str, dict] = {}
    mined: list[pd.DataFrame] = []
    pool = process_pool(cfg.workers, initializer=_init_worker) if cfg.workers > 1 else None
    try:
        for src in sources:
            rows, reports[src.name] = _mine_one_source(src, cfg, root, pool, skips)
            if not rows:
                raise BadInput(src.folder, "no keypoints mined", str(reports[src.name]))
            mined.append(pd.DataFrame(rows, columns=schema.KEYPOINTS.names))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    names = [s.name for s in sources]
    counts = {s.name: len(df) for s, df in zip(sources, mined)}
    table = balance(pd.concat(mined, ignore_index=True), names, cfg.per_source, cfg.seed, cfg.balance)
    sampled = table["source"].value_counts().to_dict()
    kept = [int(sampled.get(name, 0)) for name in names]
    for name, k in zip(names, kept):
        reports[name]["keypoints_sampled"] = k
    report = {
        "sources": reports,
        "keypoints": len(table),
        "per_source": kept[0] if len(set(kept)) == 1 else None,  # None: the sources keep different counts
        "balance": cfg.balance.value,
        "warnings": discard_warnings(counts, sampled, cfg.balance),
        "seed": cfg.seed,
        **{f"total_{k}": v for k, v in skips.as_dict().items() if k != "examples"},
    }
    return MineResult(table, report, skips, counts)

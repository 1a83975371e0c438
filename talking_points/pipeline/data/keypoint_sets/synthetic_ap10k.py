"""Synthetic AP-10K: PartWorld quadrupeds of chosen families written as PNG images plus one json in the
AP-10K COCO-keypoint layout, to be read back with `coco_keypoints.read_coco_keypoints` like the real data.

Each image shows 1 to `max_animals` animals of one family (species drawn from that family, often the same
one repeated) on a PartWorld background; families differ in body plan (Bovidae: bulky, horned; Canidae:
slim, pointed or floppy ears; see `partworld.animals.QUADRUPED_SPECIES`). Image i depends only on
(seed, i) and the config.

What goes into the json, as AP-10K has it:

* images: id (1-based), file_name "<i:06d>.png", width, height, license 1;
* annotations: id (1-based, running over the file), image_id, category_id (AP-10K's own ids), bbox
  [x, y, w, h] of the animal's visible pixels, area = w * h (AP-10K stores the box area), iscrowd 0,
  num_keypoints, keypoints [x, y, v] * 17 in AP-10K order with x, y the integer pixel holding the point;
  v = 2 when that pixel shows this animal, 1 when it lies in the image but is covered (by another animal),
  0 (and x = y = 0) when it falls outside the image. Animals with no visible part are left out;
* categories: the species PartWorld can draw, with AP-10K's ids, names, supercategories, keypoint names
  and 1-based skeleton.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.config import Section
from talking_points.pipeline.data import masks
from talking_points.pipeline.data import partworld as pw
from talking_points.pipeline.data.keypoint_sets.layouts import AP10K
from talking_points.pipeline.data.partworld.animals import QUADRUPED_SPECIES, Family
from talking_points.pipeline.data.tables import atomic_path
from talking_points.pipeline.parallel import process_pool
from talking_points.pipeline.progress import track

__all__ = [
    "AP10K_CATEGORY_IDS",
    "ANNOTATION_FILE",
    "IMAGE_DIR",
    "SyntheticAP10KConfig",
    "family_species",
    "synthetic_image",
    "synthetic_scene",
    "write_synthetic_ap10k",
]

#: AP-10K's category ids of the species PartWorld draws (from the dataset's annotation files)
AP10K_CATEGORY_IDS: dict[str, int] = {
    "antelope": 1, "argali sheep": 2, "bison": 3, "buffalo": 4, "cow": 5, "sheep": 6,
    "arctic fox": 7, "dog": 8, "fox": 9, "wolf": 10, "horse": 21, "cat": 24,
}  # fmt: skip

ANNOTATION_FILE = "annotations.json"
IMAGE_DIR = "images"


def family_species(family: Family) -> tuple[str, ...]:
    """The species of `family` that PartWorld draws, in AP-10K id order."""
    names = [n for n, p in QUADRUPED_SPECIES.items() if p.family is family and n in AP10K_CATEGORY_IDS]
    return tuple(sorted(names, key=AP10K_CATEGORY_IDS.__getitem__))


class SyntheticAP10KConfig(Section):
    """Params of the synthetic AP-10K generator."""


    n_images: int = Field(600, ge=1)
    seed: int = Field(0, ge=0)
    width: int = Field(256, ge=64)
    height: int = Field(192, ge=64)
    families: list[Family] = Field(default_factory=lambda: [Family.bovidae, Family.canidae],
                                   description="each image shows animals of one of these, chosen uniformly")
    species: list[str] | None = Field(None, description="species allowed; null = every species of the "
                                      "families")
    min_animals: int = Field(1, ge=1)
    max_animals: int = Field(3, ge=1)
    same_species_prob: float = Field(0.5, ge=0, le=1, description="probability that a multi-animal image "
                                     "repeats one species")
    max_occlusion: float = Field(0.3, ge=0, lt=1, description="max hidden fraction of any animal")
    scale: tuple[float, float] = Field((0.3, 0.55), description="range of an animal's larger box side, as a "
                                       "fraction of the image width")

    @field_validator("families")
    @classmethod
    def _families(cls, families: list[Family]) -> list[Family]:
        if not families:
            raise ValueError("families is empty; list some of " + ", ".join(f.value for f in Family))
        if len(set(families)) != len(families):
            raise ValueError(f"families has duplicates: {[f.value for f in families]}")
        return families

    @field_validator("scale")
    @classmethod
    def _scale(cls, scale: tuple[float, float]) -> tuple[float, float]:
        lo, hi = scale
        if not 0 < lo < hi <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo < hi <= 1, got {list(scale)}")
        return scale

    @model_validator(mode="after")
    def _consistent(self) -> SyntheticAP10KConfig:
        if self.min_animals > self.max_animals:
            raise ValueError(f"min_animals ({self.min_animals}) must be <= max_animals ({self.max_animals})")
        if self.species is not None:
            if unknown := [s for s in self.species if s not in AP10K_CATEGORY_IDS]:
                raise ValueError(f"species: unknown {unknown}; known: {sorted(AP10K_CATEGORY_IDS)}")
            for family in self.families:
                if not set(family_species(family)) & set(self.species):
                    raise ValueError(f"species: none of {self.species} is of family {family.value}")
        return self

    def species_of(self, family: Family) -> tuple[str, ...]:
        """The species drawn for `family`."""
        return tuple(s for s in family_species(family) if self.species is None or s in self.species)


def _categories() -> list[dict]:
    skeleton = [list(pair) for pair in AP10K.skeleton]
    return [
        {"id": AP10K_CATEGORY_IDS[name], "name": name, "supercategory": QUADRUPED_SPECIES[name].family.value,
         "keypoints": list(AP10K.keypoints), "skeleton": skeleton}
        for name in sorted(AP10K_CATEGORY_IDS, key=AP10K_CATEGORY_IDS.get)
    ]


def _annotation(inst: pw.RenderedInstance, width: int, height: int) -> dict | None:
    """AP-10K annotation fields (no ids) of one rendered animal, or None when nothing of it shows (no part,
    or no keypoint inside the image)."""
    if not inst.parts or inst.keypoints is None or inst.keypoint_visible is None:
        return None
    kps: list[int] = []
    for (x, y), visible in zip(inst.keypoints, inst.keypoint_visible):
        col, row = math.floor(x), math.floor(y)
        inside = 0 <= col < width and 0 <= row < height
        kps.extend([col, row, 2 if visible else 1] if inside else [0, 0, 0])
    n_labelled = sum(1 for v in kps[2::3] if v > 0)
    if not n_labelled:
        return None
    x0, y0, x1, y1 = masks.bbox(inst.mask)
    return {
        "category_id": AP10K_CATEGORY_IDS[inst.spec.category],
        "bbox": [int(x0), int(y0), int(x1 - x0), int(y1 - y0)],
        "area": int((x1 - x0) * (y1 - y0)),
        "iscrowd": 0,
        "num_keypoints": n_labelled,
        "keypoints": kps,
    }


def synthetic_scene(cfg: SyntheticAP10KConfig, index: int) -> tuple[pw.RenderedScene, Family]:
    """The rendered PartWorld scene of image `index` and the family its animals belong to."""
    if not 0 <= index < cfg.n_images:
        raise ValueError(f"image {index} outside 0..{cfg.n_images - 1}")
    rng = np.random.default_rng([cfg.seed, index])
    family = cfg.families[int(rng.integers(len(cfg.families)))]
    scene_cfg = pw.PartWorldConfig(
        n_images=1, width=cfg.width, height=cfg.height, min_instances=cfg.min_animals,
        max_instances=cfg.max_animals, same_category_prob=cfg.same_species_prob,
        max_occlusion=cfg.max_occlusion, categories=list(cfg.species_of(family)), scale=cfg.scale,
    )
    return pw.render_scene(pw.sample_scene(scene_cfg, rng), rng), family


def synthetic_image(cfg: SyntheticAP10KConfig, index: int) -> tuple[np.ndarray, list[dict], Family]:
    """Pixels (H, W, 3 uint8 RGB), AP-10K annotations (without ids; in the scene's back-to-front order)
    and family of image `index`."""
    rendered, family = synthetic_scene(cfg, index)
    anns = [a for inst in rendered.instances if (a := _annotation(inst, cfg.width, cfg.height)) is not None]
    return rendered.pixels, anns, family


def _render_one(index: int, cfg: SyntheticAP10KConfig, image_dir: str) -> list[dict]:
    pixels, anns, _ = synthetic_image(cfg, index)
    Image.fromarray(pixels).save(Path(image_dir) / f"{index:06d}.png", compress_level=1)
    return anns


def write_synthetic_ap10k(cfg: SyntheticAP10KConfig, out_dir: str | Path, workers: int = 1) -> Path:
    """Render every image into `out_dir/images/<i:06d>.png` and write `out_dir/annotations.json`.

    Returns the json's path. The json is written last (atomically), so its presence means the images are
    complete. The result does not depend on `workers`.
    """
    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    indices: Sequence[int] = range(cfg.n_images)
    render = partial(_render_one, cfg=cfg, image_dir=str(image_dir))
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(process_pool(workers))
            results = pool.map(render, indices, chunksize=max(1, cfg.n_images // (workers * 16)))
        else:
            results = map(render, indices)
        per_image = list(track(results, "synthetic AP-10K", total=cfg.n_images, unit="img"))
    images, annotations = [], []
    for index, anns in zip(indices, per_image):
        images.append({"license": 1, "id": index + 1, "file_name": f"{index:06d}.png",
                       "width": cfg.width, "height": cfg.height})
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, **ann})
    data = {
        "info": {"description": "AP-10K-style synthetic animals (talking-points PartWorld)",
                 "version": "1.0", "config": cfg.model_dump(mode="json")},
        "licenses": [{"id": 1, "name": "generated"}],
        "images": images,
        "annotations": annotations,
        "categories": _categories(),
    }
    path = out_dir / ANNOTATION_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data))
    return path

"""PartWorld: procedurally generated, part-annotated scenes; the embedded default dataset.

Each image holds 1-4 objects from a dozen-plus categories (side-view quadrupeds built on a skeleton, a
bird, a person, furniture, vehicles, buildings, plants), each with named parts painted in palette colours
and textures, on a textured background. Sample i depends only on (seed, i).

The pieces, usable on their own (tests and the keypoint-mining code build scenes with a known layout):

* `CATEGORIES`: name -> `CategoryDef` (parts, per-part colour palettes, figure builder);
  `QUADRUPED_SPECIES`: name -> body-plan parameters (re-exported from `partworld.animals`).
* `InstanceSpec` / `SceneSpec`: what to draw; `sample_scene(cfg, rng)` draws a random one, placing objects
  in depth order with no object more than `max_occlusion` hidden.
* `render_scene(spec, rng) -> RenderedScene`: pixels, visible instance and part masks, part colours and
  textures, and the 17 AP-10K keypoints (+ visibility) of each quadruped.
* `scene_record(rendered, stem) -> ImageRecord`, and the ingest `ADAPTER`.

Geometry depends only on the spec (an instance's `shape_seed`), so `sample_scene` and `render_scene` agree
on every mask; the rng of `render_scene` only picks looks left open in the spec (colours, textures, noise).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.data.adapters.base import Adapter, SourceConfigBase
from talking_points.pipeline.data.colours import PALETTE
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.partworld.animals import (
    AP10K_KEYPOINTS,
    QUADRUPED_SPECIES,
    QuadrupedParams,
    ap10k_points,
    build_quadruped,
)
from talking_points.pipeline.data.partworld.looks import (
    TEXTURE_WEIGHTS,
    BackgroundSpec,
    Texture,
    paint_part,
    render_background,
    sample_background,
)
from talking_points.pipeline.data.partworld.objects import (
    build_bird,
    build_bottle,
    build_car,
    build_chair,
    build_house,
    build_lamp,
    build_person,
    build_table,
    build_tree,
)
from talking_points.pipeline.data.partworld.shapes import Figure, LabelMap, Placement, place, rasterise
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord

__all__ = [
    "ADAPTER",
    "AP10K_KEYPOINTS",
    "CATEGORIES",
    "DEFAULT_CATEGORIES",
    "PARTWORLD_ROOT",
    "QUADRUPED_SPECIES",
    "BackgroundSpec",
    "CategoryDef",
    "Facing",
    "InstanceSpec",
    "PartWorldConfig",
    "RenderedInstance",
    "RenderedPart",
    "RenderedScene",
    "SceneSpec",
    "Texture",
    "instance_figure",
    "list_samples",
    "load_sample",
    "quadruped_category",
    "render_scene",
    "sample_scene",
    "scene_record",
]

#: parts smaller than this (pixels, at the figure's full area) are always painted solid
SMALL_PART_PIXELS = 60
_PLACEMENT_TRIES, _PLACEMENT_ROUNDS, _SHRINK = 12, 8, 0.85


@dataclass(frozen=True)
class CategoryDef:
    """An object category: its parts (label order), colour palettes per part, which parts touch, and builder.

    `build(rng)` returns the category's `Figure` facing right (canonical with rng None). `grounded`
    objects stand on the ground; `quadruped` holds the body plan of skeleton-built animals.
    """

    name: str
    parts: tuple[str, ...]
    palettes: Mapping[str, tuple[str, ...]]
    adjacent: tuple[tuple[str, str], ...]
    build: Callable[[np.random.Generator | None], Figure]
    grounded: bool = True
    quadruped: QuadrupedParams | None = None

    def __post_init__(self) -> None:
        if len(self.parts) < 3:
            raise ValueError(f"category {self.name!r} needs at least three parts, has {self.parts}")
        for part in self.parts:
            bad = [c for c in self.palettes.get(part, ()) if c not in PALETTE]
            if part not in self.palettes or bad:
                raise ValueError(f"{self.name!r} part {part!r}: no palette, or unknown colours {bad}")


def quadruped_category(name: str, params: QuadrupedParams) -> CategoryDef:
    """The category of a quadruped species: its parts, palettes and which parts touch follow from `params`."""
    touching = [("head", "body"), ("legs", "body"), ("tail", "body"), ("ears", "head"), ("horns", "head"),
                ("mane", "body"), ("mane", "head")]
    parts = params.parts
    return CategoryDef(
        name=name,
        parts=parts,
        palettes=dict(params.palettes),
        adjacent=tuple((a, b) for a, b in touching if a in parts and b in parts),
        build=functools.partial(build_quadruped, params),
        quadruped=params,
    )


_ANY_BRIGHT = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
_OTHERS: tuple[CategoryDef, ...] = (
    CategoryDef(
        "bird", ("head", "body", "wing", "tail", "beak"),
        {"head": _ANY_BRIGHT + ("black", "white", "grey", "brown"),
         "body": ("red", "blue", "yellow", "brown", "grey", "black", "white", "green", "teal", "orange"),
         "wing": ("black", "brown", "grey", "blue", "white", "green", "red", "teal"),
         "tail": ("black", "brown", "grey", "blue", "white", "red", "teal"),
         "beak": ("orange", "yellow", "black", "grey")},
        (("head", "body"), ("wing", "body"), ("tail", "body"), ("beak", "head")),
        build_bird, grounded=False,
    ),
    CategoryDef(
        "person", ("head", "torso", "arms", "legs"),
        {"head": ("pink", "brown", "orange", "yellow"),
         "torso": _ANY_BRIGHT + ("white", "black", "grey"),
         "arms": ("pink", "brown", "orange") + _ANY_BRIGHT + ("white", "black", "grey"),
         "legs": ("blue", "black", "brown", "grey", "green", "teal")},
        (("head", "torso"), ("arms", "torso"), ("legs", "torso")),
        build_person,
    ),
    CategoryDef(
        "car", ("body", "windows", "wheels"),
        {"body": ("red", "blue", "yellow", "green", "white", "black", "grey", "orange", "teal", "purple"),
         "windows": ("teal", "blue", "grey", "black", "white"),
         "wheels": ("black", "grey")},
        (("windows", "body"), ("wheels", "body")),
        build_car,
    ),
    CategoryDef(
        "chair", ("seat", "back", "legs"),
        {"seat": ("brown", "red", "blue", "green", "orange", "white", "black", "grey", "yellow"),
         "back": ("brown", "red", "blue", "green", "orange", "white", "black", "grey", "yellow"),
         "legs": ("brown", "black", "grey", "white")},
        (("seat", "back"), ("seat", "legs")),
        build_chair,
    ),
    CategoryDef(
        "table", ("top", "legs", "drawer"),
        {"top": ("brown", "white", "grey", "black", "orange"),
         "legs": ("brown", "black", "grey", "white"),
         "drawer": ("brown", "orange", "white", "yellow", "grey", "red", "blue")},
        (("top", "legs"), ("top", "drawer")),
        build_table,
    ),
    CategoryDef(
        "bottle", ("body", "neck", "cap", "label"),
        {"body": ("green", "brown", "blue", "teal", "white", "red", "purple", "grey"),
         "neck": ("green", "brown", "blue", "teal", "white", "red", "purple", "grey"),
         "cap": ("red", "yellow", "white", "black", "blue", "grey", "orange"),
         "label": ("white", "yellow", "red", "pink", "orange", "blue")},
        (("body", "neck"), ("neck", "cap"), ("label", "body")),
        build_bottle,
    ),
    CategoryDef(
        "lamp", ("shade", "pole", "base"),
        {"shade": ("yellow", "white", "orange", "pink", "red", "green", "teal", "blue", "purple"),
         "pole": ("black", "grey", "brown", "white"),
         "base": ("black", "grey", "brown", "white")},
        (("shade", "pole"), ("pole", "base")),
        build_lamp,
    ),
    CategoryDef(
        "house", ("roof", "wall", "door", "windows", "chimney"),
        {"roof": ("red", "brown", "grey", "black", "blue", "orange"),
         "wall": ("white", "yellow", "pink", "orange", "grey", "brown", "teal"),
         "door": ("brown", "red", "blue", "green", "black"),
         "windows": ("blue", "teal", "white", "yellow", "grey"),
         "chimney": ("red", "brown", "grey", "black")},
        (("roof", "wall"), ("door", "wall"), ("windows", "wall"), ("chimney", "roof")),
        build_house,
    ),
    CategoryDef(
        "tree", ("crown", "trunk", "fruit"),
        {"crown": ("green", "green", "green", "green", "teal", "orange", "yellow"),
         "trunk": ("brown", "brown", "black", "grey"),
         "fruit": ("red", "orange", "yellow", "pink", "purple")},
        (("crown", "trunk"), ("fruit", "crown")),
        build_tree,
    ),
)

#: every category PartWorld can draw: the quadruped species and the other objects
CATEGORIES: dict[str, CategoryDef] = {
    **{name: quadruped_category(name, params) for name, params in QUADRUPED_SPECIES.items()},
    **{c.name: c for c in _OTHERS},
}

#: the categories of a default PartWorld scene (the extra AP-10K species are opt-in via `categories`)
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "dog", "cat", "horse", "cow", "sheep", "bird", "person", "car", "chair", "table", "bottle", "lamp",
    "house", "tree",
)  # fmt: skip


class Facing(str, Enum):
    left = "left"
    right = "right"


@dataclass(frozen=True)
class InstanceSpec:
    """One object to draw.

    (cx, cy): centre of its box in image pixels; `scale`: the box's larger side / image width; `shape_seed`:
    per-instance variation of the shape (pose, proportions), None for the canonical shape; `colours` /
    `textures`: part -> palette colour name / texture; parts left out are chosen when rendering.
    """

    category: str
    cx: float
    cy: float
    scale: float
    facing: Facing = Facing.right
    shape_seed: int | None = None
    colours: Mapping[str, str] | None = None
    textures: Mapping[str, Texture] | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; known: {sorted(CATEGORIES)}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        object.__setattr__(self, "facing", Facing(self.facing))
        parts = CATEGORIES[self.category].parts
        for what, given in (("colours", self.colours), ("textures", self.textures)):
            if given and (unknown := set(given) - set(parts)):
                raise ValueError(f"{what} names parts {sorted(unknown)}; a {self.category} has {parts}")
        if self.colours and (bad := [c for c in self.colours.values() if c not in PALETTE]):
            raise ValueError(f"unknown colour(s) {bad}; known: {sorted(PALETTE)}")
        if self.textures:
            object.__setattr__(self, "textures", {k: Texture(v) for k, v in self.textures.items()})


@dataclass(frozen=True)
class SceneSpec:
    """A scene: size, background and instances, painted in list order (back to front)."""

    width: int
    height: int
    background: BackgroundSpec = field(default_factory=BackgroundSpec)
    instances: tuple[InstanceSpec, ...] = ()
    min_part_pixels: int = 10  # parts with fewer visible pixels are left out

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", tuple(self.instances))
        if self.width < 1 or self.height < 1:
            raise ValueError(f"scene size must be positive, got {self.width}x{self.height}")


@dataclass
class RenderedPart:
    name: str
    mask: np.ndarray  # (H, W) bool, visible pixels
    colour: str
    texture: Texture


@dataclass
class RenderedInstance:
    """A drawn instance. `mask` is the union of its `parts` (those with enough visible pixels).

    For quadrupeds `keypoints` is (17, 2) float32 in image pixels (AP-10K order, `AP10K_KEYPOINTS`) and
    `keypoint_visible` (17,) bool: the keypoint's pixel is in the image and on this instance's visible mask
    (not covered by a later instance). Both are None for other categories.
    """

    spec: InstanceSpec
    mask: np.ndarray
    parts: list[RenderedPart]
    hidden_fraction: float  # of the figure's full area: covered by later instances or outside the image
    keypoints: np.ndarray | None = None
    keypoint_visible: np.ndarray | None = None


@dataclass
class RenderedScene:
    spec: SceneSpec
    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    instances: list[RenderedInstance]


#: Parts drawn as several pieces (a dog's legs, a car's wheels, a tree's fruit): every visible piece becomes a part
#: of its own, named in the singular, so that a description can say which one ('the leftmost of its four legs');
#: they share the group's colour and texture.
REPEATED_PARTS: dict[str, str] = {
    "legs": "leg", "arms": "arm", "ears": "ear", "horns": "horn", "windows": "window", "wheels": "wheel",
    "fruit": "fruit",
}


#: The `root` of a PartWorld source: it reads no dataset folder, its images come from this package's code, so
#: the generator is what a change of must rerun its ingest (dvc.yaml makes every source's root a dep).
PARTWORLD_ROOT = Path("talking_points/pipeline/data/partworld")


class PartWorldConfig(SourceConfigBase):
    """Params of a PartWorld source."""

    adapter: Literal["partworld"] = "partworld"
    root: Path = Field(PARTWORLD_ROOT, description="always talking_points/pipeline/data/partworld (the "
                       "generator's code, which DVC tracks in place of a dataset folder)")
    n_images: int = Field(2000, ge=1)
    seed: int = Field(0, ge=0)
    width: int = Field(192, ge=32)
    height: int = Field(144, ge=32)
    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(4, ge=1)
    same_category_prob: float = Field(0.6, ge=0, le=1, description="probability that a multi-instance scene "
                                      "repeats one category")
    max_occlusion: float = Field(0.4, ge=0, lt=1, description="max hidden fraction of any instance")
    categories: list[str] | None = Field(None, description="categories to draw; null = DEFAULT_CATEGORIES")
    scale: tuple[float, float] = Field((0.22, 0.45), description="range of an object's larger box side, as a "
                                       "fraction of the image width")
    min_part_pixels: int = Field(10, ge=1, description="parts with fewer visible pixels are left out")

    @field_validator("root")
    @classmethod
    def _generator_root(cls, root: Path) -> Path:
        if Path(os.path.normpath(root)) != PARTWORLD_ROOT:
            raise ValueError(f"a PartWorld source reads no dataset folder: its root must be {PARTWORLD_ROOT} "
                             f"(the generator, tracked by DVC in place of a dataset), got {root}")
        return root

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, cats: list[str] | None) -> list[str] | None:
        if cats is None:
            return None
        if not cats:
            raise ValueError(f"categories is empty; list some of {sorted(CATEGORIES)} (null: the default)")
        if unknown := [c for c in cats if c not in CATEGORIES]:
            raise ValueError(f"unknown categories {unknown}; known: {sorted(CATEGORIES)}")
        if len(set(cats)) != len(cats):
            raise ValueError(f"categories has duplicates: {cats}")
        return cats

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        lo, hi = scale
        if not 0 < lo < hi <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo < hi <= 1, got {list(scale)}")
        return scale

    @model_validator(mode="after")
    def _instance_range(self) -> PartWorldConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must be <= max_instances ({self.max_instances}); "
                "raise max_instances or lower min_instances"
            )
        return self


# ---------------------------------------------------------------------------------------------- geometry


def instance_figure(inst: InstanceSpec) -> Figure:
    """The figure of an instance in its local frame (facing right)."""
    rng = None if inst.shape_seed is None else np.random.default_rng(inst.shape_seed)
    return CATEGORIES[inst.category].build(rng)


class _Geometry(NamedTuple):
    figure: Figure
    placement: Placement
    labels: LabelMap


def _geometry(inst: InstanceSpec, width: int, fig: Figure | None = None) -> _Geometry:
    """Figure, placement and label map of `inst` (`fig`: its figure, when already built)."""
    fig = instance_figure(inst) if fig is None else fig
    plc = place(fig, inst.cx, inst.cy, inst.scale * width, inst.facing is Facing.left)
    return _Geometry(fig, plc, rasterise(fig, plc))


def _clip(lm: LabelMap, width: int, height: int) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """(image region, the label map's part inside it), or None when it lies outside the image."""
    h, w = lm.labels.shape
    x0, y0 = max(lm.x0, 0), max(lm.y0, 0)
    x1, y1 = min(lm.x0 + w, width), min(lm.y0 + h, height)
    if x0 >= x1 or y0 >= y1:
        return None
    sub = lm.labels[y0 - lm.y0 : y1 - lm.y0, x0 - lm.x0 : x1 - lm.x0]
    return (slice(y0, y1), slice(x0, x1)), sub


def _owners(maps: Sequence[LabelMap], width: int, height: int) -> np.ndarray:
    """(H, W) int16: index of the front-most instance at each pixel, -1 for background."""
    owner = np.full((height, width), -1, dtype=np.int16)
    for k, lm in enumerate(maps):
        if (clipped := _clip(lm, width, height)) is not None:
            region, sub = clipped
            owner[region][sub > 0] = k
    return owner


def _hidden(maps: Sequence[LabelMap], owner: np.ndarray) -> list[float]:
    return [1.0 - np.count_nonzero(owner == k) / max(lm.full_area, 1) for k, lm in enumerate(maps)]


# ------------------------------------------------------------------------------------------------ looks


def _choose_look(
    inst: InstanceSpec, areas: Mapping[str, int], rng: np.random.Generator
) -> tuple[dict[str, str], dict[str, Texture]]:
    """Colours and textures of every part, keeping those given in `inst`; touching parts differ in colour."""
    cat = CATEGORIES[inst.category]
    colours = dict(inst.colours or {})
    for part in cat.parts:
        if part in colours:
            continue
        banned = {colours.get(b if a == part else a) for a, b in cat.adjacent if part in (a, b)}
        options = [c for c in cat.palettes[part] if c not in banned]
        options = options or [c for c in PALETTE if c not in banned]
        colours[part] = options[int(rng.integers(len(options)))]
    textures = dict(inst.textures or {})
    kinds, cumulative = list(TEXTURE_WEIGHTS), np.cumsum(list(TEXTURE_WEIGHTS.values()))
    for part in cat.parts:
        if part not in textures:
            small = areas.get(part, 0) < SMALL_PART_PIXELS
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            textures[part] = Texture.solid if small else kinds[min(pick, len(kinds) - 1)]
    return colours, textures


# ------------------------------------------------------------------------------------------------ scenes


def sample_scene(cfg: PartWorldConfig, rng: np.random.Generator) -> SceneSpec:
    """A random scene: background, instances (often repeating a category), sizes, positions, looks.

    Instances are placed one at a time and painted back to front by the bottom of their box; a placement
    that would leave any instance more than `cfg.max_occlusion` hidden is redrawn (shrinking the newcomer
    after every few tries; one that still does not fit is left out).
    """
    return _sample(cfg, rng)[0]


def _sample(cfg: PartWorldConfig, rng: np.random.Generator) -> tuple[SceneSpec, list[_Geometry]]:
    """`sample_scene`, plus the geometry of its instances (what `render_scene` would compute again)."""
    width, height = cfg.width, cfg.height
    background = sample_background(rng)
    cats = tuple(cfg.categories or DEFAULT_CATEGORIES)
    n = int(rng.integers(cfg.min_instances, cfg.max_instances + 1))
    names = [cats[int(rng.integers(len(cats)))] for _ in range(n)]
    if n > 1 and rng.random() < cfg.same_category_prob:
        repeated = cats[int(rng.integers(len(cats)))]
        for i in rng.choice(n, int(rng.integers(2, n + 1)), replace=False):
            names[int(i)] = repeated
    lo, hi = cfg.scale

    placed: list[tuple[float, InstanceSpec, _Geometry]] = []  # (box bottom, spec, geometry), back to front
    for name in names:
        facing = Facing.left if rng.random() < 0.5 else Facing.right
        seed = int(rng.integers(2**31))
        fig = CATEGORIES[name].build(np.random.default_rng(seed))
        u0, v0, u1, v1 = fig.bbox
        longest = max(u1 - u0, v1 - v0)
        rel_w, rel_h = (u1 - u0) / longest, (v1 - v0) / longest
        size = min(rng.uniform(lo, hi) * width, 0.96 * width / rel_w, 0.96 * height / rel_h)
        grounded = CATEGORIES[name].grounded and background.horizon > 0
        for attempt in range(_PLACEMENT_TRIES * _PLACEMENT_ROUNDS):
            if attempt and attempt % _PLACEMENT_TRIES == 0:
                size *= _SHRINK
            w, h = size * rel_w, size * rel_h
            cx = rng.uniform(w / 2 + 1, max(width - w / 2 - 1, w / 2 + 1))
            bottom_lo = h + 1
            if grounded:
                bottom_lo = max(bottom_lo, min(background.horizon * height + 0.25 * h, height - 1.0))
            bottom = rng.uniform(bottom_lo, height - 1.0) if bottom_lo < height - 1 else height - 1.0
            spec = InstanceSpec(name, cx, bottom - h / 2, size / width, facing, seed)
            geom = _geometry(spec, width, fig)
            trial = sorted([*placed, (bottom, spec, geom)], key=lambda t: t[0])
            maps = [t[2].labels for t in trial]
            if max(_hidden(maps, _owners(maps, width, height))) <= cfg.max_occlusion:
                placed = trial
                break

    instances = []
    for _, spec, geom in placed:
        colours, textures = _choose_look(spec, geom.labels.part_areas(), rng)
        instances.append(replace(spec, colours=colours, textures=textures))
    scene = SceneSpec(width, height, background, tuple(instances), cfg.min_part_pixels)
    return scene, [t[2] for t in placed]


def render_scene(spec: SceneSpec, rng: np.random.Generator | None = None) -> RenderedScene:
    """Paint `spec` (instances back to front) and derive visible masks, looks and keypoints.

    `rng` only picks what `spec` leaves open (part colours/textures not given, texture phases, colour
    jitter, background noise); geometry depends on `spec` alone.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    return _render(spec, rng, [_geometry(inst, spec.width) for inst in spec.instances])


def _render(spec: SceneSpec, rng: np.random.Generator, geoms: Sequence[_Geometry]) -> RenderedScene:
    width, height = spec.width, spec.height
    pixels = render_background(spec.background, width, height, rng)
    maps = [g.labels for g in geoms]
    owner = _owners(maps, width, height)
    hidden = _hidden(maps, owner)

    instances = []
    for k, (inst, (fig, plc, lm)) in enumerate(zip(spec.instances, geoms)):
        colours, textures = _choose_look(inst, lm.part_areas(), rng)
        parts: list[RenderedPart] = []
        inst_mask = np.zeros((height, width), dtype=bool)
        if (clipped := _clip(lm, width, height)) is not None:
            region, sub = clipped
            oy, ox = region[0].start, region[1].start
            visible = owner[region] == k
            pieces = lm.pieces[region[0].start - lm.y0 : region[0].stop - lm.y0,
                               region[1].start - lm.x0 : region[1].stop - lm.x0]
            for i, name in enumerate(fig.parts):
                drawn = sub == i + 1
                ys, xs = np.nonzero(drawn)
                if ys.size:
                    rgb = paint_part(textures[name], colours[name], xs + ox, ys + oy, rng)
                    pixels[ys + oy, xs + ox] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
                part_vis = visible & drawn
                if name in REPEATED_PARTS:  # one part per visible piece: the dog's four legs, one by one
                    shown = [(REPEATED_PARTS[name], part_vis & (pieces == v)) for v in np.unique(pieces[part_vis])]
                else:
                    shown = [(name, part_vis)]
                for part_name, piece_vis in shown:
                    if np.count_nonzero(piece_vis) >= spec.min_part_pixels:
                        mask = np.zeros((height, width), dtype=bool)
                        mask[region] = piece_vis
                        inst_mask[region] |= piece_vis
                        parts.append(RenderedPart(part_name, mask, colours[name], textures[name]))
        kps = vis = None
        if CATEGORIES[inst.category].quadruped is not None:
            placed_pts = {name: plc.point(u, v) for name, (u, v) in fig.points.items()}
            kps = ap10k_points(placed_pts, plc.mirror)
            vis = np.zeros(len(kps), dtype=bool)
            for i, (x, y) in enumerate(kps):
                c, r = math.floor(x), math.floor(y)
                vis[i] = 0 <= c < width and 0 <= r < height and bool(inst_mask[r, c])
        instances.append(RenderedInstance(inst, inst_mask, parts, hidden[k], kps, vis))
    return RenderedScene(spec=spec, pixels=pixels, instances=instances)


def scene_record(rendered: RenderedScene, stem: str) -> ImageRecord:
    """The ingest record of a rendered scene (instances with no visible part left out)."""
    objects = [
        ObjectRecord(
            category=inst.spec.category,
            mask=inst.mask,
            parts=[PartRecord(p.name, p.mask, p.colour, p.texture.value) for p in inst.parts],
        )
        for inst in rendered.instances
        if inst.parts
    ]
    return ImageRecord(
        stem=stem, width=rendered.spec.width, height=rendered.spec.height, objects=objects,
        pixels=rendered.pixels, origin=f"partworld:{stem}",
    )


# ----------------------------------------------------------------------------------------------- adapter


def list_samples(cfg: PartWorldConfig) -> list[str]:
    """Keys "000000" ... of the `n_images` samples."""
    return [f"{i:06d}" for i in range(cfg.n_images)]


def load_sample(cfg: PartWorldConfig, key: str) -> ImageRecord:
    """Generate sample `key`; it depends only on (cfg.seed, int(key)) and the scene parameters of `cfg`."""
    try:
        index = int(key)
    except ValueError:
        raise BadInput(f"partworld:{key}", "bad sample key", "keys are numbers like '000042'") from None
    if not 0 <= index < cfg.n_images:
        raise BadInput(f"partworld:{key}", "bad sample key", f"sample {index} outside 0..{cfg.n_images - 1}")
    rng = np.random.default_rng([cfg.seed, index])
    spec, geoms = _sample(cfg, rng)
    rendered = _render(spec, rng, geoms)  # = render_scene(spec, rng), without building the figures again
    return scene_record(rendered, f"pw_{index:06d}")


ADAPTER = Adapter(
    name="partworld",
    config=PartWorldConfig,
    list_samples=list_samples,
    load_sample=load_sample,
    generated=True,
)

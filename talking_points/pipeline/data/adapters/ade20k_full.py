"""Adapter for the full ADE20K release (ADE20K_2021_17_01): per-image json + encoded PNG maps.

Per image `<name>`: `<name>.jpg`, `<name>.json` (`annotation.object`: one entry per object or part, with
`id`, `name` (a WordNet synonym list), `name_ndx`, `parts.part_level` (0 object, 1 part, 2 part of a
part), `parts.ispartof` (the owner's id), `instance_mask`), `<name>_seg.png` (objects) and
`<name>_parts_1.png` (first-level parts), and optionally `<name>/instance_XXX_<name>.png` (one mask per
entry). In the RGB maps, as in ADE20K's `utils_ade20k.loadAde20K`, the class is R/10*256 + G (equal to the
json `name_ndx`) and B tells the instances of a class apart.

Linking json entries to pixels. An entry's instance is the (class, B) pair of its map: read from its
instance mask when the file is there (the pair under most of the mask's 255-valued pixels), otherwise by
order: the remaining json entries of a class, by increasing id, take the remaining B values of that class,
by increasing value (this is how the release numbers them; it holds for every pair in the sample that has
an instance mask). The visible mask is then the map's pixels of that pair, so objects and parts agree with
`_seg.png` / `_parts_1.png`. When the counts do not match, the entry cannot be linked and the image is bad.

Only objects with first-level parts are kept unless `objects_without_parts` is true; deeper parts (level 2)
are not used. Names are the first synonym of `name` ('van', 'license plate').
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from talking_points.pipeline.data.adapters.base import Adapter, SourceConfigBase
from talking_points.pipeline.data.adapters.common import (
    MALFORMED_JSON,
    MALFORMED_ROW,
    MISSING_ANNOTATION,
    UNREADABLE_ANNOTATION,
    check_size,
    first_synonym,
    image_size,
    inside_root,
    read_json,
    read_label_map,
    require_dir,
)
from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.records import ImageRecord, ObjectRecord, PartRecord

__all__ = ["ADAPTER", "Ade20kFullConfig", "Entry", "decode_map", "list_samples", "load_sample"]

NOT_LINKABLE = "instances not linkable"


class Ade20kFullConfig(SourceConfigBase):
    """A folder tree of the full ADE20K release (any sub-tree of ADE20K_2021_17_01/images/ADE)."""

    adapter: Literal["ade20k_full"] = "ade20k_full"
    root: Path = Field(description="folder searched recursively for <name>.json next to <name>.jpg")
    objects_without_parts: bool = Field(False, description="also keep objects that have no annotated parts")


@dataclass(frozen=True)
class Entry:
    """One json object entry, validated."""

    id: int
    name: str
    name_ndx: int
    level: int
    owner: int | None
    instance_mask: str | None


def list_samples(cfg: Ade20kFullConfig) -> list[str]:
    """Sorted paths (relative to root, without '.json') of the json files that have a '<name>.jpg' or a
    '<name>_seg.png' next to them."""
    root = require_dir(cfg.root, "ADE20K images with their json and PNG annotations",
                       "set 'root' to ADE20K_2021_17_01/images/ADE or a sub-folder of it")
    keys = []
    for path in root.rglob("*.json"):
        if path.with_suffix(".jpg").is_file() or path.with_name(f"{path.stem}_seg.png").is_file():
            keys.append(path.relative_to(root).with_suffix("").as_posix())
    return sorted(keys)


def decode_map(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, instance) maps of an ADE20K RGB-encoded PNG: class = R/10*256 + G, instance = B."""
    r, g, b = (rgb[..., c].astype(np.int32) for c in range(3))
    return (r // 10) * 256 + g, b


def _owner(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value in ([], "", None):
        return None
    raise ValueError(f"ispartof must be an id or [], got {value!r}")


def _entries(objects: Any, where: Path) -> list[Entry]:
    if not isinstance(objects, list):
        raise BadInput(where, MALFORMED_JSON, "annotation.object must be a list")
    entries = []
    for k, obj in enumerate(objects):
        try:
            parts = obj["parts"]
            mask = obj.get("instance_mask")
            entry = Entry(id=int(obj["id"]), name=first_synonym(str(obj["name"])),
                          name_ndx=int(obj["name_ndx"]), level=int(parts["part_level"]),
                          owner=_owner(parts.get("ispartof")),
                          instance_mask=mask if isinstance(mask, str) and mask else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInput(f"{where}: object #{k}", MALFORMED_ROW, f"{type(exc).__name__}: {exc}") from None
        if not entry.name:
            raise BadInput(f"{where}: object #{k}", MALFORMED_ROW, "empty name")
        entries.append(entry)
    return entries


def _read_map(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = read_label_map(path)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise BadInput(path, UNREADABLE_ANNOTATION, f"expected an RGB-encoded map, got shape {rgb.shape}")
    check_size(rgb, width, height, "encoded map", path)
    return decode_map(rgb)


def _instance_file(folder: Path, name: str | None, where: str) -> Path | None:
    """The instance mask file an entry names, if it exists; BadInput if the name leaves `folder`."""
    if not name:
        return None
    path = inside_root(folder, name, where)
    return path if path.is_file() else None


def _link(entries: list[Entry], classes: np.ndarray, instances: np.ndarray, folder: Path,
          width: int, height: int, where: Path) -> dict[int, np.ndarray]:
    """{entry id: visible mask} for `entries` (all of one part level), linked to the (class, B) pairs."""
    by_class: dict[int, list[Entry]] = {}
    for e in entries:
        by_class.setdefault(e.name_ndx, []).append(e)
    masks: dict[int, np.ndarray] = {}
    for ndx, group in by_class.items():
        in_class = classes == ndx
        free = [int(v) for v in np.unique(instances[in_class])]
        linked: dict[int, int] = {}
        for e in group:  # entries with an instance mask file name their B value
            path = _instance_file(folder, e.instance_mask, f"{where}: object id {e.id}")
            if path is None:
                continue
            inst = check_size(read_label_map(path), width, height, "instance mask", path)
            inst = inst[..., 0] if inst.ndim == 3 else inst
            sel = (inst >= 255) if (inst >= 255).any() else inst > 0
            values, counts = np.unique(instances[sel & in_class], return_counts=True)
            if values.size and int(values[np.argmax(counts)]) in free:
                linked[e.id] = int(values[np.argmax(counts)])
                free.remove(linked[e.id])
        rest = sorted((e for e in group if e.id not in linked), key=lambda e: e.id)
        if len(rest) != len(free):
            raise BadInput(where, NOT_LINKABLE, f"{len(rest)} unlinked json entries of '{group[0].name}' "
                           f"(name_ndx {ndx}) but {len(free)} instances of that class in the map")
        linked.update({e.id: b for e, b in zip(rest, sorted(free), strict=True)})
        for e in group:
            masks[e.id] = in_class & (instances == linked[e.id])
    return masks


def load_sample(cfg: Ade20kFullConfig, key: str) -> ImageRecord:
    """One image with its part-bearing objects (or all objects) and their first-level parts."""
    if Path(key).is_absolute() or ".." in Path(key).parts:
        raise BadInput(key, "bad sample key", "keys are paths relative to root without '..'")
    json_path = cfg.root / f"{key}.json"
    data = read_json(json_path)
    ann = data.get("annotation") if isinstance(data, dict) else None
    if not isinstance(ann, dict):
        raise BadInput(json_path, MALFORMED_JSON, "expected an object with an 'annotation' object")
    entries = _entries(ann.get("object"), json_path)
    name = json_path.stem
    image = json_path.with_suffix(".jpg")
    width, height = image_size(image)
    objects = [e for e in entries if e.level == 0]
    parts = [e for e in entries if e.level == 1]
    children: dict[int, list[Entry]] = {}
    for p in parts:
        if p.owner is not None:
            children.setdefault(p.owner, []).append(p)
    keep = [o for o in objects if children.get(o.id) or cfg.objects_without_parts]
    records: list[ObjectRecord] = []
    if keep:
        seg = json_path.with_name(f"{name}_seg.png")
        if not seg.is_file():
            raise BadInput(seg, MISSING_ANNOTATION, "no such file")
        classes, instances = _read_map(seg, width, height)
        needed = {o.name_ndx for o in keep}
        object_masks = _link([o for o in objects if o.name_ndx in needed], classes, instances,
                             json_path.parent, width, height, json_path)
        part_masks: dict[int, np.ndarray] = {}
        wanted = [p for o in keep for p in children.get(o.id, [])]
        if wanted:
            parts_png = json_path.with_name(f"{name}_parts_1.png")
            if not parts_png.is_file():
                raise BadInput(parts_png, MISSING_ANNOTATION, "the json lists parts but there is no map")
            pclasses, pinstances = _read_map(parts_png, width, height)
            needed = {p.name_ndx for p in wanted}
            part_masks = _link([p for p in parts if p.name_ndx in needed], pclasses, pinstances,
                               json_path.parent, width, height, json_path)
        for o in keep:
            kids = sorted(children.get(o.id, []), key=lambda p: p.id)
            records.append(ObjectRecord(category=o.name, mask=object_masks[o.id],
                                        parts=[PartRecord(name=p.name, mask=part_masks[p.id]) for p in kids]))
    return ImageRecord(stem=name, width=width, height=height, objects=records, file=image,
                       origin=str(json_path))


ADAPTER = Adapter(name="ade20k_full", config=Ade20kFullConfig, list_samples=list_samples,
                  load_sample=load_sample)

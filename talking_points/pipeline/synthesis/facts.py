"""What one keypoint row states, as the discrete facts a description may claim.

`row_facts` checks a `schema.KEYPOINTS` row (names usable, values in range, ranks within the instance
count, position labels agreeing with the coordinates they summarise) and returns a `RowFacts`; a row
that fails raises `BadInput` naming its kp_id. Both the writer and the faithfulness check work from
`RowFacts`, so they read the columns the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.schema import EDGES, H_POSITIONS, V_POSITIONS
from talking_points.pipeline.synthesis.vocabulary import (
    COLOUR_NAMES,
    Brightness,
    Energy,
    OrderAxis,
    WordBins,
    canonical_texture,
    normalise_name,
    point_grade,
)

__all__ = ["RowFacts", "row_facts", "LABEL_TOLERANCE", "THIRD_BOUNDS"]

#: a third label may disagree with its coordinate by this much (rounding at 1/3 and 2/3) before the row is bad
LABEL_TOLERANCE = 0.02
THIRD_BOUNDS: dict[str, tuple[float, float]] = {
    "left": (0.0, 1 / 3),
    "center": (1 / 3, 2 / 3),
    "right": (2 / 3, 1.0),
    "top": (0.0, 1 / 3),
    "middle": (1 / 3, 2 / 3),
    "bottom": (2 / 3, 1.0),
}

_UNIT_COLUMNS = (
    "obj_cx",
    "obj_cy",
    "obj_area_frac",
    "part_cx_in_obj",
    "part_cy_in_obj",
    "kp_in_part_x",
    "kp_in_part_y",
    "patch_brightness",
    "patch_edge_energy",
)
_THIRDS = (
    ("obj_h_pos", "obj_cx", H_POSITIONS),
    ("obj_v_pos", "obj_cy", V_POSITIONS),
    ("part_h_in_obj", "part_cx_in_obj", H_POSITIONS),
    ("part_v_in_obj", "part_cy_in_obj", V_POSITIONS),
    ("kp_h_in_part", "kp_in_part_x", H_POSITIONS),
    ("kp_v_in_part", "kp_in_part_y", V_POSITIONS),
)


@dataclass(frozen=True)
class RowFacts:
    """The claims a row supports. Positions use the schema labels (left/center/right, top/middle/bottom)."""

    kp_id: str
    category: str
    part: str
    n_same: int
    ranks: dict[OrderAxis, int]  # 1-based, from left / top / largest
    obj_cx: float
    obj_cy: float
    scene_h: str
    scene_v: str
    edge: str  # none|left|right|top|bottom
    part_h: str
    part_v: str
    point_x: float  # 0..1 in the part box
    point_y: float
    point_h_label: str
    point_v_label: str
    colour: str  # patch colour, a palette name
    part_colour: str | None
    brightness: Brightness
    brightness_value: float
    energy: Energy
    energy_value: float
    texture: str | None  # canonical annotated texture, None when not annotated
    # how far the instance stands apart from its nearest same-category neighbour along each axis
    # (keypoints.geometry.order_separation); empty for a lone instance or a table without the columns
    separations: dict[OrderAxis, float] = field(default_factory=dict)
    # the part among its object's parts of the same name (a car's wheels): count, ranks and separations
    n_same_part: int = 1
    part_ranks: dict[OrderAxis, int] = field(default_factory=lambda: {a: 1 for a in OrderAxis})
    part_separations: dict[OrderAxis, float] = field(default_factory=dict)

    @property
    def point_h_grade(self) -> int:
        return point_grade(self.point_x - 0.5)

    @property
    def point_v_grade(self) -> int:
        return point_grade(self.point_y - 0.5)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def _name(row: Mapping, column: str, kp_id: str) -> str:
    raw = row.get(column)
    name = "" if _missing(raw) else normalise_name(raw)
    if not name:
        raise BadInput(kp_id, f"empty {column} name", f"{column}={raw!r}")
    if ";" in name:
        raise BadInput(
            kp_id, f"unusable {column} name", f"{column}={raw!r} contains ';', the level separator"
        )
    return name


def _unit(row: Mapping, column: str, kp_id: str) -> float:
    raw = row.get(column)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadInput(kp_id, "value out of range", f"{column}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise BadInput(kp_id, "value out of range", f"{column}={raw!r} is outside [0, 1]")
    return value


def _int(row: Mapping, column: str, kp_id: str) -> int:
    raw = row.get(column)
    try:
        value = float(raw)
        ok = value == int(value)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise BadInput(kp_id, "rank out of range", f"{column}={raw!r} is not an integer")
    return int(value)


def _orders(
    row: Mapping, kp_id: str, count_column: str, prefix: str
) -> tuple[int, dict[OrderAxis, int], dict[OrderAxis, float]]:
    """(count, ranks, separations) of the instance among its kind: the object among the objects of its category
    (`n_same`, `order_*`) or the part among its object's parts of the same name (`n_same_part`, `part_order_*`)."""
    n = _int(row, count_column, kp_id)
    if n < 1:
        raise BadInput(kp_id, "rank out of range", f"{count_column}={n} < 1")
    ranks, separations = {}, {}
    for axis in OrderAxis:
        column = f"{prefix}{axis.value}"
        rank = _int(row, column, kp_id)
        if not 1 <= rank <= n:
            raise BadInput(kp_id, "rank out of range", f"{column}={rank} with {count_column}={n}")
        ranks[axis] = rank
        value = row.get(f"{prefix}sep_{axis.value}")
        if n > 1 and not _missing(value):
            value = float(value)
            if not value >= 0:
                raise BadInput(kp_id, "separation out of range", f"{prefix}sep_{axis.value}={value} < 0")
            separations[axis] = value
    return n, ranks, separations


def row_facts(row: Mapping, bins: WordBins) -> RowFacts:
    """Check one KEYPOINTS row and return its facts; raises `BadInput` (where = kp_id) for a bad row."""
    kp_id = row.get("kp_id")
    if _missing(kp_id) or not str(kp_id).strip():
        raise BadInput(f"keypoint {kp_id!r}", "missing kp_id")
    kp_id = str(kp_id)
    category = _name(row, "category", kp_id)
    part = _name(row, "part", kp_id)
    unit = {c: _unit(row, c, kp_id) for c in _UNIT_COLUMNS}

    n_same, ranks, separations = _orders(row, kp_id, "n_same", "order_")
    if _missing(row.get("n_same_part")):  # a table mined before repeated parts were told apart
        n_same_part, part_ranks, part_separations = 1, {a: 1 for a in OrderAxis}, {}
    else:
        n_same_part, part_ranks, part_separations = _orders(row, kp_id, "n_same_part", "part_order_")

    labels = {}
    for label_col, value_col, allowed in _THIRDS:
        label = row.get(label_col)
        if label not in allowed:
            raise BadInput(
                kp_id, "unknown position label", f"{label_col}={label!r}, expected one of {allowed}"
            )
        lo, hi = THIRD_BOUNDS[label]
        value = unit[value_col]
        if not lo - LABEL_TOLERANCE <= value <= hi + LABEL_TOLERANCE:
            raise BadInput(
                kp_id,
                "position label contradicts coordinates",
                f"{label_col}={label!r} but {value_col}={value:.3f}",
            )
        labels[label_col] = label
    edge = row.get("obj_edge")
    if edge not in EDGES:
        raise BadInput(kp_id, "unknown position label", f"obj_edge={edge!r}, expected one of {EDGES}")

    colour = row.get("patch_colour")
    colour = "" if _missing(colour) else normalise_name(colour)
    if colour not in COLOUR_NAMES:
        raise BadInput(
            kp_id,
            "unknown colour name",
            f"patch_colour={row.get('patch_colour')!r}, expected one of {COLOUR_NAMES}",
        )
    part_colour = row.get("part_colour")
    part_colour = (
        None if _missing(part_colour) or not str(part_colour).strip() else normalise_name(part_colour)
    )
    texture = row.get("part_texture")
    texture = None if _missing(texture) or not str(texture).strip() else canonical_texture(texture)
    if texture is not None and ";" in texture:
        raise BadInput(kp_id, "unusable part_texture name", f"part_texture={row.get('part_texture')!r}")

    return RowFacts(
        kp_id=kp_id,
        category=category,
        part=part,
        n_same=n_same,
        ranks=ranks,
        obj_cx=unit["obj_cx"],
        obj_cy=unit["obj_cy"],
        scene_h=labels["obj_h_pos"],
        scene_v=labels["obj_v_pos"],
        edge=edge,
        part_h=labels["part_h_in_obj"],
        part_v=labels["part_v_in_obj"],
        point_x=unit["kp_in_part_x"],
        point_y=unit["kp_in_part_y"],
        point_h_label=labels["kp_h_in_part"],
        point_v_label=labels["kp_v_in_part"],
        colour=colour,
        part_colour=part_colour,
        brightness=bins.brightness(unit["patch_brightness"]),
        brightness_value=unit["patch_brightness"],
        energy=bins.energy(unit["patch_edge_energy"]),
        energy_value=unit["patch_edge_energy"],
        texture=texture,
        separations=separations,
        n_same_part=n_same_part,
        part_ranks=part_ranks,
        part_separations=part_separations,
    )

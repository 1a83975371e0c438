"""The geometry columns of the keypoints table, from the annotation boxes and areas (no pixels needed).

Conventions (see also the column docs in `talking_points.pipeline.data.schema.KEYPOINTS`):

* Boxes are the tables' pixel boxes ``[x0, x1) x [y0, y1)``; a box centre is ``((x0 + x1) / 2, (y0 + y1) / 2)``.
* Thirds: a value v in [0, 1] falls in third ``min(floor(3 v), 2)``, i.e. [0, 1/3) left/top,
  [1/3, 2/3) center/middle, [2/3, 1] right/bottom.
* Object edge: the normalised gaps between the box and the image edges are left = x0 / W,
  right = 1 - x1 / W, top = y0 / H, bottom = 1 - y1 / H. The smallest gap names the edge if it is at most
  `edge_margin`, else "none"; equal gaps go to the first of left, right, top, bottom.
* Orders rank the instances of one category in one image, 1-based: `order_lr` by box centre x (ties:
  centre y, then annotation order), `order_tb` by box centre y (ties: centre x, then annotation order),
  `order_size` by mask area, largest first (ties: annotation order). Annotation order is the order of
  the rows in the objects table. Repeated parts (the parts of one object sharing a name: a car's wheels)
  are ranked the same way among themselves (`part_order_*`), in parts-table order.
* Positions relative to a box (part in object, point in part) are clipped to [0, 1]: a part whose mask
  leaks out of its object's mask, as real annotations sometimes do, still gets a position inside.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from talking_points.pipeline.data.schema import EDGES, H_POSITIONS, V_POSITIONS

__all__ = ["third", "nearest_edge", "ranks", "instance_orders", "object_columns", "order_separation",
           "part_order_columns", "LONE_PART", "part_columns", "point_columns"]

Row = Mapping[str, Any]


def third(value: float, names: Sequence[str]) -> str:
    """The name (of three) of the third of [0, 1] holding `value`."""
    return names[min(max(math.floor(value * 3), 0), 2)]


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def nearest_edge(x0: float, y0: float, x1: float, y1: float, margin: float) -> str:
    """Edge of the unit square that the normalised box is within `margin` of (nearest wins), or 'none'."""
    gaps = {"left": x0, "right": 1.0 - x1, "top": y0, "bottom": 1.0 - y1}
    edge = min(EDGES[1:], key=lambda e: gaps[e])  # min keeps the first of equal gaps
    return edge if gaps[edge] <= margin else "none"


def ranks(keys: Sequence[tuple]) -> list[int]:
    """1-based rank of each key in ascending order (keys must be distinct for the ranks to be)."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    out = [0] * len(keys)
    for r, i in enumerate(order, start=1):
        out[i] = r
    return out


def _centre(row: Row) -> tuple[float, float]:
    return (row["bbox_x0"] + row["bbox_x1"]) / 2.0, (row["bbox_y0"] + row["bbox_y1"]) / 2.0


def instance_orders(rows: Sequence[Row], group: Sequence[Any]) -> list[tuple[int, int, int, int, float, float, float]]:
    """For each row (objects or parts of one image, with boxes and areas), among the rows of its `group` (the
    category; for parts, the object and part name): (count, rank left-right, rank top-bottom, rank by size,
    separation lr, tb, size), ranks 1-based as described in the module docstring, separations as in
    `order_separation`."""
    members: dict[Any, list[int]] = defaultdict(list)
    for i, g in enumerate(group):
        members[g].append(i)
    out: list = [None] * len(rows)
    for idx in members.values():
        centres = [_centre(rows[i]) for i in idx]
        lr = ranks([(c[0], c[1], i) for c, i in zip(centres, idx)])
        tb = ranks([(c[1], c[0], i) for c, i in zip(centres, idx)])
        size = ranks([(-rows[i]["area"], i) for i in idx])
        same = [rows[j] for j in idx]
        for k, i in enumerate(idx):
            out[i] = (len(idx), lr[k], tb[k], size[k], *order_separation(same, k))
    return out


def object_columns(objects: Sequence[Row], width: int, height: int, edge_margin: float) -> dict[str, dict]:
    """Object-in-scene columns for every object of one image (objects-table rows in table order), by object_id."""
    orders = instance_orders(objects, [obj["category"] for obj in objects])
    out = {}
    for obj, (n_same, lr, tb, size, sep_lr, sep_tb, sep_size) in zip(objects, orders):
        x0, x1 = obj["bbox_x0"] / width, obj["bbox_x1"] / width
        y0, y1 = obj["bbox_y0"] / height, obj["bbox_y1"] / height
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        out[obj["object_id"]] = {
            "obj_x0": x0, "obj_y0": y0, "obj_x1": x1, "obj_y1": y1,
            "obj_cx": cx, "obj_cy": cy,
            "obj_area_frac": obj["area"] / (width * height),
            "obj_h_pos": third(cx, H_POSITIONS),
            "obj_v_pos": third(cy, V_POSITIONS),
            "obj_edge": nearest_edge(x0, y0, x1, y1, edge_margin),
            "n_objects": len(objects),
            "n_same": n_same,
            "order_lr": lr,
            "order_tb": tb,
            "order_size": size,
            "order_sep_lr": sep_lr,
            "order_sep_tb": sep_tb,
            "order_sep_size": sep_size,
        }
    return out


#: the repeated-part columns of a part that is the only one of its name in its object
LONE_PART: dict[str, float] = {
    "n_same_part": 1, "part_order_lr": 1, "part_order_tb": 1, "part_order_size": 1,
    "part_order_sep_lr": math.nan, "part_order_sep_tb": math.nan, "part_order_sep_size": math.nan,
}


def part_order_columns(parts: Sequence[Row]) -> dict[str, dict]:
    """Repeated-part columns for every part of one image (parts-table rows), by part_id: how many parts of its
    object share its name (the wheels of a car, Pascal-Part's `wheel_1..5`) and its ranks and separations among
    them, the same measures as the object orders."""
    orders = instance_orders(parts, [(p["object_id"], p["part"]) for p in parts])
    return {
        p["part_id"]: {
            "n_same_part": n, "part_order_lr": lr, "part_order_tb": tb, "part_order_size": size,
            "part_order_sep_lr": sep_lr, "part_order_sep_tb": sep_tb, "part_order_sep_size": sep_size,
        }
        for p, (n, lr, tb, size, sep_lr, sep_tb, sep_size) in zip(parts, orders)
    }


def order_separation(members: Sequence[Row], k: int) -> tuple[float, float, float]:
    """How far instance `k` of `members` (the objects of one category in one image) stands apart from the
    nearest other one along each ordering axis: left-right and top-bottom, the distance between box centres over
    the mean of the two boxes' extents along that axis (1: a box's width apart); size, |ln(area ratio)|. NaN for
    a lone instance. An order phrase is only meaningful along an axis that separates the instance
    (synthesis.sentences.order_axis)."""
    if len(members) < 2:
        return (math.nan, math.nan, math.nan)
    me = members[k]
    (cx, cy), w, h = _centre(me), me["bbox_x1"] - me["bbox_x0"], me["bbox_y1"] - me["bbox_y0"]
    lr = tb = size = math.inf
    for j, other in enumerate(members):
        if j == k:
            continue
        (ox, oy) = _centre(other)
        ow, oh = other["bbox_x1"] - other["bbox_x0"], other["bbox_y1"] - other["bbox_y0"]
        lr = min(lr, abs(cx - ox) / max((w + ow) / 2.0, 1e-6))
        tb = min(tb, abs(cy - oy) / max((h + oh) / 2.0, 1e-6))
        size = min(size, abs(math.log(max(me["area"], 1) / max(other["area"], 1))))
    return (float(lr), float(tb), float(size))


def part_columns(part: Row, obj: Row, n_parts: int, width: int, height: int) -> dict:
    """Part-in-object columns of one part (a parts-table row) of `obj` (an objects-table row)."""
    pcx, pcy = _centre(part)
    ow = obj["bbox_x1"] - obj["bbox_x0"]
    oh = obj["bbox_y1"] - obj["bbox_y0"]
    cx_in = _unit((pcx - obj["bbox_x0"]) / ow)
    cy_in = _unit((pcy - obj["bbox_y0"]) / oh)
    return {
        "part_x0": part["bbox_x0"] / width, "part_y0": part["bbox_y0"] / height,
        "part_x1": part["bbox_x1"] / width, "part_y1": part["bbox_y1"] / height,
        "part_cx_in_obj": cx_in,
        "part_cy_in_obj": cy_in,
        "part_h_in_obj": third(cx_in, H_POSITIONS),
        "part_v_in_obj": third(cy_in, V_POSITIONS),
        "part_area_frac": part["area"] / obj["area"],
        "n_parts": n_parts,
    }


def point_columns(x: float, y: float, part: Row, width: int, height: int) -> dict:
    """Point columns of a point (tables' pixel convention) inside `part` (a parts-table row)."""
    px = _unit((x - part["bbox_x0"]) / (part["bbox_x1"] - part["bbox_x0"]))
    py = _unit((y - part["bbox_y0"]) / (part["bbox_y1"] - part["bbox_y0"]))
    return {
        "x": x, "y": y,
        "x_norm": x / width, "y_norm": y / height,
        "kp_in_part_x": px,
        "kp_in_part_y": py,
        "kp_h_in_part": third(px, H_POSITIONS),
        "kp_v_in_part": third(py, V_POSITIONS),
    }

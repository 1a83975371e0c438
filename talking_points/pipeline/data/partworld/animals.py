"""PartWorld quadrupeds: a parametric side-view body plan built around a skeleton, with AP-10K keypoints.

A species is a `QuadrupedParams` (body proportions, neck, head shape, ears, horns, tail, palettes);
`build_quadruped` computes the skeleton's joints for one instance (optionally jittered by an rng: gait,
proportions, neck/head/tail angles) and draws the parts as shapes around them. The 17 AP-10K keypoints are
returned as the figure's named points, for the animal facing right (its right side towards the viewer);
`ap10k_points` swaps left/right for an animal drawn mirrored (facing left).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from talking_points.pipeline.data.partworld.shapes import (
    Capsule,
    Ellipse,
    Figure,
    Jitter,
    Polygon,
    Shape,
    superellipse,
    tube,
)

__all__ = [
    "AP10K_KEYPOINTS",
    "QUADRUPED_SPECIES",
    "EarType",
    "Family",
    "HornType",
    "QuadrupedParams",
    "TailType",
    "ap10k_points",
    "build_quadruped",
]

#: AP-10K keypoint names, in the dataset's order.
AP10K_KEYPOINTS: tuple[str, ...] = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail",
    "left_shoulder", "left_elbow", "left_front_paw",
    "right_shoulder", "right_elbow", "right_front_paw",
    "left_hip", "left_knee", "left_back_paw",
    "right_hip", "right_knee", "right_back_paw",
)  # fmt: skip


class Family(str, Enum):
    bovidae = "Bovidae"
    canidae = "Canidae"
    felidae = "Felidae"
    equidae = "Equidae"


class EarType(str, Enum):
    none = "none"
    pointed = "pointed"  # upright triangle (cat, fox, wolf)
    floppy = "floppy"  # hanging oval over the side of the head (dog)
    round = "round"  # small disc on top (arctic fox)
    side = "side"  # short oval sticking out backwards (cattle)


class HornType(str, Enum):
    none = "none"
    short = "short"  # short, curving forward-up (cow, bison)
    curled = "curled"  # ram's spiral around the side of the head (sheep)
    long = "long"  # long, thin, swept back (antelope)
    crescent = "crescent"  # heavy, sweeping back then up (buffalo)


class TailType(str, Enum):
    thin = "thin"  # even, slowly tapering
    bushy = "bushy"  # widening, then tapering (fox, wolf)
    tufted = "tufted"  # thin with a tuft at the end (cattle)
    stub = "stub"  # short and thick (sheep, antelope)


@dataclass(frozen=True)
class QuadrupedParams:
    """Body plan of one species. Lengths are in body lengths; angles in degrees."""

    family: Family
    palettes: Mapping[str, tuple[str, ...]]
    body_height: float = 0.42
    boxiness: float = 2.4  # superellipse exponent of the torso: 2 = ellipse, 4 = nearly a box
    wool: float = 0.0  # woolly bumps on the torso outline (fraction of its radius)
    hump: float = 0.0  # shoulder hump height
    leg_length: float = 0.55  # below the torso
    leg_width: float = 0.13
    neck_length: float = 0.28
    neck_angle: float = 45.0  # above the horizontal
    neck_width: float = 0.24
    head_length: float = 0.42
    head_height: float = 0.26
    snout_tip: float = 0.4  # width of the snout tip / head height: small = pointed, large = blunt
    head_angle: float = 20.0  # nose below the horizontal
    ear: EarType = EarType.pointed
    ear_size: float = 0.16
    ears_are_part: bool = True  # False: ears are drawn as part of the head
    horn: HornType = HornType.none
    horn_size: float = 0.0
    tail: TailType = TailType.thin
    tail_length: float = 0.45
    tail_width: float = 0.07
    tail_angle: float = -30.0  # below the backward horizontal (negative: raised)
    tail_curl: float = 0.0  # turn per tail segment, towards down
    mane: bool = False

    @property
    def parts(self) -> tuple[str, ...]:
        """Part names, in label order."""
        parts = ["head", "body", "legs", "tail"]
        if self.ear is not EarType.none and self.ears_are_part:
            parts.append("ears")
        if self.horn is not HornType.none:
            parts.append("horns")
        if self.mane:
            parts.append("mane")
        return tuple(parts)

    def __post_init__(self) -> None:
        missing = set(self.parts) - set(self.palettes)
        if missing:
            raise ValueError(f"palettes lack parts {sorted(missing)}")


_COATS_DOG = ("brown", "black", "white", "orange", "grey")
QUADRUPED_SPECIES: dict[str, QuadrupedParams] = {
    "dog": QuadrupedParams(
        family=Family.canidae,
        palettes={"head": _COATS_DOG, "body": _COATS_DOG, "legs": _COATS_DOG, "tail": _COATS_DOG,
                  "ears": ("brown", "black", "white", "orange")},
        body_height=0.42, leg_length=0.5, leg_width=0.13, neck_length=0.26, neck_angle=50, neck_width=0.24,
        head_length=0.46, head_height=0.27, snout_tip=0.55, head_angle=15,
        ear=EarType.floppy, ear_size=0.26, tail=TailType.thin, tail_length=0.42, tail_width=0.08,
        tail_angle=-35, tail_curl=8,
    ),
    "cat": QuadrupedParams(
        family=Family.felidae,
        palettes={p: ("orange", "grey", "black", "white", "brown")
                  for p in ("head", "body", "legs", "tail", "ears")},
        body_height=0.36, boxiness=2.2, leg_length=0.42, leg_width=0.11, neck_length=0.14, neck_angle=40,
        neck_width=0.2, head_length=0.32, head_height=0.27, snout_tip=0.5, head_angle=5,
        ear=EarType.pointed, ear_size=0.16, tail=TailType.thin, tail_length=0.58, tail_width=0.08,
        tail_angle=-62, tail_curl=18,
    ),
    "horse": QuadrupedParams(
        family=Family.equidae,
        palettes={"head": ("brown", "black", "white", "grey", "orange"),
                  "body": ("brown", "black", "white", "grey"),
                  "legs": ("brown", "black", "white", "grey"), "tail": ("black", "white", "brown", "grey"),
                  "mane": ("black", "white", "brown", "grey")},
        body_height=0.42, boxiness=2.4, leg_length=0.78, leg_width=0.12, neck_length=0.42, neck_angle=58,
        neck_width=0.24, head_length=0.52, head_height=0.22, snout_tip=0.65, head_angle=55,
        ear=EarType.pointed, ear_size=0.1, ears_are_part=False, tail=TailType.bushy, tail_length=0.5,
        tail_width=0.08, tail_angle=55, tail_curl=8, mane=True,
    ),
    "cow": QuadrupedParams(
        family=Family.bovidae,
        palettes={"head": ("white", "black", "brown"), "body": ("white", "black", "brown"),
                  "legs": ("white", "black", "brown", "grey"), "tail": ("black", "white", "brown"),
                  "horns": ("white", "grey", "yellow")},
        body_height=0.56, boxiness=3.6, leg_length=0.46, leg_width=0.16, neck_length=0.2, neck_angle=22,
        neck_width=0.34, head_length=0.54, head_height=0.27, snout_tip=0.72, head_angle=50,
        ear=EarType.side, ear_size=0.14, ears_are_part=False, horn=HornType.short, horn_size=0.2,
        tail=TailType.tufted, tail_length=0.55, tail_width=0.05, tail_angle=72, tail_curl=2,
    ),
    "sheep": QuadrupedParams(
        family=Family.bovidae,
        palettes={"head": ("black", "white", "brown", "grey"), "body": ("white", "grey"),
                  "legs": ("black", "grey", "white", "brown"), "tail": ("white", "grey", "black"),
                  "horns": ("brown", "yellow", "grey", "white")},
        body_height=0.6, boxiness=2.2, wool=0.07, leg_length=0.36, leg_width=0.11, neck_length=0.16,
        neck_angle=38, neck_width=0.26, head_length=0.36, head_height=0.24, snout_tip=0.5, head_angle=35,
        ear=EarType.none, horn=HornType.curled, horn_size=0.2, tail=TailType.stub, tail_length=0.16,
        tail_width=0.12, tail_angle=50,
    ),
    "fox": QuadrupedParams(
        family=Family.canidae,
        palettes={"head": ("orange", "brown"), "body": ("orange", "brown", "red"),
                  "legs": ("black", "brown", "orange"), "tail": ("orange", "white", "brown"),
                  "ears": ("black", "orange", "brown")},
        body_height=0.34, leg_length=0.4, leg_width=0.1, neck_length=0.2, neck_angle=35, neck_width=0.2,
        head_length=0.42, head_height=0.22, snout_tip=0.22, head_angle=12,
        ear=EarType.pointed, ear_size=0.2, tail=TailType.bushy, tail_length=0.62, tail_width=0.1,
        tail_angle=12, tail_curl=4,
    ),
    "wolf": QuadrupedParams(
        family=Family.canidae,
        palettes={p: ("grey", "white", "black", "brown") for p in ("head", "body", "legs", "tail", "ears")},
        body_height=0.42, leg_length=0.58, leg_width=0.12, neck_length=0.26, neck_angle=28, neck_width=0.26,
        head_length=0.46, head_height=0.26, snout_tip=0.3, head_angle=15,
        ear=EarType.pointed, ear_size=0.15, tail=TailType.bushy, tail_length=0.5, tail_width=0.09,
        tail_angle=50, tail_curl=4,
    ),
    "arctic fox": QuadrupedParams(
        family=Family.canidae,
        palettes={p: ("white", "grey") for p in ("head", "body", "legs", "tail", "ears")},
        body_height=0.4, boxiness=2.2, leg_length=0.32, leg_width=0.11, neck_length=0.14, neck_angle=35,
        neck_width=0.24, head_length=0.34, head_height=0.25, snout_tip=0.3, head_angle=10,
        ear=EarType.round, ear_size=0.12, tail=TailType.bushy, tail_length=0.55, tail_width=0.13,
        tail_angle=20, tail_curl=6,
    ),
    "bison": QuadrupedParams(
        family=Family.bovidae,
        palettes={"head": ("black", "brown"), "body": ("brown", "black"), "legs": ("black", "brown"),
                  "tail": ("black", "brown"), "horns": ("black", "grey", "white")},
        body_height=0.6, boxiness=3.0, hump=0.2, leg_length=0.38, leg_width=0.16, neck_length=0.16,
        neck_angle=5, neck_width=0.42, head_length=0.46, head_height=0.3, snout_tip=0.72, head_angle=60,
        ear=EarType.none, horn=HornType.short, horn_size=0.13, tail=TailType.tufted, tail_length=0.35,
        tail_width=0.05, tail_angle=70,
    ),
    "buffalo": QuadrupedParams(
        family=Family.bovidae,
        palettes={"head": ("black", "grey", "brown"), "body": ("black", "grey", "brown"),
                  "legs": ("black", "grey", "brown"), "tail": ("black", "grey"),
                  "horns": ("grey", "white", "black", "yellow")},
        body_height=0.55, boxiness=3.2, leg_length=0.42, leg_width=0.15, neck_length=0.2, neck_angle=15,
        neck_width=0.34, head_length=0.5, head_height=0.27, snout_tip=0.65, head_angle=40,
        ear=EarType.side, ear_size=0.13, ears_are_part=False, horn=HornType.crescent, horn_size=0.36,
        tail=TailType.tufted, tail_length=0.5, tail_width=0.05, tail_angle=72,
    ),
    "antelope": QuadrupedParams(
        family=Family.bovidae,
        palettes={"head": ("orange", "brown", "white"), "body": ("orange", "brown"),
                  "legs": ("white", "brown", "orange"), "tail": ("white", "black", "brown"),
                  "horns": ("black", "brown", "grey")},
        body_height=0.36, boxiness=2.3, leg_length=0.72, leg_width=0.09, neck_length=0.36, neck_angle=62,
        neck_width=0.16, head_length=0.34, head_height=0.18, snout_tip=0.45, head_angle=35,
        ear=EarType.pointed, ear_size=0.1, ears_are_part=False, horn=HornType.long, horn_size=0.42,
        tail=TailType.stub, tail_length=0.16, tail_width=0.07, tail_angle=40,
    ),
    "argali sheep": QuadrupedParams(  # wild sheep: no fleece, long legs, massive curled horns
        family=Family.bovidae,
        palettes={"head": ("brown", "grey", "orange"), "body": ("brown", "grey", "orange"),
                  "legs": ("white", "brown", "grey"), "tail": ("white", "brown"),
                  "horns": ("yellow", "brown", "grey", "white")},
        body_height=0.46, boxiness=2.5, leg_length=0.56, leg_width=0.11, neck_length=0.22, neck_angle=40,
        neck_width=0.28, head_length=0.38, head_height=0.26, snout_tip=0.5, head_angle=30,
        ear=EarType.side, ear_size=0.1, ears_are_part=False, horn=HornType.curled, horn_size=0.3,
        tail=TailType.stub, tail_length=0.14, tail_width=0.1, tail_angle=45,
    ),
}


def _v(x: float, y: float) -> np.ndarray:
    return np.array([x, y], dtype=np.float64)


def _pt(p: np.ndarray) -> tuple[float, float]:
    return float(p[0]), float(p[1])


def _dir(angle_deg: float) -> np.ndarray:
    """Unit vector at `angle_deg` clockwise from +x on screen (y down)."""
    t = math.radians(angle_deg)
    return _v(math.cos(t), math.sin(t))


def _down(swing_deg: float) -> np.ndarray:
    """Unit vector pointing down, swung forward (+x) by `swing_deg`."""
    t = math.radians(swing_deg)
    return _v(math.sin(t), math.cos(t))


@dataclass
class _Layers:
    """Shapes collected by depth layer, flattened back to front."""

    far: list[Shape] = field(default_factory=list)
    body: list[Shape] = field(default_factory=list)
    over_body: list[Shape] = field(default_factory=list)
    near_legs: list[Shape] = field(default_factory=list)
    head: list[Shape] = field(default_factory=list)
    front: list[Shape] = field(default_factory=list)

    def ordered(self) -> tuple[Shape, ...]:
        return (*self.far, *self.body, *self.over_body, *self.near_legs, *self.head, *self.front)


def build_quadruped(params: QuadrupedParams, rng: np.random.Generator | None = None) -> Figure:
    """Skeleton + shapes of one animal facing right, with the 17 AP-10K keypoints as named points.

    The right side faces the viewer: right legs, ear and horn are drawn in front, left ones behind.
    """
    p, j = params, Jitter(rng)
    length = j.rel(1.0, 0.05)
    a, b = length / 2, j.rel(p.body_height, 0.08) / 2
    leg_len, leg_w = j.rel(p.leg_length, 0.08), j.rel(p.leg_width, 0.08)
    layers, pts = _Layers(), {}

    # torso (+ hump), and the neck, all "body"
    layers.body.append(Polygon("body", superellipse(0.0, 0.0, a, b, p.boxiness, bumps=p.wool)))
    if p.hump:
        hump_height = 0.4 * b + 0.5 * p.hump
        layers.body.append(Ellipse("body", 0.22 * length, -0.6 * b, 0.28 * length, hump_height, -8.0))
    neck_dir = _dir(-j.add(p.neck_angle, 10.0))
    neck_base = _v(0.36 * length, -0.25 * b)
    neck_end = neck_base + neck_dir * j.rel(p.neck_length, 0.1)
    nw = p.neck_width / 2
    layers.body.append(Capsule("body", *_pt(neck_base), *_pt(neck_end), 1.15 * nw, 0.9 * nw))
    pts["neck"] = _pt(neck_base + neck_dir * 0.3 * p.neck_length)
    if p.mane:
        layers.over_body.append(_mane(neck_base, neck_end, nw, 0.07 * length))

    # head: cranium around the neck's end, snout along the head direction
    hh = j.rel(p.head_height, 0.06)
    head_dir = _dir(j.add(p.head_angle, 10.0))
    up = _v(head_dir[1], -head_dir[0])
    cranium = neck_end + neck_dir * 0.1 * hh
    head_deg = math.degrees(math.atan2(head_dir[1], head_dir[0]))
    layers.head.append(Ellipse("head", *_pt(cranium), 0.55 * hh, 0.5 * hh, head_deg))
    snout_start = cranium - up * 0.08 * hh
    tip_r = p.snout_tip * hh / 2
    snout_tip = snout_start + head_dir * max(j.rel(p.head_length, 0.06) - 0.55 * hh - tip_r, 0.15 * hh)
    layers.head.append(Capsule("head", *_pt(snout_start), *_pt(snout_tip), 0.42 * hh, tip_r))
    pts["nose"] = _pt(snout_tip + head_dir * 0.3 * tip_r)
    pts["right_eye"] = _pt(cranium + head_dir * 0.2 * hh + up * 0.18 * hh)
    pts["left_eye"] = _pt(cranium + head_dir * 0.27 * hh + up * 0.22 * hh)
    ear_part = "ears" if p.ears_are_part else "head"
    for near in (False, True):  # the far ear/horn peeks out a little further forward
        layer = layers.front if near else layers.far
        ear_at = cranium + head_dir * (0.0 if near else 0.16 * hh)
        horn_at = cranium + head_dir * (0.0 if near else 0.26 * hh)
        layer.extend(_ear(p.ear, ear_part, ear_at, head_dir, up, hh, p.ear_size, int(near)))
        layer.extend(_horn(p.horn, horn_at, head_dir, up, hh, p.horn_size, int(near)))

    # legs: shoulder/hip inside the torso, elbow/knee, paw at the ground
    ground = b + leg_len
    gait = 0.0 if rng is None else rng.uniform(-22.0, 22.0)
    bend = 0.0 if rng is None else rng.uniform(-8.0, 8.0)
    legs = (
        # (side, front?, x of the joint, upper swing, lower swing)
        ("left", True, 0.36, -gait, -0.4 * gait + bend),
        ("left", False, -0.22, 14.0 + gait, -14.0 + 0.4 * gait),
        ("right", True, 0.24, gait, 0.4 * gait - bend),
        ("right", False, -0.34, 14.0 - gait, -14.0 - 0.4 * gait),
    )
    for n, (side, front, x, swing_upper, swing_lower) in enumerate(legs):
        top = _v(x * length, (0.15 if front else 0.05) * b)
        upper = b + 0.38 * leg_len - top[1]  # elbow/knee a little below the belly, where it shows
        mid = top + _down(swing_upper) * upper
        paw = mid + _down(swing_lower) * (ground - top[1] - upper)
        thick = (0.56 if front else 0.7) * leg_w
        shapes = tube("legs", [_pt(top), _pt(mid), _pt(paw)], [thick, 0.5 * leg_w, 0.46 * leg_w], piece=n)
        (layers.near_legs if side == "right" else layers.far).extend(shapes)
        joint, bend_name, end = ("shoulder", "elbow", "front_paw") if front else ("hip", "knee", "back_paw")
        pts[f"{side}_{joint}"], pts[f"{side}_{bend_name}"] = _pt(top), _pt(mid)
        pts[f"{side}_{end}"] = _pt(paw)

    # tail: from just inside the rump
    t = math.radians(200.0)
    edge = _v(a * -abs(math.cos(t)) ** (2 / p.boxiness), b * -abs(math.sin(t)) ** (2 / p.boxiness))
    root = edge * 0.9
    layers.over_body.extend(_tail(p, j, root))
    pts["root_of_tail"] = _pt(root)

    return Figure(parts=p.parts, shapes=layers.ordered(), points={k: pts[k] for k in AP10K_KEYPOINTS})


def _mane(base: np.ndarray, end: np.ndarray, r: float, width: float) -> Polygon:
    d = end - base
    n = _v(d[1], -d[0]) / float(np.hypot(*d))
    if n[1] > 0:  # the side of the neck facing up
        n = -n
    ts = np.linspace(-0.15, 1.0, 8)
    inner = [base + d * t + n * 0.55 * r for t in ts]
    outer = [base + d * t + n * (r + width * (1.0 - 0.3 * t)) for t in ts[::-1]]
    return Polygon("mane", tuple(_pt(q) for q in inner + outer))


def _ear(kind: EarType, part: str, cranium: np.ndarray, fwd: np.ndarray, up: np.ndarray, hh: float,
         size: float, piece: int) -> list[Shape]:
    if kind is EarType.none:
        return []
    elif kind is EarType.pointed:
        base = cranium - fwd * 0.12 * hh + up * 0.3 * hh
        apex = base + (up * math.cos(0.25) - fwd * math.sin(0.25)) * size
        half = 0.3 * size
        return [Polygon(part, (_pt(base - fwd * half), _pt(base + fwd * half), _pt(apex)), piece)]
    elif kind is EarType.floppy:
        centre = cranium - fwd * 0.28 * hh - up * 0.2 * hh
        angle = 10.0 + 0.5 * math.degrees(math.atan2(fwd[1], fwd[0]))
        return [Ellipse(part, *_pt(centre), 0.2 * size, 0.5 * size, angle, piece)]
    elif kind is EarType.round:
        centre = cranium - fwd * 0.18 * hh + up * 0.45 * hh
        return [Ellipse(part, *_pt(centre), 0.45 * size, 0.45 * size, piece=piece)]
    elif kind is EarType.side:
        centre = cranium - fwd * 0.45 * hh + up * 0.2 * hh
        angle = math.degrees(math.atan2(fwd[1], fwd[0])) - 20.0
        return [Ellipse(part, *_pt(centre), 0.5 * size, 0.2 * size, angle, piece)]
    else:
        raise ValueError(f"unknown ear type {kind!r}")


def _horn(kind: HornType, cranium: np.ndarray, fwd: np.ndarray, up: np.ndarray, hh: float,
          size: float, piece: int) -> list[Shape]:
    """Horn shapes; they grow from the poll (head frame) but point up/back in the world frame, except the
    ram's curl, which wraps around the side of the head."""
    world_up, world_fwd = _v(0.0, -1.0), _v(1.0, 0.0)
    if kind is HornType.none:
        return []
    elif kind is HornType.short:
        base = cranium - fwd * 0.1 * hh + up * 0.38 * hh
        up, fwd = world_up, world_fwd
        path = [base, base + up * 0.6 * size - fwd * 0.15 * size, base + up * 0.95 * size + fwd * 0.08 * size]
        radii = [0.15 * hh, 0.11 * hh, 0.06 * hh]
    elif kind is HornType.curled:
        centre = cranium - fwd * 0.22 * hh + up * 0.08 * hh
        phis = np.radians(np.linspace(80.0, 330.0, 7))
        rs = 0.5 * hh * np.linspace(1.0, 0.55, 7)
        path = [centre + rs[i] * (math.cos(phis[i]) * fwd + math.sin(phis[i]) * up) for i in range(7)]
        radii = list(hh * np.linspace(0.2, 0.1, 7))
    elif kind is HornType.long:
        base = cranium - fwd * 0.05 * hh + up * 0.38 * hh
        up, fwd = world_up, world_fwd
        path = [base, base + up * 0.5 * size - fwd * 0.2 * size, base + up * 0.9 * size - fwd * 0.5 * size]
        radii = [0.14 * hh, 0.1 * hh, 0.05 * hh]
    elif kind is HornType.crescent:
        base = cranium - fwd * 0.05 * hh + up * 0.4 * hh
        up, fwd = world_up, world_fwd
        path = [base, base - fwd * 0.45 * size + up * 0.05 * size, base - fwd * 0.7 * size + up * 0.4 * size]
        radii = [0.22 * hh, 0.15 * hh, 0.07 * hh]
    else:
        raise ValueError(f"unknown horn type {kind!r}")
    return tube("horns", [_pt(q) for q in path], radii, piece)


def _tail(p: QuadrupedParams, j: Jitter, root: np.ndarray) -> list[Shape]:
    angle = j.add(p.tail_angle, 15.0)
    n_seg = 2 if p.tail is TailType.stub else 4
    seg = j.rel(p.tail_length, 0.1) / n_seg
    w = p.tail_width / 2
    if p.tail is TailType.thin:
        radii = [w, 0.95 * w, 0.85 * w, 0.75 * w, 0.65 * w]
    elif p.tail is TailType.bushy:
        radii = [0.9 * w, 1.5 * w, 1.9 * w, 1.7 * w, 0.8 * w]
    elif p.tail is TailType.tufted:
        radii = [w, 0.9 * w, 0.8 * w, 0.8 * w, 0.8 * w]
    elif p.tail is TailType.stub:
        radii = [w, 0.9 * w, 0.7 * w]
    else:
        raise ValueError(f"unknown tail type {p.tail!r}")
    path = [root]
    for i in range(n_seg):
        a = math.radians(angle + i * p.tail_curl)
        path.append(path[-1] + _v(-math.cos(a), math.sin(a)) * seg)
    shapes: list[Shape] = list(tube("tail", [_pt(q) for q in path], radii))
    if p.tail is TailType.tufted:
        end = path[-1]
        shapes.append(Ellipse("tail", *_pt(end + (end - path[-2]) * 0.25), 1.6 * w, 2.8 * w, 0.0))
    return shapes


def ap10k_points(points: Mapping[str, tuple[float, float]], mirrored: bool) -> np.ndarray:
    """(17, 2) keypoints in AP-10K order from a figure's placed points; mirrored figures swap left/right."""
    def name(k: str) -> str:
        if not mirrored:
            return k
        if k.startswith("left_"):
            return "right_" + k[5:]
        if k.startswith("right_"):
            return "left_" + k[6:]
        return k

    return np.array([points[name(k)] for k in AP10K_KEYPOINTS], dtype=np.float32)

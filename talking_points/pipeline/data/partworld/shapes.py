"""PartWorld figures: part-labelled vector shapes in a local frame, placed in an image and rasterised.

A `Figure` is what a category builder returns: its part names (the label order), the shapes in drawing
order (a later shape covers an earlier one, so every pixel belongs to exactly one part) and named points
(the quadrupeds' keypoints). The local frame has x to the right, y down and the object facing right;
`Placement` maps it into the image (uniform scale, optional mirror, translation) and `rasterise` draws the
label map with OpenCV at 1/16 pixel precision.

Image coordinates follow `talking_points.pipeline.data.schema`: pixel (col, row) has its centre at
(col + 0.5, row + 0.5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "Capsule",
    "Ellipse",
    "Figure",
    "Jitter",
    "LabelMap",
    "Placement",
    "Polygon",
    "Shape",
    "place",
    "rasterise",
    "rect",
    "superellipse",
    "tube",
]

_SHIFT = 4  # OpenCV fixed-point bits: coordinates in 1/16 pixel
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Ellipse:
    """Filled ellipse; `angle` in degrees, clockwise on screen (y down), as in OpenCV."""

    part: str
    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    piece: int = 0  # which one of a repeated part (the wheels of a car): 0, 1, ...


@dataclass(frozen=True)
class Polygon:
    """Filled polygon (any simple or self-touching outline)."""

    part: str
    points: tuple[tuple[float, float], ...]
    piece: int = 0  # which one of a repeated part (the wheels of a car): 0, 1, ...


@dataclass(frozen=True)
class Capsule:
    """Tapered capsule: a disc of radius r0 at (x0, y0), one of radius r1 at (x1, y1), and the band between"""

    part: str
    x0: float
    y0: float
    x1: float
    y1: float
    r0: float
    r1: float
    piece: int = 0  # which one of a repeated part (the wheels of a car): 0, 1, ...


Shape = Ellipse | Polygon | Capsule


@dataclass(frozen=True)
class Figure:
    """One object in its local frame: part names, shapes in drawing order, named points."""

    parts: tuple[str, ...]
    shapes: tuple[Shape, ...]
    points: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {s.part for s in self.shapes} - set(self.parts)
        if unknown:
            raise ValueError(f"figure shapes use undeclared parts {sorted(unknown)}; declared {self.parts}")
        if len(self.parts) > 254:
            raise ValueError("a figure has at most 254 parts")

    @functools.cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """(u0, v0, u1, v1) enclosing every shape, in the local frame."""
        boxes = [_shape_bbox(s) for s in self.shapes]
        x0, y0, x1, y1 = zip(*boxes)
        return min(x0), min(y0), max(x1), max(y1)


def _shape_bbox(s: Shape) -> tuple[float, float, float, float]:
    if isinstance(s, Ellipse):
        t = math.radians(s.angle)
        hx = math.hypot(s.rx * math.cos(t), s.ry * math.sin(t))
        hy = math.hypot(s.rx * math.sin(t), s.ry * math.cos(t))
        return s.cx - hx, s.cy - hy, s.cx + hx, s.cy + hy
    elif isinstance(s, Polygon):
        xs, ys = [p[0] for p in s.points], [p[1] for p in s.points]
        return min(xs), min(ys), max(xs), max(ys)
    elif isinstance(s, Capsule):
        return (
            min(s.x0 - s.r0, s.x1 - s.r1),
            min(s.y0 - s.r0, s.y1 - s.r1),
            max(s.x0 + s.r0, s.x1 + s.r1),
            max(s.y0 + s.r0, s.y1 + s.r1),
        )
    else:
        raise TypeError(f"not a shape: {s!r}")


def tube(
    part: str, points: Sequence[tuple[float, float]], radii: Sequence[float], piece: int = 0
) -> list[Capsule]:
    """A bent, tapered tube through `points` with the given radius at each point, as capsules (one `piece`)."""
    if len(points) != len(radii) or len(points) < 2:
        raise ValueError("a tube needs at least two points and one radius per point")
    return [
        Capsule(part, *points[i], *points[i + 1], radii[i], radii[i + 1], piece) for i in range(len(points) - 1)
    ]


def superellipse(
    cx: float,
    cy: float,
    a: float,
    b: float,
    exponent: float,
    n: int = 48,
    bumps: float = 0.0,
    n_bumps: int = 14,
) -> tuple[tuple[float, float], ...]:
    """Outline of |x/a|^e + |y/b|^e = 1 (e=2: ellipse, larger: boxier), optionally with woolly bumps."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2.0 / exponent)
    y = b * np.sign(s) * np.abs(s) ** (2.0 / exponent)
    if bumps:
        grow = 1.0 + bumps * (0.5 + 0.5 * np.cos(n_bumps * t))
        x, y = x * grow, y * grow
    return tuple(zip((cx + x).tolist(), (cy + y).tolist()))


def rect(part: str, x0: float, y0: float, x1: float, y1: float, piece: int = 0) -> Polygon:
    """Axis-aligned rectangle [x0, x1] x [y0, y1] as a polygon."""
    return Polygon(part, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), piece)


@dataclass(frozen=True)
class Placement:
    """Map local -> image: x = cx ± k (u - uc), y = cy + k (v - vc); minus when mirrored (facing left)."""

    k: float
    uc: float
    vc: float
    cx: float
    cy: float
    mirror: bool

    def point(self, u: float, v: float) -> tuple[float, float]:
        du = u - self.uc
        return self.cx + (-du if self.mirror else du) * self.k, self.cy + (v - self.vc) * self.k


def place(figure: Figure, cx: float, cy: float, size: float, mirror: bool) -> Placement:
    """Placement whose box is centred on (cx, cy) with its larger side `size` pixels long."""
    u0, v0, u1, v1 = figure.bbox
    k = size / max(u1 - u0, v1 - v0)
    return Placement(k=k, uc=(u0 + u1) / 2, vc=(v0 + v1) / 2, cx=cx, cy=cy, mirror=mirror)


@dataclass(frozen=True)
class LabelMap:
    """Rasterised figure: labels 0 = background, i + 1 = `parts[i]`; labels[0, 0] is image pixel (x0, y0);
    `pieces` holds each pixel's shape `piece` (which one of a repeated part)."""

    labels: np.ndarray
    x0: int
    y0: int
    parts: tuple[str, ...]
    pieces: np.ndarray | None = None

    @property
    def full_area(self) -> int:
        """Pixels of the whole figure, including any outside the image."""
        return int(np.count_nonzero(self.labels))

    def part_areas(self) -> dict[str, int]:
        counts = np.bincount(self.labels.ravel(), minlength=len(self.parts) + 1)
        return {p: int(counts[i + 1]) for i, p in enumerate(self.parts)}


def rasterise(figure: Figure, plc: Placement) -> LabelMap:
    """Draw `figure` under `plc` into a label map just large enough to hold it."""
    u0, v0, u1, v1 = figure.bbox
    xa, ya = plc.point(u0, v0)
    xb, yb = plc.point(u1, v1)
    x0 = math.floor(min(xa, xb)) - 1
    y0 = math.floor(min(ya, yb)) - 1
    w = math.ceil(max(xa, xb)) - x0 + 2
    h = math.ceil(max(ya, yb)) - y0 + 2
    labels = np.zeros((h, w), dtype=np.uint8)
    # image point (x, y) lies in pixel (floor x, floor y), which OpenCV centres at integer coordinates;
    # local (u, v) -> label-map fixed point: (su * u + ax, k * v + ay) * 16
    k = plc.k
    su = -k if plc.mirror else k
    ax = plc.cx - su * plc.uc - (x0 + 0.5)
    ay = plc.cy - k * plc.vc - (y0 + 0.5)
    index = {p: i + 1 for i, p in enumerate(figure.parts)}
    pieces = np.zeros((h, w), dtype=np.uint8)
    for s in figure.shapes:
        for target, value in ((labels, index[s.part]), (pieces, s.piece)):
            _draw(target, s, plc.mirror, su, k, ax, ay, value)
    return LabelMap(labels=labels, x0=x0, y0=y0, parts=figure.parts, pieces=pieces)


def _draw(target: np.ndarray, s: Shape, mirror: bool, su: float, k: float, ax: float, ay: float, value: int) -> None:
    if isinstance(s, Ellipse):
        centre = (round((su * s.cx + ax) * _ONE), round((k * s.cy + ay) * _ONE))
        axes = (max(0, round(s.rx * k * _ONE)), max(0, round(s.ry * k * _ONE)))
        angle = -s.angle if mirror else s.angle
        cv2.ellipse(target, centre, axes, angle, 0, 360, value, -1, cv2.LINE_8, _SHIFT)
    elif isinstance(s, Polygon):
        pts = np.asarray(s.points, dtype=np.float64) * (su, k) + (ax, ay)
        cv2.fillPoly(target, [np.round(pts * _ONE).astype(np.int32)], value, cv2.LINE_8, _SHIFT)
    elif isinstance(s, Capsule):
        _draw_capsule(target, s, su, k, ax, ay, value)
    else:
        raise TypeError(f"not a shape: {s!r}")


def _draw_capsule(
    labels: np.ndarray, s: Capsule, su: float, k: float, ax: float, ay: float, colour: int
) -> None:
    x0, y0 = su * s.x0 + ax, k * s.y0 + ay
    x1, y1 = su * s.x1 + ax, k * s.y1 + ay
    r0, r1 = s.r0 * k, s.r1 * k
    for x, y, r in ((x0, y0, r0), (x1, y1, r1)):
        centre, radius = (round(x * _ONE), round(y * _ONE)), max(0, round(r * _ONE))
        cv2.circle(labels, centre, radius, colour, -1, cv2.LINE_8, _SHIFT)
    length = math.hypot(x1 - x0, y1 - y0)
    if length < 1e-9:
        return
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    quad = np.array(
        [[x0 + nx * r0, y0 + ny * r0], [x1 + nx * r1, y1 + ny * r1], [x1 - nx * r1, y1 - ny * r1],
         [x0 - nx * r0, y0 - ny * r0]]
    )
    cv2.fillConvexPoly(labels, np.round(quad * _ONE).astype(np.int32), colour, cv2.LINE_8, _SHIFT)


class Jitter:
    """Per-instance variation of a figure; with no rng every value is its canonical one."""

    def __init__(self, rng: np.random.Generator | None):
        self.rng = rng

    def rel(self, value: float, amount: float) -> float:
        """`value` scaled by a random factor in [1 - amount, 1 + amount]."""
        return value if self.rng is None else value * (1.0 + self.rng.uniform(-amount, amount))

    def add(self, value: float, amount: float) -> float:
        """`value` plus a random offset in [-amount, amount]."""
        return value if self.rng is None else value + self.rng.uniform(-amount, amount)

    def chance(self, p: float, canonical: bool = False) -> bool:
        """True with probability `p` (`canonical` with no rng)."""
        return canonical if self.rng is None else bool(self.rng.random() < p)

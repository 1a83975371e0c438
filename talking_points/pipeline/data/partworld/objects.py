"""PartWorld objects other than the quadrupeds: one figure builder per category.

Each builder takes an optional rng for per-instance variation (pose, proportions) and returns a `Figure`
facing right, in a local frame with y down; with no rng it returns the category's canonical shape.
"""

from __future__ import annotations

import math

import numpy as np

from talking_points.pipeline.data.partworld.shapes import (
    Capsule,
    Ellipse,
    Figure,
    Jitter,
    Polygon,
    Shape,
    rect,
    tube,
)

__all__ = [
    "build_bird",
    "build_bottle",
    "build_car",
    "build_chair",
    "build_house",
    "build_lamp",
    "build_person",
    "build_table",
    "build_tree",
]


def build_bird(rng: np.random.Generator | None = None) -> Figure:
    """Side view: oval body tilted up at the front, round head, beak, fan tail, folded or raised wing."""
    j = Jitter(rng)
    tilt = j.add(-18.0, 8.0)
    head_r = j.rel(0.17, 0.1)
    hx, hy = 0.38, -0.26
    shapes: list[Shape] = [
        Polygon("tail", ((-0.28, -0.04), (-0.78, j.add(-0.2, 0.08)), (-0.8, j.add(0.08, 0.08)),
                         (-0.28, 0.12))),
        Ellipse("body", 0.0, 0.0, 0.44, j.rel(0.25, 0.1), tilt),
        Ellipse("head", hx, hy, head_r, head_r),
    ]
    beak_len = j.rel(0.24, 0.15)
    bx = hx + head_r * 0.75
    shapes.append(Polygon("beak", ((bx, hy - 0.07), (bx + beak_len, hy + 0.01), (bx, hy + 0.07))))
    if j.chance(0.4):  # raised wing, as in flight
        shapes.append(Polygon("wing", ((-0.22, -0.06), (0.16, -0.1), (0.02, -0.7), (-0.36, -0.58))))
    else:
        shapes.append(Ellipse("wing", -0.06, 0.0, 0.32, 0.14, tilt + 8.0))
    return Figure(parts=("head", "body", "wing", "tail", "beak"), shapes=tuple(shapes))


def build_person(rng: np.random.Generator | None = None) -> Figure:
    """Front view: legs, torso, arms (hanging, raised or on the hips), round head."""
    j = Jitter(rng)
    shoulder, hip = j.rel(0.21, 0.08), j.rel(0.16, 0.08)
    leg_r, arm_r = 0.07, 0.058
    stance = j.add(0.13, 0.05)
    shapes: list[Shape] = []
    for n, s in enumerate((-1, 1)):
        path = [(s * 0.09, 0.25), (s * stance, 0.62), (s * stance, 0.98)]
        shapes += tube("legs", path, [leg_r, leg_r, 0.95 * leg_r], piece=n)
    shapes.append(Polygon("torso", ((-shoulder, -0.36), (shoulder, -0.36), (hip, 0.32), (-hip, 0.32))))
    shapes.append(Ellipse("torso", 0.0, -0.35, shoulder, 0.07))
    for n, s in enumerate((-1, 1)):
        pose = 0 if rng is None else int(rng.integers(3))
        top = (s * (shoulder + 0.02), -0.3)
        if pose == 0:  # hanging
            path = [top, (s * (shoulder + 0.07), 0.0), (s * (shoulder + 0.08), 0.26)]
        elif pose == 1:  # raised
            path = [top, (s * (shoulder + 0.2), -0.5), (s * (shoulder + 0.24), -0.78)]
        else:  # on the hip
            path = [top, (s * (shoulder + 0.2), -0.05), (s * (hip + 0.03), 0.18)]
        shapes += tube("arms", path, [arm_r, arm_r, 0.9 * arm_r], piece=n)
    shapes.append(Ellipse("torso", 0.0, -0.42, 0.06, 0.08))  # neck
    shapes.append(Ellipse("head", 0.0, -0.58, 0.135, 0.15))
    return Figure(parts=("head", "torso", "arms", "legs"), shapes=tuple(shapes))


def build_car(rng: np.random.Generator | None = None) -> Figure:
    """Side view, front to the right: body with cabin, two windows, two wheels."""
    j = Jitter(rng)
    roof = j.add(-0.42, 0.08)
    back = j.add(-0.5, 0.12)  # rear end of the roof
    front = j.add(0.3, 0.1)
    body = (
        (-1.0, -0.08), (back - 0.08, -0.1), (back + 0.12, roof), (front, roof), (front + 0.28, -0.1),
        (0.92, -0.05), (1.0, 0.06), (1.0, 0.26), (-1.0, 0.26),
    )  # fmt: skip
    win_top, win_bot = roof + 0.07, -0.1
    pillar = (back + front) / 2 + 0.05
    windows = (
        Polygon("windows", ((back + 0.15, win_top), (pillar - 0.04, win_top), (pillar - 0.04, win_bot),
                            (back + 0.01, win_bot)), piece=0),
        Polygon("windows", ((pillar + 0.04, win_top), (front - 0.02, win_top), (front + 0.2, win_bot),
                            (pillar + 0.04, win_bot)), piece=1),
    )
    r = j.rel(0.2, 0.1)
    wheels = (Ellipse("wheels", -0.6, 0.26, r, r, piece=0), Ellipse("wheels", 0.6, 0.26, r, r, piece=1))
    return Figure(parts=("body", "windows", "wheels"), shapes=(Polygon("body", body), *windows, *wheels))


def build_chair(rng: np.random.Generator | None = None) -> Figure:
    """Side view, seat facing right: two legs, seat slab, tall back at the rear."""
    j = Jitter(rng)
    seat_y, leg_len = 0.0, j.rel(0.55, 0.1)
    back_h = j.rel(0.8, 0.12)
    lean = j.add(-0.08, 0.06)
    shapes: list[Shape] = [
        Capsule("legs", 0.36, seat_y, 0.4, seat_y + leg_len, 0.045, 0.04, piece=0),
        Capsule("legs", -0.36, seat_y, -0.4, seat_y + leg_len, 0.045, 0.04, piece=1),
        rect("seat", -0.46, seat_y - 0.05, 0.46, seat_y + 0.07),
        Polygon("back", ((-0.46, seat_y - 0.04), (-0.34, seat_y - 0.04), (-0.34 + lean, seat_y - back_h),
                         (-0.46 + lean, seat_y - back_h))),
    ]
    return Figure(parts=("seat", "back", "legs"), shapes=tuple(shapes))


def build_table(rng: np.random.Generator | None = None) -> Figure:
    """Side view: long top, two legs, a drawer under the top."""
    j = Jitter(rng)
    half, leg_len = j.rel(0.8, 0.12), j.rel(0.75, 0.12)
    shapes: list[Shape] = [
        rect("legs", -half + 0.08, 0.0, -half + 0.17, leg_len, piece=0),
        rect("legs", half - 0.17, 0.0, half - 0.08, leg_len, piece=1),
        rect("drawer", -0.35, 0.05, 0.35, 0.25),
        rect("top", -half, -0.07, half, 0.07),
    ]
    return Figure(parts=("top", "legs", "drawer"), shapes=tuple(shapes))


def build_bottle(rng: np.random.Generator | None = None) -> Figure:
    """Front view: body with sloped shoulders, a label band, narrow neck, cap."""
    j = Jitter(rng)
    w, neck_w = j.rel(0.23, 0.12), j.rel(0.08, 0.1)
    shoulder, neck_top = j.add(0.05, 0.08), j.add(-0.6, 0.08)
    shapes: list[Shape] = [
        Polygon("body", ((-w, 0.9), (-w, shoulder), (-neck_w, -0.25), (neck_w, -0.25), (w, shoulder),
                         (w, 0.9))),
        rect("neck", -neck_w, neck_top, neck_w, -0.2),
        rect("cap", -neck_w - 0.02, neck_top - 0.14, neck_w + 0.02, neck_top + 0.01),
        rect("label", -w, 0.3, w, j.add(0.62, 0.06)),
    ]
    return Figure(parts=("body", "neck", "cap", "label"), shapes=tuple(shapes))


def build_lamp(rng: np.random.Generator | None = None) -> Figure:
    """Front view: flat base, thin pole, trapezoid shade (optionally tilted)."""
    j = Jitter(rng)
    top_w, bot_w = j.rel(0.2, 0.15), j.rel(0.38, 0.12)
    pole_top = j.add(-0.2, 0.1)
    tilt = math.radians(j.add(0.0, 8.0))
    c, s = math.cos(tilt), math.sin(tilt)

    def rot(x: float, y: float) -> tuple[float, float]:
        y -= pole_top
        return x * c - y * s, pole_top + x * s + y * c

    shade = tuple(rot(x, y) for x, y in ((-top_w, pole_top - 0.4), (top_w, pole_top - 0.4),
                                         (bot_w, pole_top + 0.05), (-bot_w, pole_top + 0.05)))
    shapes: list[Shape] = [
        Capsule("pole", 0.0, 0.9, 0.0, pole_top, 0.04, 0.04),
        Polygon("base", ((-0.3, 1.0), (0.3, 1.0), (0.2, 0.86), (-0.2, 0.86))),
        Polygon("shade", shade),
    ]
    return Figure(parts=("shade", "pole", "base"), shapes=tuple(shapes))


def build_house(rng: np.random.Generator | None = None) -> Figure:
    """Front view: wall, overhanging roof, chimney, door to one side, two windows."""
    j = Jitter(rng)
    wall_h, roof_h = j.rel(0.8, 0.12), j.rel(0.65, 0.15)
    door = 1.0 if j.chance(0.5, canonical=True) else -1.0
    shapes: list[Shape] = [
        rect("chimney", 0.22, -roof_h, 0.38, -0.2),
        rect("wall", -0.6, -0.1, 0.6, wall_h - 0.1),
        Polygon("roof", ((-0.76, -0.05), (0.76, -0.05), (0.0, -0.05 - roof_h))),
        rect("door", door * 0.28 - 0.12, wall_h - 0.45, door * 0.28 + 0.12, wall_h - 0.1),
        rect("windows", -door * 0.3 - 0.13, 0.08, -door * 0.3 + 0.13, 0.3, piece=0),
        rect("windows", door * 0.28 - 0.1, 0.05, door * 0.28 + 0.1, 0.2, piece=1),
    ]
    return Figure(parts=("roof", "wall", "door", "windows", "chimney"), shapes=tuple(shapes))


def build_tree(rng: np.random.Generator | None = None) -> Figure:
    """Front view: tapered trunk, crown of overlapping discs, a few fruit."""
    j = Jitter(rng)
    crown_y, crown_r = -0.25, j.rel(0.42, 0.1)
    shapes: list[Shape] = [Polygon("trunk", ((-0.1, 1.0), (0.1, 1.0), (0.06, crown_y), (-0.06, crown_y)))]
    blobs = [(0.0, crown_y - 0.12, crown_r)]
    for ang in (200.0, 270.0, 340.0, 20.0, 160.0):
        a = math.radians(j.add(ang, 15.0))
        x, y = 0.48 * crown_r * math.cos(a), crown_y + 0.3 * crown_r * math.sin(a)
        blobs.append((x, y, j.rel(0.7, 0.15) * crown_r))
    shapes += [Ellipse("crown", x, y, r, r) for x, y, r in blobs]
    fruit_rng = rng if rng is not None else np.random.default_rng(7)
    n_fruit = int(fruit_rng.integers(4, 7))
    for n in range(n_fruit):
        a, d = fruit_rng.uniform(0, 2 * math.pi), crown_r * math.sqrt(fruit_rng.uniform(0.05, 0.55))
        x, y = 1.2 * d * math.cos(a), crown_y - 0.05 + d * math.sin(a)
        shapes.append(Ellipse("fruit", x, y, 0.065, 0.065, piece=n))
    return Figure(parts=("crown", "trunk", "fruit"), shapes=tuple(shapes))

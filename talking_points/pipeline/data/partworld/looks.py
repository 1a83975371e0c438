"""PartWorld appearance: part textures in palette colours, and scene backgrounds.

A part is painted in a jittered palette colour (`talking_points.pipeline.data.colours.PALETTE`) and one of
the `Texture`s; two-tone textures use a second shade of the same colour that is still named as that colour
by `colours.name_of`, so a patch's dominant colour is named back as the part's colour. Backgrounds use
muted tones that are not palette prototypes, so objects stand out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from talking_points.pipeline.data.colours import NAMES, PALETTE, lab, name_indices

__all__ = [
    "TEXTURE_WEIGHTS",
    "BackgroundKind",
    "BackgroundSpec",
    "Texture",
    "paint_part",
    "part_tones",
    "render_background",
    "sample_background",
]

_WHITE = np.array([255.0, 255.0, 255.0], dtype=np.float32)
_BLACK = np.zeros(3, dtype=np.float32)


class Texture(str, Enum):
    solid = "solid"
    striped = "striped"
    dotted = "dotted"
    checkered = "checkered"
    gradient = "gradient"


#: how often each texture is drawn for a part large enough to show it
TEXTURE_WEIGHTS: dict[Texture, float] = {
    Texture.solid: 0.3,
    Texture.striped: 0.175,
    Texture.dotted: 0.175,
    Texture.checkered: 0.175,
    Texture.gradient: 0.175,
}


def _names(rgbs: np.ndarray) -> list[str]:
    """`colours.name_of` for each row of an (N, 3) array, in one conversion."""
    return [NAMES[i] for i in name_indices(np.asarray(rgbs, dtype=np.float32).reshape(-1, 3))]


_JITTER = 12.0  # per channel, uniform
_SHADE_AMOUNTS = (0.42, 0.34, 0.26, 0.18, 0.1)  # two-tone textures: towards black (white for dark colours)
_GRADIENT_AMOUNTS = (0.3, 0.2, 0.12, 0.06)  # gradients: from a lighter to a darker tone


def part_tones(colour: str, texture: Texture, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The float32 RGB tones of one part, each still named `colour` by `colours.name_of`.

    solid: (base,); two-tone textures: (base, second shade); gradient: (light end, dark end). The base is
    the prototype plus uniform jitter (the first of a few draws named `colour`; the prototype if none is).
    """
    proto = np.asarray(PALETTE[colour], dtype=np.float32)
    bases = np.clip(proto + rng.uniform(-_JITTER, _JITTER, (4, 3)), 0, 255).astype(np.float32)
    bases = np.concatenate([bases, proto[None]])  # (5, 3); the prototype last, always named `colour`
    if texture is Texture.solid:
        targets: list[tuple[np.ndarray, tuple[float, ...]]] = []
    elif texture is Texture.gradient:
        targets = [(_WHITE, _GRADIENT_AMOUNTS), (_BLACK, _GRADIENT_AMOUNTS)]
    else:
        targets = [(_WHITE if lab(proto)[0] < 40.0 else _BLACK, _SHADE_AMOUNTS)]
    blocks = [bases] + [
        (bases[:, None, :] + (target - bases[:, None, :]) * np.asarray(amounts, np.float32)[None, :, None])
        for target, amounts in targets
    ]
    names = _names(np.concatenate([b.reshape(-1, 3) for b in blocks]))
    j = next(i for i in range(len(bases)) if names[i] == colour)
    tones = [bases[j]]
    offset = len(bases)
    for target, amounts in targets:
        row = names[offset + j * len(amounts) : offset + (j + 1) * len(amounts)]
        m = next((i for i, got in enumerate(row) if got == colour), None)
        tones.append(bases[j] if m is None else blocks[len(tones)][j, m])
        offset += len(bases) * len(amounts)
    if texture is Texture.gradient:
        return tones[1], tones[2]
    return tuple(tones)


def paint_part(
    texture: Texture, colour: str, xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """RGB (N, 3) float32 for the pixels (xs, ys) of one part painted in `colour` with `texture`."""
    tones = part_tones(colour, texture, rng)
    n = xs.size
    x, y = xs.astype(np.float32), ys.astype(np.float32)
    if texture is Texture.solid:
        out = np.broadcast_to(tones[0], (n, 3))
    elif texture is Texture.gradient:
        light, dark = tones
        a = rng.uniform(0, 2 * math.pi)
        proj = x * math.cos(a) + y * math.sin(a)
        lo, hi = float(proj.min()), float(proj.max())
        t = ((proj - lo) / max(hi - lo, 1.0))[:, None]
        out = light + (dark - light) * t
    else:
        base, shade = tones
        if texture is Texture.striped:
            period, a = rng.uniform(5.0, 7.5), rng.uniform(0, math.pi)
            phase = (x * math.cos(a) + y * math.sin(a)) / period + rng.random()
            on = (phase % 1.0) < 0.5
        elif texture is Texture.dotted:
            spacing, a = rng.uniform(5.0, 6.5), rng.uniform(0, math.pi / 2)
            u = (x * math.cos(a) + y * math.sin(a)) / spacing + rng.random()
            v = (-x * math.sin(a) + y * math.cos(a)) / spacing + rng.random()
            on = ((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < (rng.uniform(1.3, 1.7) / spacing) ** 2
        elif texture is Texture.checkered:
            cell = int(rng.integers(3, 6))
            ox, oy = rng.integers(0, cell, 2)
            on = (((xs + ox) // cell + (ys + oy) // cell) % 2).astype(bool)
        else:
            raise ValueError(f"unknown texture {texture!r}")
        out = np.where(on[:, None], shade, base)
    return out + rng.standard_normal((n, 1), dtype=np.float32) * 2.0


class BackgroundKind(str, Enum):
    sky_ground = "sky_ground"  # sky gradient above a horizon, noisy ground below
    gradient = "gradient"
    noise = "noise"  # smooth blotches
    stripes = "stripes"
    tiles = "tiles"


#: muted tones for backgrounds (no palette prototype, lowish saturation)
BACKGROUND_TONES: tuple[tuple[int, int, int], ...] = (
    (170, 195, 220),  # sky
    (205, 190, 155),  # sand
    (130, 155, 110),  # grass
    (180, 170, 200),  # lavender
    (215, 205, 185),  # beige
    (115, 125, 138),  # slate
    (170, 200, 182),  # mint
    (222, 192, 172),  # peach
    (152, 146, 136),  # stone
    (135, 125, 162),  # dusk
)


@dataclass(frozen=True)
class BackgroundSpec:
    """A scene background. `horizon` is the ground line as a fraction of the height (0 = no ground)."""

    kind: BackgroundKind = BackgroundKind.gradient
    colour_a: tuple[int, int, int] = (200, 205, 210)
    colour_b: tuple[int, int, int] = (170, 175, 180)
    horizon: float = 0.0
    period: float = 14.0  # stripes / tiles, pixels
    angle: float = 0.0  # gradient / stripes, degrees

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BackgroundKind(self.kind))
        if not 0.0 <= self.horizon < 1.0:
            raise ValueError(f"horizon must be in [0, 1), got {self.horizon}")
        if self.period <= 0:
            raise ValueError(f"period must be positive, got {self.period}")


def sample_background(rng: np.random.Generator) -> BackgroundSpec:
    """A random background: kind, two related muted tones, horizon, pattern period and angle."""
    kinds = list(BackgroundKind)
    kind = kinds[int(rng.choice(len(kinds), p=[0.36, 0.16, 0.16, 0.16, 0.16]))]
    i, k = rng.choice(len(BACKGROUND_TONES), 2, replace=False)
    a = np.asarray(BACKGROUND_TONES[i], dtype=np.float64) + rng.uniform(-10, 10, 3)
    other = np.asarray(BACKGROUND_TONES[k], dtype=np.float64)
    # sky and ground differ clearly; patterns are low-contrast variations of one tone
    b = other if kind is BackgroundKind.sky_ground else a + (other - a) * rng.uniform(0.3, 0.55)
    return BackgroundSpec(
        kind=kind,
        colour_a=tuple(int(v) for v in np.clip(a, 0, 255)),
        colour_b=tuple(int(v) for v in np.clip(b, 0, 255)),
        horizon=float(rng.uniform(0.3, 0.6)) if kind is BackgroundKind.sky_ground else 0.0,
        period=float(rng.uniform(8.0, 20.0)),
        angle=float(rng.uniform(0.0, 180.0)),
    )


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """(H, W) float32 in about [0, 1], varying over `cells` blotches across the larger side."""
    gw = max(2, round(cells * width / max(width, height)))
    gh = max(2, round(cells * height / max(width, height)))
    small = rng.random((gh, gw)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def render_background(spec: BackgroundSpec, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 RGB background."""
    a = np.asarray(spec.colour_a, dtype=np.float32)
    b = np.asarray(spec.colour_b, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    theta = math.radians(spec.angle)
    if spec.kind is BackgroundKind.sky_ground:
        horizon = spec.horizon * height
        sky_top = a + (_WHITE - a) * 0.35
        sky_t = np.clip(ys / max(horizon, 1.0), 0, 1)  # (H, 1)
        shade = 0.88 + 0.24 * _smooth_noise(rng, width, height, int(rng.integers(5, 10)))
        ground = shade * (1.0 - 0.15 * np.clip((ys - horizon) / max(height - horizon, 1.0), 0, 1))
        is_sky = np.broadcast_to(ys < horizon, (height, width))
        channels = [
            np.where(is_sky, sky_top[i] + (a[i] - sky_top[i]) * sky_t, b[i] * ground) for i in range(3)
        ]
    else:
        if spec.kind is BackgroundKind.gradient:
            along = xs * math.cos(theta) + ys * math.sin(theta)
            t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        elif spec.kind is BackgroundKind.noise:
            t = _smooth_noise(rng, width, height, int(rng.integers(3, 7)))
        elif spec.kind is BackgroundKind.stripes:
            along = xs * math.cos(theta) + ys * math.sin(theta)
            t = ((along / spec.period) % 1.0 < 0.5).astype(np.float32)
        elif spec.kind is BackgroundKind.tiles:
            p = spec.period
            t = ((xs // p + ys // p) % 2).astype(np.float32) * 0.6
            t = np.where((xs % p < 1.0) | (ys % p < 1.0), np.float32(1.0), t)  # grout lines
        else:
            raise ValueError(f"unknown background kind {spec.kind!r}")
        t = np.broadcast_to(t, (height, width))
        channels = [a[i] + (b[i] - a[i]) * t for i in range(3)]
    grain = rng.random((height, width), dtype=np.float32) * 6.0 - 3.0
    img = cv2.merge([(c + grain).astype(np.float32) for c in channels])
    return cv2.convertScaleAbs(img)  # rounds and saturates to uint8

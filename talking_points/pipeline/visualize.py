"""Drawing points and descriptions on an image: what `tp describe --draw`, `tp localize --draw` and the demo
show. Markers are filled discs with a dark outline and a label, so that two markers on the same pixel both
stay visible (the second one is drawn as a ring around the first) and no label covers a marker; the text is
wrapped into a band below the image, never cut."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from talking_points.pipeline.data.images import read_rgb

__all__ = ["Mark", "INPUT", "PREDICTED", "draw_marks", "read_rgb"]


@dataclass(frozen=True)
class Mark:
    x: float  # pixels, 0 = left edge of the image
    y: float
    colour: tuple[int, int, int]
    label: str


INPUT = (46, 204, 64)  # the point that was given (green)
PREDICTED = (255, 65, 54)  # the point a model put (red)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap size
        return ImageFont.load_default()


def draw_marks(image: np.ndarray, marks: list[Mark], text: str | None = None, min_width: int = 480) -> np.ndarray:
    """(H', W', 3) uint8: `image` ((H, W, 3) uint8 RGB) scaled up to at least `min_width` pixels wide, the
    marks drawn at their (scaled) positions, and `text` wrapped in a white band below."""
    h, w = image.shape[:2]
    scale = max(1.0, min_width / w)
    canvas = Image.fromarray(np.ascontiguousarray(image)).resize((round(w * scale), round(h * scale)),
                                                                 Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    radius = max(5, round(canvas.width / 80))
    placed: list[tuple[float, float]] = []
    discs = []
    for k, mark in enumerate(marks):
        cx, cy = mark.x * scale, mark.y * scale
        overlaps = sum((cx - px) ** 2 + (cy - py) ** 2 < (2 * radius) ** 2 for px, py in placed)
        r = radius + 4 * overlaps  # a mark on top of another one becomes a ring around it
        discs.append((cx, cy, r, overlaps, mark))
        placed.append((cx, cy))
        # labels alternate above-right and below-right of their mark, so that two marks side by side keep both
        # labels readable; the marks are drawn after every label, so no label hides a mark
        ty = cy - r - 16 if k % 2 == 0 else cy + r + 2
        draw.text((cx + r + 3, ty), mark.label, fill=mark.colour, font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    for cx, cy, r, overlaps, mark in discs:
        box = (cx - r, cy - r, cx + r, cy + r)
        if overlaps:
            draw.ellipse(box, outline=(0, 0, 0), width=5)
            draw.ellipse(box, outline=mark.colour, width=3)
        else:
            draw.ellipse(box, fill=mark.colour, outline=(0, 0, 0), width=2)
    if not text:
        return np.asarray(canvas)
    chars = max(20, int(canvas.width / 7.5))
    lines = [line for para in text.splitlines() for line in (textwrap.wrap(para, chars) or [""])]
    band = Image.new("RGB", (canvas.width, 10 + 18 * len(lines)), (255, 255, 255))
    ImageDraw.Draw(band).multiline_text((8, 5), "\n".join(lines), fill=(0, 0, 0), font=font, spacing=4)
    out = Image.new("RGB", (canvas.width, canvas.height + band.height), (255, 255, 255))
    out.paste(canvas, (0, 0))
    out.paste(band, (0, canvas.height))
    return np.asarray(out)

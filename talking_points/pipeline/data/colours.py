"""The colour vocabulary of the generator, the patch statistics, the descriptions and the tower's labels.

Two tables, one naming rule:

* `PALETTE`: the 12 paint colours (name -> sRGB 0..255). PartWorld paints its parts from them (plus jitter
  and shades, see `partworld.looks`) and the visual-prompt markers use them. Every paint is also a naming
  prototype, and no other prototype takes any colour of a paint's jitter box, so what PartWorld paints is
  named back with the paint's name (tests/test_colours.py).
* `NATURAL`: (name, sRGB) prototypes for the colours of real photos that the saturated paints cannot name:
  skin, sand, wood, dry grass, foliage, sky, dark clothes. A name may come again ("blue" is the paint and a
  sky or denim blue, "green" the paint and a grass green). `PROTOTYPES` = the paints, then `NATURAL`.

`NAMES` is the vocabulary: every name once, the paints first (in `PALETTE` order), then the new names in
`NATURAL` order. It is the one list that the mined `patch_colour`, the synthesis facts check, the
description words, the parser and the tower's colour head use.

`name_of` / `name_indices` name a colour by its nearest prototype in CIE Lab (OpenCV's D65 conversion,
Euclidean distance, i.e. CIE76 dE). Near-greys: the achromatic axis has only black, grey and white
(boundaries at about L* 30 and 74, where PartWorld's shaded greys need them), and every chromatic prototype
has a chroma C* above 23, so every neutral and every colour of chroma up to 6 is named black, grey or white:
a light grey is not 'beige', a bluish shadow not 'light blue'.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PALETTE", "NATURAL", "PROTOTYPES", "NAMES", "PROTOTYPES_LAB", "PROTOTYPE_NAMES", "lab",
           "name_indices", "name_of"]

RGB = tuple[int, int, int]

#: the paint colours: PartWorld's parts and the visual-prompt markers (each also a naming prototype)
PALETTE: dict[str, RGB] = {
    "red": (200, 30, 35),
    "orange": (240, 130, 20),
    "yellow": (245, 215, 40),
    "green": (40, 150, 50),
    "teal": (20, 150, 150),
    "blue": (35, 75, 205),
    "purple": (125, 45, 165),
    "pink": (240, 140, 190),
    "brown": (120, 70, 30),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
}

#: naming prototypes of natural photos' colours, beyond the paints (a paint's name may come again); each is
#: placed so that it takes no colour of a paint's jitter box and few of its texture shades (partworld.looks)
NATURAL: tuple[tuple[str, RGB], ...] = (
    ("blue", (70, 110, 170)),  # clear sky, denim: less saturated than the paint
    ("green", (90, 130, 55)),  # grass, leaves
    ("brown", (150, 95, 55)),  # wood, fur
    ("beige", (225, 198, 152)),
    ("cream", (235, 222, 178)),
    ("peach", (240, 185, 150)),  # light skin
    ("salmon", (245, 130, 110)),
    ("tan", (200, 150, 100)),
    ("khaki", (185, 170, 115)),
    ("olive", (100, 110, 35)),
    ("forest green", (30, 80, 35)),
    ("light blue", (140, 190, 240)),
    ("navy", (30, 40, 90)),
    ("maroon", (100, 20, 35)),
)

PROTOTYPES: tuple[tuple[str, RGB], ...] = (*PALETTE.items(), *NATURAL)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(name for name, _ in PROTOTYPES))


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0..255 -> CIE Lab (..., 3) float32."""
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    flat = arr.reshape(-1, 1, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(arr.shape)


#: the prototypes in CIE Lab, (len(PROTOTYPES), 3), in `PROTOTYPES` order
PROTOTYPES_LAB = lab(np.array([rgb for _, rgb in PROTOTYPES], dtype=np.float32))
#: index into `NAMES` of each prototype
PROTOTYPE_NAMES = np.array([NAMES.index(name) for name, _ in PROTOTYPES], dtype=np.int64)

_CHUNK = 1 << 16  # colours per distance matrix (bounds the memory of naming a large image)


def name_indices(rgb) -> np.ndarray:
    """Index into `NAMES` of the nearest prototype (CIE Lab, Euclidean) of every colour of an (..., 3) sRGB
    array (0..255); the result has shape (...)."""
    arr = np.asarray(rgb, dtype=np.float32)
    flat = lab(arr.reshape(-1, 3))
    nearest = np.empty(len(flat), dtype=np.int64)
    for i in range(0, len(flat), _CHUNK):
        d = ((flat[i:i + _CHUNK, None, :] - PROTOTYPES_LAB[None]) ** 2).sum(-1)
        nearest[i:i + _CHUNK] = d.argmin(-1)
    return PROTOTYPE_NAMES[nearest].reshape(arr.shape[:-1])


def name_of(rgb) -> str:
    """Name of the prototype nearest (in Lab) to one sRGB colour `rgb` (0..255)."""
    return NAMES[int(name_indices(np.asarray(rgb, dtype=np.float32).reshape(1, 3))[0])]

"""The words of the descriptions, shared by the writer (`grounded`) and the reader (`parse`).

Every discrete claim a description can make has one canonical value here (an Enum member or a schema
label) and the surface words that express it. The numeric bins that decide which claim a number supports
(`point_grade`, `WordBins`) live here too, so writing and checking can never disagree about a boundary.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from enum import Enum

from talking_points.pipeline.data.colours import NAMES as COLOUR_NAMES

__all__ = [
    "OrderAxis",
    "OrderEnd",
    "Brightness",
    "Energy",
    "Texture",
    "WordBins",
    "END_AXIS",
    "EXTREME_WORDS",
    "PAIR_WORDS",
    "BRIGHTNESS_WORDS",
    "ENERGY_WORDS",
    "TEXTURE_WORDS",
    "TEXTURE_ALIASES",
    "COLOUR_NAMES",
    "COLOUR_WORDS",
    "SCENE_NOUNS",
    "CENTRE_WORDS",
    "SLIGHT_WORDS",
    "POINT_GRADE_EDGES",
    "row_rng",
    "normalise_name",
    "ordinal",
    "parse_ordinal",
    "count_word",
    "parse_count",
    "plural",
    "point_grade",
    "grade_interval",
    "canonical_texture",
    "alternation",
]


class OrderAxis(str, Enum):
    """Axis along which same-category instances are ranked."""

    lr = "lr"  # left to right (order_lr)
    tb = "tb"  # top to bottom (order_tb)
    size = "size"  # largest first (order_size)


class OrderEnd(str, Enum):
    """The end of an ordering axis a rank is counted from."""

    left = "left"
    right = "right"
    top = "top"
    bottom = "bottom"
    largest = "largest"
    smallest = "smallest"


#: end -> (axis, True when the end is where that axis' 1-based rank starts)
END_AXIS: dict[OrderEnd, tuple[OrderAxis, bool]] = {
    OrderEnd.left: (OrderAxis.lr, True),
    OrderEnd.right: (OrderAxis.lr, False),
    OrderEnd.top: (OrderAxis.tb, True),
    OrderEnd.bottom: (OrderAxis.tb, False),
    OrderEnd.largest: (OrderAxis.size, True),
    OrderEnd.smallest: (OrderAxis.size, False),
}

#: superlatives naming the first instance from an end ("the leftmost dog")
EXTREME_WORDS: dict[OrderEnd, tuple[str, ...]] = {
    OrderEnd.left: ("leftmost",),
    OrderEnd.right: ("rightmost",),
    OrderEnd.top: ("topmost", "uppermost", "highest"),
    OrderEnd.bottom: ("bottommost", "lowest"),
    OrderEnd.largest: ("largest", "biggest"),
    OrderEnd.smallest: ("smallest",),
}
#: the writer uses the first two words at most (``highest`` is parsed, not written)
EXTREME_WRITE: dict[OrderEnd, tuple[str, ...]] = {k: v[:2] for k, v in EXTREME_WORDS.items()}

#: comparatives for a pair ("the lower of the two cars")
PAIR_WORDS: dict[OrderEnd, tuple[str, ...]] = {
    OrderEnd.left: ("left",),
    OrderEnd.right: ("right",),
    OrderEnd.top: ("upper", "higher"),
    OrderEnd.bottom: ("lower",),
    OrderEnd.largest: ("larger", "bigger"),
    OrderEnd.smallest: ("smaller",),
}

#: "the second dog from the left": the ends that take "from the ..."
FROM_ENDS = (OrderEnd.left, OrderEnd.right, OrderEnd.top, OrderEnd.bottom)

SCENE_NOUNS = ("image", "picture", "scene", "frame", "photo", "photograph")
CENTRE_WORDS = ("centre", "center", "middle")
#: adverbs of a small offset from a centre ("slightly left of the centre")
SLIGHT_WORDS = ("slightly", "a little", "a bit", "just", "somewhat")

_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
)
_COUNTS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


class Brightness(str, Enum):
    dark = "dark"
    medium = "medium"
    bright = "bright"


class Energy(str, Enum):
    """Local texture judged from the patch's edge energy (used when no texture is annotated)."""

    smooth = "smooth"
    textured = "textured"
    busy = "busy"


class Texture(str, Enum):
    """Canonical annotated textures (generated data)."""

    striped = "striped"
    dotted = "dotted"
    checkered = "checkered"
    gradient = "gradient"
    plain = "plain"


BRIGHTNESS_WORDS: dict[Brightness, tuple[str, ...]] = {
    Brightness.dark: ("dark", "dim", "shadowy"),
    Brightness.medium: ("mid-toned", "medium-bright", "moderately bright"),
    Brightness.bright: ("bright", "brightly lit", "well-lit"),
}
ENERGY_WORDS: dict[Energy, tuple[str, ...]] = {
    Energy.smooth: ("smooth", "featureless"),
    Energy.textured: ("textured", "grainy"),
    Energy.busy: ("busy", "cluttered"),
}
TEXTURE_WORDS: dict[Texture, tuple[str, ...]] = {
    Texture.striped: ("striped", "stripy"),
    Texture.dotted: ("dotted", "spotted"),
    Texture.checkered: ("checkered", "chequered"),
    Texture.gradient: ("gradient", "gradient-shaded"),
    Texture.plain: ("plain", "uniform", "solid-coloured"),
}
#: annotation spellings -> canonical texture
TEXTURE_ALIASES: dict[str, Texture] = {
    **{t.value: t for t in Texture},
    "solid": Texture.plain,
    "stripes": Texture.striped,
    "stripe": Texture.striped,
    "dots": Texture.dotted,
    "spots": Texture.dotted,
    "polka dot": Texture.dotted,
    "checker": Texture.checkered,
    "checkerboard": Texture.checkered,
    "checked": Texture.checkered,
    "chequered": Texture.checkered,
}
#: surface colour words -> colour name (`colours.NAMES`)
COLOUR_WORDS: dict[str, str] = {**{c: c for c in COLOUR_NAMES}, "gray": "grey"}

#: |offset from the part centre| (fraction of the part box) at which the point wording changes:
#: grade 0 "near the centre" < 0.06 <= grade 1 "slightly" < 1/6 <= grade 2 "left of" < 0.35 <= grade 3 "far".
#: 1/6 is the edge of the central third, so grades 0-1 lie in the centre third and grade 3 in an outer third.
POINT_GRADE_EDGES: tuple[float, float, float] = (0.06, 1.0 / 6.0, 0.35)


@dataclass(frozen=True)
class WordBins:
    """Thresholds that turn the patch statistics into words (from `SynthesizeConfig`)."""

    dark_below: float = 0.3
    bright_above: float = 0.6
    smooth_below: float = 0.05
    busy_above: float = 0.15

    def brightness(self, value: float) -> Brightness:
        if value < self.dark_below:
            return Brightness.dark
        if value < self.bright_above:
            return Brightness.medium
        return Brightness.bright

    def energy(self, value: float) -> Energy:
        if value < self.smooth_below:
            return Energy.smooth
        if value < self.busy_above:
            return Energy.textured
        return Energy.busy

    def brightness_interval(self, b: Brightness) -> tuple[float, float]:
        return _interval(
            b, (Brightness.dark, Brightness.medium, Brightness.bright), self.dark_below, self.bright_above
        )

    def energy_interval(self, e: Energy) -> tuple[float, float]:
        return _interval(e, (Energy.smooth, Energy.textured, Energy.busy), self.smooth_below, self.busy_above)


def _interval(member: Enum, order: tuple, low: float, high: float) -> tuple[float, float]:
    bounds = ((float("-inf"), low), (low, high), (high, float("inf")))
    if member not in order:
        raise ValueError(f"unknown bin {member!r}")
    return bounds[order.index(member)]


def row_rng(seed: int, kp_id: str, stream: str) -> random.Random:
    """A generator fixed by (seed, kp_id, stream): stable across processes, runs and Python versions."""
    digest = hashlib.blake2b(f"{seed}\x1f{kp_id}\x1f{stream}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def normalise_name(name: str) -> str:
    """A class or part name as written in text: lower case, '_' as space, single spaces."""
    return re.sub(r"\s+", " ", str(name).replace("_", " ")).strip().lower()


def ordinal(k: int) -> str:
    """1 -> 'first', ..., 12 -> 'twelfth', 13 -> '13th', 22 -> '22nd'."""
    if k < 1:
        raise ValueError(f"ordinal of {k}")
    if k <= len(_ORDINALS):
        return _ORDINALS[k - 1]
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


ORDINAL_RE = r"(?:" + "|".join(_ORDINALS) + r"|\d+(?:st|nd|rd|th))"
COUNT_RE = r"(?:" + "|".join(_COUNTS) + r"|\d+)"


def parse_ordinal(word: str) -> int:
    word = word.lower()
    if word in _ORDINALS:
        return _ORDINALS.index(word) + 1
    m = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", word)
    if not m:
        raise ValueError(f"not an ordinal: {word!r}")
    return int(m.group(1))


def count_word(n: int) -> str:
    """2 -> 'two', ..., 12 -> 'twelve', 13 -> '13'."""
    return _COUNTS[n - 1] if 1 <= n <= len(_COUNTS) else str(n)


def parse_count(word: str) -> int:
    word = word.lower()
    return _COUNTS.index(word) + 1 if word in _COUNTS else int(word)


_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "goose": "geese",
    "foot": "feet",
    "tooth": "teeth",
    "ox": "oxen",
    "sheep": "sheep",
    "deer": "deer",
    "fish": "fish",
    "bison": "bison",
    "moose": "moose",
    "buffalo": "buffalo",
    "antelope": "antelope",
    "aircraft": "aircraft",
    "wolf": "wolves",
    "knife": "knives",
    "leaf": "leaves",
    "calf": "calves",
    "shelf": "shelves",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "hippopotamus": "hippopotamuses",
    "cactus": "cacti",
}


def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun; the last word is inflected."""
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def point_grade(offset: float) -> int:
    """Grade 0..3 of a signed offset of the point from its part's centre (fraction of the part box)."""
    a = abs(offset)
    for grade, edge in enumerate(POINT_GRADE_EDGES):
        if a < edge:
            return grade
    return 3


def grade_interval(grade: int) -> tuple[float, float]:
    """The |offset| interval [lo, hi) a grade stands for."""
    edges = (0.0, *POINT_GRADE_EDGES, float("inf"))
    if not 0 <= grade <= 3:
        raise ValueError(f"point grade {grade} is not in 0..3")
    return edges[grade], edges[grade + 1]


def canonical_texture(annotation: str) -> str:
    """The canonical texture for an annotated texture name; unknown names are kept (normalised)."""
    name = normalise_name(annotation).replace("-", " ")
    t = TEXTURE_ALIASES.get(name)
    return t.value if t is not None else name


def alternation(words) -> str:
    """A regex alternation of literal words, longest first (so 'moderately bright' wins over 'bright')."""
    words = sorted({w for w in words if w}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words) + ")"

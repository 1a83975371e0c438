"""Writing the four levels of a coarse-to-fine description from a row's facts, and composing them into one
text: the sentence machinery the `grounded` backend writes with and the model backends' prompts show as
examples.

Level 1 names the instance (by its rank along the most telling axis when the category repeats) and where
it sits in the image; level 2 the part (by its rank among the object's parts of the same name when it repeats:
'the leftmost of its five wheels') and where it lies in the object; level 3 where the point lies in
the part, graded by its offset from the part's centre; level 4 the patch's colour, brightness and texture.
Each level has several frames and synonyms, and clauses inside a level may swap; every choice is drawn from
a generator fixed by (seed, kp_id), so a row's text does not depend on the batch or the row order. Every word
is chosen from a bin that the row's numbers satisfy, so `parse.check_faithful` finds nothing to object to.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from talking_points.pipeline.synthesis.facts import RowFacts
from talking_points.pipeline.synthesis.vocabulary import (
    BRIGHTNESS_WORDS,
    ENERGY_WORDS,
    EXTREME_WRITE,
    FROM_ENDS,
    PAIR_WORDS,
    TEXTURE_WORDS,
    OrderAxis,
    OrderEnd,
    Texture,
    count_word,
    ordinal,
    plural,
    row_rng,
)

__all__ = ["OPENERS", "Levels", "write_levels", "compose", "instance_phrase", "part_instance_phrase", "order_axis",
           "part_order_axis", "axis_scores", "scene_place", "part_place"]

_AXIS_ENDS: dict[OrderAxis, tuple[OrderEnd, OrderEnd]] = {
    OrderAxis.lr: (OrderEnd.left, OrderEnd.right),
    OrderAxis.tb: (OrderEnd.top, OrderEnd.bottom),
    OrderAxis.size: (OrderEnd.largest, OrderEnd.smallest),
}
#: preference when scores tie: horizontal order is the easiest to read, size the hardest to judge
_AXIS_BIAS = {OrderAxis.lr: 0.1, OrderAxis.tb: 0.05, OrderAxis.size: 0.0}
#: the evidence a size rank gets in place of the positional agreement of lr / tb (no other sizes are known)
_SIZE_EVIDENCE = 0.4

OPENERS = ("The point is", "This point is", "The keypoint is", "The marked point is", "The point lies")
_SCENE_NOUNS = ("image", "picture", "scene", "frame", "photo")
_V_WORDS = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}
_SLIGHT = ("slightly ", "a little ", "just ")


@dataclass(frozen=True)
class Levels:
    """The four level texts, each a fragment that continues 'The point is ...'."""

    object: str
    part: str
    point: str
    local: str


def axis_scores(f: RowFacts) -> dict[OrderAxis, float]:
    """How well each ordering axis is expected to single out this instance (higher is better).

    A row carries only this instance's ranks and box, not the other instances', so separation is
    estimated: an extreme rank needs no counting (+1); on lr / tb, the instance's centre agreeing with
    where its rank would sit if the instances were spread evenly along that axis (+0..1) suggests the
    instances are spread along it; a size rank gets a fixed, smaller credit.
    """
    n = f.n_same
    scores = {}
    for axis in OrderAxis:
        rank = f.ranks[axis]
        score = (1.0 if rank in (1, n) else 0.0) + _AXIS_BIAS[axis]
        if axis is OrderAxis.size:
            score += _SIZE_EVIDENCE
        elif axis in (OrderAxis.lr, OrderAxis.tb):
            centre = f.obj_cx if axis is OrderAxis.lr else f.obj_cy
            expected = (rank - 0.5) / n
            score += max(0.0, 1.0 - abs(centre - expected) * n)
        else:
            raise ValueError(f"unknown order axis {axis!r}")
        scores[axis] = score
    return scores


#: an instance is named along left-right or top-bottom when its box centre lies at least this many mean box
#: extents from the nearest other instance of its category along that axis, by size when the areas differ by at
#: least this log-ratio (1.5x); otherwise no order phrase singles it out
SEPARATES = 0.5
SIZE_SEPARATES = math.log(1.5)


def _separating_axis(separations: dict[OrderAxis, float]) -> OrderAxis | None:
    """The position axis along which the instance stands furthest from the nearest other one, if that is at
    least `SEPARATES` (ties: lr); else size, if the areas differ by `SIZE_SEPARATES`; else None."""
    position = {a: separations.get(a, 0.0) for a in (OrderAxis.lr, OrderAxis.tb)}
    best = max(position, key=lambda a: (position[a], _AXIS_BIAS[a]))
    if position[best] >= SEPARATES:
        return best
    if separations.get(OrderAxis.size, 0.0) >= SIZE_SEPARATES:
        return OrderAxis.size
    return None


def order_axis(f: RowFacts) -> OrderAxis | None:
    """The axis used to name the instance among the others of its category.

    With the rows' measured separations (`keypoints.geometry.order_separation`): `_separating_axis`; None when no
    axis tells it apart, and the description names it by the count and its place in the image ('one of the two
    dogs, in the upper left'). Rows without separations (tables mined before they existed) fall back to
    `axis_scores`, ties going to lr, then tb, then size."""
    if f.separations:
        return _separating_axis(f.separations)
    scores = axis_scores(f)
    return max(OrderAxis, key=lambda a: (scores[a], _AXIS_BIAS[a]))


def part_order_axis(f: RowFacts) -> OrderAxis | None:
    """The axis used to name a repeated part among its object's parts of the same name (None: a single part, or
    none of the axes tells it apart: 'one of its two wheels')."""
    return _separating_axis(f.part_separations) if f.n_same_part > 1 else None


def _counted_end(rank: int, n: int, axis: OrderAxis, rng: random.Random) -> tuple[OrderEnd, int]:
    """The end to count from (the nearer one; a middle rank picks either) and the count k from it (1: extreme)."""
    start, stop = _AXIS_ENDS[axis]
    k_start, k_stop = rank, n - rank + 1
    if k_start == k_stop:
        end = rng.choice((start, stop))
    else:
        end = start if k_start < k_stop else stop
    return end, min(k_start, k_stop)


def instance_phrase(f: RowFacts, rng: random.Random) -> str:
    """The instance among the others of its category: 'the only dog', 'the second dog from the left', ..."""
    c, n = f.category, f.n_same
    if n == 1:
        return rng.choice((f"the only {c}", f"the {c}", f"the single {c}", f"the lone {c}"))
    cs, big_n = plural(c), count_word(n)
    axis = order_axis(f)
    if axis is None:  # nothing tells it apart: the count here, the scene position after
        return f"one of the {big_n} {cs}"
    end, k = _counted_end(f.ranks[axis], n, axis, rng)
    if n == 2:
        comp, ext = rng.choice(PAIR_WORDS[end][:2]), rng.choice(EXTREME_WRITE[end])
        forms = [
            f"the {comp} of the two {cs}",
            f"the {comp} one of the two {cs}",
            f"the {comp} {c} of the two",
            f"the {ext} of the two {cs}",
        ]
        if end in FROM_ENDS:
            forms.append(f"the first {c} from the {end.value}")
    elif k == 1:
        ext = rng.choice(EXTREME_WRITE[end])
        forms = [f"the {ext} {c}", f"the {ext} of the {big_n} {cs}"]
        if end in FROM_ENDS:
            forms += [
                f"the first {c} from the {end.value}",
                f"the first of the {big_n} {cs} from the {end.value}",
            ]
    elif end in FROM_ENDS:
        o = ordinal(k)
        forms = [
            f"the {o} {c} from the {end.value}",
            f"the {o} of the {big_n} {cs} from the {end.value}",
            f"the {o} {c} counting from the {end.value}",
        ]
    else:
        o, ext = ordinal(k), rng.choice(EXTREME_WRITE[end])
        forms = [f"the {o}-{ext} {c}", f"the {o}-{ext} of the {big_n} {cs}", f"the {o} {ext} {c}"]
    return rng.choice(forms)


def part_instance_phrase(f: RowFacts, owner: str, rng: random.Random) -> str:
    """A repeated part among its object's parts of the same name, with the same order logic as `instance_phrase`:
    'the leftmost of its five wheels', 'the left one of its two headlights', 'one of its four legs'."""
    n, ps = f.n_same_part, plural(f.part)
    group = f"{owner} {count_word(n)} {ps}"
    axis = part_order_axis(f)
    if axis is None:
        return f"one of {group}"
    end, k = _counted_end(f.part_ranks[axis], n, axis, rng)
    if n == 2:
        comp = rng.choice(PAIR_WORDS[end][:2])
        return rng.choice((f"the {comp} one of {group}", f"the {comp} of {group}"))
    if k == 1:
        return f"the {rng.choice(EXTREME_WRITE[end])} of {group}"
    if end in FROM_ENDS:
        return f"the {ordinal(k)} of {group} from the {end.value}"
    return f"the {ordinal(k)}-{rng.choice(EXTREME_WRITE[end])} of {group}"


def _position(v: str, h: str, rng: random.Random) -> tuple[str, str]:
    """(preposition, words) for a cell of a 3x3 grid given by schema labels, e.g. ('in', 'upper left')."""
    if v == "middle" and h == "center":
        return rng.choice((("in", "centre"), ("in", "middle"), ("at", "centre")))
    if v == "middle":
        return rng.choice((("on", f"{h} side"), ("in", f"middle {h}"), ("on", h), ("in", f"{h} part")))
    vw = rng.choice(_V_WORDS[v])
    if h == "center":
        return rng.choice((("at", v), ("in", f"{vw} centre"), ("in", f"{vw} middle"), ("in", f"{vw} part")))
    return rng.choice((("in", f"{vw} {h}"), ("at", f"{vw} {h}"), ("in", f"{vw} {h} part")))


def _edge(edge: str, rng: random.Random) -> str | None:
    if edge == "none":
        return None
    tail = rng.choice(("", "", f" of the {rng.choice(_SCENE_NOUNS)}"))
    return f"{rng.choice(('near', 'close to', 'by'))} the {edge} {rng.choice(('edge', 'border'))}{tail}"


def scene_place(f: RowFacts, rng: random.Random) -> str:
    """Where the object sits in the image: 'in the upper left of the picture'."""
    prep, words = _position(f.scene_v, f.scene_h, rng)
    return f"{prep} the {words} of the {rng.choice(_SCENE_NOUNS)}"


def part_place(f: RowFacts, owner: str, rng: random.Random, toward: float = 0.0) -> str:
    """Where the part lies in its object ('owner': 'the dog', 'its body'): 'at the lower left of the dog'; 'in'
    becomes 'toward' with chance `toward`."""
    prep, words = _position(f.part_v, f.part_h, rng)
    if toward and prep == "in" and rng.random() < toward:
        prep = "toward"
    return f"{prep} the {words} of {owner}"


def level_object(f: RowFacts, rng: random.Random, reorder: bool) -> str:
    """Level 1: the instance and where it is in the image, e.g. 'on the second dog from the left, ...'."""
    inst = instance_phrase(f, rng)
    scene = scene_place(f, rng)
    edge = _edge(f.edge, rng)
    tail = [scene, edge] if edge else [scene]
    if reorder:
        tail.reverse()
    frame = rng.randrange(5)
    if frame == 0:
        return f"on {inst}, " + ", ".join(tail)
    if frame == 1:
        return f"on {inst}, which is " + " and ".join(tail)
    if frame == 2:
        return f"on {inst} " + ", ".join(tail)
    if frame == 3:
        return f"on {inst}, located " + ", ".join(tail)
    return f"on {inst}, which sits " + ", ".join(tail)


def level_part(f: RowFacts, rng: random.Random, reorder: bool) -> str:
    """Level 2: the part and where it lies in the object ('on its head, at the upper right of the dog')."""
    owners = (f"the {f.category}",) if "body" in f.part.split() else (f"the {f.category}", "its body")
    if rng.random() < 0.5:
        whose, owner = "its", rng.choice(owners)
    else:
        whose, owner = f"the {f.category}'s", owners[-1]
    ref = f"{whose} {f.part}" if f.n_same_part == 1 else part_instance_phrase(f, whose, rng)
    where = part_place(f, owner, rng, toward=0.3)
    if reorder:
        return f"{where}, on {ref}"
    frame = rng.randrange(4)
    if frame == 0:
        return f"on {ref}, {where}"
    if frame == 1:
        return f"on {ref}, which is {where}"
    if frame == 2:
        return f"on {ref}, which lies {where}"
    return f"on {ref} {where}"


def _relation(axis: str, direction: str, grade: int, rng: random.Random) -> str:
    adverb = rng.choice(_SLIGHT) if grade == 1 else ""
    return f"{adverb}{direction} of" if axis == "h" else f"{adverb}{direction}"


def level_point(f: RowFacts, rng: random.Random, reorder: bool) -> str:
    """Level 3: where the point lies in the part, graded by its offset from the part's centre."""
    p = f.part
    gh, gv = f.point_h_grade, f.point_v_grade
    h = "left" if f.point_x < 0.5 else "right"
    v_rel = "above" if f.point_y < 0.5 else "below"
    v_end = "top" if f.point_y < 0.5 else "bottom"
    centre = rng.choice((f"the centre of the {p}", f"the {p}'s centre", f"the middle of the {p}"))
    if gh == 0 and gv == 0:
        return f"{rng.choice(('near', 'close to', 'around', 'at about'))} {centre}"
    if gh < 3 and gv < 3:
        parts = []
        if gh:
            parts.append(_relation("h", h, gh, rng))
        if gv:
            parts.append(_relation("v", v_rel, gv, rng))
        if reorder:
            parts.reverse()
        return " and ".join(parts) + f" {centre}"
    if gh == 3 and gv == 3:
        vw = rng.choice(_V_WORDS[v_end])
        return rng.choice(
            (
                f"at the far {vw} {h} corner of the {p}",
                f"in the very {vw} {h} corner of the {p}",
                f"at the {p}'s far {vw} {h} corner",
            )
        )
    if gh == 3:
        far = rng.choice(
            (
                f"at the far {h} end of the {p}",
                f"at the very {h} of the {p}",
                f"at the {p}'s far {h} end",
                f"at the {h} end of the {p}",
            )
        )
        other = _relation("v", v_rel, gv, rng) if gv else ""
    else:
        far = rng.choice(
            (f"at the very {v_end} of the {p}", f"at the {v_end} end of the {p}", f"at the {p}'s {v_end} end")
        )
        other = _relation("h", h, gh, rng) if gh else ""
    return f"{far}, {other} its centre" if other else far


def _texture_word(f: RowFacts, rng: random.Random) -> str:
    if f.texture is None:
        return rng.choice(ENERGY_WORDS[f.energy])
    if f.texture in {t.value for t in Texture}:
        return rng.choice(TEXTURE_WORDS[Texture(f.texture)])
    return f.texture  # an annotation outside the known set is repeated verbatim


def level_local(f: RowFacts, rng: random.Random, reorder: bool) -> str:
    """Level 4: the patch's colour, brightness and texture, e.g. 'in a small dark, dotted brown patch'."""
    b = rng.choice(BRIGHTNESS_WORDS[f.brightness])
    t = _texture_word(f, rng)
    col = f.colour
    small = rng.choice(("", "small "))
    frame = rng.randrange(5)
    if frame == 0:
        return f"in a {small}{b} {col} patch that looks {t}"
    if frame == 1:
        return f"in a {small}{t}, {b} {col} patch" if reorder else f"in a {small}{b}, {t} {col} patch"
    if frame == 2:
        return (
            f"where the pixels are {t} and {b} {col}"
            if reorder
            else f"where the pixels are {b} {col} and {t}"
        )
    if frame == 3:
        return f"on a {t} patch of {b} {col}"
    return f"in a {small}{b} {col} area with a {t} look"


_LEVEL_WRITERS = (
    ("object", level_object),
    ("part", level_part),
    ("point", level_point),
    ("local", level_local),
)


def write_levels(f: RowFacts, seed: int, shuffle_clauses: float, reorder: bool = True) -> Levels:
    """The four level texts of a row; with `reorder`, each level swaps its clauses with probability
    `shuffle_clauses`. Word choices do not depend on `reorder`, only the clause order does."""
    texts = {}
    for name, writer in _LEVEL_WRITERS:
        swap = reorder and row_rng(seed, f.kp_id, f"shuffle/{name}").random() < shuffle_clauses
        texts[name] = _cleanup(writer(f, row_rng(seed, f.kp_id, name), swap))
    return Levels(**texts)


_AN = re.compile(r"\ba (?=(?:[aeio]|u(?!ni|s[aeu]))\w)", re.IGNORECASE)


def _cleanup(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+,", ",", text)
    return _AN.sub("an ", text)


def compose(levels: Levels, opener: str) -> str:
    """The coarse-to-fine description: the opener, then the four levels separated by ';'."""
    text = f"{opener} {levels.object}; {levels.part}; {levels.point}; {levels.local}."
    return _cleanup(text[:1].upper() + text[1:])

"""Read a description back into the facts it claims, and check them against the row it describes.

`parse_description` extracts the claims of each coarse-to-fine level: (1) the category, instance order
(axis, end, rank), instance count, scene position and image edge; (2) the part, its rank and count among the
object's parts of the same name, and where it lies in the object; (3) where the point lies in the part (a direction and grade per axis, see
`vocabulary.point_grade`); (4) colour, brightness and texture words. A description with exactly four
';'-separated segments (the grounded form) is read level by level; free text (a model's output) is read
as a whole, with scene phrases masked before the part and point levels are read and part-in-object
phrases masked before the point level is read. Knowing the row's category and part names (keyword
arguments) makes free text much less ambiguous.

`check_faithful(row, description)` lists the claims the row's columns contradict (empty = faithful);
`levels_present(text)` says which levels a text has at all; `split_levels(text)` cuts a text into its
level texts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from talking_points.pipeline.synthesis.facts import RowFacts, row_facts
from talking_points.pipeline.synthesis.vocabulary import (
    BRIGHTNESS_WORDS,
    CENTRE_WORDS,
    COLOUR_WORDS,
    COUNT_RE,
    END_AXIS,
    ENERGY_WORDS,
    EXTREME_WORDS,
    ORDINAL_RE,
    PAIR_WORDS,
    SCENE_NOUNS,
    SLIGHT_WORDS,
    TEXTURE_ALIASES,
    TEXTURE_WORDS,
    Brightness,
    Energy,
    OrderAxis,
    OrderEnd,
    WordBins,
    alternation,
    grade_interval,
    normalise_name,
    parse_count,
    parse_ordinal,
    plural,
)

__all__ = [
    "LEVELS",
    "OrderClaim",
    "AxisClaim",
    "Facts",
    "parse_description",
    "check_faithful",
    "levels_present",
    "split_levels",
    "assess",
    "VOCABULARY_WORDS",
]

LEVELS: tuple[str, ...] = ("object", "part", "point", "local")
_CLAUSE_PRIORITY: tuple[str, ...] = ("point", "part", "object", "local")

_CAT, _CATS, _PART = "zzcatzz", "zzcatszz", "zzpartzz"  # placeholders for the row's names while parsing

_POS = r"(?:top|upper|bottom|lower|left|right|centre|center|middle)"
_POS_RUN = rf"{_POS}(?:[\s-]+{_POS})*"
_AREA = r"(?:\s+(?:side|part|half|area|region|corner|portion))?"
_SCENE_NOUN = alternation(SCENE_NOUNS)
_CLAUSE_END = r"(?=$|[,;.]|\s+which\b|\s+and\b|\s+on\b)"

_SCENE = re.compile(
    rf"\b(?:in|at|on)\s+the\s+(?:(?:far|very)\s+)?({_POS_RUN}){_AREA}\s+of\s+the\s+{_SCENE_NOUN}\b"
)
_EDGE = re.compile(
    r"\b(?:near|close\s+to|by|along|against|touching|next\s+to)\s+the\s+"
    r"(left|right|top|bottom|upper|lower)\s+(?:edge|border)\b"
)
_ONLY = re.compile(r"\b(?:the|a)\s+(?:only|single|lone|one\s+and\s+only)\b")
_PAIR_END = {w: end for end, words in PAIR_WORDS.items() for w in words}
_EXTREME_END = {w: end for end, words in EXTREME_WORDS.items() for w in words}
_SIZE_END = {w: end for w, end in _EXTREME_END.items() if end in (OrderEnd.largest, OrderEnd.smallest)}
_TWO = re.compile(rf"\bthe\s+({alternation(_PAIR_END)})\b(?:\s+one)?(?:\s+[^,;]+?)?\s+of\s+the\s+two\b")
_FROM = re.compile(
    rf"\bthe\s+({ORDINAL_RE})(?:\s+[^,;]+?)?\s+(?:counting\s+)?from\s+the\s+(left|right|top|bottom)\b"
)
_SIZE_ORD = re.compile(rf"\bthe\s+({ORDINAL_RE})[\s-]+({alternation(_SIZE_END)})\b")
_EXTREME = re.compile(rf"\bthe\s+({alternation(_EXTREME_END)})\b")
_COUNT = re.compile(rf"\bof\s+the\s+({COUNT_RE})\b(?!\s+(?:edge|border|side|end|corner)s?\b)")

_PART_NAME = re.compile(
    r"\bon\s+(?:its|the\s+[^,;.]+?'s)\s+([^,;.]+?)"
    r"(?=$|[,;.]|\s+which\b|\s+(?:at|in|on|toward|towards)\s+the\b)"
)
#: a repeated part named by its rank among its object's parts of that name: 'on the leftmost of its five wheels',
#: 'on the second of the car's five wheels from the left', 'on one of its two headlights'
_PART_INSTANCE = re.compile(
    r"(?:\b(?:on|of)\s+|^|,\s*)"  # 'on the leftmost of ...' in a description; 'of' / ',' / the start in a terse text
    rf"(?:(?P<one>one)|the\s+(?P<sel>(?:(?!\bof\b)[\w\s-])+?))\s+of\s+(?:its|the\s+[^,;.\s]+(?:\s[^,;.\s]+)?'s)\s+"
    rf"(?P<n>{COUNT_RE})\s+(?P<name>[^,;.]+?)(?:\s+(?:counting\s+)?from\s+the\s+(?P<end>left|right|top|bottom))?"
    r"(?=$|[,;.]|\s+which\b|\s+(?:at|in|on|toward|towards)\s+the\b)"
)
_PART_POS = re.compile(
    rf"\b(?:in|at|on|toward|towards)\s+the\s+({_POS_RUN}){_AREA}\s+of\s+"
    rf"(its\s+body|the\s+body|its|the\s+[^,;.]+?){_CLAUSE_END}"
)

_ADV = alternation((*SLIGHT_WORDS, "far", "very", "well"))
_DIR = rf"(?:{_ADV}\s+)?(?:to\s+the\s+)?(?:left\s+of|right\s+of|above|below)"
_REL = re.compile(rf"({_DIR})(?:\s+and\s+({_DIR}))?\s+(?:the|its)\b[^,;.]*?\b(?:centre|center|middle)\b")
_CORNER = re.compile(r"\b(?:far|very)\s+(top|upper|bottom|lower)[\s-]+(left|right)\s+corner\b")
_FAR_H = re.compile(r"\b(?:(?:far|very)\s+(left|right)\b|(left|right)\s+end\b)")
_FAR_V = re.compile(r"\b(?:(?:far|very)\s+(top|bottom)\b|(top|bottom)\s+end\b)")
#: a place in the part without a direction ('the tip of its tail', "the ear's edge"): shows the level only
_PART_PLACE = re.compile(
    rf"\b(?:tip|end|edge|corner|base|centre|center|middle)\s+of\s+(?:its|the\s+{_PART})\b"
    rf"|\b{_PART}'s\s+(?:very\s+)?(?:tip|end|edge|corner|base|centre|center|middle)\b"
)
_CENTRE = re.compile(
    r"\b(?:near|close\s+to|around|at\s+about|about|right\s+at|at|in)\s+(?:the\s+)?"
    r"(?:(?:very|exact)\s+)?(?:centre|center|middle)\b"
    r"|\b(?:near|close\s+to|around|at\s+about)\s+the\s+[^,;.]*?'s\s+(?:centre|center|middle)\b"
)

_COLOUR = re.compile(rf"\b({alternation(COLOUR_WORDS)})\b")
_BRIGHTNESS_OF = {w: b for b, words in BRIGHTNESS_WORDS.items() for w in words}
_BRIGHTNESS = re.compile(rf"\b({alternation(_BRIGHTNESS_OF)})\b")
_ENERGY_OF = {w: e for e, words in ENERGY_WORDS.items() for w in words}
_ENERGY = re.compile(rf"\b({alternation(_ENERGY_OF)})\b")
_TEXTURE_OF = {
    **{k: t.value for k, t in TEXTURE_ALIASES.items()},
    **{w: t.value for t, words in TEXTURE_WORDS.items() for w in words},
}
_TEXTURE = re.compile(rf"\b({alternation(_TEXTURE_OF)})\b")


@dataclass(frozen=True)
class OrderClaim:
    """'the k-th instance counted from `end`' (k = 1 is the extreme)."""

    end: OrderEnd
    k: int
    text: str = ""

    @property
    def axis(self) -> OrderAxis:
        return END_AXIS[self.end][0]


@dataclass(frozen=True)
class AxisClaim:
    """Where the point lies along one axis of its part: direction (left/center/right or top/middle/bottom)
    and grade (0 centre .. 3 far end, see `vocabulary.point_grade`)."""

    direction: str
    grade: int


@dataclass
class Facts:
    """All a description claims; lists hold every claim found (a text may repeat or contradict itself)."""

    category: str | None = None  # the row's category when named, else the noun read from the instance phrase
    only: bool = False
    orders: list[OrderClaim] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    scene: list[tuple[str | None, str | None]] = field(default_factory=list)  # (v, h) schema labels
    edges: list[str] = field(default_factory=list)
    part: str | None = None
    part_counts: list[int] = field(default_factory=list)  # 'one of its <n> wheels'
    part_orders: list[OrderClaim] = field(default_factory=list)  # 'the leftmost of its five wheels'
    part_positions: list[tuple[str | None, str | None]] = field(default_factory=list)
    point_h: list[AxisClaim] = field(default_factory=list)
    point_v: list[AxisClaim] = field(default_factory=list)
    point_places: list[str] = field(default_factory=list)  # places in the part without a direction ('tip')
    colours: list[str] = field(default_factory=list)
    brightness: list[Brightness] = field(default_factory=list)
    textures: list[str] = field(default_factory=list)
    energies: list[Energy] = field(default_factory=list)

    def levels(self) -> dict[str, bool]:
        """Which coarse-to-fine levels have at least one claim."""
        return {
            "object": bool(self.only or self.orders or self.counts or self.scene or self.edges),
            "part": bool(self.part or self.part_positions),
            "point": bool(self.point_h or self.point_v or self.point_places),
            "local": bool(self.colours or self.brightness or self.textures or self.energies),
        }


def _norm(text: str) -> str:
    text = (
        str(text).replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-").replace("\u2014", "-")
    )
    return re.sub(r"\s+", " ", text.lower()).strip()


def _vocabulary_words() -> frozenset[str]:
    words = {
        "top",
        "upper",
        "bottom",
        "lower",
        "left",
        "right",
        *CENTRE_WORDS,
        *SCENE_NOUNS,
        "side",
        "part",
        "half",
        "area",
        "region",
        "corner",
        "portion",
        "end",
        "edge",
        "border",
        "tip",
        "base",
        "patch",
        "far",
        "very",
    }
    for table in (COLOUR_WORDS, _BRIGHTNESS_OF, _ENERGY_OF, _TEXTURE_OF, _PAIR_END, _EXTREME_END):
        for phrase in table:
            words.update(re.split(r"[\s-]+", phrase))
    return frozenset(words)


#: words of the descriptions' own vocabulary: a name made of them ('top', 'orange') is masked only where it
#: stands as a name (see `_mask`)
_VOCABULARY = _vocabulary_words()
VOCABULARY_WORDS = _VOCABULARY
_NAME_BEFORE = re.compile(
    rf"(?:\b(?:its|the|a|an|only|single|lone|{ORDINAL_RE}|{COUNT_RE}|{alternation(_EXTREME_END)}|"
    rf"{alternation(_PAIR_END)})|'s)\s$"
)
_NOT_NAME_AFTER = re.compile(
    rf"^(?:\s+(?:{_POS}|side|part|half|area|region|corner|portion|end|edge|border|"
    rf"patch|of)\b|[\w-])"
)

_ORDER_FROM = re.compile(r"\b(?:from|to) the\s$")  # 'second from the top', 'closest to the left'


def _mask(text: str, category: str | None, part: str | None) -> str:
    """Replace the row's names (and their plurals) by placeholders, longest first.

    A name made only of ordinary words is replaced wherever it occurs. A name made of words of the
    descriptions' vocabulary (a part called 'top', a category called 'orange') is replaced only where it
    stands as a name: after a determiner, possessive, ordinal, count or superlative, and not followed by a
    position or area word or 'of' ('in the top part of the image' keeps its 'top').
    """
    names: list[tuple[str, str]] = []
    if part:
        names += [(plural(part), _PART), (part, _PART)]
    if category:
        names += [(plural(category), _CATS), (category, _CAT)]
    names = [
        (n, t) for k, (n, t) in enumerate(names) if n not in (m for m, _ in names[k + 1 :])
    ]  # sheep/sheep
    for name, token in sorted(names, key=lambda nt: -len(nt[0])):
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        if not set(name.split()) <= _VOCABULARY:
            text = pattern.sub(token, text)
            continue
        pieces, last = [], 0
        objects = [re.escape(n) for n, t in names if t in (_CAT, _CATS)] + [_CAT, _CATS]
        of_the_object = re.compile(rf"^\s+of\s+the\s+(?:{'|'.join(objects)})(?![\w-])")  # 'the top of the table'
        of_the_count = re.compile(rf"^\s+of\s+the\s+{COUNT_RE}(?![\w-])")  # 'the upper orange of the two'
        for m in pattern.finditer(text):
            before = text[: m.start()]
            if (
                _NAME_BEFORE.search(before)
                and not _ORDER_FROM.search(before)
                and (
                    not _NOT_NAME_AFTER.match(text[m.end() :])
                    or of_the_object.match(text[m.end() :])
                    or of_the_count.match(text[m.end() :])
                )
            ):
                pieces += [text[last : m.start()], token]
                last = m.end()
        text = "".join(pieces) + text[last:]
    return text


def _grid(words: str) -> tuple[str | None, str | None]:
    """(v, h) schema labels from position words; None for an axis without a word ('top' -> top, None)."""
    tokens = re.split(r"[\s-]+", words)
    v = "top" if {"top", "upper"} & set(tokens) else "bottom" if {"bottom", "lower"} & set(tokens) else None
    h = "left" if "left" in tokens else "right" if "right" in tokens else None
    if set(CENTRE_WORDS) & set(tokens):
        if h is None and v is None:
            v, h = "middle", "center"
        elif h is None:
            h = "center"
        elif v is None:
            v = "middle"
    return v, h


def _segments(text: str) -> tuple[dict[str, str], bool]:
    """Per-level text: the four ';' segments of a structured description, else the whole text (free=True)."""
    parts = [p.strip() for p in text.rstrip(". ").split(";")]
    if len(parts) == len(LEVELS) and all(parts):
        return dict(zip(LEVELS, parts)), False
    return {level: text for level in LEVELS}, True


def _instance_noun(seg: str) -> str | None:
    """The noun of the instance phrase, without a name hint ('on the second dog from the left' -> 'dog')."""
    m = re.search(
        r"\bon\s+(the\s+[^,;:.]+?)(?=$|[,;:.]|'s\b|\s+which\b|\s+located\b|\s+close\s+to\b|"
        r"\s+(?:in|at|on|near|by)\s+the\b)",
        seg,
    )
    if not m:
        return None
    chunk = m.group(1)
    for pattern in (
        r"^the\s+",
        r"\b(?:counting\s+)?from\s+the\s+(?:left|right|top|bottom)\b",
        rf"\bof\s+the\s+{COUNT_RE}\b",
        r"\b(?:only|single|lone)\b",
        rf"\b{ORDINAL_RE}\b",
        rf"\b{alternation(_EXTREME_END)}\b",
        rf"\b{alternation(_PAIR_END)}\b",
        r"\bone\b",
        r"\bof\s+the\b",
        r"-",
    ):
        chunk = re.sub(pattern, " ", chunk)
    chunk = re.sub(r"\s+", " ", chunk).strip()
    return chunk or None


def _parse_object(seg: str, facts: Facts) -> None:
    facts.only = facts.only or bool(_ONLY.search(seg))
    for m in _TWO.finditer(seg):
        facts.orders.append(OrderClaim(_PAIR_END[m.group(1)], 1, m.group(0)))
    for m in _FROM.finditer(seg):
        facts.orders.append(OrderClaim(OrderEnd(m.group(2)), parse_ordinal(m.group(1)), m.group(0)))
    for m in _SIZE_ORD.finditer(seg):
        facts.orders.append(OrderClaim(_SIZE_END[m.group(2)], parse_ordinal(m.group(1)), m.group(0)))
    for m in _EXTREME.finditer(seg):
        facts.orders.append(OrderClaim(_EXTREME_END[m.group(1)], 1, m.group(0)))
    facts.counts += [parse_count(m.group(1)) for m in _COUNT.finditer(seg)]
    facts.scene += [_grid(m.group(1)) for m in _SCENE.finditer(seg)]
    edge_of = {"upper": "top", "lower": "bottom"}
    facts.edges += [edge_of.get(m.group(1), m.group(1)) for m in _EDGE.finditer(seg)]


def _selector_claim(selector: str, end: str | None, text: str) -> OrderClaim | None:
    """The order claim of a repeated part's selector ('leftmost', 'left one', 'second' + from the left,
    'second-largest'); None for words that claim no order."""
    words = re.sub(r"\s+one$", "", selector.strip())
    if end is not None and (m := re.fullmatch(rf"({ORDINAL_RE})", words)):
        return OrderClaim(OrderEnd(end), parse_ordinal(m.group(1)), text)
    if words in _PAIR_END:
        return OrderClaim(_PAIR_END[words], 1, text)
    if words in _EXTREME_END:
        return OrderClaim(_EXTREME_END[words], 1, text)
    if m := re.fullmatch(rf"({ORDINAL_RE})[\s-]+({alternation(_SIZE_END)})", words):
        return OrderClaim(_SIZE_END[m.group(2)], parse_ordinal(m.group(1)), text)
    return None


def _parse_part(seg: str, facts: Facts, category: str | None) -> None:
    for m in _PART_INSTANCE.finditer(seg):
        facts.part_counts.append(parse_count(m.group("n")))
        if m.group("sel") and (claim := _selector_claim(m.group("sel"), m.group("end"), m.group(0))):
            facts.part_orders.append(claim)
        if facts.part is None:
            facts.part = m.group("name").strip()
    seg = _PART_INSTANCE.sub(lambda m: f"on its {m.group('name')}", seg)
    m = _PART_NAME.search(seg)
    if m and facts.part is None:
        facts.part = m.group(1).strip()
    scene_owners = {f"the {n}" for n in SCENE_NOUNS}
    for m in _PART_POS.finditer(seg):
        owner = re.sub(r"\s+", " ", m.group(2))
        if owner in scene_owners or owner == f"the {_PART}":
            continue
        if category is not None and owner not in (f"the {_CAT}", "its body", "the body", "its"):
            continue
        facts.part_positions.append(_grid(m.group(1)))


def _grade(adverb: str) -> int:
    adverb = re.sub(r"\s+", " ", adverb.strip())
    if adverb in SLIGHT_WORDS:
        return 1
    if adverb in ("far", "very"):
        return 3
    return 2


def _parse_point(seg: str, facts: Facts) -> None:
    v_of = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
    for m in _CORNER.finditer(seg):
        facts.point_v.append(AxisClaim(v_of[m.group(1)], 3))
        facts.point_h.append(AxisClaim(m.group(2), 3))
    seg = _CORNER.sub(",", seg)
    for m in _FAR_H.finditer(seg):
        facts.point_h.append(AxisClaim(m.group(1) or m.group(2), 3))
    for m in _FAR_V.finditer(seg):
        facts.point_v.append(AxisClaim(m.group(1) or m.group(2), 3))
    for m in _REL.finditer(seg):
        for chunk in filter(None, (m.group(1), m.group(2))):
            d = re.search(r"(left|right|above|below)", chunk)
            adverb = chunk[: d.start()].replace("to the", "").strip()
            grade = _grade(adverb) if adverb else 2
            word = d.group(1)
            if word in ("left", "right"):
                facts.point_h.append(AxisClaim(word, grade))
            else:
                facts.point_v.append(AxisClaim("top" if word == "above" else "bottom", grade))
    facts.point_places += [m.group(0) for m in _PART_PLACE.finditer(seg)]
    for _ in _CENTRE.finditer(_REL.sub(",", seg)):
        facts.point_h.append(AxisClaim("center", 0))
        facts.point_v.append(AxisClaim("middle", 0))


def _parse_local(seg: str, facts: Facts, texture_hint: str | None) -> None:
    facts.colours += [COLOUR_WORDS[re.sub(r"\s+", " ", m.group(1))] for m in _COLOUR.finditer(seg)]
    facts.brightness += [_BRIGHTNESS_OF[re.sub(r"\s+", " ", m.group(1))] for m in _BRIGHTNESS.finditer(seg)]
    facts.energies += [_ENERGY_OF[m.group(1)] for m in _ENERGY.finditer(seg)]
    texture_of, pattern = _TEXTURE_OF, _TEXTURE
    if (
        texture_hint and texture_hint not in texture_of
    ):  # an annotation outside the known set, repeated verbatim
        texture_of = {**_TEXTURE_OF, texture_hint: texture_hint}
        pattern = re.compile(rf"\b({alternation(texture_of)})\b")
    facts.textures += [texture_of[re.sub(r"\s+", " ", m.group(1))] for m in pattern.finditer(seg)]


def parse_description(
    text: str, *, category: str | None = None, part: str | None = None, texture: str | None = None
) -> Facts:
    """The facts `text` claims. `category`, `part` (and an unusual annotated `texture`) are the row's names,
    when known: they are recognised as names, not read as position or colour words."""
    category = normalise_name(category) if category else None
    part = normalise_name(part) if part else None
    texture = normalise_name(texture) if texture else None
    masked = _mask(_norm(text), category, part)
    segs, free = _segments(masked)
    facts = Facts()
    obj, part_seg, point_seg, local_seg = (segs[level] for level in LEVELS)
    if (
        free
    ):  # keep scene phrases out of the part and point levels, part-in-object phrases out of the point level
        part_seg = _EDGE.sub(",", _SCENE.sub(",", part_seg))
        point_seg = _PART_POS.sub(
            lambda m: m.group(0) if m.group(2).strip() == f"the {_PART}" else ",", part_seg
        )
    named = bool(category) and (_CAT in obj or _CATS in obj)  # also as a part's owner: "the dog's two ears"
    obj = _PART_INSTANCE.sub(",", obj)  # a repeated part's rank and count are not the object's
    point_seg = _PART_INSTANCE.sub(",", point_seg)
    _parse_object(obj, facts)
    _parse_part(part_seg, facts, category)
    _parse_point(point_seg, facts)
    _parse_local(local_seg, facts, texture)
    if named:
        facts.category = category
    else:
        noun = _instance_noun(obj)
        facts.category = noun if noun not in (_CAT, _CATS) else category
    if facts.part == _PART or (facts.part is None and part and _PART in part_seg):
        facts.part = part
    return facts


def levels_present(text: str, *, category: str | None = None, part: str | None = None) -> dict[str, bool]:
    """Which coarse-to-fine levels `text` has: object in the scene, part in the object, point in the part,
    local look. Works on free text; the row's names, when given, make it more reliable."""
    return parse_description(text, category=category, part=part).levels()


def split_levels(text: str, *, category: str | None = None, part: str | None = None) -> dict[str, str]:
    """The text of each level: the four ';' segments of a structured description, else the clauses of a
    free text grouped by level ('' for a level with no clause). A clause goes to the first of point, part,
    object, local it makes a claim for (a point clause usually names the part too), or joins the previous
    clause's level when it makes none."""
    pieces = [p.strip() for p in str(text).strip().rstrip(".").split(";")]
    if len(pieces) == len(LEVELS) and all(pieces):
        return dict(zip(LEVELS, pieces))
    out: dict[str, list[str]] = {level: [] for level in LEVELS}
    current = LEVELS[0]
    for clause in (c.strip() for c in re.split(r"[;.]\s*|,\s+", str(text))):
        if not clause:
            continue
        present = levels_present(clause, category=category, part=part)
        current = next((level for level in _CLAUSE_PRIORITY if present[level]), current)
        out[current].append(clause)
    return {level: ", ".join(clauses) for level, clauses in out.items()}


def _axis_issue(claim: AxisClaim, value: float, label: str, axis: str, tol: float) -> str | None:
    """Why a point claim along one axis contradicts the part-relative coordinate and its third label."""
    centre, low, high = ("center", "left", "right") if axis == "h" else ("middle", "top", "bottom")
    offset = value - 0.5
    lo, hi = grade_interval(claim.grade)
    column = "kp_in_part_x" if axis == "h" else "kp_in_part_y"
    if claim.grade == 0:
        ok = abs(offset) < hi + tol and label == centre
    else:
        if claim.direction not in (low, high):
            return f"point: {claim} is not a direction along {axis}"
        signed = -offset if claim.direction == low else offset
        opposite = high if claim.direction == low else low
        ok = (
            lo - tol <= signed < hi + tol
            and label != opposite
            and (claim.grade < 3 or label == claim.direction)
        )
    return (
        None
        if ok
        else f"point: says {claim.direction} grade {claim.grade} but {column}={value:.3f} ({label})"
    )


def _order_issues(claims: list[OrderClaim], ranks: dict[OrderAxis, int], n: int, level: str, prefix: str,
                  count_column: str) -> list[str]:
    """The order claims ('the second from the left') that the ranks contradict: the object's among its category
    (prefix 'order_') or the part's among its object's parts of that name ('part_order_')."""
    issues = []
    for claim in claims:
        axis, from_start = END_AXIS[claim.end]
        rank = ranks[axis]
        if claim.k != (rank if from_start else n - rank + 1):
            issues.append(f"{level}: {claim.text!r} but {prefix}{axis.value}={rank} of {count_column}={n}")
    return issues


def _check(f: RowFacts, facts: Facts, bins: WordBins, tol: float) -> list[str]:
    issues = []
    if facts.category != f.category:
        issues.append(f"category: the row's category {f.category!r} is not named")
    if facts.part != f.part:
        named = f" (names {facts.part!r})" if facts.part else ""
        issues.append(f"part: the row's part {f.part!r} is not named{named}")
    if facts.only and f.n_same > 1:
        issues.append(f"order: says the only {f.category} but n_same={f.n_same}")
    for n in facts.counts:
        if n != f.n_same:
            issues.append(f"order: counts {n} {plural(f.category)} but n_same={f.n_same}")
    issues += _order_issues(facts.orders, f.ranks, f.n_same, "order", "order_", "n_same")
    for n in facts.part_counts:
        if n != f.n_same_part:
            issues.append(f"part: counts {n} {plural(f.part)} but n_same_part={f.n_same_part}")
    issues += _order_issues(facts.part_orders, f.part_ranks, f.n_same_part, "part", "part_order_", "n_same_part")
    for v, h in facts.scene:
        if (v and v != f.scene_v) or (h and h != f.scene_h):
            issues.append(f"scene: says ({v}, {h}) but obj_v_pos={f.scene_v}, obj_h_pos={f.scene_h}")
    for e in facts.edges:
        if e != f.edge:
            issues.append(f"scene: says near the {e} edge but obj_edge={f.edge}")
    for v, h in facts.part_positions:
        if (v and v != f.part_v) or (h and h != f.part_h):
            issues.append(
                f"part: says ({v}, {h}) of the object but part_v_in_obj={f.part_v}, part_h_in_obj={f.part_h}"
            )
    for claim in facts.point_h:
        if issue := _axis_issue(claim, f.point_x, f.point_h_label, "h", tol):
            issues.append(issue)
    for claim in facts.point_v:
        if issue := _axis_issue(claim, f.point_y, f.point_v_label, "v", tol):
            issues.append(issue)
    allowed = {f.colour} | ({f.part_colour} if f.part_colour else set())
    for c in facts.colours:
        if c not in allowed:
            issues.append(f"local: says {c} but patch_colour={f.colour}, part_colour={f.part_colour}")
    for b in facts.brightness:
        lo, hi = bins.brightness_interval(b)
        if not lo - tol <= f.brightness_value < hi + tol:
            issues.append(f"local: says {b.value} but patch_brightness={f.brightness_value:.3f}")
    for e in facts.energies:
        lo, hi = bins.energy_interval(e)
        if not lo - tol <= f.energy_value < hi + tol:
            issues.append(f"local: says {e.value} but patch_edge_energy={f.energy_value:.3f}")
    if f.texture is not None:
        for t in facts.textures:
            if t != f.texture:
                issues.append(f"local: says {t} but part_texture={f.texture}")
    return issues


def check_faithful(
    row: Mapping, description: str, *, bins: WordBins | None = None, tol: float = 0.0
) -> list[str]:
    """Contradictions between `description` and its KEYPOINTS row (empty = faithful).

    Every claim found is checked against the column it is about; a row name (category, part) that the text
    never mentions counts as a contradiction too. `tol` widens every numeric bin (e.g. 0.05 to forgive a
    model's borderline 'slightly'); `bins` are the brightness / edge-energy thresholds. A bad row raises
    `BadInput`.
    """
    bins = bins or WordBins()
    f = row_facts(row, bins)
    facts = parse_description(description, category=f.category, part=f.part, texture=f.texture)
    return _check(f, facts, bins, tol)


def assess(
    row: Mapping, description: str, *, bins: WordBins | None = None, tol: float = 0.0
) -> tuple[list[str], dict[str, bool]]:
    """`check_faithful` and `levels_present` (with the row's names) from a single parse."""
    bins = bins or WordBins()
    f = row_facts(row, bins)
    facts = parse_description(description, category=f.category, part=f.part, texture=f.texture)
    return _check(f, facts, bins, tol), facts.levels()

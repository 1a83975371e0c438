"""Description styles the localizer never saw: the same facts, written the way other describers write.

The paper's localizer is trained on one description style and says so ("most reliable for comparing methods
that operate within a similar descriptive style"); people (56 mPCK) and ChatGPT-5 (62) scored well below TP (78),
largely for style. Each style here rewrites a keypoint row's facts, never adding or dropping a fact the row does
not support (`parse.check_faithful` reads every style back, see `readable`):

* `terse`: what people write, one clause: "the top end of the tail of the left dog of the two", "the
  rightmost of the horse's four legs" (which of a repeated part, as in "left front paw of the cat");
* `reordered`: fine to coarse or mixed order, no level separators;
* `paraphrase`: the description with the words of the training templates replaced by synonyms that never
  occur in them (`HELD_OUT`: "shot" for image, "murky" for dark, "speckled" for dotted, ...);
* `verbose`: ChatGPT-like, appearance first, the position cues in the middle, sentences that claim nothing;
* `sparse`: a training augmentation, not a test style: the description's own words with each position clause
  (the object's place in the image, the part's place in the object, the point's place in the part) and the
  local look left out at random (`SPARSE_KEEP`), so that a localizer learns where parts lie from the image
  and the names, as it must when a describer leaves those clauses out ("fact dropout", in the spirit of word
  dropout); nothing of another style's wording or structure.

Every choice is drawn from a generator fixed by (seed, kp_id, style), so a row's text does not depend on the
batch. `gt` is the description itself (the training style).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from talking_points.pipeline.synthesis.facts import RowFacts, row_facts
from talking_points.pipeline.synthesis.parse import VOCABULARY_WORDS
from talking_points.pipeline.synthesis.sentences import (
    OPENERS,
    instance_phrase,
    order_axis,
    part_instance_phrase,
    part_order_axis,
    part_place,
    scene_place,
    write_levels,
)
from talking_points.pipeline.synthesis.style_config import Style
from talking_points.pipeline.synthesis.vocabulary import WordBins, plural, row_rng

__all__ = ["Style", "HELD_OUT", "SPARSE_KEEP", "restyle", "restyle_frame", "mixed_styles", "readable"]


#: (training-template words, the held-out synonym written in their place, the canonical word `readable` restores)
_PARAPHRASE: tuple[tuple[str, str, str], ...] = (
    (r"the point is|this point is|the keypoint is|the marked point is|the point lies", "the target pixel is",
     "the point is"),
    (r"photograph|photo|picture|image|scene|frame", "shot", "image"),
    (r"leftmost", "furthest-left", "leftmost"),
    (r"rightmost", "furthest-right", "rightmost"),
    (r"topmost|uppermost", "highest-placed", "topmost"),
    (r"bottommost", "lowest-placed", "bottommost"),
    (r"largest|biggest", "bulkiest", "largest"),
    (r"smallest", "tiniest", "smallest"),
    (r"slightly|a little|just", "marginally", "slightly"),
    (r"moderately bright|medium-bright|mid-toned", "half-lit", "mid-toned"),
    (r"brightly lit|well-lit|bright", "luminous", "bright"),
    (r"shadowy|dark|dim", "murky", "dark"),
    (r"featureless|smooth", "sleek", "smooth"),
    (r"textured|grainy", "rough-looking", "textured"),
    (r"cluttered|busy", "chaotic", "busy"),
    (r"striped|stripy", "banded", "striped"),
    (r"dotted|spotted", "speckled", "dotted"),
    (r"checkered|chequered", "tiled", "checkered"),
    (r"gradient-shaded|gradient", "ombre", "gradient"),
    (r"solid-coloured|uniform|plain", "unpatterned", "plain"),
    (r"patch", "spot", "patch"),
    (r"edge|border", "margin", "edge"),
    (r"close to|near|by(?= the (?:left|right|top|bottom) margin)", "hugging", "near"),
)
#: the synonyms `paraphrase` writes: none of them occurs in a training description (tests assert it)
HELD_OUT: frozenset[str] = frozenset(
    w for _, new, _ in _PARAPHRASE for w in re.split(r"[\s]+", new) if w not in ("the", "is")
)
_FORWARD = [(re.compile(rf"(?<![\w-])(?:{old})(?![\w-])", re.IGNORECASE), new) for old, new, _ in _PARAPHRASE]
_BACKWARD = [(re.compile(rf"(?<![\w-]){re.escape(new)}(?![\w-])", re.IGNORECASE), back)
             for _, new, back in _PARAPHRASE]


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]


def paraphrase(description: str, names: Sequence[str] = ()) -> str:
    """The description with every training-template word of `_PARAPHRASE` replaced by its held-out synonym;
    the row's `names` (category, part: a part called 'frame') are left as they are."""
    kept = {}
    forms = {form for n in names if n for form in (n, plural(n))}
    for k, name in enumerate(sorted(forms, key=len, reverse=True)):
        token = f"zzname{k}zz"
        description = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", token, description, flags=re.IGNORECASE)
        kept[token] = name
    for pattern, new in _FORWARD:
        description = pattern.sub(new, description)
    for token, name in kept.items():
        description = description.replace(token, name)
    return _sentence(description)


def readable(text: str, style: Style) -> str:
    """The text the faithfulness parser reads for a style: a paraphrase with its synonyms mapped back (the
    parser knows only the training vocabulary), any other style as written."""
    if style is Style.paraphrase:
        for pattern, back in _BACKWARD:
            text = pattern.sub(back, text)
    return text


def _terse(f: RowFacts, seed: int) -> str:
    """One clause, as people write: the instance, which of its parts of that name (a repeated part: 'the
    rightmost of its four legs', as in 'left front paw'), and the place in the part only at its far ends.

    Which instance and which of a repeated part are always said: by the rank along an axis that tells them
    apart, else (touching or overlapping, no axis does) by where they are, as people say 'the dog at the top
    left of the picture', 'the leg at the lower left of the cat' (until run 26: 'one of the three dogs', 'one of
    its four legs', which leave the instance open; README)."""
    rng = row_rng(seed, f.kp_id, "style/terse")
    if f.n_same == 1:
        inst = f"the {f.category}"
    elif order_axis(f) is None:
        inst = f"the {f.category} {scene_place(f, rng)}"
    else:
        inst = instance_phrase(f, rng)
    gh, gv = f.point_h_grade, f.point_v_grade
    h = "left" if f.point_x < 0.5 else "right"
    v = "top" if f.point_y < 0.5 else "bottom"
    if f.n_same_part > 1 and part_order_axis(f) is None:
        p = f"the {f.part} {part_place(f, f'the {f.category}', rng)}"
    elif f.n_same_part > 1:  # which of them: owned by 'its' after the instance, by "the dog's" when it is alone
        owner = "its" if f.n_same > 1 else f"the {f.category}'s"
        p = part_instance_phrase(f, owner, rng)
    else:
        # a part named with the descriptions' own words ('top', 'base') stays a name only after 'its'
        p = f"its {f.part}" if set(f.part.split()) & VOCABULARY_WORDS else f"the {f.part}"
    if gh == 3 and gv == 3:
        where = f"the far {v} {h} corner of {p}"
    elif gv == 3:
        where = f"the {v} end of {p}"
    elif gh == 3:
        where = f"the far {h} end of {p}"
    elif f.n_same == 1 and f.n_same_part == 1 and rng.random() < 0.5:
        return _sentence(f"{inst}'s {f.part}")
    else:
        where = p
    if f.n_same_part > 1:
        return _sentence(f"{inst}, {where}" if f.n_same > 1 else where)
    return _sentence(f"{inst}, {where}" if p.startswith("its") else f"{where} of {inst}")


#: the chance `sparse` keeps each optional clause: the object's place in the image, the part's place in the
#: object, the point's place in the part, the local look (the instance and the part are always named). Low, so
#: that many texts name the object without its place, as people do (0.5 / 0.5 / 0.5 / 0.3 until run 18; README)
SPARSE_KEEP: dict[str, float] = {"object": 0.25, "part": 0.25, "point": 0.35, "local": 0.2}


def _sparse(f: RowFacts, seed: int) -> str:
    """The row's facts in the training templates' words, each optional clause kept with its `SPARSE_KEEP`
    chance (drawn per kp_id): 'The point is on the lower one of the two horses; on the horse's tail.'"""
    rng = row_rng(seed, f.kp_id, "style/sparse")
    levels = write_levels(f, seed, shuffle_clauses=0.0, reorder=False)
    whose = "its" if rng.random() < 0.5 else f"the {f.category}'s"
    bare = {"object": f"on {instance_phrase(f, rng)}",
            "part": f"on {whose} {f.part}" if f.n_same_part == 1 else f"on {part_instance_phrase(f, whose, rng)}"}
    kept = []
    for name in ("object", "part", "point", "local"):
        if rng.random() < SPARSE_KEEP[name]:
            kept.append(getattr(levels, name))
        elif name in bare:
            kept.append(bare[name])
    return _sentence(f"{rng.choice(OPENERS)} " + "; ".join(kept) + ".")


def _reordered(f: RowFacts, seed: int) -> str:
    levels = write_levels(f, seed, shuffle_clauses=0.5)
    rng = row_rng(seed, f.kp_id, "style/reordered")
    order = rng.choice(((levels.local, levels.point, levels.part, levels.object),  # fine to coarse
                        (levels.part, levels.point, levels.object, levels.local),
                        (levels.point, levels.part, levels.local, levels.object)))
    return _sentence(", ".join(order) + ".")


def _verbose(f: RowFacts, seed: int) -> str:
    levels = write_levels(f, seed, shuffle_clauses=0.3)
    rng = row_rng(seed, f.kp_id, "style/verbose")
    opening = rng.choice(("There is quite a lot going on in this one, so let me walk through it carefully.",
                          "Let me describe what I see around the point as precisely as I can.",
                          "This is an interesting one to describe."))
    closing = rng.choice(("With all of these cues together, it should be easy to pinpoint.",
                          "Taken together, these details should narrow it down well.",
                          "I hope this helps to find it."))
    return " ".join((
        opening,
        _sentence(f"visually, the point is {levels.local}."),
        _sentence(f"as for where it is, it is {levels.object}."),
        _sentence(f"looking more closely, it is {levels.part}."),
        _sentence(f"more precisely, it is {levels.point}."),
        closing,
    ))


def restyle(row: Mapping, style: Style, seed: int, bins: WordBins) -> str:
    """The row's facts written in `style` (`gt`: the row's own description; `llm` is a model's, written for a
    whole split by `tp restyle`, `synthesis.llm_style`)."""
    if style is Style.gt:
        return str(row["description"])
    elif style is Style.llm:
        raise ValueError("the llm style is written by a chat LLM over the whole test split (tp restyle, "
                         "styles.llm), not row by row: it cannot be a training style")
    elif style is Style.paraphrase:
        names = (row.get("category"), row.get("part"))
        return paraphrase(str(row["description"]), [str(n).replace("_", " ") for n in names if n])
    f = row_facts(row, bins)
    if style is Style.terse:
        return _terse(f, seed)
    elif style is Style.reordered:
        return _reordered(f, seed)
    elif style is Style.verbose:
        return _verbose(f, seed)
    elif style is Style.sparse:
        return _sparse(f, seed)
    else:
        raise ValueError(f"unknown description style {style!r}")


def restyle_frame(samples: pd.DataFrame, styles: Sequence[Style], seed: int, bins: WordBins) -> pd.DataFrame:
    """kp_id and one column per style (the texts of every sample in that style)."""
    rows = samples.to_dict(orient="records")
    out = {"kp_id": samples["kp_id"].astype(str).tolist()}
    for style in styles:
        out[style.value] = [restyle(r, style, seed, bins) for r in rows]
    return pd.DataFrame(out)


def mixed_styles(samples: pd.DataFrame, styles: Sequence[Style], seed: int, bins: WordBins) -> list[str]:
    """One text per sample, in a style drawn per sample (fixed by seed and kp_id) from `styles`: the training
    texts of a style-robust localizer."""
    if not styles:
        raise ValueError("mixed_styles needs at least one style")
    texts = []
    for r in samples.to_dict(orient="records"):
        style = row_rng(seed, str(r["kp_id"]), "style/mix").choice(list(styles))
        texts.append(restyle(r, style, seed, bins))
    return texts

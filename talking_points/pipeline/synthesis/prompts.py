"""The prompts of the four model passes: versioned template files, and the row facts they are filled with.

A prompt version is a folder (`synthesis/prompts/<version>/`, or `<prompt_dir>/<version>/`) holding one
`str.format` template per pass: object.txt, local.txt (the VLM passes), generate.txt, refine.txt (the LLM
passes) and retry.txt (appended to generate.txt when a rejected description is regenerated). A template
may use only the placeholders `FIELDS` lists for it; anything else is an error naming the file.

The LLM passes get the mined geometry as text (`row_context`): a fact list, and a plain description
written from the same facts by the grounded writer, so the model has a faithful version to rephrase.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data.colours import name_of
from talking_points.pipeline.synthesis.facts import RowFacts
from talking_points.pipeline.synthesis.model_config import PROMPTS_DIR, MarkerConfig
from talking_points.pipeline.synthesis.sentences import compose, write_levels
from talking_points.pipeline.synthesis.vocabulary import OrderAxis, plural

__all__ = ["PASS_TEMPLATES", "FIELDS", "PromptSet", "load_prompts", "row_context", "marker_words"]

PASS_TEMPLATES: tuple[str, ...] = ("object", "local", "generate", "refine", "retry")
_ROW = frozenset({"category", "categories", "part"})
FIELDS: dict[str, frozenset[str]] = {
    "object": _ROW | {"marker"},
    "local": _ROW,
    "generate": _ROW | {"facts", "reference", "object_observation", "local_observation"},
    "refine": _ROW | {"facts", "reference", "draft"},
    "retry": frozenset({"issues"}),
}


@dataclass(frozen=True)
class PromptSet:
    """The templates of one prompt version; `digest` changes whenever any template's text does."""

    version: str
    folder: str
    templates: dict[str, str]
    digest: str

    def render(self, name: str, **values: str) -> str:
        """Template `name` filled with `values` (which must cover its placeholders)."""
        return self.templates[name].format(**values)


def _placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def load_prompts(version: str, prompt_dir: str | Path | None = None) -> PromptSet:
    """Read and check the templates of `version`; `ConfigError` names a missing file or a bad placeholder."""
    folder = (Path(prompt_dir).expanduser() if prompt_dir else PROMPTS_DIR) / version
    templates, h = {}, hashlib.sha256()
    for name in PASS_TEMPLATES:
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise ConfigError(f"{path}: prompt template missing (prompt_version {version!r} needs "
                              f"{', '.join(n + '.txt' for n in PASS_TEMPLATES)})")
        text = path.read_text(encoding="utf-8")
        try:
            used = _placeholders(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        if unknown := used - FIELDS[name]:
            raise ConfigError(f"{path}: unknown placeholder(s) {sorted(unknown)}; "
                              f"{name}.txt may use {sorted(FIELDS[name])}")
        templates[name] = text.strip("\n") if name != "retry" else text.rstrip("\n")
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return PromptSet(version=version, folder=str(folder), templates=templates, digest=h.hexdigest()[:16])


def marker_words(marker: MarkerConfig) -> str:
    """How the prompt names the marker, e.g. 'red circle'."""
    return f"{name_of(marker.colour)} {marker.shape.value}"


def _where(v: str, h: str) -> str:
    return "centre" if (v, h) == ("middle", "center") else f"{v} {h}".replace("middle ", "").replace(" center", "")


def _fact_lines(f: RowFacts) -> list[str]:
    c = f.category
    if f.n_same == 1:
        instance = f"it is the only {c} in the image"
    else:
        lr, tb, size = (f.ranks[a] for a in (OrderAxis.lr, OrderAxis.tb, OrderAxis.size))
        instance = (f"there are {f.n_same} {plural(c)}; this one is number {lr} counting from the left, "
                    f"number {tb} counting from the top, and number {size} by size (1 = largest)")
    edge = "" if f.edge == "none" else f", close to the {f.edge} edge"
    local = [f"colour {f.colour}", f"{f.brightness.value} brightness", f"{f.energy.value} texture"]
    if f.texture:
        local.append(f"annotated pattern: {f.texture}")
    return [
        f"- object: {c}; {instance}; it is in the {_where(f.scene_v, f.scene_h)} of the image{edge}",
        f"- part: {f.part}, in the {_where(f.part_v, f.part_h)} of the {c}",
        f"- point in the part: {f.point_h_label} horizontally ({f.point_x:.2f} of the part's width from its "
        f"left), {f.point_v_label} vertically ({f.point_y:.2f} of its height from its top)",
        "- look at the point: " + ", ".join(local),
    ]


def row_context(f: RowFacts, seed: int) -> dict[str, str]:
    """The row placeholders: names, the fact list and the grounded plain description."""
    reference = compose(write_levels(f, seed, 0.0, reorder=False), "The point is")
    return {
        "category": f.category,
        "categories": plural(f.category),
        "part": f.part,
        "facts": "\n".join(_fact_lines(f)),
        "reference": reference,
    }

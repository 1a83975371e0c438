"""The KptLLM-style name-only baseline phrasing: the part and the object's class, nothing else.

It deliberately carries no order, position or appearance, so comparing it with the four-level
descriptions measures what those levels add.
"""

from __future__ import annotations

from talking_points.pipeline.synthesis.vocabulary import normalise_name, row_rng

__all__ = ["TEMPLATE_FORMS", "template_phrase"]

TEMPLATE_FORMS: tuple[str, ...] = ("the {part} of the {category}", "the {category}'s {part}")


def template_phrase(category: str, part: str, kp_id: str, seed: int) -> str:
    """'the head of the dog' or "the dog's head", chosen by (seed, kp_id)."""
    form = row_rng(seed, kp_id, "template").choice(TEMPLATE_FORMS)
    return form.format(part=normalise_name(part), category=normalise_name(category))

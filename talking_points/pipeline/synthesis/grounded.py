"""The `grounded` backend: four-level descriptions written from the mined geometry, no model (the sentences
are written by `sentences`).

Level 1 names the instance (by its rank along the most telling axis when the category repeats) and where
it sits in the image; level 2 the part and where it lies in the object; level 3 where the point lies in
the part, graded by its offset from the part's centre; level 4 the patch's colour, brightness and texture.
Each level has several frames and synonyms, and clauses inside a level may swap
(`GroundedConfig.shuffle_clauses`); every choice is drawn from a generator fixed by (seed, kp_id), so a
row's text does not depend on the batch or the row order. Every word is chosen from a bin that the
row's numbers satisfy, so `parse.check_faithful` finds nothing to object to.
"""

from __future__ import annotations

import json

import pandas as pd

from talking_points.pipeline.synthesis.base import DescriptionBackend, Draft
from talking_points.pipeline.synthesis.config import GroundedConfig
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.registry import BackendEntry, register_backend
from talking_points.pipeline.synthesis.sentences import OPENERS, compose, write_levels
from talking_points.pipeline.synthesis.vocabulary import WordBins, row_rng

__all__ = ["GroundedBackend", "BACKEND"]


class GroundedBackend(DescriptionBackend):
    """Descriptions from the row's own geometry and patch statistics (no model)."""

    name = "grounded"

    def __init__(self, cfg: GroundedConfig, bins: WordBins):
        super().__init__(bins)
        self.cfg = cfg

    @property
    def model(self) -> str:
        return ""

    @property
    def prompt_version(self) -> str:
        return self.cfg.prompt_version

    def sampling(self, seed: int) -> str:
        return json.dumps(
            {**self.cfg.model_dump(mode="json"), **self.bins.__dict__, "seed": seed}, sort_keys=True
        )

    def generate(self, rows: pd.DataFrame, seed: int) -> list[Draft]:
        """Drafts whose passes mirror the model pipeline: pass_object / pass_local are the level-1 / level-4
        texts and pass_generate the description as composed, all before clause reordering; pass_refine
        (= description) is the reordered, cleaned-up final text. Rows must pass `row_facts`."""
        drafts = []
        for row in rows.to_dict("records"):
            f = row_facts(row, self.bins)
            opener = row_rng(seed, f.kp_id, "opener").choice(OPENERS)
            plain = write_levels(f, seed, self.cfg.shuffle_clauses, reorder=False)
            final = write_levels(f, seed, self.cfg.shuffle_clauses, reorder=True)
            drafts.append(
                Draft(
                    kp_id=f.kp_id,
                    description=compose(final, opener),
                    level_object=final.object,
                    level_part=final.part,
                    level_point=final.point,
                    level_local=final.local,
                    pass_object=plain.object,
                    pass_local=plain.local,
                    pass_generate=compose(plain, opener),
                    pass_refine=compose(final, opener),
                )
            )
        return drafts


BACKEND = register_backend(BackendEntry(name="grounded", config=GroundedConfig, make=GroundedBackend,
                                        resumes=False))

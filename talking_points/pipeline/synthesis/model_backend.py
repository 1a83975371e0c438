"""The four model passes, independent of the inference engine.

For a batch of keypoint rows: (1) object pass - the VLM sees the full image with the point marked;
(2) local pass - the VLM sees a Gaussian-masked crop centred on the point; (3) generate pass - the LLM
merges both observations with the mined geometry (`prompts.row_context`) into a coarse-to-fine
description; (4) refine pass - the LLM polishes it. The `pass_*` columns keep each pass's raw answer; the
refined answer, on one line (`clean_output`), is the description, and its level texts come from
`parse.split_levels`. Under `InvalidPolicy.regenerate` a description that fails the
faithfulness check has its two text passes re-run, sampled and told the problems, up to `max_retries`
times. An engine subclass only implements `see` (image + prompt -> text) and `write` (prompt -> text).
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
import pandas as pd

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.synthesis.base import DescriptionBackend, Draft, description_issues
from talking_points.pipeline.synthesis.facts import RowFacts, row_facts
from talking_points.pipeline.synthesis.model_config import InvalidPolicy, ModelSynthConfig, SamplingConfig
from talking_points.pipeline.synthesis.parse import split_levels
from talking_points.pipeline.synthesis.prompts import load_prompts, marker_words, row_context
from talking_points.pipeline.synthesis.visuals import (
    check_image,
    gaussian_crop,
    image_path,
    mark_point,
    read_image,
)
from talking_points.pipeline.synthesis.vocabulary import WordBins

__all__ = ["ModelBackend", "clean_output", "derived_seed"]


def clean_output(text: str) -> str:
    """A model's answer as one line: whitespace collapsed, wrapping quotes removed."""
    text = " ".join(str(text).split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def derived_seed(seed: int, *parts: str) -> int:
    """A 31-bit seed from `seed` and labels (pass, attempt, first prompt), for sampled generation."""
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class ModelBackend(DescriptionBackend):
    """Two VLM passes and two LLM passes per row; engines implement `see` and `write`."""

    def __init__(self, cfg: ModelSynthConfig, bins: WordBins):
        super().__init__(bins)
        self.cfg = cfg
        self.prompts = load_prompts(cfg.prompt_version, cfg.prompt_dir)
        self.drop_invalid = cfg.validation.policy is InvalidPolicy.drop

    # ---------------------------------------------------------------------------------------- the engine

    @abstractmethod
    def see(self, images: Sequence[np.ndarray], prompts: Sequence[str], sampling: SamplingConfig,
            seed: int) -> list[str]:
        """The VLM's answer for each (RGB uint8 image, prompt) pair, in order."""

    @abstractmethod
    def write(self, prompts: Sequence[str], sampling: SamplingConfig, seed: int) -> list[str]:
        """The LLM's answer to each prompt (one user turn each), in order."""

    # ---------------------------------------------------------------------------------------- provenance

    @property
    def model(self) -> str:
        return json.dumps({"vlm": self.cfg.vlm, "llm": self.cfg.llm})

    @property
    def prompt_version(self) -> str:
        return self.cfg.prompt_version

    def sampling(self, seed: int) -> str:
        c = self.cfg
        return json.dumps(
            {
                "vision": c.vision_sampling.model_dump(mode="json"),
                "text": c.text_sampling.model_dump(mode="json"),
                "validation": c.validation.model_dump(mode="json"),
                "seed": seed,
            },
            sort_keys=True,
        )

    def fingerprint(self, seed: int) -> str:
        c = self.cfg
        return json.dumps(
            {
                "backend": self.name,
                "model": self.model,
                "prompt_version": self.prompt_version,
                "prompt_digest": self.prompts.digest,
                "sampling": self.sampling(seed),
                "marker": c.marker.model_dump(mode="json"),
                "crop": c.crop.model_dump(mode="json"),
                "dtype": c.dtype.value,
                "bins": self.bins.__dict__,
            },
            sort_keys=True,
        )

    # ---------------------------------------------------------------------------------------- the passes

    def _path(self, row: dict):
        return image_path(row["file"], self.cfg.image_root)

    def check_row(self, row: dict) -> None:
        try:
            check_image(self._path(row), int(row["width"]), int(row["height"]))
        except BadInput as err:
            raise BadInput(f"{row['kp_id']} ({err.where})", err.reason, err.detail) from None

    def visual_inputs(self, rows: list[dict]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(marked full images, Gaussian-masked crops) of `rows`, each image file read once."""
        images: dict[str, np.ndarray] = {}
        marked, crops = [], []
        for row in rows:
            path = str(self._path(row))
            if path not in images:
                images[path] = read_image(path, int(row["width"]), int(row["height"]))
            image = images[path]
            marked.append(mark_point(image, row["x"], row["y"], self.cfg.marker))
            crops.append(gaussian_crop(image, row["x"], row["y"], self.cfg.crop))
        return marked, crops

    def _text_passes(self, contexts: list[dict], seed: int, sampling: SamplingConfig, label: str,
                     issues: list[list[str]] | None = None) -> tuple[list[str], list[str]]:
        generate = []
        for i, ctx in enumerate(contexts):
            prompt = self.prompts.render("generate", **ctx)
            if issues is not None:
                prompt += self.prompts.render("retry", issues="; ".join(issues[i]))
            generate.append(prompt)
        drafts = self.write(generate, sampling, derived_seed(seed, "generate", label))
        refine = [self.prompts.render("refine", **ctx, draft=clean_output(d)) for ctx, d in zip(contexts, drafts)]
        refined = self.write(refine, sampling, derived_seed(seed, "refine", label))
        return drafts, refined

    def row_issues(self, row: dict, description: str) -> list[str]:
        return description_issues(row, description, self.bins, tol=self.cfg.validation.tolerance)

    def validate(self, rows: pd.DataFrame, drafts: list[Draft]) -> list[list[str]]:
        return [self.row_issues(row, d.description) for row, d in zip(rows.to_dict("records"), drafts)]

    def generate(self, rows: pd.DataFrame, seed: int) -> list[Draft]:
        """Run the four passes on `rows` (regenerating rejected rows under policy 'regenerate')."""
        records = rows.to_dict("records")
        if not records:
            return []
        facts: list[RowFacts] = [row_facts(r, self.bins) for r in records]
        contexts = [row_context(f, seed) for f in facts]
        marked, crops = self.visual_inputs(records)
        marker = marker_words(self.cfg.marker)
        vs = self.cfg.vision_sampling
        seen_object = self.see(marked, [self.prompts.render("object", **c, marker=marker) for c in contexts],
                               vs, derived_seed(seed, "object"))
        seen_local = self.see(crops, [self.prompts.render("local", **c) for c in contexts],
                              vs, derived_seed(seed, "local"))
        for ctx, o, loc in zip(contexts, seen_object, seen_local):
            ctx.update(object_observation=clean_output(o), local_observation=clean_output(loc))

        drafts, refined = self._text_passes(contexts, seed, self.cfg.text_sampling, "0")
        val = self.cfg.validation
        if val.policy is InvalidPolicy.regenerate:
            issues = [self.row_issues(r, clean_output(d)) for r, d in zip(records, refined)]
            retry = self.cfg.text_sampling.model_copy(update={"do_sample": True,
                                                             "temperature": val.retry_temperature})
            for attempt in range(1, val.max_retries + 1):
                bad = [i for i, p in enumerate(issues) if p]
                if not bad:
                    break
                d2, r2 = self._text_passes([contexts[i] for i in bad], seed, retry, str(attempt),
                                           [issues[i] for i in bad])
                for i, d, r in zip(bad, d2, r2):
                    drafts[i], refined[i] = d, r
                    issues[i] = self.row_issues(records[i], clean_output(r))
        elif val.policy not in (InvalidPolicy.keep, InvalidPolicy.drop):
            raise ValueError(f"unknown validation policy {val.policy!r}")

        out = []
        for f, o, loc, d, r in zip(facts, seen_object, seen_local, drafts, refined):
            description = clean_output(r)
            levels = split_levels(description, category=f.category, part=f.part)
            out.append(
                Draft(
                    kp_id=f.kp_id,
                    description=description,
                    level_object=levels["object"],
                    level_part=levels["part"],
                    level_point=levels["point"],
                    level_local=levels["local"],
                    pass_object=o,
                    pass_local=loc,
                    pass_generate=d,
                    pass_refine=r,
                )
            )
        return out

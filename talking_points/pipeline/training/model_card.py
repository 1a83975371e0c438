"""The model card (`README.md`, Hugging Face's model-card layout: YAML metadata, then description, data,
training, evaluation, use, limitations) written into every trained model folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml

__all__ = ["CardFacts", "data_facts", "model_card"]

#: what each kind of model does, in one paragraph
PURPOSE = {
    "descriptor": "A **Point Descriptor**: given an image and one pixel, it writes a coarse-to-fine description "
                  "of that pixel (the object in the scene, the part of the object, the position inside the "
                  "part, the local look).",
    "localizer": "A **Point Localizer**: given an image and a description of a pixel, it regresses that pixel "
                 "(normalised x, y). It is the judge of descriptions (mPCK) and the reward of GRPO.",
}
USAGE = {
    "descriptor": ("from talking_points.pipeline.models.descriptor import PointDescriptor\n"
                   "from talking_points.pipeline.models.inference import describe\n\n"
                   "model, tok = PointDescriptor.from_pretrained(\"{folder}\")\n"
                   "# images: (N, 3, H, W) uint8 at model.input_size; points: (N, 2) normalised x, y\n"
                   "texts = describe(model, tok, images, points)"),
    "localizer": ("from talking_points.pipeline.models.localizer import PointLocalizer\n"
                  "from talking_points.pipeline.models.inference import localize\n\n"
                  "model, tok = PointLocalizer.from_pretrained(\"{folder}\")\n"
                  "points = localize(model, tok, images, texts)  # (N, 2) normalised x, y"),
}
CLI = {
    "descriptor": "tp describe --model {folder} --image photo.png --x 120 --y 64 --json",
    "localizer": "tp localize --model {folder} --image photo.png --text \"The point is on ...\" --json",
}


@dataclass
class CardFacts:
    """What the training stage knows about the model it saves."""

    kind: str  # descriptor | localizer
    name: str  # the variant: models/<name>
    base_source: str  # the base it was built on (a folder or a hub id)
    config: dict  # the model's config (as saved in point_model.json)
    training: dict  # the run summary (steps, first/last logged metrics, trainable parameters, ...)
    train_params: dict  # the params section's train block
    data: dict = field(default_factory=dict)  # rows, images, sources, the table it read
    profile_note: str = ""  # e.g. "default profile (PartWorld, procedural)"
    extra: list[str] = field(default_factory=list)  # more lines for the description (e.g. GRPO's direction)


def data_facts(samples, table) -> dict:
    """What a card says of a training table (a samples DataFrame read from `table`)."""
    facts = {"table": f"`{table}`", "rows": f"{len(samples):,}"}
    if "image_id" in samples.columns:
        facts["images"] = f"{samples['image_id'].nunique():,}"
    if "source" in samples.columns:
        facts["sources"] = ", ".join(f"`{s}`" for s in sorted(samples["source"].astype(str).unique()))
    if "category" in samples.columns:
        facts["categories"] = f"{samples['category'].nunique()}"
    return facts


def _table(d: dict) -> str:
    rows = [f"| `{k}` | `{json.dumps(v, default=str)}` |" for k, v in sorted(d.items())]
    return "\n".join(["| key | value |", "|---|---|", *rows])


def model_card(facts: CardFacts) -> str:
    """The README.md text of a model folder."""
    if facts.kind not in PURPOSE:
        raise ValueError(f"unknown model kind {facts.kind!r}; known: {sorted(PURPOSE)}")
    meta = {"library_name": "talking-points", "license": "apache-2.0",
            "tags": ["pixel-grounding", "vision-language", "keypoints", f"point-{facts.kind}"],
            "pipeline_tag": "image-text-to-text" if facts.kind == "descriptor" else "image-feature-extraction"}
    folder = f"models/{facts.name}"
    last = facts.training.get("last", {})
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
        f"# {facts.name}", "",
        PURPOSE[facts.kind], "",
        *facts.extra, *([""] if facts.extra else []),
        "This folder is self-contained: the base model it was built on is inside (`base/`), next to the "
        "heads, the LM weights or adapter and the tokenizer. Copy it anywhere and load it with "
        f"`{'PointDescriptor' if facts.kind == 'descriptor' else 'PointLocalizer'}.from_pretrained(folder)`.", "",
        "## Model description", "",
        f"- base: `{facts.base_source}` (copied into `base/`)",
        f"- LM adaptation: `{facts.config.get('lm_adaptation')}`; vision tower trained: "
        f"`{facts.config.get('train_vision')}`",
        f"- trainable parameters: {facts.training.get('trainable_params', '?'):,}"
        if isinstance(facts.training.get("trainable_params"), int) else "- trainable parameters: ?",
        "", "Model config (`point_model.json`):", "", _table(facts.config), "",
        "## Training data", "",
        f"- {facts.profile_note or 'see the params file of the run'}",
        *[f"- {k}: {v}" for k, v in facts.data.items()], "",
        "## Training procedure", "",
        f"- steps: {facts.training.get('steps', '?')} (resumed from step {facts.training.get('resumed_from', 0)})",
        *(["- last logged: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in sorted(last.items()))] if last else []),
        "", _table(facts.train_params), "",
        "## Evaluation", "",
        "The evaluation runs after training, so its figures are not in this card: `dvc repro` writes them to "
        "`reports/metrics.json` (`evaluation.<row>`, mPCK = mean of PCK@0.1 and PCK@0.2 on image-normalised "
        "coordinates, for every row that uses this model) and `reports/results.md`.", "",
        "## How to use", "",
        "```python", USAGE[facts.kind].format(folder=folder), "```", "",
        "```bash", CLI[facts.kind].format(folder=folder), "```", "",
        "## Limitations", "",
        "- Trained on the data named above. On the default profile that is PartWorld, a procedurally generated "
        "part-annotated dataset of flat-coloured shapes: the model knows the "
        f"{facts.data.get('categories', 'few')} categories of its training data and their parts, not real "
        "photographs.",
        "- Tiny by design (a MobileNetV2 tower and a few-million-parameter LM) so that the whole pipeline runs "
        "on a laptop CPU; its texts follow the training templates' style, and a localizer trained on one style "
        "reads other styles less well.",
        "",
    ]
    return "\n".join(lines)

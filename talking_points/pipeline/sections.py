"""The catalog of params sections: importing this module registers every section model (each lives next to
the code it configures), so that a whole params file can be validated (`tp check-params`)."""

from __future__ import annotations

from pathlib import Path

from talking_points.pipeline.config import (
    SECTIONS,
    ConfigError,
    Section,
    read_params,
    validate_section,
    variant_names,
)
from talking_points.pipeline.data import ingest_config, split  # noqa: F401 - registers ingest, split
from talking_points.pipeline.evaluation import config as _evaluation  # noqa: F401 - evaluate
from talking_points.pipeline.keypoints import config as _keypoints  # noqa: F401 - mine
from talking_points.pipeline.rl import config as _rl  # noqa: F401 - grpo
from talking_points.pipeline.synthesis import config as _synthesis  # noqa: F401 - synthesize
from talking_points.pipeline.synthesis import style_config as _styles  # noqa: F401 - styles
from talking_points.pipeline.training import config as _training  # noqa: F401 - init_models, train_*
from talking_points.pipeline.vision_pretraining import config as _vision  # noqa: F401 - pretrain_vision

__all__ = ["SECTIONS", "load_params"]


def load_params(path: str | Path = "params.yaml", require_all: bool = False) -> dict[str, Section]:
    """Validate every section of the params file `path` (every variant of sections that have variants):
    unknown sections are errors, and with `require_all` so are missing ones. Returns section -> model
    (variants validated but not returned). All problems are collected into one ConfigError."""
    path = Path(path)
    data = read_params(path)
    problems, out = [], {}
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        problems.append(f"{path}: unknown params sections {unknown} (known: {sorted(SECTIONS)})")
    if require_all:
        missing = sorted(set(SECTIONS) - set(data))
        if missing:
            problems.append(f"{path}: missing params sections {missing}")
    for name, cls in SECTIONS.items():
        if name not in data:
            continue
        try:
            out[name] = validate_section(name, data, cls, path)
            for variant in variant_names(data[name]):
                validate_section(name, data, cls, path, variant)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("\n".join(problems))
    return out

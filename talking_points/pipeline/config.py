"""The one config convention: every params.yaml section is a strict pydantic model (`Section`: unknown keys
are errors, constraints are per field so an error names the exact key, e.g. `grpo.train.lr`), registered
under its section name with `@register_section`. The section classes live next to the code they configure;
this module knows none of them (`pipeline.sections` imports them all, for `tp check-params`).

Stages load only their own section (`load_section`), so DVC's params tracking and the validation agree:
a stage fails early, with the offending key named, when its own params are wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Section",
    "SECTIONS",
    "ConfigError",
    "VARIANT_TABLES",
    "variant_names",
    "check_key",
    "deep_merge",
    "load_section",
    "read_params",
    "register_section",
    "source_names",
    "validate_section",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")  # \Z, not $: '$' also matches before a trailing newline


class ConfigError(ValueError):
    """Invalid params: the message names the file, the key and what is wrong."""


def check_key(key: object, what: str = "key") -> str:
    """`key` if it is a safe name (`_NAME`: lower-case letters, digits, '_', starting with a letter).

    For params keys that dvc.yaml's `foreach` pastes into shell commands and paths as `${key}`
    (ingest.sources, train_descriptor / train_localizer .variants, evaluate.rows, grpo.directions): a key
    such as 'x;touch F;#' would run a command. Raises ValueError naming `what`, the key and the pattern;
    call it from a pydantic validator, which turns it into a ConfigError naming the section.
    """
    if not isinstance(key, str) or not _NAME.fullmatch(key):
        raise ValueError(f"{what} {key!r} must match {_NAME.pattern} (lower-case letters, digits and '_', "
                         "starting with a letter): dvc.yaml pastes it into shell commands and paths")
    return key


class Section(BaseModel):
    """Base of every params model (sections and their sub-sections): unknown keys are errors (they are
    usually typos)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)


S = TypeVar("S", bound=Section)

#: params section name -> its model, filled by `register_section` when the model's module is imported
SECTIONS: dict[str, type[Section]] = {}


def register_section(name: str) -> Callable[[type[S]], type[S]]:
    """Class decorator: `name` is the params.yaml section this model validates."""
    def add(cls: type[S]) -> type[S]:
        if SECTIONS.get(name, cls) is not cls:
            raise ValueError(f"params section {name!r} registered twice ({SECTIONS[name].__name__}, {cls.__name__})")
        SECTIONS[name] = cls
        return cls

    return add


def read_params(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def _format(err: ValidationError, path: Path, section: str) -> str:
    lines = [f"{path}: invalid params in section '{section}':"]
    for e in err.errors():
        loc = ".".join(str(p) for p in (section, *e["loc"]))
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    """`base` with `override` merged in, recursively for nested mappings (override wins)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: the tables of named overrides a section may hold (one DVC stage each): `variants`, and `finetuned` for the
#: variants that start from another stage's trained model (train_localizer)
VARIANT_TABLES = ("variants", "finetuned")


def variant_names(section: dict | None) -> list[str]:
    """The names of every variant a raw params section holds, over all `VARIANT_TABLES`."""
    return [v for t in VARIANT_TABLES for v in (section or {}).get(t) or {}]


def validate_section(name: str, data: dict, cls: type[S], path: str | Path = "params.yaml",
                     variant: str | None = None) -> S:
    """Validate section `name` of the params `data` (read from `path`, named in errors) with `cls`.

    With `variant`, the section's `variants.<variant>` overrides (or those of another table in
    `VARIANT_TABLES`, e.g. `finetuned`) are merged into it first (ablations are written as overrides of one
    shared section, not as copies).
    """
    path = Path(path)
    if name not in data:
        raise ConfigError(f"{path}: section '{name}' is missing")
    section = dict(data[name] or {})
    if variant is not None:
        tables = {t: section.get(t) or {} for t in VARIANT_TABLES if t in section}
        found = [t for t, entries in tables.items() if variant in entries]
        if not found:
            known = sorted(v for entries in tables.values() for v in entries)
            raise ConfigError(f"{path}: {name} has no variant {variant!r} in {' or '.join(tables) or 'variants'} "
                              f"(has {known})")
        section = deep_merge(section, tables[found[0]][variant] or {})
    try:
        return cls.model_validate(section)
    except ValidationError as err:
        label = f"{name} (variant {variant})" if variant else name
        raise ConfigError(_format(err, path, label)) from None


def load_section(name: str, path: str | Path = "params.yaml", cls: type[S] | None = None,
                 variant: str | None = None) -> S:
    """Load and validate one section of a params file with `cls` (default: the model registered for `name`,
    whose module must have been imported)."""
    cls = cls or SECTIONS.get(name)
    if cls is None:
        raise ConfigError(f"no model registered for params section {name!r} (registered: {sorted(SECTIONS)})")
    return validate_section(name, read_params(path), cls, path, variant)


def source_names(path: str | Path = "params.yaml") -> list[str]:
    """The names of `ingest.sources`, checked (`check_key`), without validating the sources themselves (which
    needs every dataset adapter): for the stages that only need to know where the ingested tables are."""
    path = Path(path)
    sources = (read_params(path).get("ingest") or {}).get("sources")
    if not isinstance(sources, dict) or not sources:
        raise ConfigError(f"{path}: ingest.sources must be a non-empty mapping of source names")
    try:
        return [check_key(name, "source name") for name in sources]
    except ValueError as err:
        raise ConfigError(f"{path}: ingest.sources: {err}") from None

"""Params keys that dvc.yaml pastes into shell commands must be safe names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from talking_points.pipeline.config import ConfigError, IngestConfig, check_key, load_section

BAD_KEYS = ["x;touch F;#", "a b", "a'b", 'a"b', "a/b", "../x", "x$(id)", "a`b`", "Upper", "1st", "_x", "",
            "ok\n"]
GOOD_KEYS = ["partworld", "pw_a", "descriptor_no_gaussian", "bovidae_to_canidae", "x1"]
SOURCE = {"adapter": "partworld", "n_images": 2}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_source_names_are_rejected(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="source name") as err:
        IngestConfig.model_validate({"sources": {"good": SOURCE, key: SOURCE}})
    assert repr(key) in str(err.value) and r"^[a-z][a-z0-9_]*\Z" in str(err.value)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": {"sources": {key: SOURCE}}}))
    with pytest.raises(ConfigError, match=r"params\.yaml: invalid params in section 'ingest'"):
        load_section("ingest", params)


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_safe_source_names_pass(key: str) -> None:
    assert list(IngestConfig.model_validate({"sources": {key: SOURCE}}).sources) == [key]


def test_check_key() -> None:
    for key in GOOD_KEYS:
        assert check_key(key, "variant") == key
    for key in [*BAD_KEYS, 3, None]:
        with pytest.raises(ValueError) as err:
            check_key(key, "grpo.directions key")
        msg = str(err.value)
        assert msg.startswith(f"grpo.directions key {key!r} must match") and r"^[a-z][a-z0-9_]*\Z" in msg
    with pytest.raises(ValueError, match=r"^key 'a;b' must match"):
        check_key("a;b")

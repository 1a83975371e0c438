"""Params keys that dvc.yaml pastes into shell commands must be safe names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from talking_points.pipeline.config import ConfigError, check_key, load_section
from talking_points.pipeline.data.ingest_config import IngestConfig

BAD_KEYS = ["x;touch F;#", "a b", "a'b", 'a"b', "a/b", "../x", "x$(id)", "a`b`", "Upper", "1st", "_x", "",
            "ok\n"]
GOOD_KEYS = ["partworld", "pw_a", "descriptor_no_gaussian", "bovidae_to_canidae", "x1"]
SOURCE = {"adapter": "partworld", "root": "talking_points/pipeline/data/partworld", "n_images": 2}


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


# ------------------------------------------------------------------------------------ one config convention

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "profiles").glob("*.yaml")) + [ROOT / "params.yaml"]


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_profile_validates_in_full(path: Path) -> None:
    from talking_points.pipeline.sections import SECTIONS, load_params

    assert set(load_params(path, require_all=True)) == set(SECTIONS)


def test_check_params_names_every_bad_key_at_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from talking_points.cli import app

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["grpo"]["train"]["lr"] = -1
    params["split"]["test_fraction"] = 2
    params["train_descriptor"]["variants"]["descriptor_no_gaussian"]["model"]["decoder"]["sigma"] = 0
    params["bogus"] = {}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    res = CliRunner().invoke(app, ["check-params", str(bad)])
    out = " ".join(res.output.split())
    assert res.exit_code == 1, res.output
    for key in ("grpo.train.lr", "split.test_fraction", "train_descriptor (variant descriptor_no_gaussian)",
                "unknown params sections ['bogus']"):
        assert key in out, (key, out)
    good = CliRunner().invoke(app, ["check-params", str(ROOT / "profiles/paper.yaml")])
    assert good.exit_code == 0 and "11 sections valid" in " ".join(good.output.split()), good.output


@pytest.mark.parametrize("section,where", [("evaluate", ("rows",)), ("evaluate", ("describers",)),
                                           ("evaluate", ("chance",)),
                                           ("train_descriptor", ("variants",)),
                                           ("train_localizer", ("variants",)),
                                           ("train_localizer", ("finetuned",))])
def test_foreach_keys_must_be_safe_names(section: str, where: tuple, tmp_path: Path) -> None:
    from talking_points.pipeline.sections import load_params

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    mapping = params[section]
    for k in where:
        mapping = mapping[k]
    mapping["x;touch F;#"] = next(iter(mapping.values()))
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="must match"):
        load_params(bad)


@pytest.mark.parametrize("change, message", [
    (lambda t: t["finetuned"]["localizer_multistyle"].pop("init_from"), "set init_from"),
    (lambda t: t["variants"]["localizer"].update(init_from="models/x"), "move them to train_localizer.finetuned"),
    (lambda t: t["variants"].update(localizer_multistyle={}), "both in variants and in finetuned"),
    (lambda t: t.update(wise_alpha=0.5), "wise_alpha 0.5 interpolates with the weights training started from"),
    (lambda t: t.update(heatmap_loss={"weight": 0.1}, model={**t["model"], "head": "regression"}),
     "heatmap_loss trains the heat map of the heatmap head; model.head is 'regression'"),
    (lambda t: t.update(heatmap_loss={"weight": 0.0}), "heatmap_loss.weight"),
])
def test_finetuned_localizers_name_what_they_start_from(change, message: str, tmp_path: Path) -> None:
    from talking_points.pipeline.sections import load_params

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(params["train_localizer"])
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=message):
        load_params(bad)


def test_a_finetuned_variant_merges_like_a_variant() -> None:
    from talking_points.pipeline.training.config import TrainLocalizerConfig

    cfg = load_section("train_localizer", ROOT / "params.yaml", TrainLocalizerConfig, "localizer_multistyle")
    assert cfg.init_from == "models/localizer" and cfg.text_styles
    with pytest.raises(ConfigError, match="no variant 'nope' in variants or finetuned"):
        load_section("train_localizer", ROOT / "params.yaml", TrainLocalizerConfig, "nope")
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train-localizer-finetuned"]
    assert dvc["foreach"] == "${train_localizer.finetuned}" and "${item.init_from}" in dvc["do"]["deps"]


def test_dvc_yaml_quotes_every_templated_key() -> None:
    import re

    for line in (ROOT / "dvc.yaml").read_text().splitlines():
        if "${key}" in line and not line.strip().startswith("- "):  # commands, not deps/outs lists
            for token in re.findall(r"\S*\$\{key\}\S*", line):
                assert token.startswith("'") and token.endswith("'"), line


def test_no_config_class_shadows_a_well_known_one() -> None:
    import talking_points.pipeline.sections  # noqa: F401 - imports every config module
    from talking_points.pipeline.config import Section

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    names = {c.__name__ for c in subclasses(Section)}
    assert not names & {"GenerationConfig", "GRPOConfig", "TrainingArguments", "PretrainedConfig", "LoraConfig"}

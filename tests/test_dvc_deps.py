"""dvc.yaml's code deps are exactly the modules each stage runs: its stage module and everything it imports,
transitively, found with `ast` (tests/stage_deps.py). A missing dep would leave a stage's output stale after an
edit; an unused one reruns a stage for nothing. `python tests/stage_deps.py` prints the exact lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from stage_deps import ROOT, closure, covered, minimal_deps, stage_modules

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _command(stage: dict) -> str:
    body = stage.get("do", stage)
    return re.search(r"\btp ([a-z0-9-]+)", body["cmd"]).group(1)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exactly_the_modules_the_stage_imports(name):
    body = STAGES[name].get("do", STAGES[name])
    module = stage_modules()[_command(STAGES[name])]
    needed = closure(module)
    listed = covered([d for d in body["deps"] if isinstance(d, str)])
    missing, unused = sorted(map(str, needed - listed)), sorted(map(str, listed - needed))
    assert not missing and not unused, (f"{name}: missing {missing}, unused {unused}; the stage's code deps "
                                        f"should be {minimal_deps(needed)}")


def test_the_walker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    # the synthesize stage imports its model backends lazily, inside functions; they must be deps
    deps = closure("talking_points.stages.synthesize")
    assert Path("talking_points/pipeline/synthesis/hf_backend.py") in deps
    assert Path("talking_points/stages/synthesize.py") in deps
    assert Path("talking_points/pipeline/rl/loop.py") not in deps


def test_each_stage_module_holds_one_stage():
    modules = {}
    for stage in STAGES.values():
        modules.setdefault(stage_modules()[_command(stage)], set()).add(_command(stage))
    shared = {m: c for m, c in modules.items() if len(c) > 1}
    # train-descriptor and train-localizer are one command body with two models (stages/train.py)
    assert shared == {"talking_points.stages.train": {"train-descriptor", "train-localizer"}}, shared

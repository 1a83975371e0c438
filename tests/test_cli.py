"""The `tp` entry point: lazy sub-commands, --help without importing the models' libraries, --version."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from talking_points.cli import COMMANDS, app, command_function


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_sub_command_resolves_and_has_help(name):
    fn = command_function(name)
    assert callable(fn) and fn.__doc__, name
    res = CliRunner().invoke(app, [name, "--help"])
    assert res.exit_code == 0, res.output
    assert f"tp {name}" in res.output


def test_help_lists_every_command_without_importing_torch_or_transformers():
    """`tp --help` and a light stage's `--help` run in a fresh interpreter that never imports torch,
    transformers or peft (they cost about 5 s on a 2-core CPU)."""
    probe = ("import sys; from typer.testing import CliRunner; from talking_points.cli import app; "
             "r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
             "print(r.output); print('HEAVY', sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe.format(args=["--help"])], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out, out
    for name in COMMANDS:
        assert name in out
    for light in ("mine", "split", "ingest", "synthesize"):
        out = subprocess.run([sys.executable, "-c", probe.format(args=[light, "--help"])], capture_output=True,
                             text=True, check=True).stdout
        assert "HEAVY []" in out, (light, out)


def test_version_and_unknown_command():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("talking-points "), res.output
    bad = CliRunner().invoke(app, ["no-such-stage"])
    assert bad.exit_code != 0 and "no-such-stage" in bad.output


def test_the_group_lists_the_commands_in_pipeline_order():
    group = typer.main.get_command(app)
    assert group.list_commands(None) == list(COMMANDS)
    assert group.get_command(None, "no-such-stage") is None


def test_a_command_group_keeps_its_sub_commands():
    res = CliRunner().invoke(app, ["annotate", "export", "--help"])
    assert res.exit_code == 0, res.output
    assert "--n" in res.output and "--out" in res.output
    assert "export" in CliRunner().invoke(app, ["annotate", "--help"]).output

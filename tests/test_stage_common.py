"""The glue every stage shares: the error line and the skip table print data verbatim; atomic outputs get the
umask's mode (`tp profile` left params.yaml at 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from talking_points.pipeline.data.errors import BadInput, SkipLog
from talking_points.pipeline.data.tables import atomic_dir, atomic_path
from talking_points.stages import profile
from talking_points.stages.common import console, print_counts, print_skips, stage

# brackets that Rich markup would eat ('[abc]', '[a-z]'), or choke on ('[/etc]' closes no tag)
WHERE = "data/x/parts.parquet [src/a#o0p1]"
DETAIL = "^[a-z]*$ [abc] [/etc]"


def test_stage_error_prints_the_message_verbatim() -> None:
    @stage
    def boom() -> None:
        raise BadInput(WHERE, "bad [abc] regex", DETAIL)

    with console.capture() as cap:
        with pytest.raises(typer.Exit) as exit_:
            boom()
    assert exit_.value.exit_code == 1
    assert f"error: {WHERE}: bad [abc] regex ({DETAIL})" in cap.get()


def test_skip_and_count_tables_print_cells_verbatim() -> None:
    skips = SkipLog()
    skips.handle(BadInput(WHERE, "corrupt [mask]", "[abc]"))
    with console.capture() as cap:
        print_skips(skips, "mine [src]")
        print_counts("ingest [src]", {"[abc]": "[/x]"})
    out = cap.get()
    for text in ("mine [src]: 1 skipped", "corrupt [mask]", "[src/a#o0p1]", "ingest [src]", "[abc]", "[/x]"):
        assert text in out, text


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_outputs_get_the_umask_mode(tmp_path: Path, umask_027) -> None:
    with atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("{}")
    assert _mode(tmp_path / "out.json") == 0o640  # 0o666 & ~0o027, like open(..., "w")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "a.txt").write_text("x")
    assert _mode(tmp_path / "folder") == 0o750  # 0o777 & ~0o027, like mkdir
    os.umask(0o022)
    with atomic_path(tmp_path / "out.json") as tmp:  # replacing a file too
        tmp.write_text("{}")
    assert _mode(tmp_path / "out.json") == 0o644


def test_tp_profile_leaves_params_readable(tmp_path: Path, umask_027) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "smoke.yaml").write_text("split: {seed: 1}\n")
    params = tmp_path / "params.yaml"
    params.write_text("split: {seed: 0}\n")
    app = typer.Typer()
    app.command()(profile.main)
    res = CliRunner().invoke(app, ["smoke", "--profiles", str(tmp_path / "profiles"),
                                   "--params", str(params)])
    assert res.exit_code == 0, res.output
    assert params.read_text() == "split: {seed: 1}\n" and _mode(params) == 0o640

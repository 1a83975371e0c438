"""Glue shared by the stage commands: logging, error reporting, summaries, JSON reports."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data.errors import BadInput, SchemaError, SkipLog
from talking_points.pipeline.progress import track
from talking_points.pipeline.training.checkpoints import sweep_finished

console = Console(stderr=True)

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", "-p", help="params file to read", exists=False)
# the GRPO stages' shared arguments (tp grpo, tp evaluate-grpo)
DIRECTION_ARGUMENT = typer.Argument(..., help="cross-family setting: which family trains, which tests")
AP10K_DATA_OPTION = typer.Option(Path("data/ap10k"), "--data", help="folder written by `tp ap10k-data`")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, markup=False)],
        force=True,
    )
    # the skip log prints its own summary; one warning per skipped sample would drown it
    logging.getLogger("talking_points.pipeline.data.errors").setLevel(logging.ERROR)
    # accelerate logs every checkpoint file at INFO; transformers draws tqdm bars for every save and load
    for noisy in ("accelerate", "accelerate.checkpointing", "accelerate.accelerator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def stage(fn: Callable) -> Callable:
    """Decorator for stage commands: known errors become one clear red line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from talking_points.pipeline.resume import ResumeLocked  # pandas: when a command runs, not for --help

        setup_logging()
        sweep_finished()  # checkpoints of runs whose output is in place (e.g. restored from DVC's run cache)
        try:
            return fn(*args, **kwargs)
        except (ConfigError, BadInput, SchemaError, FileNotFoundError, ResumeLocked) as err:
            # the message is data (file names, part ids '[...]', regexes): escaped, never read as markup, and
            # not wrapped, so that a long path stays one piece
            console.print(f"[bold red]error:[/] {escape(str(err))}", markup=True, highlight=False,
                          soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def write_json(data: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def resumable_predictions(out: Path, rows, job: str, compute: Callable, chunk_size: int, title: str):
    """`compute(chunk)` over `rows` (`chunk_size` at a time), resuming from OUT's resume folder (rows whose
    fingerprint, `job` + the row's values, matches); the result is written to OUT (parquet, atomically) and
    the folder removed. Returns the result."""
    from talking_points.pipeline.resume import RowStore, row_fingerprints

    with RowStore(out) as store:
        result, resumed = store.run(rows, row_fingerprints(rows, job), compute, chunk_size,
                                    lambda it, n: track(it, title, total=n, unit="chunk"))
        if resumed:
            console.print(f"{title}: {resumed} of {len(rows)} rows resumed", markup=False)
        with atomic_path(out) as tmp:
            result.to_parquet(tmp, index=False)
        store.clear()
    return result


def print_skips(skips: SkipLog, title: str) -> None:
    if not skips.total:
        console.print(f"{title}: nothing skipped", markup=False)
        return
    table = Table(title=escape(f"{title}: {skips.total} skipped"))
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_column("first example")
    for reason, n in skips.counts.most_common():  # cells are data ('[image 3: x.jpg]'), not markup
        table.add_row(escape(reason), str(n), escape((skips.examples.get(reason) or [""])[0]))
    console.print(table)


def print_counts(title: str, counts: dict[str, Any]) -> None:
    table = Table(title=escape(title))
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in counts.items():
        table.add_row(escape(str(k)), escape(f"{v:.3g}" if isinstance(v, float) else str(v)))
    console.print(table)

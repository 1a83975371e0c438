"""Tables a user hands over or gets back (batch inputs of `tp describe` / `tp localize`, descriptions written
elsewhere for a `texts: file` evaluation row, annotation sheets): parquet, CSV or JSON lines, chosen by the
file's suffix, read with a BadInput naming the file (and the first bad row) and written atomically."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from talking_points.pipeline.atomic import atomic_path
from talking_points.pipeline.data.errors import BadInput

__all__ = ["SUFFIXES", "TableFormat", "first_bad", "read_rows", "table_format", "write_rows"]


class TableFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


SUFFIXES = {".parquet": TableFormat.parquet, ".pq": TableFormat.parquet, ".csv": TableFormat.csv,
            ".jsonl": TableFormat.jsonl, ".ndjson": TableFormat.jsonl}


def table_format(path: Path) -> TableFormat:
    """The format a table file's suffix names; BadInput for any other suffix."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise BadInput(path, "unknown table format", f"suffix {path.suffix or '(none)'!r}; use one of "
                       f"{sorted(SUFFIXES)}")
    return fmt


def first_bad(path: Path, bad: np.ndarray) -> str:
    """'<path> row <first bad row>' (and how many more) for a boolean mask of bad rows."""
    idx = np.flatnonzero(bad)
    return f"{path} row {int(idx[0])}" + (f" (and {len(idx) - 1} more)" if len(idx) > 1 else "")


def read_rows(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows of an input table (parquet, CSV, JSON lines); BadInput naming the file if it is none, lacks
    `columns` or is empty."""
    fmt = table_format(path)
    if not path.exists():
        raise BadInput(path, "missing file", f"no such {fmt.value} file")
    try:
        if fmt is TableFormat.parquet:
            df = pd.read_parquet(path)
        elif fmt is TableFormat.csv:
            df = pd.read_csv(path, keep_default_na=False, na_values=[""])
        elif fmt is TableFormat.jsonl:
            df = pd.read_json(path, lines=True, dtype=False)
        else:
            raise ValueError(f"unknown table format {fmt!r}")
    except (pa.ArrowException, OSError, ValueError, pd.errors.ParserError) as exc:
        raise BadInput(path, f"not a {fmt.value} file", f"{type(exc).__name__}: {exc}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BadInput(path, "missing columns",
                       f"needs {list(columns)}, lacks {missing} (has {list(df.columns)})")
    if df.empty:
        raise BadInput(path, "empty table", "no rows")
    return df.reset_index(drop=True)


def write_rows(df: pd.DataFrame, path: Path) -> None:
    """`df` to `path` (atomically) in the format its suffix names."""
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if fmt is TableFormat.parquet:
            df.to_parquet(tmp, index=False)
        elif fmt is TableFormat.csv:
            df.to_csv(tmp, index=False)
        elif fmt is TableFormat.jsonl:
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            raise ValueError(f"unknown table format {fmt!r}")

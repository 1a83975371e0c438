"""Validated, atomic parquet tables.

`write_table` checks a pandas DataFrame or pyarrow Table against one of the schemas in
`talking_points.pipeline.data.schema`, writes it to a temporary file next to the target and renames it
into place, so a crash never leaves a half-written parquet behind. `read_table` validates again on read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["SchemaError", "validate", "write_table", "read_table", "atomic_path", "atomic_dir"]


class SchemaError(ValueError):
    """A table does not match its schema; the message names the table, the column and the first bad row."""


def validate(data: pd.DataFrame | pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    """Return `data` as a pyarrow Table with exactly `schema`'s columns, order and types.

    Extra columns are an error (they would be silently dropped otherwise), as are missing columns, values
    that cannot be cast without loss, and nulls in non-nullable columns.
    """
    if isinstance(data, pd.DataFrame):
        table = pa.Table.from_pandas(data, preserve_index=False)
    elif isinstance(data, pa.Table):
        table = data
    else:
        raise TypeError(f"{name}: expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")
    have, want = set(table.column_names), set(schema.names)
    if missing := [c for c in schema.names if c not in have]:
        raise SchemaError(f"{name}: missing column(s) {missing}")
    if extra := sorted(have - want):
        raise SchemaError(f"{name}: unexpected column(s) {extra}; the schema has {schema.names}")
    columns = []
    for field in schema:
        col = table.column(field.name)
        if len(table) == 0 and col.type == pa.null():
            col = pa.chunked_array([], type=field.type)
        try:
            col = col.cast(field.type, safe=True) if col.type != field.type else col
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(f"{name}: column {field.name!r} of type {col.type} is not {field.type}: {exc}")
        if not field.nullable and col.null_count:
            row = pc.index(pc.is_null(col), True).as_py()
            raise SchemaError(f"{name}: column {field.name!r} has {col.null_count} null(s), first at row {row}")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error delete it.

    The file gets the mode a new file would get (0o666 less the umask), not mkstemp's private 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to `path`; on success it replaces `path` as a whole.

    The directory gets the mode a new directory would get (0o777 less the umask), not mkdtemp's 0o700.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(data: pd.DataFrame | pa.Table, path: str | os.PathLike, schema: pa.Schema, name: str) -> Path:
    """Validate `data` against `schema` and write it atomically to `path` (parquet, zstd)."""
    table = validate(data, schema, name)
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_table(path: str | os.PathLike, schema: pa.Schema, name: str | None = None) -> pd.DataFrame:
    """Read a parquet file and validate it against `schema`; returns a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table not found (did the stage that writes it run?)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{path}: not a readable parquet file: {exc}") from exc
    return validate(table, schema, name or str(path)).to_pandas()

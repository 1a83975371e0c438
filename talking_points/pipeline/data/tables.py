"""Validated, atomic parquet tables.

`write_table` checks a pandas DataFrame or pyarrow Table against one of the schemas in
`talking_points.pipeline.data.schema`, writes it to a temporary file next to the target and renames it
into place, so a crash never leaves a half-written parquet behind. `read_table` validates again on read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from talking_points.pipeline.atomic import atomic_dir, atomic_path
from talking_points.pipeline.data.errors import SchemaError

__all__ = ["SchemaError", "validate", "write_table", "read_table", "atomic_path", "atomic_dir"]


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

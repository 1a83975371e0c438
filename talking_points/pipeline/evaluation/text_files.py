"""Descriptions written elsewhere, scored like any row (`texts: file`): people's (a filled `tp annotate export`
sheet), an API model's, another describer's. The file is a table with columns `kp_id` and `description`;
every problem is counted and named before anything is scored."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.user_tables import read_rows

__all__ = ["COLUMNS", "read_description_file"]

COLUMNS = ("kp_id", "description")


def _rows_named(path: Path, df: pd.DataFrame, bad: pd.Series, what: str, show: int = 3) -> str:
    idx = list(df.index[bad])
    named = ", ".join(f"row {i} (kp_id {df.at[i, 'kp_id']!r})" for i in idx[:show])
    return f"{len(idx)} {what}: {named}" + (f" and {len(idx) - show} more" if len(idx) > show else "")


def read_description_file(path: str | Path, test_ids: Iterable[str]) -> pd.Series:
    """kp_id -> description of every row of `path`, in the file's order. BadInput naming the file, how many rows
    and the first ones when a kp_id is not in the test split (`test_ids`), appears twice, or a description is
    missing or empty (rows are counted from 0, as pandas reads them)."""
    path = Path(path)
    df = read_rows(path, COLUMNS)
    df["kp_id"] = df["kp_id"].astype(str)
    text = df["description"]
    empty = text.isna() | ~text.map(lambda t: isinstance(t, str) and bool(t.strip()))
    known = set(map(str, test_ids))
    problems = []
    if empty.any():
        problems.append(_rows_named(path, df, empty, "empty or missing descriptions"))
    unknown = ~df["kp_id"].isin(known)
    if unknown.any():
        problems.append(_rows_named(path, df, unknown, "kp_ids not in the test split"))
    repeated = df["kp_id"].duplicated(keep="first")
    if repeated.any():
        problems.append(_rows_named(path, df, repeated, "repeated kp_ids"))
    if problems:
        raise BadInput(path, "descriptions file does not fit the test split", "; ".join(problems))
    return pd.Series(text.str.strip().to_numpy(), index=df["kp_id"].to_numpy(), name="description")

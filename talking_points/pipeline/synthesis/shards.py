"""Resume store for slow (model-backed) synthesis: finished rows in parquet shards, keyed per row.

Each batch of finished rows is written as one shard file, atomically (temp file + rename), as soon as it
is done, so a crash loses at most the batch in flight. A row's key hashes its keypoint row and the
backend's fingerprint (backend, model ids, prompt version and texts, sampling, seed), so a rerun takes a
row from the shards only when nothing that shapes its output has changed; everything else is generated
again. Shards written under other settings stay in the folder, unused, until it is deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from talking_points.pipeline.data.schema import DESCRIPTIONS
from talking_points.pipeline.data.tables import atomic_path, validate

__all__ = ["SHARD", "row_key", "RowShards"]

log = logging.getLogger(__name__)

#: a shard: the DESCRIPTIONS columns, the row key, and the validation problems (JSON list) for the report
SHARD = pa.schema(
    list(DESCRIPTIONS)
    + [pa.field("key", pa.string(), nullable=False), pa.field("issues", pa.string(), nullable=False)]
)


def row_key(row: Mapping, fingerprint: str) -> str:
    """Hash of a keypoint row's values and a backend fingerprint."""
    payload = json.dumps({"row": dict(row), "backend": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class RowShards:
    """The shard files under `folder` (created on first write)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.parquet")) if self.folder.is_dir() else []

    def load(self, keys: set[str]) -> dict[str, tuple[dict, list[str]]]:
        """key -> (DESCRIPTIONS row, problems) for every key in `keys` found in a readable shard."""
        found: dict[str, tuple[dict, list[str]]] = {}
        for path in self.files():
            try:
                table = validate(pq.read_table(path), SHARD, str(path))
            except (pa.ArrowInvalid, OSError, ValueError) as exc:
                log.warning("ignoring unreadable shard %s (%s); its rows will be generated again", path, exc)
                continue
            for rec in table.to_pandas().to_dict("records"):
                key = rec.pop("key")
                if key in keys and key not in found:
                    found[key] = (rec, json.loads(rec.pop("issues")))
        return found

    def write(self, descriptions: pd.DataFrame, keys: Sequence[str], issues: Sequence[list[str]]) -> Path:
        """Write one shard of finished rows (DESCRIPTIONS columns) with their keys and problems."""
        if not len(descriptions) == len(keys) == len(issues):
            raise ValueError(f"{len(descriptions)} rows, {len(keys)} keys and {len(issues)} issue lists")
        frame = descriptions.assign(key=list(keys), issues=[json.dumps(list(p)) for p in issues])
        table = validate(frame, SHARD, "synthesis shard")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"shard-{time.time_ns():020d}-{os.getpid()}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return path

"""Resumable work in shards: chunk i of a job is written as one parquet file as soon as it is done; a rerun
with the same fingerprint keeps the finished shards and computes only the missing ones."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from talking_points.pipeline.data.tables import atomic_path

__all__ = ["ShardStore"]


class ShardStore:
    """Shards of one job under `folder`, valid for one `fingerprint` (a different one clears the folder)."""

    def __init__(self, folder: str | Path, fingerprint: str):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        stamp = self.folder / "fingerprint.json"
        if self.folder.exists():
            old = json.loads(stamp.read_text()).get("fingerprint") if stamp.exists() else None
            if old != fingerprint:
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))

    def path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.parquet"

    def done(self, i: int) -> bool:
        return self.path(i).exists()

    def n_done(self, n: int) -> int:
        return sum(self.done(i) for i in range(n))

    def write(self, i: int, df: pd.DataFrame) -> None:
        with atomic_path(self.path(i)) as tmp:
            df.to_parquet(tmp, index=False)

    def run(self, chunks: list, compute: Callable[[object], pd.DataFrame], progress: Callable[[Iterator], Iterator]
            | None = None) -> pd.DataFrame:
        """compute(chunk) for every chunk without a shard, then all shards concatenated in chunk order."""
        todo = [i for i in range(len(chunks)) if not self.done(i)]
        for i in progress(iter(todo)) if progress else todo:
            self.write(i, compute(chunks[i]))
        return pd.concat([pd.read_parquet(self.path(i)) for i in range(len(chunks))], ignore_index=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

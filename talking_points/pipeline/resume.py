"""Resumable row-wise work (model-backed synthesis, both evaluations): finished rows are kept in parquet
shards beside the output until the output is written, so a crashed or killed run computes only what is
missing when it is run again.

* **Keyed per row**: every stored row carries its row id (`kp_id`) and the fingerprint of everything that
  determines it (params, the weights' digests, prompt files, the input row itself where it matters). A rerun
  takes a row from the shards only when both match; everything else is computed again. Chunking does not
  matter, and shards written under other settings are ignored (and deleted with the folder once the output
  is written).
* **One folder per output**: `.<output name>.resume` next to the output, so two outputs never share one.
* **Locked**: the store holds an exclusive lock on the folder while it is open; a second process working on
  the same output stops at once with `ResumeLocked` instead of interleaving its rows with the first's.
* **Robust**: each shard is written atomically (temp file + rename); an unreadable shard is skipped with a
  warning (its rows are computed again).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from talking_points.pipeline.atomic import atomic_path

__all__ = ["KEY", "FINGERPRINT", "ResumeLocked", "RowStore", "resume_folder", "row_fingerprints"]

log = logging.getLogger(__name__)

KEY, FINGERPRINT = "_row", "_fingerprint"  # the two columns a stored row carries besides its own


def row_fingerprints(rows: pd.DataFrame, job: str) -> list[str]:
    """Each row's fingerprint: the `job` fingerprint (params, weights, prompts) and the row's own values."""
    out = []
    for rec in rows.to_dict("records"):
        text = json.dumps({"job": job, "row": rec}, sort_keys=True, default=str)
        out.append(hashlib.sha256(text.encode()).hexdigest())
    return out


class ResumeLocked(RuntimeError):
    """Another process holds the resume folder of this output."""


def resume_folder(output: str | os.PathLike) -> Path:
    """Where the finished rows of `output` wait: `.<name>.resume` in the output's folder."""
    output = Path(output)
    return output.parent / f".{output.name}.resume"


class RowStore:
    """The finished rows of one output (a context manager: the lock is held inside `with`)."""

    def __init__(self, output: str | os.PathLike, validate: Callable[[pa.Table, str], pa.Table] | None = None):
        self.output = Path(output)
        self.folder = resume_folder(output)
        self.validate = validate
        self._lock = None

    def __enter__(self) -> RowStore:
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = open(self.folder / "lock", "w")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ResumeLocked(f"{self.output}: another process is computing it (it holds {self.folder}/lock); "
                               "wait for it to finish or stop it, then run again") from None
        self._lock = lock
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _check_open(self) -> None:
        if self._lock is None:
            raise RuntimeError("RowStore used outside `with`")

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.parquet"))

    def load(self, wanted: dict[str, str]) -> dict[str, pd.DataFrame]:
        """row id -> its stored rows, for the ids in `wanted` (row id -> fingerprint) stored under the same
        fingerprint; the first shard holding a row wins."""
        self._check_open()
        found: dict[str, pd.DataFrame] = {}
        for path in self.shards():
            try:
                table = pq.read_table(path)
                if self.validate is not None:
                    table = self.validate(table, str(path))
                frame = table.to_pandas()
                if KEY not in frame or FINGERPRINT not in frame:
                    raise ValueError(f"no {KEY}/{FINGERPRINT} columns")
            except (pa.ArrowInvalid, OSError, ValueError) as exc:
                log.warning("ignoring unreadable shard %s (%s); its rows will be computed again", path, exc)
                continue
            match = frame[KEY].map(wanted) == frame[FINGERPRINT]
            for key, rows in frame[match].groupby(KEY, sort=False):
                found.setdefault(key, rows.drop(columns=[KEY, FINGERPRINT]).reset_index(drop=True))
        return found

    def write(self, frame: pd.DataFrame, keys: Sequence[str], fingerprints: Sequence[str]) -> Path:
        """One shard: `frame`'s rows, the i-th computed for row id keys[i] under fingerprints[i]."""
        self._check_open()
        if not len(frame) == len(keys) == len(fingerprints):
            raise ValueError(f"{len(frame)} rows, {len(keys)} keys and {len(fingerprints)} fingerprints")
        table = pa.Table.from_pandas(frame.assign(**{KEY: list(keys), FINGERPRINT: list(fingerprints)}),
                                     preserve_index=False)
        if self.validate is not None:
            table = self.validate(table, "resume shard")
        path = self.folder / f"shard-{time.time_ns():020d}-{os.getpid()}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return path

    def run(self, rows: pd.DataFrame, fingerprints: Sequence[str], compute: Callable[[pd.DataFrame], pd.DataFrame],
            chunk_size: int, progress: Callable[[Iterable, int], Iterator] | None = None,
            key: str = "kp_id") -> tuple[pd.DataFrame, int]:
        """Every row's results: stored ones where their fingerprint matches, `compute(chunk)` for the rest
        (chunks of `chunk_size` missing rows; the result's `key` column says which input row each output row
        is for, several output rows per input row allowed). Returns the results in input order (each row's
        results in the order computed) and how many rows were resumed."""
        ids = rows[key].astype(str).tolist()
        if len(set(ids)) != len(ids):
            raise ValueError(f"the rows' {key} values are not unique")
        wanted = dict(zip(ids, fingerprints))
        done = self.load(wanted)
        todo = [i for i, k in enumerate(ids) if k not in done]
        starts = range(0, len(todo), chunk_size)
        for s in progress(starts, len(starts)) if progress else starts:
            chunk = rows.iloc[todo[s : s + chunk_size]]
            out = compute(chunk)
            out_ids = out[key].astype(str).tolist()
            unknown = set(out_ids) - set(chunk[key].astype(str))
            if unknown:
                raise ValueError(f"compute returned rows for {len(unknown)} ids not in its chunk")
            self.write(out, out_ids, [wanted[k] for k in out_ids])
            for k, part in out.groupby(out[key].astype(str), sort=False):
                done[k] = part.reset_index(drop=True)
        frames = [done[k] for k in ids if k in done]
        result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return result, len(ids) - len(todo)

    def clear(self) -> None:
        """Delete the folder (after the output is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)

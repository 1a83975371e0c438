"""pipeline.resume.RowStore: per-row resume keyed by row id + fingerprint, one folder per output, a lock."""

from __future__ import annotations

import multiprocessing as mp
import time

import pandas as pd
import pytest

from talking_points.pipeline.resume import ResumeLocked, RowStore, resume_folder, row_fingerprints


def rows(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"kp_id": [f"k{i}" for i in range(n)], "x": range(n)})


class Crash(Exception):
    pass


def computer(calls: list, crash_after: int | None = None):
    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        calls.append(chunk["kp_id"].tolist())
        if crash_after is not None and len(calls) > crash_after:
            raise Crash
        # two output rows per input row, as evaluate-grpo writes one per method
        return pd.concat([chunk.assign(method=m, y=chunk["x"] * 10) for m in ("a", "b")], ignore_index=True)

    return compute


def test_a_crashed_run_computes_only_the_missing_rows(tmp_path):
    out, df = tmp_path / "preds.parquet", rows()
    fps = row_fingerprints(df, "job1")
    calls: list = []
    with pytest.raises(Crash), RowStore(out) as store:
        store.run(df, fps, computer(calls, crash_after=2), chunk_size=2)
    assert calls == [["k0", "k1"], ["k2", "k3"], ["k4", "k5"]]
    (resume_folder(out) / "shard-0-corrupt.parquet").write_bytes(b"not parquet")  # skipped with a warning
    calls.clear()
    with RowStore(out) as store:
        result, resumed = store.run(df, fps, computer(calls), chunk_size=3)  # other chunking: still per row
    assert resumed == 4 and calls == [["k4", "k5"]]
    with RowStore(tmp_path / "fresh.parquet") as fresh:
        straight, _ = fresh.run(df, fps, computer([]), chunk_size=2)
    pd.testing.assert_frame_equal(result, straight)
    assert result["kp_id"].tolist() == [k for k in df["kp_id"] for _ in "ab"]  # input order, every method


def test_a_changed_fingerprint_or_row_is_computed_again(tmp_path):
    out, df = tmp_path / "preds.parquet", rows()
    with RowStore(out) as store:
        store.run(df, row_fingerprints(df, "job1"), computer([]), chunk_size=2)
    calls: list = []
    with RowStore(out) as store:
        store.run(df, row_fingerprints(df, "job2"), computer(calls), chunk_size=6)
    assert calls == [df["kp_id"].tolist()]  # other params or weights: nothing reused
    edited = df.assign(x=[0, 1, 2, 99, 4, 5])
    calls.clear()
    with RowStore(out) as store:
        result, resumed = store.run(edited, row_fingerprints(edited, "job2"), computer(calls), chunk_size=6)
    assert calls == [["k3"]] and resumed == 5 and result.loc[result["kp_id"] == "k3", "y"].tolist() == [990, 990]


def test_two_outputs_never_share_a_folder(tmp_path):
    assert resume_folder(tmp_path / "eval/tp.parquet") != resume_folder(tmp_path / "eval/gt.parquet")
    assert resume_folder(tmp_path / "eval/tp.parquet").parent == tmp_path / "eval"


def _hold(out, ready, release):
    with RowStore(out):
        ready.set()
        release.wait(30)


def test_a_second_process_on_the_same_output_stops_with_a_clear_error(tmp_path):
    out = tmp_path / "preds.parquet"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(out, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(ResumeLocked, match="another process is computing it"), RowStore(out):
            pass
        with RowStore(tmp_path / "other.parquet"):  # another output is free
            pass
    finally:
        release.set()
        holder.join(30)
    start = time.time()
    with RowStore(out):  # free again once the first process is done
        pass
    assert time.time() - start < 5


def test_clear_removes_the_folder(tmp_path):
    out = tmp_path / "preds.parquet"
    with RowStore(out) as store:
        store.run(rows(2), row_fingerprints(rows(2), "j"), computer([]), chunk_size=2)
        assert store.shards()
        store.clear()
    assert not resume_folder(out).exists()

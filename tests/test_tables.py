"""Table schemas (validated on write and read), atomic writes, mask encoding, and the train/test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from talking_points.pipeline.data import masks, schema
from talking_points.pipeline.data.split import assign_splits
from talking_points.pipeline.data.tables import SchemaError, atomic_dir, atomic_path, read_table, write_table


def images_frame(n: int = 2) -> pd.DataFrame:
    rows = []
    for i in range(n):
        row = {}
        for f in schema.IMAGES:
            t = f.type
            row[f.name] = (f"x{i}" if t in ("string", "large_string") else 10 + i if str(t).startswith(("int", "uint"))
                           else 0.5 if str(t).startswith(("float", "double")) else None)
        rows.append(row)
    return pd.DataFrame(rows)


def test_write_and_read_round_trip(tmp_path):
    df = images_frame()
    write_table(df, tmp_path / "images.parquet", schema.IMAGES, "images")
    back = read_table(tmp_path / "images.parquet", schema.IMAGES, "images")
    assert list(back.columns) == schema.IMAGES.names and len(back) == 2


def test_missing_column_is_named(tmp_path):
    df = images_frame().drop(columns=[schema.IMAGES.names[1]])
    with pytest.raises(SchemaError, match=schema.IMAGES.names[1]):
        write_table(df, tmp_path / "images.parquet", schema.IMAGES, "images")
    assert not (tmp_path / "images.parquet").exists()


def test_wrong_type_is_named(tmp_path):
    df = images_frame()
    int_col = next(f.name for f in schema.IMAGES if str(f.type).startswith(("int", "uint")))
    df[int_col] = ["not a number", "x"]
    with pytest.raises(SchemaError, match=int_col):
        write_table(df, tmp_path / "images.parquet", schema.IMAGES, "images")


def test_reading_a_table_of_another_schema_fails_clearly(tmp_path):
    write_table(images_frame(), tmp_path / "images.parquet", schema.IMAGES, "images")
    with pytest.raises(SchemaError, match="objects"):
        read_table(tmp_path / "images.parquet", schema.OBJECTS, "objects")


def test_atomic_writes_leave_nothing_half_written(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    folder = tmp_path / "folder"
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            (tmp / "a.parquet").write_text("x")
            raise RuntimeError("crash")
    assert not folder.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_mask_rle_round_trip_and_box():
    m = np.zeros((7, 9), dtype=bool)
    m[2:5, 3:8] = True
    m[6, 0] = True
    back = masks.decode(masks.encode(m), 7, 9)
    assert back.dtype == bool and np.array_equal(back, m)
    assert masks.area(m) == 16
    assert masks.bbox(m)[0] == 0


def test_split_by_image_proportional_per_source_and_seeded():
    imgs = pd.DataFrame({"image_id": [f"a{i}" for i in range(100)] + [f"b{i}" for i in range(20)],
                         "source": ["a"] * 100 + ["b"] * 20})
    s1 = assign_splits(imgs, 0.2, seed=0)
    assert set(s1) == set(imgs["image_id"])
    test = {k for k, v in s1.items() if v == "test"}
    assert sum(k.startswith("a") for k in test) == 20 and sum(k.startswith("b") for k in test) == 4
    assert assign_splits(imgs, 0.2, seed=0) == s1 and assign_splits(imgs, 0.2, seed=1) != s1
    only_a = assign_splits(imgs[imgs.source == "a"], 0.2, seed=0)
    assert {k: v for k, v in s1.items() if k.startswith("a")} == only_a  # adding a source reshuffles nothing
    with pytest.raises(ValueError):
        assign_splits(imgs, 1.0, seed=0)

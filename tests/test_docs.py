"""docs/make_figure.py draws the README figure on any profile's split, however few its rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_make_figure_works_with_few_rows_and_no_repeated_instances(tmp_path):
    img = tmp_path / "a.png"
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(img)
    rows = pd.DataFrame({"file": [str(img)] * 2, "x": [10.5, 30.5], "y": [20.5, 5.5], "n_same": [1, 1],
                         "category": ["dog", "car"], "part": ["head", "wheels"],
                         "description": ["The point is on the only dog; on its head.", "On the car's wheel."]})
    rows.to_parquet(tmp_path / "test.parquet")
    out = tmp_path / "figure.png"
    subprocess.run([sys.executable, str(ROOT / "docs/make_figure.py"), "--samples", str(tmp_path / "test.parquet"),
                    "--n", "3", "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes()[:4] == b"\x89PNG"

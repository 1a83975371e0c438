"""Throughput of the data half: PartWorld generation (ingest), SIFT mining with 1 and 2 workers, grounded
synthesis. Prints measured figures and ratios; nothing is asserted.

    python benchmarks/bench_data.py [--images 300] [--width 192 --height 144]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TP_NO_PROGRESS", "1")

from talking_points.pipeline.data import schema  # noqa: E402
from talking_points.pipeline.data.ingest import ingest_source  # noqa: E402
from talking_points.pipeline.data.partworld import PartWorldConfig  # noqa: E402
from talking_points.pipeline.data.tables import write_table  # noqa: E402
from talking_points.pipeline.keypoints.config import MineConfig  # noqa: E402
from talking_points.pipeline.keypoints.mine import mine_sources  # noqa: E402
from talking_points.pipeline.synthesis.config import SynthesizeConfig  # noqa: E402
from talking_points.pipeline.synthesis.synthesize import synthesize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--height", type=int, default=144)
    a = ap.parse_args()
    cfg = PartWorldConfig(adapter="partworld", n_images=a.images, width=a.width, height=a.height, seed=0)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "pw"
        rates = {}
        for workers in (1, 2):
            t = time.perf_counter()
            res = ingest_source("pw", cfg, image_dir=src / "images", workers=workers)
            rates[f"generate+ingest, {workers} worker(s)"] = a.images / (time.perf_counter() - t)
        write_table(res.images, src / "images.parquet", schema.IMAGES, "images")
        write_table(res.objects, src / "objects.parquet", schema.OBJECTS, "objects")
        write_table(res.parts, src / "parts.parquet", schema.PARTS, "parts")
        for workers in (1, 2):
            t = time.perf_counter()
            mined = mine_sources([src], MineConfig(top_k=2, workers=workers))
            rates[f"mine, {workers} worker(s)"] = a.images / (time.perf_counter() - t)
        t = time.perf_counter()
        out = synthesize(mined.keypoints, SynthesizeConfig())
        dt = time.perf_counter() - t
        rates["synthesize (grounded)"] = a.images / dt
        n_rows = len(out.descriptions)
    print(f"{a.images} images of {a.width}x{a.height}, {n_rows} keypoints, cores: {os.cpu_count()}")
    for k, v in rates.items():
        print(f"  {k:32s} {v:8.1f} images/s")
    print(f"  synthesize (grounded)            {n_rows / dt:8.1f} rows/s")
    print(f"  ratio mine 2 workers / 1 worker  {rates['mine, 2 worker(s)'] / rates['mine, 1 worker(s)']:8.2f}")
    print(f"  ratio ingest 2 workers / 1       "
          f"{rates['generate+ingest, 2 worker(s)'] / rates['generate+ingest, 1 worker(s)']:8.2f}")


if __name__ == "__main__":
    main()

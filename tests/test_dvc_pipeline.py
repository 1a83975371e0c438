"""The DVC pipeline on the smoke profile, in a scratch git clone: param invalidation, remote sharing,
profiles, and an interrupted training run that resumes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow  # dvc repro of the smoke profile in a scratch clone: minutes

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's tp and dvc


def run(args: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "TP_NO_PROGRESS": "1",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def copy_repo(dest: Path) -> Path:
    """The repository's tracked files (as a fresh clone would have them) in a new git repo at `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file() and not f.startswith(("data/", "models/", "reports/")) and f != "dvc.lock":
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "init"], dest)
    return dest


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    run(["tp", "profile", "smoke"], repo)
    run(["dvc", "repro", "split"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "smoke data"], repo)
    return repo


def would_run(repo: Path, target: str = "split") -> set[str]:
    out = run(["dvc", "repro", "--dry", target], repo).stdout
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def downstream(repo: Path, stage: str) -> set[str]:
    """The stages that depend on `stage`, transitively (what its change would rerun), and the stage itself."""
    out = run(["dvc", "repro", "--dry", "--force", "--downstream", stage], repo).stdout
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def edit_params(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_fresh_run_is_up_to_date_and_has_the_tables(smoke_repo):
    assert would_run(smoke_repo) == set()
    for f in ("data/split/train.parquet", "data/split/test.parquet", "data/mined/keypoints.parquet",
              "data/synthesized/descriptions.parquet", "data/ingested/pw_a/parts.parquet"):
        assert (smoke_repo / f).is_file(), f


def ran(repo: Path, target: str = "split") -> set[str]:
    """The stages `dvc repro` actually executed (not skipped, not restored from the run cache)."""
    out = run(["dvc", "repro", target], repo).stdout
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def test_a_mining_param_reruns_mining_and_downstream_only(smoke_repo):
    original = (smoke_repo / "params.yaml").read_text()
    try:
        edit_params(smoke_repo, "mine", "top_k", 1)
        assert would_run(smoke_repo) == {"mine"}  # the first stale stage; the rest depend on its output
        assert ran(smoke_repo) == {"mine", "synthesize", "split"}  # ingest untouched
        (smoke_repo / "params.yaml").write_text(original)
        edit_params(smoke_repo, "synthesize", "seed", 7)
        assert ran(smoke_repo) == {"synthesize", "split"}
    finally:
        (smoke_repo / "params.yaml").write_text(original)
        run(["dvc", "repro", "split"], smoke_repo)  # back to the committed outputs (from the run cache)
    assert would_run(smoke_repo) == set()


def test_one_source_param_invalidates_only_that_source(smoke_repo):
    original = (smoke_repo / "params.yaml").read_text()
    try:
        params = yaml.safe_load(original)
        params["ingest"]["sources"]["pw_b"]["seed"] = 99
        (smoke_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        stale = would_run(smoke_repo)
        assert "ingest@pw_b" in stale and "ingest@pw_a" not in stale  # mine reads ingest.sources: stale too
    finally:
        (smoke_repo / "params.yaml").write_text(original)


def test_push_to_a_remote_and_pull_into_another_clone_without_recompute(smoke_repo, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "-f", "shared", str(remote)], smoke_repo)
    run(["dvc", "push", "--with-deps", "split"], smoke_repo)  # the data half (the models were not built here)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(smoke_repo), str(clone)], tmp_path)
    run(["dvc", "remote", "add", "-d", "-f", "shared", str(remote)], clone)
    run(["dvc", "pull", "--with-deps", "split"], clone)
    assert (clone / "data/split/train.parquet").read_bytes() == (smoke_repo / "data/split/train.parquet").read_bytes()
    assert would_run(clone) == set()  # nothing to recompute
    status = run(["dvc", "status", "--with-deps", "split"], clone).stdout
    assert "changed" not in status


def test_profiles(tmp_path):
    repo = copy_repo(tmp_path / "r")
    assert (REPO / "profiles/default.yaml").read_text() == (REPO / "params.yaml").read_text(), \
        "profiles/default.yaml must equal params.yaml (the default profile)"
    run(["tp", "profile", "smoke"], repo)
    assert (repo / "params.yaml").read_text() == (repo / "profiles/smoke.yaml").read_text()
    bad = run(["tp", "profile", "nonesuch"], repo, check=False)
    assert bad.returncode != 0 and "nonesuch" in bad.stdout + bad.stderr


def test_bad_params_fail_with_the_key_named(smoke_repo, tmp_path):
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    params["mine"]["top_k"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    res = run(["tp", "mine", "--params", str(bad), "--out", str(tmp_path / "m")], smoke_repo, check=False)
    assert res.returncode == 1
    assert "mine.top_k" in res.stdout + res.stderr and "Traceback" not in res.stdout + res.stderr


def test_training_killed_mid_run_resumes_to_the_same_step_count(smoke_repo):
    run(["dvc", "repro", "init-models"], smoke_repo)  # pretrain-vision first: the smoke base carries a tower
    out, ckpt = smoke_repo / "models/loc_resume", smoke_repo / "models/loc_resume.ckpt"
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    params["train_localizer"]["train"].update(epochs=3, checkpoint_every=2, log_every=1)
    pfile = smoke_repo / "resume_params.yaml"
    pfile.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TP_NO_PROGRESS": "1"}
    cmd = ["tp", "train-localizer", "--params", str(pfile), "--out", str(out), "--live", str(smoke_repo / "live_r")]
    proc = subprocess.Popen(cmd, cwd=smoke_repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (ckpt / "state.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before the first checkpoint; make the run longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and (ckpt / "state.json").exists()
    run(cmd, smoke_repo)
    import json

    summary = json.loads((out / "train.json").read_text())
    assert summary["resumed_from"] >= 2
    uninterrupted = json.loads((out / "train.json").read_text())["steps"]
    n_train = len(__import__("pandas").read_parquet(smoke_repo / "data/split/train.parquet"))
    assert uninterrupted == 3 * (n_train // 8)
    assert not ckpt.exists()


def test_wise_ft_saves_the_interpolation_of_the_start_and_the_fine_tuned_weights(smoke_repo):
    from safetensors.torch import load_file

    run(["dvc", "repro", "train-localizer-finetuned@localizer_multistyle"], smoke_repo)
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    entry = params["train_localizer"]["finetuned"]["localizer_multistyle"]
    alpha = entry["wise_alpha"]
    assert 0 < alpha < 1
    entry["wise_alpha"] = 1.0  # the same fine-tuning (seeded), saved as it ends
    pfile = smoke_repo / "wise_params.yaml"
    pfile.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["tp", "train-localizer", "--variant", "localizer_multistyle", "--params", str(pfile), "--out",
         str(smoke_repo / "models/ms_tuned"), "--live", str(smoke_repo / "live_wise")], smoke_repo)
    start, tuned, saved = (smoke_repo / "models" / n for n in ("localizer", "ms_tuned", "localizer_multistyle"))
    checked = moved = added = 0
    for file in ("lm_adapter/adapter_model.safetensors", "heads.safetensors"):
        s, t, w = (load_file(str(d / file)) for d in (start, tuned, saved))
        for k, v in w.items():
            if not v.is_floating_point():
                continue
            if k not in s:  # heads the start lacks (heatmap_regions, heatmap_gate, heatmap_instance_gate) started
                # as built: the region keys' output layer and the gate's heads and attention at zero, strengths at one
                built = 1.0 if k in ("gate.strength", "gate.instances.strength") else 0.0
                if k.startswith(("key_regions.2.", "gate.")):
                    assert np.allclose(v.numpy(), (1 - alpha) * built + alpha * t[k].numpy(), atol=1e-6), k
                    added += 1
                continue
            assert np.allclose(v.numpy(), (1 - alpha) * s[k].numpy() + alpha * t[k].numpy(), atol=1e-6), k
            checked += 1
            moved += not np.array_equal(s[k].numpy(), t[k].numpy())
    assert checked and moved  # the fine-tuning moved weights, and the saved ones lie between
    assert added == 2 + 6 + 6  # the added keys' output weight and bias; the gate's two heads, attention,
    # strengths; the same of its instance heads
    import json

    summary = json.loads((saved / "train.json").read_text())  # what shaped the weights besides `train` and `model`
    assert summary["wise_alpha"] == alpha and summary["init_from"] == entry["init_from"]
    assert summary["heatmap_loss"]["weight"] == entry["heatmap_loss"]["weight"]
    assert summary["text_styles"] == entry["text_styles"] and summary["label_loss"] == entry["label_loss"]
    card = (saved / "README.md").read_text()
    assert "| `heatmap_loss` |" in card and "| `wise_alpha` |" in card and "| `group_by_length` |" in card
    assert "| `label_loss` |" in card and "| `lr_multipliers` |" in card


def test_whole_smoke_pipeline_ends_with_the_reports(smoke_repo):
    """`dvc repro` on the smoke profile: models, every evaluation row, and the reports (offline plots)."""
    run(["dvc", "repro"], smoke_repo, timeout=1500)
    everything = __import__("json").loads((smoke_repo / "reports/metrics.json").read_text())
    metrics = everything["evaluation"]
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    assert set(metrics) == set(params["evaluate"]["rows"]) | set(params["evaluate"]["chance"])
    assert set(everything) == {"evaluation", "differences"}  # GRPO's are in reports/grpo/<direction>.json, once
    assert set(everything["differences"]) == {f"{a}_minus_{b}" for a, b in params["evaluate"]["report"]["comparisons"]}
    for name, d in everything["differences"].items():  # the interval holds the difference
        assert d["ci_low"] <= d["diff"] <= d["ci_high"], name
    for direction in params["grpo"]["directions"]:
        grpo = __import__("json").loads((smoke_repo / f"reports/grpo/{direction}.json").read_text())
        assert {"zero_shot", "grpo", "gt"} <= set(grpo["methods"])
        assert grpo["gain"] == pytest.approx(grpo["methods"]["grpo"]["mpck"] - grpo["methods"]["zero_shot"]["mpck"],
                                             abs=0.011)
        low, high = grpo["gain_ci"]
        assert low <= grpo["gain"] <= high
    assert all(0 <= m["mpck"] <= 100 for m in metrics.values())
    md = (smoke_repo / "reports/results.md").read_text()
    assert "| Method | PCK@0.1 | PCK@0.2 | mPCK | n |" in md
    for f in ("reports/plots/pck_curves.png", "reports/plots/training_curves.png", "reports/plots/grpo_curves.png",
              "reports/figures/qualitative.png", "reports/plots/style_robustness.png"):
        assert (smoke_repo / f).read_bytes()[:4] == b"\x89PNG", f
    assert "## mPCK per description style and localizer" in md and "terse (held out)" in md
    assert "## Differences between rows, with their noise" in md
    shown = run(["dvc", "metrics", "show", "--json"], smoke_repo).stdout
    files = next(iter(__import__("json").loads(shown).values()))["data"]
    # the dvclive summaries are DVC metrics too: final train loss per model, GRPO's last reward and KL
    assert "loss" in files["reports/train/descriptor/metrics.json"]["data"]
    for direction in params["grpo"]["directions"]:
        assert {"reward_mean", "kl"} <= set(files[f"reports/grpo/live_{direction}/metrics.json"]["data"])
    assert "tp" in files["reports/metrics.json"]["data"]["evaluation"]
    html_dir = smoke_repo / "plots_html"
    run(["dvc", "plots", "show", "-o", str(html_dir)], smoke_repo)
    html = (html_dir / "index.html").read_text()
    # the report's PNGs are embedded; the training and GRPO curves are interactive vega-lite plots (x = step)
    assert "<img" in html and "vega" in html.lower() and "training loss" in html.lower() and "grpo reward" in html.lower()
    assert would_run(smoke_repo, "report") == set()
    status = run(["dvc", "status"], smoke_repo).stdout
    assert "up to date" in status.lower() and "changed" not in status, status
    vision = __import__("json").loads((smoke_repo / "reports/vision.json").read_text())
    assert vision["enabled"] and vision["steps"] > 0 and 0 <= vision["test"]["keypoint_part_acc"] <= 1
    assert not any(isinstance(v, dict) for v in vision["test"].values())  # breakdowns are in models/vision
    assert not list((smoke_repo / "data").rglob(".*.resume"))  # finished evaluations leave no resume folder
    # generation and localization are separate steps: a localizer's change relocalizes, it regenerates no text,
    # and no model change reruns a chance row
    after_localizer = downstream(smoke_repo, "train-localizer@localizer")
    assert {"evaluate@tp", "evaluate@gt", "report"} <= after_localizer
    assert not {s for s in after_localizer if s.startswith(("describe", "evaluate-chance", "evaluate@frozen_lm"))}
    # the styled test texts feed evaluation only: no model retrains when a style changes
    after_styles = {s for s in downstream(smoke_repo, "restyle") if s.startswith("train-")}
    assert after_styles == set()  # the test texts' styles feed evaluation only
    after_descriptor = downstream(smoke_repo, "train-descriptor@descriptor")
    assert {"describe@tp", "evaluate@tp"} <= after_descriptor and "describe@object_mask" not in after_descriptor
    assert not {s for s in after_descriptor if s.startswith("evaluate-chance")}
    texts = pd.read_parquet(smoke_repo / "data/eval/texts/tp.parquet")
    tp = pd.read_parquet(smoke_repo / "data/eval/tp.parquet")
    assert list(texts.columns) == ["kp_id", "text"] and list(texts["text"]) == list(tp["text"])


def test_an_annotation_sheet_comes_back_as_a_file_row(smoke_repo, tmp_path):
    """`tp annotate export` -> descriptions written into the sheet -> `tp evaluate` on a `texts: file` row."""
    run(["dvc", "repro", "evaluate@gt"], smoke_repo, timeout=1500)  # the localizer and the GT row's predictions
    sheet_dir = tmp_path / "sheet"
    run(["tp", "annotate", "export", "--n", "5", "--out", str(sheet_dir), "--seed", "1"], smoke_repo)
    sheet = pd.read_csv(sheet_dir / "descriptions.csv", keep_default_na=False)
    assert len(sheet) == 5 and (sheet["description"] == "").all()
    assert all((sheet_dir / name).read_bytes()[:4] == b"\x89PNG" for name in sheet["image"])
    assert "texts: file" in (sheet_dir / "INSTRUCTIONS.md").read_text()
    test = pd.read_parquet(smoke_repo / "data/split/test.parquet").set_index("kp_id")
    sheet["description"] = test.loc[sheet["kp_id"], "description"].to_numpy()  # "people" wrote the GT texts
    sheet.to_csv(sheet_dir / "descriptions.csv", index=False)
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    params["evaluate"]["rows"]["human"] = {"label": "Human descriptions", "texts": "file",
                                           "file": str(sheet_dir / "descriptions.csv"), "localizer": "models/localizer"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "human.parquet"
    run(["tp", "evaluate", "human", "--params", str(tmp_path / "params.yaml"), "--out", str(out)], smoke_repo)
    human = pd.read_parquet(out).set_index("kp_id")
    assert sorted(human.index) == sorted(sheet["kp_id"])  # scored in the test split's order
    gt = pd.read_parquet(smoke_repo / "data/eval/gt.parquet").set_index("kp_id").loc[human.index]
    assert (human["text"] == gt["text"]).all()
    np.testing.assert_allclose(human[["x_pred", "y_pred"]], gt[["x_pred", "y_pred"]], atol=1e-5)
    # a sheet with an unknown point and an empty description stops before anything is scored, naming both
    sheet.loc[0, "kp_id"] = "nowhere#0"
    sheet.loc[1, "description"] = " "
    sheet.to_csv(sheet_dir / "descriptions.csv", index=False)
    bad = run(["tp", "evaluate", "human", "--params", str(tmp_path / "params.yaml"), "--out", str(out)], smoke_repo,
              check=False)
    assert bad.returncode == 1
    message = " ".join((bad.stdout + bad.stderr).split())
    assert "1 empty or missing descriptions: row 1" in message and "1 kp_ids not in the test split: row 0" in message


def test_an_external_vlm_is_scored_as_a_row(smoke_repo, tmp_path):
    """`texts: vlm` through `tp evaluate`: a tiny LLaVA describes the marked test points, the localizer scores them."""
    from talking_points.pipeline.evaluation.vlm_describer import VLMDescriber, VLMDescriberConfig
    from talking_points.pipeline.visualize import read_rgb
    from tests.tiny_checkpoints import build_tiny_checkpoints

    run(["dvc", "repro", "train-localizer@localizer"], smoke_repo, timeout=1500)
    vlm_dir, _ = build_tiny_checkpoints(tmp_path / "ckpt")
    vlm = {"checkpoint": str(vlm_dir), "batch_size": 2, "sampling": {"max_new_tokens": 8}}
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    params["evaluate"]["vlm_describers"] = {"tiny_llava": vlm}
    params["evaluate"]["rows"]["tiny_llava"] = {"label": "tiny LLaVA", "texts": "generated",
                                                "describer": "tiny_llava", "localizer": "models/localizer"}
    params["evaluate"]["limit"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, texts = tmp_path / "tiny_llava.parquet", tmp_path / "texts"
    P = ["--params", str(tmp_path / "params.yaml")]
    run(["tp", "evaluate-describe", "tiny_llava", "--out", str(texts / "tiny_llava.parquet"), *P], smoke_repo)
    run(["tp", "evaluate", "tiny_llava", "--texts", str(texts), "--out", str(out), *P], smoke_repo)
    got = pd.read_parquet(out)
    test = pd.read_parquet(smoke_repo / "data/split/test.parquet").iloc[:3]
    assert list(got["kp_id"]) == list(test["kp_id"]) and got[["x_pred", "y_pred"]].notna().all().all()
    images = [read_rgb(smoke_repo / f) for f in test["file"]]
    points = test[["x_norm", "y_norm"]].to_numpy() * test[["width", "height"]].to_numpy()
    assert list(got["text"]) == VLMDescriber(VLMDescriberConfig(**vlm)).describe(images, points)


def test_the_llava_path_runs_through_the_stage_commands(smoke_repo, tmp_path):
    """`init_models.kind: llava` on a tiny LLaVA built here, then the same stage commands as the default: LoRA
    SFT of both point models, evaluate (tp, gt), GRPO, report. Outputs go to tmp_path; data from the smoke run."""
    from tests.tiny_checkpoints import build_tiny_checkpoints

    run(["dvc", "repro", "split", "ap10k-data"], smoke_repo, timeout=900)
    vlm_dir, _ = build_tiny_checkpoints(tmp_path / "ckpt")
    t = tmp_path
    p = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    p["init_models"] = {"kind": "llava", "path": str(vlm_dir)}
    lora = {"r": 4, "alpha": 8, "dropout": 0.0}
    steps = {"max_steps": 3, "batch_size": 4, "log_every": 1, "checkpoint_every": 50}
    p["train_descriptor"].update(base=str(t / "base"), variants={"descriptor": {}}, train=steps, model={
        "decoder": {"dim": 32, "layers": 1, "heads": 2, "attention_mask": "gaussian", "sigma": 0.1},
        "lm_adaptation": "lora", "lora": lora, "train_vision": False, "max_description_tokens": 48})
    p["train_descriptor"]["generation"] = {"max_new_tokens": 12, "batch_size": 8}
    p["train_localizer"].update(base=str(t / "base"), variants={"localizer": {}}, train=steps, model={
        "head": "regression", "proj_dim": 16, "head_dims": [32, 16], "lm_adaptation": "lora", "lora": lora,
        "train_vision": False, "max_description_tokens": 48})
    p["train_localizer"]["finetuned"] = {}  # the smoke's style-robust one trains the heatmap head's heat map
    rows = {"tp": {"label": "TP", "texts": "generated", "describer": "tp", "localizer": str(t / "localizer")},
            "gt": {"label": "GT", "texts": "gt", "localizer": str(t / "localizer")}}
    p["evaluate"].update(rows=rows, describers={"tp": {"descriptor": str(t / "descriptor")}}, chance={}, limit=6,
                         generation={"max_new_tokens": 12, "batch_size": 8})
    p["evaluate"]["report"].update(reference="gt", figure_rows=["tp", "gt"], breakdown_rows=["tp", "gt"], examples=2,
                                   comparisons=[["tp", "gt"]])
    p["grpo"].update(descriptor=str(t / "descriptor"), localizer=str(t / "localizer"),
                     directions={"bovidae_to_canidae": {}})
    p["grpo"]["train"].update(max_steps=2, batch_size=2, group_size=2, max_new_tokens=12, log_every=1)
    p["grpo"]["evaluate"].update(limit=4, generation={"max_new_tokens": 12, "do_sample": False, "num_beams": 1,
                                                      "batch_size": 8})
    params = t / "params.yaml"
    params.write_text(yaml.safe_dump(p))
    P = ["--params", str(params)]
    run(["tp", "check-params", str(params)], smoke_repo)
    run(["tp", "init-models", "--train", "data/split/train.parquet", "--out", str(t / "base"),
         "--live", str(t / "logs/base_lm"), *P], smoke_repo)
    assert (t / "base/build.json").exists() and '"kind": "llava"' in (t / "base/build.json").read_text()
    for kind, name in (("descriptor", "descriptor"), ("localizer", "localizer")):
        run(["tp", f"train-{kind}", "--variant", name, "--out", str(t / name), "--live", str(t / "logs" / name), *P],
            smoke_repo)
        assert (t / name / "lm_adapter/adapter_model.safetensors").exists()
    run(["tp", "evaluate-describe", "tp", "--out", str(t / "eval/texts/tp.parquet"), *P], smoke_repo)
    for row in rows:
        run(["tp", "evaluate", row, "--texts", str(t / "eval/texts"), "--out", str(t / "eval" / f"{row}.parquet"), *P],
            smoke_repo)
        assert len(pd.read_parquet(t / "eval" / f"{row}.parquet")) == 6
    run(["tp", "grpo", "bovidae_to_canidae", "--data", "data/ap10k", "--out", str(t / "grpo_b2c"),
         "--live", str(t / "grpo/live_bovidae_to_canidae"), *P], smoke_repo)
    run(["tp", "evaluate-grpo", "bovidae_to_canidae", "--data", "data/ap10k", "--model", str(t / "grpo_b2c"),
         "--out", str(t / "grpo_eval.parquet"), "--metrics", str(t / "grpo/bovidae_to_canidae.json"),
         "--section", str(t / "reports/sections/grpo_bovidae_to_canidae.md"), *P], smoke_repo)
    run(["tp", "report", "--predictions", str(t / "eval"), "--train-logs", str(t / "logs"), "--grpo", str(t / "grpo"),
         "--out", str(t / "reports"), *P], smoke_repo)
    metrics = __import__("json").loads((t / "reports/metrics.json").read_text())["evaluation"]
    assert set(metrics) == {"tp", "gt"} and all(0 <= m["mpck"] <= 100 for m in metrics.values())
    assert "AP-10K cross-family adaptation: Bovidae → Canidae" in (t / "reports/results.md").read_text()

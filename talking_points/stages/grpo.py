"""`tp ap10k-data`, `tp grpo DIRECTION`, `tp evaluate-grpo DIRECTION`: localizer-as-reward GRPO of the
descriptor on AP-10K, across animal families (paper §4.4, Tables 2 and 7)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import typer

from talking_points.pipeline.config import ConfigError, SynthesizeConfig, load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.keypoint_sets.coco_keypoints import POSE_SAMPLES, read_coco_keypoints
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction, cross_family_split
from talking_points.pipeline.data.keypoint_sets.keypoint_rows import pose_keypoint_rows
from talking_points.pipeline.data.keypoint_sets.synthetic_ap10k import IMAGE_DIR, write_synthetic_ap10k
from talking_points.pipeline.data.tables import atomic_dir, atomic_path, read_table, write_table
from talking_points.pipeline.evaluation.predict import prediction_frame
from talking_points.pipeline.evaluation.report import text_stats
from talking_points.pipeline.evaluation.shards import ShardStore
from talking_points.pipeline.metrics.pck import pck_table
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import describe, localize, prompt_format
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.progress import track
from talking_points.pipeline.rl.config import AP10KDataConfig, AP10KSource, GRPOSection
from talking_points.pipeline.rl.loop import export_descriptor, localizer_locate, prepare_policy, train_grpo
from talking_points.pipeline.synthesis.synthesize import synthesize
from talking_points.pipeline.training.checkpoints import digest
from talking_points.pipeline.training.data import ImagesBySize, PointSamples
from talking_points.stages.common import PARAMS_OPTION, console, print_counts, print_skips, stage, write_json

SECTION = "grpo"
_DIRECTION = typer.Argument(..., help="cross-family setting: which family trains, which tests")
_DATA = typer.Option(Path("data/ap10k"), "--data", help="folder written by `tp ap10k-data`")

#: the rows of the evaluation table: key -> label
METHODS = {
    "zero_shot": "Zero-shot (SFT descriptor)",
    "grpo": "After RL (GRPO, localizer reward)",
    "gt": "GT description (grounded synthesis; reference)",
}


def _split_file(data: Path, direction: Direction, part: str) -> Path:
    return data / direction.value / f"{part}.parquet"


# ------------------------------------------------------------------------------------------------- data


def _rebase(files: pd.Series, old: Path, new: Path) -> pd.Series:
    """Paths under `old` moved to the same place under `new` (others unchanged)."""
    def move(f: str) -> str:
        p = Path(f)
        return str(new / p.relative_to(old)) if p.is_relative_to(old) else f

    return files.map(move)


def ap10k_samples(cfg: AP10KDataConfig, work: Path, final: Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """Pose samples, KEYPOINTS rows and SAMPLES rows (keypoints + grounded descriptions + family) of the
    configured AP-10K; synthetic images are rendered into `work` and their paths written as under `final`."""
    if cfg.source is AP10KSource.synthetic:
        annotations = write_synthetic_ap10k(cfg.synthetic, work / "synthetic", workers=cfg.workers)
        images = annotations.parent / IMAGE_DIR
    elif cfg.source is AP10KSource.coco:
        annotations, images = Path(str(cfg.annotations)), Path(str(cfg.images))
    else:
        raise ValueError(f"unknown AP-10K source {cfg.source!r}")
    pose = read_coco_keypoints(annotations, images, cfg.source_name, cfg.on_error, cfg.granularity)
    print_skips(pose.skips, "ap10k annotations")
    keypoints, row_skips = pose_keypoint_rows(pose.table, cfg.rows, on_error=cfg.on_error)
    print_skips(row_skips, "ap10k keypoint rows")
    described = synthesize(keypoints, SynthesizeConfig(seed=cfg.describe_seed, on_error=cfg.on_error))
    print_skips(described.skips, "ap10k descriptions")
    family = pose.table.set_index("kp_id")["family"]
    samples = keypoints.merge(described.descriptions, on="kp_id", how="inner", validate="one_to_one")
    samples["family"] = samples["kp_id"].map(family)
    tables = {"pose_samples": pose.table, "keypoints": keypoints, "samples": samples}
    for t in tables.values():
        t["file"] = _rebase(t["file"], work, final)
    report = {
        "source": cfg.source.value,
        "layouts": pose.layouts,
        "keypoints_per_family": {str(k): int(v) for k, v in samples.groupby("family").size().items()},
        "images_per_family": {str(k): int(v)
                              for k, v in samples.groupby("family")["image_id"].nunique().items()},
        "skipped": {"annotations": pose.skips.as_dict(), "rows": row_skips.as_dict(),
                    "descriptions": described.skips.as_dict()},
        "descriptions_valid_fraction": described.report["valid_fraction"],
    }
    return tables, report


@stage
def data(
    out: Path = typer.Option(Path("data/ap10k"), help="output folder"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write the AP-10K keypoints for GRPO: the synthetic AP-10K (grpo.data.source synthetic: PartWorld
    animals in AP-10K's layout, rendered into OUT/synthetic) or a real AP-10K json (source coco).

    OUT gets pose_samples.parquet (one row per labelled keypoint, with its family), keypoints.parquet
    (KEYPOINTS rows of the visible ones), and for both directions <direction>/train.parquet and
    test.parquet (SAMPLES rows: train family / test family, no image in both; descriptions from the grounded
    synthesis, used as the evaluation's reference row), plus report.json. Written atomically.
    """
    section = load_section(SECTION, params, GRPOSection)
    cfg = section.data
    out = Path(out)
    with atomic_dir(out) as tmp:
        tables, report = ap10k_samples(cfg, tmp, out)
        write_table(tables["pose_samples"], tmp / "pose_samples.parquet", POSE_SAMPLES, "pose samples")
        write_table(tables["keypoints"], tmp / "keypoints.parquet", schema.KEYPOINTS, "ap10k keypoints")
        samples = tables["samples"]
        report["directions"] = {}
        for direction in Direction:
            try:
                split = cross_family_split(samples, direction, cfg.split_seed, cfg.max_train_images,
                                           cfg.max_test_images)
            except ValueError as err:
                raise ConfigError(f"{params}: grpo.data gives no cross-family split: {err}") from None
            counts = {"mixed_images": split.mixed_images}
            for part, rows in (("train", split.train), ("test", split.test)):
                rows = rows.drop(columns=["family"]).assign(split=part)
                write_table(rows, _split_file(tmp, direction, part), schema.SAMPLES,
                            f"{direction.value} {part}")
                counts.update({f"{part}_rows": len(rows), f"{part}_images": int(rows["image_id"].nunique())})
            report["directions"][direction.value] = counts
        write_json(report, tmp / "report.json")
    print_counts("ap10k-data", {**{f"{k} keypoints": v for k, v in report["keypoints_per_family"].items()},
                                **{f"{d} train/test": f"{c['train_rows']}/{c['test_rows']}"
                                   for d, c in report["directions"].items()}})


# ---------------------------------------------------------------------------------------------- training


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@stage
def train(
    direction: Direction = _DIRECTION,
    data_dir: Path = _DATA,
    out: Path = typer.Option(None, help="output folder (default: models/grpo_<direction>)"),
    live: Path = typer.Option(None, help="dvclive folder (default: reports/grpo/live_<direction>)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """GRPO of the SFT descriptor (grpo.descriptor) on the direction's train family, rewarded by the frozen
    localizer (grpo.localizer): reward = −MSE between the keypoint and where the localizer puts each sampled
    description.

    Resumes from OUT.ckpt after an interruption; logs reward mean/std, KL and description length with dvclive;
    saves the adapted descriptor (adapters merged, loadable like any descriptor) to OUT.
    """
    section = load_section(SECTION, params, GRPOSection)
    cfg = section.train_config(direction)
    name = f"grpo_{direction.value}"
    out = out or Path("models") / name
    live = live or Path("reports/grpo") / f"live_{direction.value}"
    ckpt = out.with_name(out.name + ".ckpt")
    rows = read_table(_split_file(data_dir, direction, "train"), schema.SAMPLES, f"{direction.value} train")
    torch.manual_seed(cfg.seed)
    device = _device()
    descriptor, tok = PointDescriptor.from_pretrained(section.descriptor, section.trust_remote_code)
    localizer, loc_tok = PointLocalizer.from_pretrained(section.localizer, section.trust_remote_code)
    policy = prepare_policy(descriptor.to(device), cfg)
    localizer.to(device)
    size, loc_size = descriptor.input_size, localizer.input_size
    prompts = PointSamples(rows, size, ())
    loc_prompts = prompts if loc_size == size else PointSamples(rows, loc_size, ())
    locate = localizer_locate(localizer, loc_tok, loc_prompts, cfg.reward_batch_size)
    n_train = sum(p.numel() for p in policy.trainable.values())
    console.print(f"{name}: {len(prompts)} keypoints, {n_train / 1e6:.3f}M trainable parameters "
                  f"({cfg.trainable.value}), G = {cfg.group_size}")
    run = digest(section, _split_file(data_dir, direction, "train"), Path(section.descriptor), Path(section.localizer))
    result = train_grpo(policy, tok, prompt_format(descriptor, tok), prompts, locate, cfg, ckpt, live,
                        description=f"grpo {direction.value}", fingerprint=run)
    summary = {"kind": "grpo", "direction": direction.value, "sft_descriptor": section.descriptor,
               "localizer": section.localizer, "rows": len(prompts), "steps": result.steps,
               "resumed_from": result.resumed_from, "trainable": cfg.trainable.value,
               "trainable_params": n_train, "config": cfg.model_dump(mode="json")}
    if result.history:
        summary.update(first=result.history[0], last=result.history[-1])
    model = export_descriptor(policy).to("cpu")
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, tok)
        write_json(summary, tmp / "train.json")
    shutil.rmtree(ckpt, ignore_errors=True)
    print_counts(f"grpo {direction.value}", {"steps": result.steps,
                                              **{k: v for k, v in summary.get("last", {}).items()
                                                 if k in ("reward_mean", "kl", "length_words")}})


# -------------------------------------------------------------------------------------------- evaluation


def _stamp(folder: str | Path) -> str:
    """What identifies a model folder's content cheaply: its train.json, else its file names."""
    f = Path(folder) / "train.json"
    return f.read_text() if f.exists() else str(sorted(p.name for p in Path(folder).glob("*")))


def method_table(preds: pd.DataFrame) -> pd.DataFrame:
    """One line per method (in METHODS order): PCK@0.1, PCK@0.2, mPCK (%), n, mean words, % four levels."""
    lines = []
    for key, label in METHODS.items():
        part = preds[preds["method"] == key]
        if part.empty:
            continue
        t = pck_table(part).iloc[0]
        stats = text_stats(part)
        lines.append({"method": key, "Method": label, "PCK@0.1": t["PCK@0.1"], "PCK@0.2": t["PCK@0.2"],
                      "mPCK": t["mPCK"], "n": int(t["n"]), "mean words": stats["words_mean"],
                      "% four levels": 100 * stats["four_levels"]})
    return pd.DataFrame(lines)


def _md_table(df: pd.DataFrame, cols: list[str]) -> str:
    def cell(v) -> str:
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n"
    return head + "".join("| " + " | ".join(cell(v) for v in rec) + " |\n"
                          for rec in df[cols].itertuples(index=False))


def examples(preds: pd.DataFrame, n: int, seed: int) -> list[dict]:
    """`n` seeded test keypoints with every method's text and error."""
    ids = preds["kp_id"].drop_duplicates()
    chosen = ids.sample(min(n, len(ids)), random_state=seed).tolist() if n else []
    out = []
    for kp in chosen:
        rows = preds[preds["kp_id"] == kp].set_index("method")
        first = rows.iloc[0]
        out.append({"kp_id": kp, "category": first["category"], "part": first["part"],
                    "texts": [(METHODS[m], rows.at[m, "text"], float(rows.at[m, "dist"]))
                              for m in METHODS if m in rows.index]})
    return out


def section_markdown(direction: Direction, table: pd.DataFrame, train_info: dict, exs: list[dict]) -> str:
    """The report section of one direction: the paper's Table 2/7 layout, text statistics, examples."""
    train_family, test_family = (f.value for f in direction.families)
    n_test = int(table["n"].iloc[0]) if len(table) else 0
    lines = [f"## AP-10K cross-family adaptation: {train_family} → {test_family} (paper Table 2/7 layout)\n",
             f"GRPO on {train_family} ({train_info.get('rows', '?')} keypoints, "
             f"{train_info.get('steps', '?')} steps, trainable {train_info.get('trainable', '?')}); "
             f"tested on {test_family} ({n_test} keypoints). Every description is localized by the same "
             "frozen Point Localizer; PCK in %.\n",
             _md_table(table, ["Method", "PCK@0.1", "PCK@0.2", "mPCK"]),
             "Mean words per description and % with all four levels (object, part, point, local look) found "
             "by the description parser:\n",
             _md_table(table, ["Method", "mean words", "% four levels"])]
    if exs:
        lines.append(f"### Examples ({test_family})\n")
        for ex in exs:
            lines.append(f"**{ex['kp_id']}** ({ex['category']}, {ex['part']})\n")
            lines.extend(f"- *{label}* (error {d:.3f}): {text}" for label, text, d in ex["texts"])
            lines.append("")
    return "\n".join(lines) + "\n"


@stage
def evaluate(
    direction: Direction = _DIRECTION,
    data_dir: Path = _DATA,
    model: Path = typer.Option(None, help="GRPO descriptor (default: models/grpo_<direction>)"),
    out: Path = typer.Option(None, help="predictions parquet (default: data/grpo_eval/<direction>.parquet)"),
    metrics: Path = typer.Option(None, help="metrics json (default: reports/grpo/<direction>.json)"),
    section_out: Path = typer.Option(None, "--section", help="report section (default: "
                                     "reports/sections/grpo_<direction>.md)"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Zero-shot SFT descriptor vs GRPO descriptor on the direction's held-out family: each writes a
    description of every test keypoint (grpo.evaluate.generation), the frozen localizer places it; the
    grounded GT descriptions are scored too, as a reference.

    Works in resumable shards under data/grpo_eval/.resume/<direction>/. Writes the predictions (a `method`
    column), the metrics json (PCK@0.1/0.2, mPCK, mean words, four-level fraction per method) and the markdown
    section that `tp report` appends to reports/results.md.
    """
    section = load_section(SECTION, params, GRPOSection)
    ecfg = section.evaluate
    if ecfg.threads:
        torch.set_num_threads(ecfg.threads)
    d = direction.value
    model = model or Path("models") / f"grpo_{d}"
    out = out or Path("data/grpo_eval") / f"{d}.parquet"
    metrics = metrics or Path("reports/grpo") / f"{d}.json"
    section_out = section_out or Path("reports/sections") / f"grpo_{d}.md"
    samples = read_table(_split_file(data_dir, direction, "test"), schema.SAMPLES, f"{d} test")
    if ecfg.limit:
        samples = samples.iloc[: ecfg.limit]
    samples = samples.reset_index(drop=True)
    descriptors = {key: PointDescriptor.from_pretrained(folder, section.trust_remote_code)
                   for key, folder in (("zero_shot", section.descriptor), ("grpo", model))}
    localizer, loc_tok = PointLocalizer.from_pretrained(section.localizer, section.trust_remote_code)
    loc_size = localizer.input_size

    def compute(chunk: pd.DataFrame) -> pd.DataFrame:
        images = ImagesBySize(chunk["file"].tolist())
        points = chunk[["x_norm", "y_norm"]].to_numpy(np.float32)
        texts = {key: describe(m, tok, images.at(m.input_size), points, ecfg.generation)
                 for key, (m, tok) in descriptors.items()}
        texts["gt"] = chunk["description"].astype(str).tolist()
        frames = []
        for key, t in texts.items():
            pred = localize(localizer, loc_tok, images.at(loc_size), t, ecfg.localizer_batch_size)
            frames.append(prediction_frame(chunk, t, pred).assign(method=key))
        return pd.concat(frames, ignore_index=True)

    fingerprint = hashlib.sha256(json.dumps({
        "direction": d, "evaluate": ecfg.model_dump(mode="json"), "kp_ids": samples["kp_id"].tolist(),
        "models": [_stamp(section.descriptor), _stamp(model), _stamp(section.localizer)],
    }).encode()).hexdigest()
    store = ShardStore(Path("data/grpo_eval/.resume") / d, fingerprint)
    chunks = [samples.iloc[s : s + ecfg.chunk_size] for s in range(0, len(samples), ecfg.chunk_size)]
    preds = store.run(chunks, compute,
                      lambda it: track(it, f"evaluate-grpo {d}", total=len(chunks), unit="shard"))
    with atomic_path(out) as tmp:
        preds.to_parquet(tmp, index=False)
    store.clear()
    table = method_table(preds)
    train_file = Path(model) / "train.json"
    train_info = json.loads(train_file.read_text()) if train_file.exists() else {}
    exs = examples(preds, ecfg.examples, ecfg.seed)
    # numbers only (DVC metrics); the labels and example texts are in the section
    write_json({"grpo_steps": train_info.get("steps"),
                "methods": {r["method"]: {"pck@0.1": round(r["PCK@0.1"], 2),
                                          "pck@0.2": round(r["PCK@0.2"], 2), "mpck": round(r["mPCK"], 2),
                                          "n": r["n"],
                                          "words_mean": round(r["mean words"], 2),
                                          "four_levels": round(r["% four levels"] / 100, 4)}
                            for r in table.to_dict("records")}}, metrics)
    with atomic_path(section_out) as tmp:
        tmp.write_text(section_markdown(direction, table, train_info, exs))
    print_counts(f"evaluate-grpo {d}",
                 {f"{r['method']} mPCK": round(r["mPCK"], 1) for r in table.to_dict("records")})

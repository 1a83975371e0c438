"""`tp grpo DIRECTION`: GRPO of the SFT descriptor on one family of AP-10K, rewarded by the frozen Point
Localizer (paper §4.4)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer

from talking_points.pipeline.config import load_section
from talking_points.pipeline.data import schema
from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.data.tables import read_table
from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import prompt_format
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.rl.ap10k_data import split_file
from talking_points.pipeline.rl.config import GRPOSection
from talking_points.pipeline.rl.loop import export_descriptor, localizer_locate, prepare_policy, train_grpo
from talking_points.pipeline.training.artifacts import run_summary, save_run
from talking_points.pipeline.training.checkpoints import checkpoint_for
from talking_points.pipeline.training.data import PointSamples
from talking_points.pipeline.training.model_card import CardFacts, data_facts, model_card
from talking_points.stages.common import (
    AP10K_DATA_OPTION,
    DIRECTION_ARGUMENT,
    PARAMS_OPTION,
    console,
    print_counts,
    stage,
)


@stage
def main(
    direction: Direction = DIRECTION_ARGUMENT,
    data_dir: Path = AP10K_DATA_OPTION,
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
    section = load_section("grpo", params, GRPOSection)
    cfg = section.train_config(direction)
    name = f"grpo_{direction.value}"
    out = out or Path("models") / name
    live = live or Path("reports/grpo") / f"live_{direction.value}"
    ckpt = checkpoint_for(out)
    train_rows = split_file(data_dir, direction, "train")
    rows = read_table(train_rows, schema.SAMPLES, f"{direction.value} train")
    torch.manual_seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    descriptor, tok = PointDescriptor.from_pretrained(section.descriptor, section.trust_remote_code)
    localizer, loc_tok = PointLocalizer.from_pretrained(section.localizer, section.trust_remote_code)
    localizer.merge_adapters()  # the frozen reward model: LoRA folded into its LM
    policy = prepare_policy(descriptor.to(device), cfg)
    localizer.to(device)
    prompts = PointSamples(rows, descriptor.input_size, ())
    loc_prompts = prompts if localizer.input_size == descriptor.input_size else \
        PointSamples(rows, localizer.input_size, ())
    locate = localizer_locate(localizer, loc_tok, loc_prompts, cfg.reward_batch_size)
    n_train = sum(p.numel() for p in policy.trainable.values())
    console.print(f"{name}: {len(prompts)} keypoints, {n_train / 1e6:.3f}M trainable parameters "
                  f"({cfg.trainable.value}), G = {cfg.group_size}", markup=False)
    run = digest(section, train_rows, Path(section.descriptor), Path(section.localizer))
    result = train_grpo(policy, tok, prompt_format(descriptor, tok), prompts, locate, cfg, ckpt, live,
                        description=f"grpo {direction.value}", fingerprint=run)
    summary = run_summary(result.steps, result.resumed_from, result.history, kind="grpo",
                          direction=direction.value, sft_descriptor=section.descriptor,
                          localizer=section.localizer, rows=len(prompts), trainable=cfg.trainable.value,
                          trainable_params=n_train, config=cfg.model_dump(mode="json"))
    policy_model = export_descriptor(policy).to("cpu")
    card = model_card(CardFacts(
        kind="descriptor", name=name, base_source=str(Path(section.descriptor) / "base"),
        config=json.loads(policy_model.cfg.model_dump_json()), training=summary,
        train_params=cfg.model_dump(mode="json"), data=data_facts(rows, train_rows),
        profile_note=f"params: {params} (section grpo, direction {direction.value})",
        extra=[f"GRPO-adapted from `{section.descriptor}` on the {direction.value.split('_to_')[0]} family, "
               f"rewarded by the frozen localizer `{section.localizer}` (reward = -MSE of the localized point)."]))
    save_run(policy_model, tok, out, summary, ckpt, card)
    print_counts(f"grpo {direction.value}", {"steps": result.steps,
                                              **{k: v for k, v in summary.get("last", {}).items()
                                                 if k in ("reward_mean", "kl", "length_words")}})

"""`tp`: every pipeline stage as a sub-command (the same commands dvc.yaml runs)."""

from __future__ import annotations

import os

# before anything imports huggingface_hub: it reads HF_HUB_OFFLINE once, at import (setting it later, as the
# stages' logging set-up also does, leaves the hub's constant False and a missing model retries the network)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402

from talking_points.stages import (  # noqa: E402
    ap10k_data,
    check_params,
    evaluate,
    evaluate_grpo,
    grpo,
    infer,
    ingest,
    init_models,
    mine,
    pretrain_vision,
    profile,
    report,
    split,
    synthesize,
    train,
)

app = typer.Typer(
    name="tp",
    help="talking-points: describe a pixel in words and localize it again. One sub-command per DVC stage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("ingest")(ingest.main)
app.command("mine")(mine.main)
app.command("synthesize")(synthesize.main)
app.command("split")(split.main)
app.command("pretrain-vision")(pretrain_vision.main)
app.command("init-models")(init_models.main)
app.command("train-descriptor")(train.descriptor)
app.command("train-localizer")(train.localizer)
app.command("evaluate")(evaluate.main)
app.command("report")(report.main)
app.command("ap10k-data")(ap10k_data.main)
app.command("grpo")(grpo.main)
app.command("evaluate-grpo")(evaluate_grpo.main)
app.command("describe")(infer.describe)
app.command("localize")(infer.localize)
app.command("profile")(profile.main)
app.command("check-params")(check_params.main)


if __name__ == "__main__":
    app()

"""`tp`: every pipeline stage as a sub-command (the same commands dvc.yaml runs).

The sub-commands are imported lazily (click's "lazy loading of subcommands" pattern): `tp --help` and
`tp mine ...` import only what they need, so the stages without models never import torch, transformers
or peft (about 5 s on a 2-core CPU, for every one of the pipeline's stages).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

# before anything imports huggingface_hub: it reads HF_HUB_OFFLINE once, at import (setting it later, as the
# stages' logging set-up also does, leaves the hub's constant False and a missing model retries the network)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

__all__ = ["COMMANDS", "Command", "app", "command_function"]


@dataclass(frozen=True)
class Command:
    module: str  # under talking_points.stages
    function: str
    summary: str  # the line `tp --help` shows (without importing the module)


#: every sub-command, in the order of the pipeline (tests/test_cli.py checks that each one resolves)
COMMANDS: dict[str, Command] = {
    "ingest": Command("ingest", "main", "Ingest one dataset source into the common tables (images, objects, parts)."),
    "mine": Command("mine", "main", "Mine SIFT keypoints inside the annotated parts of every ingested source."),
    "synthesize": Command("synthesize", "main", "Write a coarse-to-fine description for every mined keypoint."),
    "split": Command("split", "main", "Split the described keypoints into train and test, by image."),
    "restyle": Command("restyle", "main", "Rewrite the test descriptions in other styles (terse, reordered, "
                       "paraphrase, verbose) for the style-robustness rows."),
    "pretrain-vision": Command("pretrain_vision", "main", "Pretrain the tiny vision tower for dense category and "
                               "part prediction."),
    "init-models": Command("init_models", "main", "Build or convert the base model (vision tower + LM) the point "
                           "models start from."),
    "train-descriptor": Command("train", "descriptor", "Fine-tune the Point Descriptor."),
    "train-localizer": Command("train", "localizer", "Fine-tune the Point Localizer."),
    "evaluate-describe": Command("evaluate_describe", "main", "Write a describer's text of every test point "
                                 "(the evaluation's generation step)."),
    "evaluate": Command("evaluate", "main", "Score one evaluation row: its texts, localized by its localizer."),
    "evaluate-chance": Command("evaluate_chance", "main", "Score one chance row (no text, no model)."),
    "report": Command("report", "main", "Tables, metrics, plots and the qualitative figure of every row."),
    "ap10k-data": Command("ap10k_data", "main", "AP-10K keypoint rows for GRPO, split by animal family."),
    "grpo": Command("grpo", "main", "GRPO fine-tuning of the descriptor with the localizer as reward."),
    "evaluate-grpo": Command("evaluate_grpo", "main", "Zero-shot vs GRPO vs GT texts on the held-out family."),
    "describe": Command("infer", "describe", "Describe a point of an image (one point or a batch)."),
    "localize": Command("infer", "localize", "Localize a description in an image (one text or a batch)."),
    "export-model": Command("export_model", "main", "Copy a model folder to hand on, its test metrics in the "
                            "model card."),
    "demo": Command("demo", "main", "Interactive demo (Gradio): click a pixel, read its description back."),
    "annotate": Command("annotate", "app", "Annotation sheets: test points for people to describe, scored back "
                        "as a `texts: file` row."),
    "profile": Command("profile", "main", "Copy a profile (profiles/<name>.yaml) over params.yaml."),
    "check-params": Command("check_params", "main", "Validate every section of a params file."),
}


def command_function(name: str):
    """The function (or, for a command with sub-commands, the Typer app) behind `name` (imports its module)."""
    spec = COMMANDS[name]
    return getattr(importlib.import_module(f"talking_points.stages.{spec.module}"), spec.function)


class LazyStages(TyperGroup):
    """A group that lists the sub-commands from COMMANDS and imports a stage module only when it runs."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, name: str):
        if name not in COMMANDS:
            return None
        listing = ctx is not None and (ctx.resilient_parsing or getattr(ctx, "_tp_listing", False))
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        if listing:  # `tp --help`: the summary only, nothing imported
            single.command(name, help=COMMANDS[name].summary)(_placeholder)
            return typer.main.get_command(single)
        target = command_function(name)
        if isinstance(target, typer.Typer):  # a group (`tp annotate export`)
            group = typer.main.get_command(target)
            group.name = name
            return group
        single.command(name)(target)
        return typer.main.get_command(single)

    def format_help(self, ctx, formatter) -> None:
        ctx._tp_listing = True  # type: ignore[attr-defined]
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx._tp_listing = False  # type: ignore[attr-defined]


def _placeholder() -> None:
    """Stands for a sub-command in the group's help; never run."""


def _package_version() -> str:
    try:
        return version("talking-points")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"talking-points {_package_version()}")
        raise typer.Exit()


app = typer.Typer(
    name="tp",
    cls=LazyStages,
    help="talking-points: describe a pixel in words and localize it again. One sub-command per DVC stage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """talking-points: describe a pixel in words and localize it again. One sub-command per DVC stage."""


if __name__ == "__main__":
    app()

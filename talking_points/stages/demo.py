"""`tp demo`: the interactive demo (Gradio) on a trained descriptor and localizer, served on localhost."""

from __future__ import annotations

from pathlib import Path

import typer

from talking_points.stages.common import console, stage


@stage
def main(
    descriptor: Path = typer.Option(Path("models/descriptor"), help="trained descriptor folder"),
    localizer: Path = typer.Option(Path("models/localizer"), help="trained localizer folder"),
    samples: Path = typer.Option(Path("data/split/test.parquet"), help="table whose images the picker offers"),
    examples: int = typer.Option(24, min=0, help="how many of its images to offer"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"),
    port: int = typer.Option(None, help="port (default: Gradio's, 7860, or the next free one)"),
    share: bool = typer.Option(False, help="also open a public Gradio share link (needs the internet)"),
) -> None:
    """Interactive demo: click a pixel -> its description and where the localizer reads it back; edit the
    text -> the localizer's new point. Needs the `demo` extra (`pip install -e ".[demo]"`)."""
    try:
        from talking_points.demo.app import build_app, example_images
        from talking_points.demo.handlers import DemoModels
    except ImportError as err:
        raise typer.BadParameter(f"the demo needs Gradio: pip install -e '.[demo]' ({err})") from None
    for path in (descriptor, localizer):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such model folder (train it with `dvc repro`, or pass "
                                    "--descriptor / --localizer)")
    models = DemoModels.load(descriptor, localizer)
    app = build_app(models, example_images(samples, examples))
    console.print(f"demo on {descriptor} + {localizer}; Ctrl-C stops it", markup=False)
    app.launch(server_name=host, server_port=port, share=share)

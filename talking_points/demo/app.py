"""The Gradio app of `tp demo`: click a pixel -> the descriptor's description, read back by the localizer, both
points drawn; edit the text -> the localizer's new point. The work is in `demo.handlers`; this module only
lays out the widgets and wires them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from talking_points.demo.handlers import (
    Answer,
    DemoModels,
    Settings,
    describe_click,
    localize_text,
    view,
    view_scale,
)
from talking_points.pipeline.visualize import read_rgb

__all__ = ["build_app"]

INTRO = """### Talking Points: describe a pixel, find it again
**Click a pixel** of the image: the Point Descriptor describes it (object → part → position in the part →
local look) and the Point Localizer reads the text back; the clicked point is green, the localized one red.
**Edit the description** and press *Localize* to see where the localizer puts your text."""


def build_app(models: DemoModels, examples: list[str]) -> gr.Blocks:
    """The demo on already loaded models; `examples`: image files offered in the picker."""

    def pick(path: str | None):
        if not path:
            return None, None, None, "", ""
        image = read_rgb(path)
        return image, None, view(image), "", "click a pixel of the image"

    def upload(image: np.ndarray | None):
        if image is None:
            return None, None, None, "", ""
        image = np.asarray(image)[..., :3].astype(np.uint8)
        return image, None, view(image), "", "click a pixel of the image"

    def click(image, sample, max_new_tokens, temperature, evt: gr.SelectData):
        if image is None:
            raise gr.Error("pick an example or upload an image first")
        s = view_scale(image)
        x, y = ((float(v) + 0.5) / s for v in evt.index[:2])  # the centre of the clicked display pixel
        settings = Settings(sample=sample == "sampling", max_new_tokens=int(max_new_tokens),
                            temperature=float(temperature))
        answer = describe_click(models, image, x, y, settings)
        return answer.clicked, view(image, answer), answer.text, answer.summary()

    def relocalize(image, text, clicked):
        if image is None:
            raise gr.Error("pick an example or upload an image first")
        try:
            answer: Answer = localize_text(models, image, text, tuple(clicked) if clicked else None)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return view(image, answer), answer.summary()

    with gr.Blocks(title="Talking Points demo") as app:
        gr.Markdown(INTRO)
        image_state = gr.State(None)
        clicked_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                shown = gr.Image(label="click a pixel", type="numpy", interactive=False, elem_id="view",
                                 show_label=True)
            with gr.Column(scale=2):
                picker = gr.Dropdown(choices=[(Path(f).name, f) for f in examples],
                                     value=examples[0] if examples else None, label="test image",
                                     elem_id="picker")
                uploaded = gr.Image(label="or upload an image", type="numpy", sources=["upload"], height=160)
                text = gr.Textbox(label="description (edit it, then Localize)", lines=5, elem_id="description")
                button = gr.Button("Localize", elem_id="localize")
                info = gr.Markdown("", elem_id="info")
                with gr.Accordion("generation", open=False):
                    mode = gr.Radio(["greedy", "sampling"], value="greedy", label="decoding")
                    max_tokens = gr.Slider(8, 160, value=96, step=1, label="max new tokens")
                    temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="temperature (sampling)")
                gr.Markdown(f"descriptor `{models.names.get('descriptor', '?')}` · "
                            f"localizer `{models.names.get('localizer', '?')}`")
        picker.change(pick, picker, [image_state, clicked_state, shown, text, info])
        uploaded.upload(upload, uploaded, [image_state, clicked_state, shown, text, info])
        shown.select(click, [image_state, mode, max_tokens, temperature], [clicked_state, shown, text, info])
        button.click(relocalize, [image_state, text, clicked_state], [shown, info])
        text.submit(relocalize, [image_state, text, clicked_state], [shown, info])
        app.load(pick, picker, [image_state, clicked_state, shown, text, info])
    return app


def example_images(samples: str | Path | None, n: int = 24) -> list[str]:
    """Up to `n` distinct image files of a samples table (the test split), in table order."""
    if samples is None or not Path(samples).exists():
        return []
    import pandas as pd

    files = pd.read_parquet(samples, columns=["file"])["file"].drop_duplicates().head(n)
    return [f for f in files if Path(f).exists()]

"""What the demo does, without Gradio: load the two models once, describe a clicked pixel and read the text
back, localize an edited text. Every function takes and returns plain values (numpy images, pixel points,
strings), so the tests call them directly and the Gradio app (`demo.app`) only wires them to widgets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talking_points.pipeline.metrics.pck import THRESHOLDS, normalised_distance
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import DecodingConfig, describe, localize
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.training.data import resize_rgb
from talking_points.pipeline.visualize import INPUT, PREDICTED, Mark, draw_marks

__all__ = ["DemoModels", "Answer", "Settings", "describe_click", "localize_text", "view"]

#: the displayed image is at least this wide (the PartWorld images are 192 px): clicks land on real pixels
VIEW_WIDTH = 576


@dataclass
class DemoModels:
    """The descriptor and the localizer with their tokenizers, loaded once for the app's lifetime."""

    descriptor: PointDescriptor
    descriptor_tok: object
    localizer: PointLocalizer
    localizer_tok: object
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, descriptor: str | Path, localizer: str | Path) -> DemoModels:
        d, dtok = PointDescriptor.from_pretrained(descriptor)
        loc, ltok = PointLocalizer.from_pretrained(localizer)
        d.eval()
        loc.eval()
        return cls(d, dtok, loc, ltok, {"descriptor": str(descriptor), "localizer": str(localizer)})


@dataclass(frozen=True)
class Settings:
    """Generation settings (the demo's accordion)."""

    sample: bool = False
    max_new_tokens: int = 96
    temperature: float = 1.0

    def decoding(self) -> DecodingConfig:
        return DecodingConfig(max_new_tokens=self.max_new_tokens, do_sample=self.sample,
                              temperature=self.temperature, top_p=0.95 if self.sample else 1.0, batch_size=1)


@dataclass(frozen=True)
class Answer:
    """One round of the demo: the text, the clicked point (if any) and the localized one, in pixels."""

    text: str
    clicked: tuple[float, float] | None
    predicted: tuple[float, float]
    width: int
    height: int
    seconds: float

    @property
    def distance(self) -> float | None:
        """Distance between the clicked and the localized point on image-normalised coordinates (as PCK)."""
        if self.clicked is None:
            return None
        return float(normalised_distance(np.array([self.predicted]), np.array([self.clicked]),
                                         self.width, self.height)[0])

    def summary(self) -> str:
        """Markdown: both points, the distance and whether it is within PCK@0.1 / @0.2, and the time."""
        px, py = self.predicted
        lines = [f"**localized** at ({px:.1f}, {py:.1f}) px"]
        if self.clicked is not None:
            cx, cy = self.clicked
            d = self.distance
            within = ", ".join(f"`PCK@{t}`: {'yes' if d < t else 'no'}" for t in THRESHOLDS)
            lines.insert(0, f"**clicked** at ({cx:.1f}, {cy:.1f}) px")
            lines.append(f"normalised distance **{d:.3f}** ({within})")
        lines.append(f"answered in {self.seconds:.2f} s")
        return "  \n".join(lines)


def _model_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(1, 3, H, W) uint8 of an (h, w, 3) RGB image at the model's size (resampled as in training)."""
    return resize_rgb(image, size)[None]


def _check(image: np.ndarray | None) -> np.ndarray:
    if image is None:
        raise ValueError("no image: pick an example or upload one first")
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise ValueError(f"the image must be RGB uint8, got shape {image.shape} dtype {image.dtype}")
    return image[..., :3]


def describe_click(models: DemoModels, image: np.ndarray, x: float, y: float,
                   settings: Settings = Settings()) -> Answer:
    """The descriptor's text for pixel (x, y) of `image` (pixels of the image itself) and where the localizer
    puts that text."""
    image = _check(image)
    h, w = image.shape[:2]
    if not (0 <= x <= w and 0 <= y <= h):
        raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} image")
    t0 = time.perf_counter()
    point = np.array([[x / w, y / h]], np.float32)
    text = describe(models.descriptor, models.descriptor_tok,
                    _model_input(image, models.descriptor.input_size), point, settings.decoding())[0]
    p = localize(models.localizer, models.localizer_tok, _model_input(image, models.localizer.input_size),
                 [text])[0]
    return Answer(text, (float(x), float(y)), (float(p[0]) * w, float(p[1]) * h), w, h, time.perf_counter() - t0)


def localize_text(models: DemoModels, image: np.ndarray, text: str,
                  clicked: tuple[float, float] | None = None) -> Answer:
    """Where the localizer puts `text` in `image`; `clicked` (pixels) is kept to measure the distance."""
    image = _check(image)
    if not text or not text.strip():
        raise ValueError("the description is empty: type where the point is")
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    p = localize(models.localizer, models.localizer_tok, _model_input(image, models.localizer.input_size),
                 [text.strip()])[0]
    return Answer(text.strip(), clicked, (float(p[0]) * w, float(p[1]) * h), w, h, time.perf_counter() - t0)


def view_scale(image: np.ndarray) -> float:
    """How much the displayed image is enlarged (an integer factor, so pixels stay square)."""
    return float(max(1, int(np.ceil(VIEW_WIDTH / image.shape[1]))))


def view(image: np.ndarray, answer: Answer | None = None) -> np.ndarray:
    """The image as displayed: enlarged by `view_scale`, with the clicked (green) and the localized (red)
    point; a click on it maps back to the image's pixels by dividing by the scale."""
    image = _check(image)
    s = view_scale(image)
    marks = []
    if answer is not None:
        if answer.clicked is not None:
            marks.append(Mark(answer.clicked[0], answer.clicked[1], INPUT, "clicked"))
        marks.append(Mark(answer.predicted[0], answer.predicted[1], PREDICTED, "localized"))
    return draw_marks(image, marks, None, min_width=int(image.shape[1] * s))

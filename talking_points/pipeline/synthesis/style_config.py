"""The `styles` params section: the description styles the localizers are evaluated (and may be trained) on
(`synthesis.styles` writes them). Its own module, so that the training sections can name styles without
depending on the synthesis backends' configs."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from talking_points.pipeline.config import Section, register_section

__all__ = ["LLMEngine", "LLMStyleConfig", "LLM_STYLE_PROMPT", "Style", "StylesConfig"]


class Style(str, Enum):
    """Ways of writing a keypoint's facts (synthesis.styles)."""

    gt = "gt"  # the synthesized description itself: the style the localizers are trained on
    terse = "terse"  # one clause, as people write: 'the top end of the tail of the left dog of the two'
    reordered = "reordered"  # fine to coarse or mixed order, no level separators
    paraphrase = "paraphrase"  # the description in synonyms that never occur in the training texts
    verbose = "verbose"  # ChatGPT-like: appearance first, the position cues in the middle, filler around them
    sparse = "sparse"  # the training words, each position clause and the look left out at random (fact dropout)
    llm = "llm"  # a chat LLM's rewrite of the description (styles.llm): test split only, written by tp restyle


class LLMEngine(str, Enum):
    """The synthesis backend whose text pass writes the `llm` style (`synthesis.llm_style`)."""

    hf = "hf"  # transformers generate, batched (synthesis.hf_backend)
    vllm = "vllm"  # vLLM offline inference (synthesis.vllm_backend; pip install .[vllm])


#: what the LLM is asked: `{description}` is the GT description of one test point
LLM_STYLE_PROMPT = (
    "Here is a description of one point in a photo. Rewrite it the way a person would say it to a friend, in "
    "your own words and word order. Keep every fact it gives (which object, which part, where on the part, how "
    "it looks) and add none. Answer with the rewritten description only.\n\nDescription: {description}"
)


class LLMStyleConfig(Section):
    """`styles.llm`: the chat LLM that writes the `llm` style, through a synthesis backend's text pass (the
    checkpoint is not a DVC dependency: a hub id or a folder, as the describe-vlm rows' checkpoints)."""

    backend: LLMEngine = Field(LLMEngine.hf, description="hf (transformers) or vllm")
    checkpoint: str = Field(..., description="chat/instruct LLM: a local folder or a hub id (e.g. "
                            "Qwen/Qwen2.5-7B-Instruct; HF_HUB_OFFLINE=1 needs it in the local cache)")
    prompt: str = Field(LLM_STYLE_PROMPT, description="the user turn for each test point; {description} is its GT "
                        "description (the only placeholder)")
    max_new_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.0, ge=0, description="0: greedy; above 0: sampled (seeded by styles.seed)")
    batch_size: int = Field(8, ge=1, description="prompts per generate call (hf)")
    device: str = Field("auto", description="hf: 'auto' (cuda when available, else cpu), 'cpu', 'cuda', ...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = Field(False, description="let the checkpoint run its own Python code")
    vllm_engine: dict[str, Any] = Field(default_factory=dict, description="vllm: arguments of its engine "
                                        "(synthesis VLLMEngineConfig: tensor_parallel_size, gpu_memory_utilization, "
                                        "max_model_len, enforce_eager, extra)")

    @field_validator("checkpoint")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty checkpoint: give a local folder or a hub id of a chat LLM")
        return value.strip()

    @field_validator("prompt")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        try:
            filled = value.format(description="\0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"styles.llm.prompt: {{description}} is its only placeholder (write other braces "
                             f"doubled, {{{{ }}}}): {exc!r}") from None
        if "\0" not in filled:
            raise ValueError("styles.llm.prompt has no {description}: the LLM would not see the point's facts")
        return value


@register_section("styles")
class StylesConfig(Section):
    """The `styles` section: the styles the test descriptions are rewritten in (`tp restyle`, scored by the
    `texts: style` evaluation rows) and the ones no style-robust localizer may train on."""

    seed: int = Field(0, description="seeds every style's choice of forms (per kp_id), and the per-sample style "
                      "drawn for a localizer trained on several (train_localizer.text_styles)")
    styles: list[Style] = Field(
        default_factory=lambda: [Style.terse, Style.reordered, Style.paraphrase, Style.verbose],
        description="styles written for the test split (data/styles/test.parquet); gt is the description itself")
    held_out: list[Style] = Field(
        default_factory=lambda: [Style.terse, Style.paraphrase],
        description="styles kept out of every localizer's training (train_localizer.text_styles may not list "
        "them): the table shows in-style, seen-style and held-out-style mPCK")
    llm: LLMStyleConfig | None = Field(None, description="the LLM that writes the llm style (needed when styles "
                                       "lists llm); null: none")

    @model_validator(mode="after")
    def _consistent(self) -> "StylesConfig":
        if Style.gt in self.styles:
            raise ValueError("styles.styles lists gt: the GT description is the samples' own column, not a rewrite")
        if Style.gt in self.held_out:
            raise ValueError("styles.held_out lists gt: the training style cannot be held out")
        if stray := [s.value for s in self.held_out if s not in self.styles]:
            raise ValueError(f"styles.held_out {stray} are not written (add them to styles.styles)")
        if Style.llm in self.styles and self.llm is None:
            raise ValueError("styles.styles lists llm: set styles.llm (backend: hf or vllm, checkpoint: a chat LLM's "
                             "folder or hub id), or drop llm from styles.styles")
        return self

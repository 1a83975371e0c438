"""GPU check of the point models at LLaVA-1.5-7B's shapes: throughput and memory of the project's own code.

Builds a LLaVA with LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336 tower, 2-layer MLP projector, Llama-2-7B LM,
vocabulary 32064; 7.06 B parameters) and random weights directly on the GPU in bfloat16, converts it with the
project's `convert_llava` (its checkpoint loading answered with the in-memory model: nothing is downloaded or
written) and builds PointDescriptor / PointLocalizer with the paper profile's settings (profiles/paper.yaml:
LoRA r 512, 9-layer point decoder, GRPO's trainable set). Then it measures, through the project's step,
inference and GRPO functions, with forward passes under bf16 autocast (the loops' `mixed_precision: bf16`):

  (a) descriptor SFT samples/s (batch 8)       paper ≈ 4.3 samples/s (11 h for 17K samples x 10 epochs)
  (b) localizer SFT samples/s (batch 8)        paper ≈ 1.1 samples/s (64 h for 17K samples x 15 epochs)
  (c) describe samples/s (batched, greedy, 96 new tokens) and localize samples/s   paper inference ≈ 0.35
  (d) seconds per GRPO step (group size G 3, batch 10)

each after warm-up steps, timed between torch.cuda.synchronize() calls, with the phase's peak GPU memory (3
warm-up + 5 timed steps; fewer where the warm-up shows a figure would take over --phase-budget, 60 s). A
figure is printed as soon as it is measured, next to the paper's (and written to --json after every phase). A
batch that does not fit is split into micro-batches (gradient accumulation; GRPO: grad_accum), and the split
used is printed. Data loading is not timed (one collated batch is reused); the frozen tower runs every step
unless --cache-vision (the training stage's cached features). The weights are random: the figures measure
speed, never quality. The tokenizer is the tiny BPE of tests/tiny_checkpoints.py padded to LLaVA-1.5's 32002
tokens. `--dtype float32` keeps float32 weights, as the pipeline's own bases have (needs the larger GPU).

The device machine has no package registry and lacks pydantic and pycocotools, which the project imports;
carry their wheels in the git-ignored .whl/ folder (13 MB), made once on a machine with a registry:

    for v in 3.10 3.11 3.12 3.13 3.14; do
      opts="--only-binary=:all: --python-version $v --platform manylinux2014_x86_64 -d .whl/"
      pip download pydantic==2.14.4 $opts && pip download pycocotools --no-deps $opts
    done

and run from the repository root (one line; a few minutes on one H100/H200):

    python -m pip install -q --no-index --no-deps --find-links .whl --target /tmp/tp-site pydantic pydantic-core annotated-types typing-inspection typing-extensions pycocotools && PYTHONPATH=/tmp/tp-site python benchmarks/gpu_check.py --json $OUT/gpu_check.json

Without CUDA (or with --tiny) it runs the tiny LLaVA shapes of tests/tiny_checkpoints.py in float32, in
seconds on a CPU; `--meta` prints the 7B models' shapes and parameter counts without allocating them:

    python benchmarks/gpu_check.py --tiny --threads 1 [--steps N] [--json out.json]

Exit status: 0 when every phase ran, 1 when one failed (each failure is printed as it happens and summed up
at the end), 2 when the project cannot be imported.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TP_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project runs from the checkout (it need not be installed)

#: installs the wheels carried in .whl/ (the project's imports the device machine lacks) beside its packages
INSTALL = ("python -m pip install -q --no-index --no-deps --find-links .whl --target /tmp/tp-site pydantic "
           "pydantic-core annotated-types typing-inspection typing-extensions pycocotools")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

try:
    from talking_points.pipeline.models.adaptation import base_lm
    from talking_points.pipeline.models.build import convert_llava
    from talking_points.pipeline.models.descriptor import DescriptorConfig, PointDescriptor
    from talking_points.pipeline.models.inference import DecodingConfig, describe, localize, prompt_format
    from talking_points.pipeline.models.localizer import LocalizerConfig, PointLocalizer
    from talking_points.pipeline.rl.config import GRPOTrainConfig
    from talking_points.pipeline.rl.loop import grpo_step, localizer_locate, prepare_policy, step_seed
    from talking_points.pipeline.training.config import OptimiserConfig
    from talking_points.pipeline.training.loop import torch_kernels
    from talking_points.pipeline.training.steps import (
        descriptor_collate,
        descriptor_step,
        localizer_collate,
        localizer_step,
    )
    from tests.tiny_checkpoints import IMAGE_TOKEN
    from tests.tiny_checkpoints import build_tokenizer as tiny_tokenizer
except ImportError as _err:  # pydantic / pycocotools missing on the device machine: say how to carry them
    print(f"gpu_check: cannot import the project ({_err}). On a machine without a package registry, install "
          f"the carried wheels first (see this file's docstring):\n  {INSTALL} && PYTHONPATH=/tmp/tp-site "
          "python benchmarks/gpu_check.py", file=sys.stderr, flush=True)
    sys.exit(2)

__all__ = ["LLAVA_7B", "PAPER", "TINY", "Shapes", "build_base", "build_tokenizer", "llava_config", "main",
           "meta_summary", "run_check", "with_accumulation"]

PROFILE = ROOT / "profiles" / "paper.yaml"
#: the paper's figures (samples/s), from its training times and its inference speed
PAPER = {
    "descriptor_train": 17_000 * 10 / (11 * 3600),  # ≈ 4.3: 11 h for 17K samples x 10 epochs
    "localizer_train": 17_000 * 15 / (64 * 3600),  # ≈ 1.1: 64 h for 17K samples x 15 epochs
    "describe": 0.35,  # inference
    "localize": 0.35,
    "grpo_step": None,  # no figure in the paper
}
#: a coarse-to-fine description of typical length (what the descriptor learns, the localizer reads)
DESCRIPTION = ("The point is on the second dog from the left, the larger of the two dogs in the picture; "
               "on its head, in the upper left part of the head near the left ear; at the centre of a small "
               "dark patch of short smooth fur, just above the eye.")


@dataclass(frozen=True)
class Shapes:
    name: str
    vision: dict  # CLIPVisionConfig fields
    text: dict  # LlamaConfig fields
    vocab: int  # the checkpoint's LM vocabulary (0: the tokenizer's size)
    tokenizer_size: int  # its tokenizer's size before the point tokens are added (0: the tiny BPE as built)


LLAVA_7B = Shapes(
    name="llava-1.5-7b",
    vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu"),
    text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5),
    vocab=32064,
    tokenizer_size=32002,  # Llama's 32000 + <image> + <pad>, as llava-hf/llava-1.5-7b-hf's tokenizer
)
TINY = Shapes(  # tests/tiny_checkpoints.py's VLM
    name="tiny",
    vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                image_size=28, patch_size=14, projection_dim=32),
    text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=2, max_position_embeddings=4096),
    vocab=0,
    tokenizer_size=0,
)


# ------------------------------------------------------------------------------------------------- building


def build_tokenizer(size: int = 0):
    """The tiny byte-level BPE of tests/tiny_checkpoints.py; with `size`, padded to that many tokens with
    `<unusedN>` tokens (so the LM's embeddings have a real checkpoint's shape). They are added tokens: a text
    sampled from a random model decodes and re-encodes token for token, as with a real tokenizer."""
    from transformers import AddedToken

    tok = tiny_tokenizer()
    if size > len(tok):
        tok.add_tokens([AddedToken(f"<unused{i}>", special=False, normalized=False)
                        for i in range(len(tok), size)])
    if size and len(tok) != size:
        raise RuntimeError(f"the tokenizer has {len(tok)} tokens, wanted {size}")
    return tok


def llava_config(shapes: Shapes, tok):
    """A transformers LlavaConfig of `shapes` (LLaVA-1.5's projector, feature layer and strategy)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    text = LlamaConfig(**shapes.text, vocab_size=shapes.vocab or len(tok), pad_token_id=tok.pad_token_id,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       tie_word_embeddings=False)
    vision = CLIPVisionConfig(**shapes.vision)
    grid = shapes.vision["image_size"] // shapes.vision["patch_size"]
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN), image_seq_length=grid * grid,
                       projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default")


@contextlib.contextmanager
def default_to(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """New tensors (modules built in the block) on `device` in `dtype`: a 7B model is built on the GPU in
    seconds, not initialised on the CPU in minutes."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


@contextlib.contextmanager
def loading_answered_with(model, tokenizer) -> Iterator[None]:
    """LlavaForConditionalGeneration / AutoTokenizer .from_pretrained return these objects in the block."""
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    with mock.patch.object(LlavaForConditionalGeneration, "from_pretrained", lambda *a, **k: model), \
            mock.patch.object(AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer):
        yield


def build_base(shapes: Shapes, tok, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """(PointVLM, tokenizer, LLaVA parameter count): `convert_llava` run on a random LLaVA of `shapes` built
    on `device` in `dtype`, its checkpoint loading answered with the in-memory model and tokenizer."""
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(seed)
    tok = copy.deepcopy(tok)  # convert_llava adds the point tokens to it
    with default_to(device, dtype):
        llava = LlavaForConditionalGeneration(llava_config(shapes, tok))
        n_params = count(llava.parameters())
        with loading_answered_with(llava, tok):
            vlm, tok = convert_llava(f"{shapes.name} (random weights, in memory)")
    del llava  # its weights are copied: free them before anything else is built
    free()
    return vlm, tok, n_params


def paper_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def with_lora_r(model_cfg: dict, r: int) -> dict:
    out = copy.deepcopy(model_cfg)
    out.setdefault("lora", {})["r"] = r
    return out


def descriptor_config(profile: dict, lora_r: int) -> DescriptorConfig:
    return DescriptorConfig.model_validate(with_lora_r(profile["train_descriptor"]["model"], lora_r))


def localizer_config(profile: dict, lora_r: int) -> LocalizerConfig:
    return LocalizerConfig.model_validate(with_lora_r(profile["train_localizer"]["model"], lora_r))


#: whether `grpo_step` applies the config's mixed precision itself (newer loops); else the check wraps it
GRPO_SETS_PRECISION = "mixed_precision" in GRPOTrainConfig.model_fields


def grpo_config(profile: dict, args: argparse.Namespace) -> GRPOTrainConfig:
    fields = {**profile["grpo"]["train"], "group_size": args.group, "batch_size": args.grpo_batch,
              "max_new_tokens": args.max_new_tokens, "deterministic": not args.nondeterministic}
    if GRPO_SETS_PRECISION:
        fields["mixed_precision"] = args.precision
    return GRPOTrainConfig.model_validate(fields)


def forward_context(check: Check) -> contextlib.AbstractContextManager:
    """What forward passes run in: torch.autocast(bfloat16) for --precision bf16 (the training loops'
    `mixed_precision: bf16`: bfloat16 matrix products over weights of any dtype), nothing for fp32."""
    if check.args.precision == "bf16":
        return torch.autocast(check.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lora_r_of(model) -> int:
    """The rank of the LoRA adapters inside a point model's LM, read off the first adapter's A matrix."""
    for name, p in model.named_parameters():
        if "lora_A" in name:
            return int(p.shape[0])
    raise ValueError("the model's LM has no LoRA adapters")


def count(params) -> int:
    return sum(p.numel() for p in params)


def human(n: float) -> str:
    """A parameter count as 7.063 B / 10.80 M / 221.4 K."""
    for scale, unit, digits in ((1e9, "B", 3), (1e6, "M", 2), (1e3, "K", 1)):
        if n >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return str(int(n))


def meta_summary(shapes: Shapes = LLAVA_7B, lora_r: int = 512) -> dict:
    """Shapes and parameter counts of the LLaVA, the converted base and the paper-profile descriptor, built on
    the `meta` device (nothing allocated; seconds on a CPU)."""
    meta = torch.device("meta")
    tok = build_tokenizer(shapes.tokenizer_size)
    vlm, tok, llava_params = build_base(shapes, tok, meta, torch.bfloat16)
    base_params = count(vlm.parameters())
    with default_to(meta, torch.bfloat16):
        desc = PointDescriptor(vlm, descriptor_config(paper_profile(), lora_r))
    q = base_lm(desc.vlm.lm).model.layers[0].self_attn.q_proj
    return {
        "llava_params": llava_params,
        "base_params": base_params,
        "tokenizer": len(tok),
        "lm_vocab": int(desc.vlm.lm.get_input_embeddings().weight.shape[0]),
        "image_tokens": vlm.config.n_image_tokens,
        "lm": {k: getattr(vlm.config.text_config, k) for k in
               ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")},
        "vision": {k: getattr(vlm.config.vision_config, k) for k in
                   ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "image_size", "patch_size")},
        "descriptor_lora_r": lora_r_of(desc),
        "q_proj_lora_A": list(q.lora_A["default"].weight.shape),
        "descriptor_trainable": count(p for p in desc.parameters() if p.requires_grad),
        # where the build put every weight and buffer (none on the CPU behind the default device's back)
        "devices": sorted({t.device.type for t in [*desc.parameters(), *desc.buffers()]}),
    }


# -------------------------------------------------------------------------------------------------- timing


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


@dataclass
class WarmUp:
    calls: int = 0
    last_s: float | None = None  # the last warm-up call's seconds: the steady-state estimate


def warm_up(fn: Callable[[], object], n: int, device: torch.device, budget_s: float,
            done: WarmUp | None = None) -> WarmUp:
    """Up to `n` untimed calls (each synchronised), fewer once `budget_s` is spent; adds to `done`."""
    done = done or WarmUp()
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        fn()
        sync(device)
        done.calls += 1
        done.last_s = time.perf_counter() - t
        if time.perf_counter() - start > budget_s:
            break
    return done


def seconds_per_call(fn: Callable[[], object], device: torch.device, steps: int) -> float:
    """Mean wall time of `steps` calls, timed between device synchronisations."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def measure(check: Check, fn: Callable[[], object], warm: WarmUp) -> tuple[float, int]:
    """(seconds per call, calls timed) after the warm-up: --steps calls, fewer (at least one) when that many
    would take longer than --phase-budget by the warm-up's estimate; the peak memory counts from here."""
    a = check.args
    steps = a.steps
    if warm.last_s:
        steps = max(1, min(a.steps, int(a.phase_budget // warm.last_s)))
        if steps < a.steps:
            check.say(f"    {steps} timed steps, not {a.steps}: one takes {warm.last_s:.1f} s "
                      f"(--phase-budget {a.phase_budget:g} s)")
    reset_peak(check.device)
    return seconds_per_call(fn, check.device, steps), steps


def with_accumulation(batch: int, try_fn: Callable[[int], None], release: Callable[[], None]) -> int:
    """The fewest micro-batches (a divisor of `batch`) for which `try_fn(accum)` runs without running out of
    memory; `release` frees what a failed try left (gradients) before the next. Other errors propagate."""
    accum = 1
    while True:
        try:
            try_fn(accum)
            return accum
        except Exception as err:  # only out-of-memory is retried
            if not is_oom(err) or accum == batch:
                raise
        # out of the except block: the failed try's frames (and their tensors) are released
        release()
        free()
        accum = next(d for d in range(accum + 1, batch + 1) if batch % d == 0)
        print(f"    out of memory: retrying with {accum} micro-batches of {batch // accum}", flush=True)


# --------------------------------------------------------------------------------------------------- data


def samples(n: int, image_size: int, seed: int = 0) -> list[dict]:
    """Rows as the training data gives them: uint8 images (3, H, W), normalised points, a description."""
    g = torch.Generator().manual_seed(seed)
    size = (3, image_size, image_size)
    return [{"index": i, "image": torch.randint(0, 256, size, dtype=torch.uint8, generator=g),
             "point": torch.rand(2, generator=g) * 0.8 + 0.1, "description": DESCRIPTION} for i in range(n)]


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def add_cached_vision(model, batch: dict) -> dict:
    """The frozen tower's features in the batch, as the training stage caches them (float16)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        feats = model.vision_features(batch["image"])
    model.train(was)
    return {**batch, "vision_maps": tuple(m.to(torch.float16) for m in feats.maps)}


# ------------------------------------------------------------------------------------------------- phases


@dataclass
class Check:
    """One run: arguments, device, the figures measured so far and the failures."""

    args: argparse.Namespace
    device: torch.device
    dtype: torch.dtype
    shapes: Shapes
    info: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def say(self, text: str) -> None:
        print(text, flush=True)

    def record(self, key: str, label: str, value: float, unit: str, note: str, details: dict) -> None:
        """Keep one figure, print it next to the paper's (and how it was measured below it), save the JSON."""
        if not (value > 0 and np.isfinite(value)):
            raise RuntimeError(f"{label}: measured {value} {unit}")
        paper = PAPER.get(key)
        self.figures[key] = {"label": label, "value": value, "unit": unit, "paper": paper, **details}
        ref = f"paper ≈ {paper:.2f} {unit}" if paper else "paper: no figure"
        mem = details.get("peak_gib")
        self.say(f"  {label:<15} {value:10.3f} {unit:<10}  {ref:<26}  peak "
                 f"{f'{mem:.1f} GiB' if mem is not None else 'n/a (CPU)'}")
        self.say(f"  {'':<15} {note}; {details['warmup']} warm-up + {details['steps']} timed")
        self.write_json()

    def run_phase(self, name: str, fn: Callable[[], object]):
        """Run one phase; a failure is printed, recorded and does not stop the other phases."""
        t = time.perf_counter()
        self.say(f"[{time.perf_counter() - self.start:6.1f} s] {name} ...")
        try:
            out = fn()
        except Exception as err:  # every failure is reported; the run then exits non-zero
            traceback.print_exc()
            text = str(err).strip()
            msg = f"{type(err).__name__}: {text.splitlines()[0][:400] if text else ''}"
            self.failures.append({"phase": name, "error": msg})
            self.say(f"  FAILED {name}: {msg}")
            self.write_json()
            return None
        finally:
            free()
        self.say(f"  ({name}: {time.perf_counter() - t:.1f} s)")
        return out

    def payload(self) -> dict:
        return {"info": self.info, "figures": self.figures, "failures": self.failures,
                "elapsed_s": time.perf_counter() - self.start}

    def write_json(self) -> None:
        if not self.args.json:
            return
        path = Path(self.args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.payload(), indent=2) + "\n")
        tmp.replace(path)


def sft_figure(check: Check, key: str, label: str, model, collate, step, lr: float) -> None:
    """Training samples/s of one point model: a fixed batch, AdamW, gradient clipping 1.0 (as `fit`)."""
    a, dev = check.args, check.device
    rows = samples(a.batch, check.shapes.vision["image_size"], seed=1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    state: dict = {}

    def prepare(accum: int) -> None:
        micro = a.batch // accum
        chunks = [to_device(collate(rows[i : i + micro]), dev) for i in range(0, a.batch, micro)]
        state["chunks"] = [add_cached_vision(model, c) for c in chunks] if a.cache_vision else chunks

    def one_step() -> None:
        chunks = state["chunks"]
        for b in chunks:
            with forward_context(check):  # the forward pass; backward outside autocast (as `fit`)
                loss, _ = step(model, b)
            (loss / len(chunks)).backward()
            value = float(loss.detach())  # the loop logs every micro-batch's loss (a sync point)
            if not np.isfinite(value):
                raise RuntimeError(f"{label}: non-finite loss {value}")
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def warm(accum: int) -> None:
        prepare(accum)
        state["warm"] = warm_up(one_step, a.warmup, dev, a.phase_budget)

    model.train()
    with torch_kernels(OptimiserConfig(deterministic=not a.nondeterministic)):
        accum = with_accumulation(a.batch, warm, lambda: (opt.zero_grad(set_to_none=True), state.clear()))
        secs, steps = measure(check, one_step, state["warm"])
    tokens = int(state["chunks"][0]["attention_mask"].sum(dim=1).float().mean())
    r = lora_r_of(model)
    note = (f"batch {a.batch} = {accum} x {a.batch // accum}, LoRA r {r}, {tokens} tokens/sample, "
            f"{human(count(params))} trainable, {secs:.3f} s/step, "
            f"{'cached tower features' if a.cache_vision else 'tower run every step'}")
    check.record(key, label, a.batch / secs, "samples/s", note, {
        "batch": a.batch, "micro_batch": a.batch // accum, "accum": accum, "lora_r": r,
        "tokens_per_sample": tokens, "trainable_params": count(params), "s_per_step": secs,
        "warmup": state["warm"].calls, "steps": steps, "cached_vision": bool(a.cache_vision),
        "peak_gib": peak_gib(dev)})
    model.zero_grad(set_to_none=True)  # the next phase starts without this one's gradients


def describe_figure(check: Check, model, tok) -> None:
    """Batched greedy description samples/s through `inference.describe`, every sample `max_new_tokens` long
    (the LM's generation_config.min_new_tokens, so a random model's early EOS cannot shorten the work)."""
    a, dev = check.args, check.device
    rows = samples(a.describe_batch, check.shapes.vision["image_size"], seed=2)
    images = torch.stack([r["image"] for r in rows]).numpy()
    points = torch.stack([r["point"] for r in rows]).numpy()
    gen = DecodingConfig(max_new_tokens=a.max_new_tokens, batch_size=a.describe_batch)
    prompts = prompt_format(model, tok).descriptor_batch(None, len(rows), padding_side="left")
    state: dict = {}

    def generate() -> None:  # the call describe makes, keeping the new tokens to count them
        with torch.no_grad(), forward_context(check):
            state["ids"] = model.generate(
                torch.as_tensor(images).to(dev), torch.as_tensor(points).to(dev), prompts.input_ids.to(dev),
                prompts.attention_mask.to(dev), **gen.generate_kwargs(tok))

    def run() -> None:
        with forward_context(check):
            describe(model, tok, images, points, gen)

    config = base_lm(model.vlm.lm).generation_config
    before, config.min_new_tokens = config.min_new_tokens, a.max_new_tokens
    try:
        model.eval()
        warm = warm_up(generate, 1, dev, a.phase_budget)  # the first warm-up
        new = int(state["ids"].shape[1])
        if new != a.max_new_tokens:
            raise RuntimeError(f"generation gave {new} new tokens, not {a.max_new_tokens}")
        warm_up(run, a.warmup - 1, dev, a.phase_budget, warm)
        secs, steps = measure(check, run, warm)
    finally:
        config.min_new_tokens = before
    prompt = int(prompts.input_ids.shape[1])
    note = (f"batch {a.describe_batch}, greedy, {new} new tokens after a {prompt}-token prompt, "
            f"{secs:.3f} s/batch")
    check.record("describe", "describe", a.describe_batch / secs, "samples/s", note, {
        "batch": a.describe_batch, "new_tokens": new, "prompt_tokens": prompt,
        "s_per_batch": secs, "warmup": warm.calls, "steps": steps, "peak_gib": peak_gib(dev)})


def localize_figure(check: Check, model, tok) -> None:
    """Batched localization samples/s through `inference.localize`."""
    a, dev = check.args, check.device
    rows = samples(a.localize_batch, check.shapes.vision["image_size"], seed=3)
    images = torch.stack([r["image"] for r in rows]).numpy()
    texts = [r["description"] for r in rows]

    def run() -> None:
        with forward_context(check):
            localize(model, tok, images, texts, batch_size=a.localize_batch)

    warm = warm_up(run, a.warmup, dev, a.phase_budget)
    secs, steps = measure(check, run, warm)
    check.record("localize", "localize", a.localize_batch / secs, "samples/s",
                 f"batch {a.localize_batch}, {secs:.3f} s/batch", {
                     "batch": a.localize_batch, "s_per_batch": secs, "warmup": warm.calls, "steps": steps,
                     "peak_gib": peak_gib(dev)})


def grpo_figure(check: Check, descriptor, localizer, tok) -> None:
    """Seconds per `rl.loop.grpo_step` of the SFT descriptor made a policy by `prepare_policy` (the paper
    profile's trainable set), rewarded by the localizer through `localizer_locate`."""
    a, dev = check.args, check.device
    cfg = grpo_config(paper_profile(), a)
    policy = prepare_policy(descriptor, cfg)
    rows = samples(a.grpo_batch, check.shapes.vision["image_size"], seed=4)
    prompts = [{"image": r["image"]} for r in rows]  # what localizer_locate reads: prompts[row]["image"]
    locate = localizer_locate(localizer, tok, prompts, cfg.reward_batch_size)
    images = torch.stack([r["image"] for r in rows]).to(dev)
    points = torch.stack([r["point"] for r in rows]).to(dev)
    fmt = prompt_format(descriptor, tok)
    opt = torch.optim.AdamW(list(policy.trainable.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"cfg": cfg, "step": 0, "metrics": {}}

    def one_step() -> None:
        torch.manual_seed(step_seed(cfg.seed, state["step"]))
        with contextlib.nullcontext() if GRPO_SETS_PRECISION else forward_context(check):
            state["metrics"] = grpo_step(policy, fmt, tok, images, points, np.arange(a.grpo_batch), locate,
                                         state["cfg"], opt)
        state["step"] += 1
        if not np.isfinite(state["metrics"]["loss"]):
            raise RuntimeError(f"GRPO: non-finite loss {state['metrics']['loss']}")

    def warm(accum: int) -> None:
        state["cfg"] = cfg.model_copy(update={"grad_accum": accum})
        state["warm"] = warm_up(one_step, a.warmup, dev, a.phase_budget)

    with torch_kernels(cfg):
        accum = with_accumulation(a.grpo_batch, warm, lambda: opt.zero_grad(set_to_none=True))
        secs, steps = measure(check, one_step, state["warm"])
    m = state["metrics"]
    n_train = count(policy.trainable.values())
    note = (f"G {cfg.group_size} x batch {a.grpo_batch}, grad_accum {accum}, {cfg.trainable.value} "
            f"({human(n_train)} trainable), {m['length_tokens']:.0f} of at most {cfg.max_new_tokens} sampled "
            f"tokens, {a.grpo_batch / secs:.2f} keypoints/s")
    check.record("grpo_step", "GRPO step", secs, "s/step", note, {
        "group_size": cfg.group_size, "batch": a.grpo_batch, "grad_accum": accum,
        "trainable": cfg.trainable.value,
        "trainable_params": n_train, "max_new_tokens": cfg.max_new_tokens,
        "mean_completion_tokens": m["length_tokens"], "warmup": state["warm"].calls, "steps": steps,
        "peak_gib": peak_gib(dev)})


# --------------------------------------------------------------------------------------------------- main


def start_check(args: argparse.Namespace) -> Check:
    """The device, shapes and dtypes of this run (tiny without CUDA), with its header printed."""
    import peft
    import transformers

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"gpu_check: --device {args.device}, but torch sees no CUDA device")
    if device.type == "cpu" and not args.tiny:
        print("gpu_check: no CUDA device: running the tiny config on the CPU (--tiny)", flush=True)
        args.tiny = True
    shapes = TINY if args.tiny else LLAVA_7B
    dtype = getattr(torch, args.dtype or ("float32" if args.tiny else "bfloat16"))
    args.precision = args.precision or ("fp32" if args.tiny else "bf16")
    check = Check(args, device, dtype, shapes)
    check.info = {
        "shapes": shapes.name, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "dtype": str(dtype).removeprefix("torch."), "precision": args.precision, "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__,
        "threads": torch.get_num_threads(),
        "deterministic": not args.nondeterministic, "warmup": args.warmup, "steps": args.steps,
        "phase_budget_s": args.phase_budget,
        "requested_lora_r": args.lora_r,
    }
    autocast = "forward passes under bf16 autocast" if args.precision == "bf16" else "no autocast"
    kernels = "PyTorch's default" if args.nondeterministic else "deterministic (the loops' default)"
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"
    check.say(f"gpu_check: {shapes.name} shapes, random weights in {check.info['dtype']} ({autocast}) on "
              f"{check.info['device_name']}; {versions}; training kernels {kernels}; {args.warmup} warm-up + "
              f"{args.steps} timed steps per figure")
    return check


def build_point_model(check: Check, cls: type, cfg, tok):
    """(model, tokenizer): a freshly converted base (`build_base`) with `cls`'s heads and adapters on it."""
    vlm, tok, n = build_base(check.shapes, tok, check.device, check.dtype)
    check.info.update(llava_params=n, base_params=count(vlm.parameters()), tokenizer=len(tok),
                      image_tokens=vlm.config.n_image_tokens)
    with default_to(check.device, check.dtype):
        model = cls(vlm, cfg)
    check.info[f"{model.kind}_lora_r"] = lora_r_of(model)
    mem = ""
    if check.device.type == "cuda":
        mem = f"; {torch.cuda.memory_allocated(check.device) / 2**30:.1f} GiB allocated on the GPU"
    check.say(f"  LLaVA {human(n)} parameters -> converted base {human(check.info['base_params'])}, "
              f"{len(tok)} tokens, {vlm.config.n_image_tokens} image tokens; {model.kind} LoRA r "
              f"{lora_r_of(model)}{mem}")
    return model, tok


def run_check(args: argparse.Namespace) -> Check:
    """Build both point models and measure every figure; returns the Check (figures, failures)."""
    check = start_check(args)
    profile = paper_profile()
    tok = check.run_phase("tokenizer", lambda: build_tokenizer(check.shapes.tokenizer_size))
    if tok is None:
        return check
    descriptor = localizer = None
    built = check.run_phase("build descriptor", lambda: build_point_model(
        check, PointDescriptor, descriptor_config(profile, args.lora_r), tok))
    if built is not None:
        descriptor, tok_d = built
        collate = descriptor_collate(prompt_format(descriptor, tok_d))
        lr = float(profile["train_descriptor"]["train"]["lr"])
        check.run_phase("descriptor SFT", lambda: sft_figure(
            check, "descriptor_train", "descriptor SFT", descriptor, collate, descriptor_step, lr))
        check.run_phase("describe", lambda: describe_figure(check, descriptor, tok_d))
    built = check.run_phase("build localizer", lambda: build_point_model(
        check, PointLocalizer, localizer_config(profile, args.lora_r), tok))
    if built is not None:
        localizer, tok_l = built
        collate = localizer_collate(prompt_format(localizer, tok_l))
        lr = float(profile["train_localizer"]["train"]["lr"])
        check.run_phase("localizer SFT", lambda: sft_figure(
            check, "localizer_train", "localizer SFT", localizer, collate, localizer_step, lr))
        check.run_phase("localize", lambda: localize_figure(check, localizer, tok_l))
    if descriptor is not None and localizer is not None:
        check.run_phase("GRPO step", lambda: grpo_figure(check, descriptor, localizer, tok_d))
    else:
        check.failures.append({"phase": "GRPO step", "error": "skipped: it needs both point models"})
    check.write_json()
    return check


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny LLaVA shapes (automatic without CUDA)")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    ap.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None,
                    help="weights' dtype (default: bfloat16; tiny: float32)")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                    help="bf16: forward passes under torch.autocast(bfloat16), as the training loops' "
                         "mixed_precision bf16; fp32: none (default: bf16; tiny: fp32)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before each figure")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per figure")
    ap.add_argument("--phase-budget", type=float, default=60.0,
                    help="seconds a figure's warm-up, and then its timed steps, may take: fewer steps (at "
                         "least one) where the warm-up shows --steps would not fit")
    ap.add_argument("--batch", type=int, default=8, help="SFT batch (paper: 8)")
    ap.add_argument("--lora-r", type=int, default=512, help="LoRA rank of both point models (paper: 512)")
    ap.add_argument("--describe-batch", type=int, default=32, help="describe batch (paper profile: 32)")
    ap.add_argument("--localize-batch", type=int, default=64, help="localize batch (paper profile: 64)")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="description length generated")
    ap.add_argument("--group", type=int, default=3, help="GRPO group size G")
    ap.add_argument("--grpo-batch", type=int, default=10, help="GRPO keypoints per step")
    ap.add_argument("--cache-vision", action="store_true",
                    help="SFT on cached frozen-tower features (float16, as the training stage) instead of "
                         "running the tower every step")
    ap.add_argument("--nondeterministic", action="store_true",
                    help="PyTorch's default kernels (the training loops' default is deterministic)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file (after every phase)")
    ap.add_argument("--meta", action="store_true",
                    help="only print the 7B model's shapes and parameter counts, built on the meta device")
    args = ap.parse_args(argv)
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if args.phase_budget <= 0:
        ap.error("--phase-budget must be > 0")
    for name in ("steps", "batch", "lora_r", "describe_batch", "localize_batch", "max_new_tokens",
                 "grpo_batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.group < 2:
        ap.error("--group must be >= 2 (GRPO's advantages need two samples per group)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("once", category=UserWarning)  # e.g. deterministic mode's cuBLAS note: once
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.meta:
        print(json.dumps(meta_summary(LLAVA_7B, args.lora_r), indent=2), flush=True)
        return 0
    check = run_check(args)
    elapsed = time.perf_counter() - check.start
    if check.failures:
        print(f"gpu_check: FAILED after {elapsed:.0f} s: " + "; ".join(f"{f['phase']}: {f['error']}"
                                                                       for f in check.failures), flush=True)
        return 1
    print(f"gpu_check: OK, {len(check.figures)} figures in {elapsed:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

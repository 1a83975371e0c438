"""Localizer-as-reward GRPO of the Point Descriptor: a small loop of our own (no trl).

One step, for a batch of B keypoints of the training family:

1. sample G descriptions per keypoint from the policy (`sample_completions`: one vision pass per keypoint,
   the LM's generate with num_return_sequences = G, temperature / top_p from the config, top_k off);
2. the frozen localizer (any `Locate` function) reads every text and places a point; reward = −MSE to the
   keypoint (`grpo.localization_rewards`); advantages normalised within each group (`grpo.group_advantages`);
3. log-probs of the sampled tokens under the policy (with gradient) and the reference (without);
4. loss = `grpo.grpo_loss` (policy term + β · k3 KL), backward, gradient clipping, one AdamW step.

The policy and the reference (`prepare_policy` turns a loaded SFT descriptor into the policy, in place):

* The SFT LM becomes a plain transformers LM first: an SFT LoRA (the paper's setting) is merged into its
  weights (peft merge_and_unload); a fully fine-tuned or frozen LM is taken as it is.
* trainable `lora` and `lora+last_blocks` add *fresh* LoRA adapters (`GRPOTrainConfig.lora`) on top of that
  LM with peft. Their B matrices start at zero, so the policy starts equal to the SFT descriptor. With the
  tiny default (the SFT LM fully fine-tuned) this is what "lora" means: new adapters on the fine-tuned LM.
* `last_blocks` and `lora+last_blocks` also train the base weights of the LM's last `n_last_blocks` decoder
  blocks; `full` trains every weight of the descriptor (no adapters).
* The reference is the SFT descriptor: the same model with the adapters disabled (peft `disable_adapter`) and,
  where base weights train, those weights swapped for a frozen copy taken before training
  (`torch.func.functional_call`). So only the trained base weights are held twice (all of them under `full`).

The model stays in eval mode throughout (no dropout, BatchNorm statistics fixed): sampling, the policy's
log-probs and the reference's differ only by their weights, and the KL is exactly 0 before the first step.
Sampling never emits the prompt's placeholder tokens (<image>, <kpt>, <region>), which the descriptor's
embedding would try to fill with features.

Saving (`export_descriptor`): the adapters are merged into the LM and the descriptor gets lm_adaptation
`full`, so `save_pretrained` writes the whole LM and `PointDescriptor.from_pretrained` loads the result like
any descriptor.

Resume: every `checkpoint_every` steps the trainable weights, the optimiser state and the step are written
(a step-N folder, then state.json pointing at it, renamed into place; older folders removed after). A step's
keypoints and its sampling RNG depend only on (seed, step), so a resumed run replays the same steps and ends
at the same step count.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from torch import nn
from torch.func import functional_call

from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.models.adaptation import LmAdaptation, adapt_lm, decoder_of
from talking_points.pipeline.models.descriptor import PointDescriptor
from talking_points.pipeline.models.inference import localize
from talking_points.pipeline.models.localizer import PointLocalizer
from talking_points.pipeline.models.prompts import PromptFormat, position_ids
from talking_points.pipeline.precision import autocast, check_supported
from talking_points.pipeline.progress import track
from talking_points.pipeline.rl.config import GRPOTrainConfig
from talking_points.pipeline.rl.grpo import (
    Trainable,
    group_advantages,
    grpo_loss,
    localization_rewards,
    token_logprobs,
)
from talking_points.pipeline.training.checkpoints import StepCheckpoint
from talking_points.pipeline.training.data import PointSamples
from talking_points.pipeline.training.loop import EpochSampler, torch_kernels
from talking_points.pipeline.training.metric_log import MetricLog

__all__ = [
    "Completions",
    "GRPOResult",
    "Locate",
    "Policy",
    "completion_inputs",
    "export_descriptor",
    "grpo_step",
    "localizer_locate",
    "policy_logprobs",
    "prepare_policy",
    "reference_logprobs",
    "sample_completions",
    "step_rows",
    "step_seed",
    "total_steps",
    "train_grpo",
]

Locate = Callable[[np.ndarray, list[str]], np.ndarray]
"""(prompt row of every text (N,), texts) -> the frozen localizer's normalised points (N, 2)."""


def localizer_locate(localizer: PointLocalizer, tokenizer, prompts: PointSamples, batch_size: int) -> Locate:
    """The frozen `localizer` as a `Locate` over the rows of `prompts` (images at the localizer's size).

    The localizer is put in eval mode with every weight frozen; it reads the texts as `inference.localize`
    does (the tower once per distinct image: the G texts of a keypoint share it), under the caller's autocast.
    """
    localizer.eval()
    localizer.requires_grad_(False)

    def locate(rows: np.ndarray, texts: list[str]) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, 2), np.float32)
        images = np.stack([prompts[int(r)]["image"].numpy() for r in rows])
        return localize(localizer, tokenizer, images, list(texts), batch_size)

    return locate


# ------------------------------------------------------------------------------------ policy and reference


def _is_adapter(name: str) -> bool:
    """A peft adapter weight (LoRA matrices, or the trained copy of a modules_to_save module)."""
    return "lora_" in name or ".modules_to_save." in name


@dataclass
class Policy:
    """The descriptor being trained and what is needed to evaluate its SFT reference."""

    model: PointDescriptor
    trainable: dict[str, nn.Parameter]  # name -> parameter, in a fixed order (the optimiser's)
    frozen: dict[str, torch.Tensor]  # SFT values of the trained base (non-adapter) weights
    has_adapters: bool

    def reference(self):
        """Context in which the model computes the reference: adapters disabled (frozen weights: see
        `reference_logprobs`)."""
        lm = self.model.vlm.lm
        return lm.disable_adapter() if self.has_adapters and isinstance(lm, PeftModel) else nullcontext()


def prepare_policy(model: PointDescriptor, cfg: GRPOTrainConfig) -> Policy:
    """Make a loaded SFT descriptor the GRPO policy in place (see the module doc) and return it.

    Raises ValueError when n_last_blocks exceeds the LM's decoder blocks.
    """
    lm = model.vlm.lm
    if isinstance(lm, PeftModel):  # SFT LoRA: fold it into the weights, the SFT descriptor is then a plain LM
        lm = lm.merge_and_unload()
    model.cfg = model.cfg.model_copy(update={"lm_adaptation": LmAdaptation.full})
    mode = cfg.trainable
    adapters = mode in (Trainable.lora, Trainable.lora_last_blocks)
    blocks = mode in (Trainable.last_blocks, Trainable.lora_last_blocks)
    if adapters:
        lm = adapt_lm(lm, LmAdaptation.lora, cfg.lora)
    elif mode not in (Trainable.last_blocks, Trainable.full):
        raise ValueError(f"unknown trainable set {mode!r}")
    model.vlm.lm = lm
    model.requires_grad_(False)
    block_params: set[int] = set()
    if blocks:
        layers = decoder_of(lm).layers
        if cfg.n_last_blocks > len(layers):
            raise ValueError(f"n_last_blocks {cfg.n_last_blocks} exceeds the LM's {len(layers)} decoder "
                             "blocks")
        block_params = {id(p) for p in layers[len(layers) - cfg.n_last_blocks :].parameters()}

    def selected(name: str, p: nn.Parameter) -> bool:
        if mode is Trainable.full:
            return True
        return adapters if _is_adapter(name) else id(p) in block_params

    trainable = {name: p for name, p in model.named_parameters() if selected(name, p)}
    for p in trainable.values():
        p.requires_grad_(True)
    if not trainable:
        raise ValueError(f"trainable {mode.value!r} selects no weights of the descriptor")
    frozen = {n: p.detach().clone() for n, p in trainable.items() if not _is_adapter(n)}
    model.eval()
    return Policy(model=model, trainable=trainable, frozen=frozen, has_adapters=adapters)


def export_descriptor(policy: Policy) -> PointDescriptor:
    """The policy as a plain descriptor (adapters merged into the LM, lm_adaptation full), ready for
    `save_pretrained`. The policy must not be trained further afterwards."""
    model = policy.model
    if isinstance(model.vlm.lm, PeftModel):
        model.vlm.lm = model.vlm.lm.merge_and_unload()
    model.cfg = model.cfg.model_copy(update={"lm_adaptation": LmAdaptation.full})
    model.requires_grad_(False)
    return model


class _CompletionLogits(nn.Module):
    """Logits predicting each completion token of G completions per prompt.

    The prompt part (image tokens, point features) is embedded once per prompt and repeated for its G
    completions; the completion tokens are embedded as plain tokens. The LM head runs on the completion
    positions only.
    """

    def __init__(self, model: PointDescriptor):
        super().__init__()
        self.model = model

    def forward(self, images, points, prefix_ids, tokens, mask) -> torch.Tensor:
        b, n, t = len(points), tokens.shape[0], tokens.shape[1]
        if n % b:
            raise ValueError(f"{n} completions do not split into groups over {b} prompts")
        head = self.model.embed_prompt(images, points, prefix_ids).repeat_interleave(n // b, dim=0)
        tail = self.model.vlm.lm.get_input_embeddings()(tokens).to(head.dtype)
        ones = torch.ones(n, head.shape[1], dtype=mask.dtype, device=mask.device)
        attention = torch.cat([ones, mask], dim=1)
        out = self.model.vlm.lm(inputs_embeds=torch.cat([head, tail], dim=1), attention_mask=attention,
                                position_ids=position_ids(attention), logits_to_keep=t + 1)
        return out.logits[:, :-1]


def _prefix_ids(prefix: list[int], n: int, device: torch.device) -> torch.Tensor:
    return torch.tensor(prefix, dtype=torch.long, device=device).expand(n, -1)


def policy_logprobs(policy: Policy, prefix: list[int], images: torch.Tensor, points: torch.Tensor,
                    tokens: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """log π_θ of every completion token, (N, T) with gradient, for B prompts (descriptor prompt `prefix`,
    images (B, 3, H, W), points (B, 2)) and their N = B · G completions `tokens` (N, T) with `mask`."""
    ids = _prefix_ids(prefix, len(points), tokens.device)
    logits = _CompletionLogits(policy.model)(images, points, ids, tokens, mask)
    return token_logprobs(logits, tokens, temperature)


@torch.no_grad()
def reference_logprobs(policy: Policy, prefix: list[int], images: torch.Tensor, points: torch.Tensor,
                       tokens: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """log π_ref (the SFT descriptor) of every completion token, (N, T), no gradient (arguments as
    `policy_logprobs`)."""
    scorer = _CompletionLogits(policy.model)
    args = (images, points, _prefix_ids(prefix, len(points), tokens.device), tokens, mask)
    with policy.reference():
        if policy.frozen:
            logits = functional_call(scorer, {f"model.{n}": v for n, v in policy.frozen.items()}, args)
        else:
            logits = scorer(*args)
    return token_logprobs(logits, tokens, temperature)


# ------------------------------------------------------------------------------------------------ sampling


@dataclass
class Completions:
    tokens: torch.Tensor  # (N, T) sampled ids, prompt-major groups; pad after the first EOS
    mask: torch.Tensor  # (N, T) 1 up to and including the first EOS (all 1 for a row cut at max_new_tokens)
    texts: list[str]  # decoded valid tokens, special tokens dropped, stripped


def _valid_mask(tokens: torch.Tensor, eos: int) -> torch.Tensor:
    is_eos = (tokens == eos).long()
    return ((is_eos.cumsum(dim=1) - is_eos) == 0).long()


@torch.no_grad()
def sample_completions(model: PointDescriptor, fmt: PromptFormat, tokenizer, images: torch.Tensor,
                       points: torch.Tensor, cfg: GRPOTrainConfig) -> Completions:
    """G = cfg.group_size sampled descriptions of each of the B points: (B * G) rows, prompt-major."""
    b = fmt.descriptor_batch(None, len(points), padding_side="left")
    c = model.vlm.config
    device = images.device
    tokens = model.generate(
        images, points, b.input_ids.to(device), b.attention_mask.to(device),
        do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
        max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.group_size,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        suppress_tokens=[c.image_token_id, c.kpt_token_id, c.region_token_id],
    )
    mask = _valid_mask(tokens, tokenizer.eos_token_id)
    texts = [tokenizer.decode(row[m.bool()].tolist(), skip_special_tokens=True).strip()
             for row, m in zip(tokens.cpu(), mask.cpu(), strict=True)]
    return Completions(tokens=tokens, mask=mask, texts=texts)


def completion_inputs(prefix: list[int], tokens: torch.Tensor,
                      mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of descriptor prompt + completion rows, as the descriptor's own forward
    takes them (the prompt is the same for all rows)."""
    n = tokens.shape[0]
    head = torch.tensor(prefix, dtype=tokens.dtype, device=tokens.device).expand(n, -1)
    ids = torch.cat([head, tokens], dim=1)
    attention = torch.cat([torch.ones_like(head), mask.to(tokens.dtype)], dim=1)
    return ids, attention


# ---------------------------------------------------------------------------------------------------- step


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of one step: a function of (seed, step) only."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def step_rows(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Prompt rows of `step`: epoch-wise permutations seeded by (seed, epoch) (`EpochSampler`), in batches."""
    sampler = EpochSampler(n, seed, batch_size)
    epoch, k = divmod(step, sampler.batches_per_epoch)
    sampler.set_epoch(epoch)
    return list(sampler)[k * batch_size : (k + 1) * batch_size]


def grpo_step(policy: Policy, fmt: PromptFormat, tokenizer, images: torch.Tensor, points: torch.Tensor,
              rows: np.ndarray, locate: Locate, cfg: GRPOTrainConfig,
              optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """One GRPO update on B prompts (images (B, 3, H, W) uint8, points (B, 2)); returns its metrics."""
    g = cfg.group_size
    forward = partial(autocast, cfg.mixed_precision, images.device)  # the forward passes (not backward)
    with forward():
        comp = sample_completions(policy.model, fmt, tokenizer, images, points, cfg)
        pred = torch.as_tensor(np.asarray(locate(np.repeat(rows, g), comp.texts), np.float32))
    rewards = localization_rewards(pred, points.detach().cpu().float().repeat_interleave(g, dim=0))
    adv = group_advantages(rewards, g, cfg.eps, cfg.adv_clip).to(images.device)
    prefix = fmt.descriptor_prefix()
    micro = -(-len(points) // cfg.grad_accum)  # prompts per forward/backward pass
    n_seq = len(comp.texts)
    totals = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0}
    for start in range(0, len(points), micro):
        seq = slice(start * g, min(start + micro, len(points)) * g)
        mask = comp.mask[seq]
        t = int(mask.sum(dim=1).max())
        tokens, mask = comp.tokens[seq, :t], mask[:, :t]
        prompts = slice(start, start + micro)
        args = (prefix, images[prompts], points[prompts], tokens, mask, cfg.temperature)
        with forward():
            ref = reference_logprobs(policy, *args)
            logps = policy_logprobs(policy, *args)
            out = grpo_loss(logps, ref, adv[seq], mask, cfg.beta, cfg.kl_clamp)
        share = tokens.shape[0] / n_seq
        (out.total * share).backward()
        for k, v in (("loss", out.total), ("policy_loss", out.policy), ("kl", out.kl)):
            totals[k] += float(v.detach()) * share
    params = list(policy.trainable.values())
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    lengths = comp.mask.sum(dim=1).float()
    groups = rewards.reshape(-1, g)
    return {
        **totals,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "reward_group_std": float(groups.std(dim=1).mean()),
        "length_tokens": float(lengths.mean()),
        "length_words": float(np.mean([len(t.split()) for t in comp.texts])),
        "finished": float((comp.tokens == tokenizer.eos_token_id).any(dim=1).float().mean()),
        "grad_norm": float(grad_norm),
    }


# ---------------------------------------------------------------------------------------------------- loop


@dataclass
class GRPOResult:
    steps: int
    total_steps: int
    resumed_from: int
    history: list[dict[str, float]] = field(default_factory=list)


def _write_state(policy: Policy, optimizer: torch.optim.Optimizer) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        save_file({n: p.detach().cpu().contiguous() for n, p in policy.trainable.items()},
                  str(folder / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")

    return write


def _read_state(folder: Path, policy: Policy, optimizer: torch.optim.Optimizer) -> None:
    weights = load_file(str(folder / "trainable.safetensors"))
    if set(weights) != set(policy.trainable):
        raise ValueError(f"{folder}: checkpoint weights do not match the trainable set")
    with torch.no_grad():
        for n, p in policy.trainable.items():
            p.copy_(weights[n])
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True,
                                         map_location=next(iter(policy.trainable.values())).device))


def _batch(prompts: PointSamples, rows: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    items = [prompts[i] for i in rows]
    images = torch.stack([it["image"] for it in items]).to(device)
    points = torch.stack([it["point"] for it in items]).to(device)
    return images, points


def total_steps(n_prompts: int, cfg: GRPOTrainConfig) -> int:
    """Steps of a run over `n_prompts` keypoints: max_steps, else epochs × whole batches per epoch."""
    per_epoch = n_prompts // cfg.batch_size
    if per_epoch == 0:
        raise ValueError(f"{n_prompts} training keypoints are fewer than one batch of {cfg.batch_size}")
    return cfg.max_steps or cfg.epochs * per_epoch


def train_grpo(
    policy: Policy,
    tokenizer,
    fmt: PromptFormat,
    prompts: PointSamples,
    locate: Locate,
    cfg: GRPOTrainConfig,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    description: str = "grpo",
    fingerprint: str = "",
) -> GRPOResult:
    """Train `policy` in place on `prompts` (image + normalised keypoint rows) with rewards from `locate`.

    Resumes from `checkpoint_dir` when it holds a checkpoint of the same run: `fingerprint` (the caller's
    digest of the data, the SFT descriptor and the reward model), the config, the step plan and the
    trainable set; a checkpoint of another run is discarded (training.checkpoints).
    """
    with torch_kernels(cfg):
        return _train_grpo(policy, tokenizer, fmt, prompts, locate, cfg, checkpoint_dir, live_dir, description,
                           fingerprint)


def _train_grpo(policy, tokenizer, fmt, prompts, locate, cfg, checkpoint_dir, live_dir, description,
                fingerprint) -> GRPOResult:
    total = total_steps(len(prompts), cfg)
    device = next(policy.model.parameters()).device
    check_supported(cfg.mixed_precision, device)
    optimizer = torch.optim.AdamW(list(policy.trainable.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = StepCheckpoint(checkpoint_dir, digest(fingerprint, cfg, total, sorted(policy.trainable)))
    resume = ckpt.restore()
    resumed_from = 0
    if resume is not None:
        _read_state(resume.folder, policy, optimizer)
        resumed_from = resume.step
    log = MetricLog(live_dir, resume.history if resume else None)
    policy.model.eval()
    for step in track(range(resumed_from, total), description, total=total - resumed_from, unit="step"):
        rows = step_rows(len(prompts), cfg.batch_size, cfg.seed, step)
        images, points = _batch(prompts, rows, device)
        torch.manual_seed(step_seed(cfg.seed, step))
        metrics = grpo_step(policy, fmt, tokenizer, images, points, np.asarray(rows), locate, cfg, optimizer)
        log.add(metrics)
        log.end_step()
        done = step + 1
        if done % cfg.log_every == 0 or done == total:
            log.flush(done)
        if done % cfg.checkpoint_every == 0 and done < total:
            ckpt.save(done, _write_state(policy, optimizer), log.history)
    log.end()
    return GRPOResult(steps=total, total_steps=total, resumed_from=resumed_from, history=log.history)

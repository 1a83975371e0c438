"""One training loop for every SFT stage, on top of accelerate (single process, torchrun/accelerate DDP).

* deterministic: the row order of epoch e is a permutation seeded by (seed, e), sharded across processes;
* resumable: every `checkpoint_every` steps `accelerator.save_state` writes model, optimiser, scheduler and
  RNG states into a `training.checkpoints.StepCheckpoint` (with the run's fingerprint and metric history); a
  rerun of the same run resumes there and ends at the same step count, a changed run starts over;
* observable: a progress bar, and dvclive metrics every `log_every` steps (main process only);
* mixed precision: the step function's forward pass runs under `precision.autocast(cfg.mixed_precision)`
  (explicitly, not through accelerate's forward patching, so the trained model's forward is left as it was).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device, set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from talking_points.pipeline.fingerprints import digest
from talking_points.pipeline.precision import autocast, check_supported, resolve
from talking_points.pipeline.progress import track
from talking_points.pipeline.training.checkpoints import StepCheckpoint
from talking_points.pipeline.training.config import OptimiserConfig, TrainConfig
from talking_points.pipeline.training.metric_log import MetricLog

__all__ = ["EpochSampler", "FitResult", "fit", "length_grouped", "param_groups", "StepFn", "torch_kernels"]

StepFn = Callable[[nn.Module, dict], tuple[torch.Tensor, dict[str, float]]]


#: batches per run of rows sorted by length (`length_grouped`; transformers' LengthGroupedSampler uses 50)
MEGABATCH = 50


def length_grouped(perm: torch.Tensor, lengths: torch.Tensor, batch: int, generator: torch.Generator
                   ) -> torch.Tensor:
    """`perm` reordered so that each run of `batch` rows holds rows of similar `lengths`: every MEGABATCH
    batches of it sorted longest first, cut into batches, and the batches shuffled by `generator`."""
    mega = batch * MEGABATCH
    batches = []
    for chunk in perm.split(mega):
        chunk = chunk[torch.argsort(lengths[chunk], descending=True, stable=True)]
        batches += list(chunk.split(batch))
    order = torch.randperm(len(batches), generator=generator)
    return torch.cat([batches[i] for i in order.tolist()])


class EpochSampler(Sampler[int]):
    """Rows of epoch `e` in a permutation seeded by (seed, e); process `rank` of `world` gets every world-th
    row of it. Only whole per-process batches are yielded (the remainder of an epoch is dropped). With
    `lengths` (one per row) the permutation is `length_grouped` into batches of batch_size x world rows, so
    that every process's micro-batch of a step holds rows of similar length."""

    def __init__(self, n: int, seed: int, batch_size: int, rank: int = 0, world: int = 1,
                 lengths: list[int] | None = None):
        self.n, self.seed, self.batch_size, self.rank, self.world = n, seed, batch_size, rank, world
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"{len(lengths)} lengths for {n} rows")
        self.lengths = None if lengths is None else torch.as_tensor(lengths)
        self.epoch = 0
        self.batches_per_epoch = n // (batch_size * world)
        if self.batches_per_epoch == 0:
            raise ValueError(f"{n} rows are fewer than one batch of {batch_size} x {world} process(es)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)[: self.batches_per_epoch * self.batch_size * self.world]
        if self.lengths is not None:
            perm = length_grouped(perm, self.lengths, self.batch_size * self.world, g)
        return iter(perm[self.rank :: self.world].tolist())


@dataclass
class FitResult:
    steps: int
    total_steps: int
    resumed_from: int
    history: list[dict[str, float]] = field(default_factory=list)
    precision: str = "fp32"  # what cfg.mixed_precision resolved to on the device (`precision.resolve`)


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


@contextmanager
def torch_kernels(cfg: OptimiserConfig) -> Iterator[None]:
    """Run the block with the config's CPU threads and (`deterministic`) PyTorch's deterministic kernels;
    the process's previous settings come back afterwards."""
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)  # an op without one warns, not fails
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def param_groups(model: nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict]:
    """The trainable parameters as optimiser groups: those whose names start with a prefix of `multipliers` at
    lr times its multiplier (the first prefix that matches), the rest at lr. Errors for a model with nothing to
    train and for a prefix that matches no trainable parameter (a typo would silently train at lr)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    groups: dict[str | None, list] = {None: [], **{prefix: [] for prefix in multipliers}}
    for name, p in named:
        groups[next((prefix for prefix in multipliers if name.startswith(prefix)), None)].append(p)
    if empty := [prefix for prefix in multipliers if not groups[prefix]]:
        raise ValueError(f"lr_multipliers {empty}: no trainable parameter's name starts with it (trainable: "
                         f"{sorted({n.split('.')[0] for n, _ in named})})")
    return [{"params": ps, "lr": lr * (multipliers[prefix] if prefix is not None else 1.0)}
            for prefix, ps in groups.items() if ps]


def fit(
    model: nn.Module,
    step_fn: StepFn,
    dataset: Dataset,
    collate: Callable[[list], dict],
    cfg: TrainConfig,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    description: str = "train",
    accelerator: Accelerator | None = None,
    fingerprint: str = "",
    lengths: list[int] | None = None,
) -> FitResult:
    """Train `model` in place; returns the step count and the logged metric history.

    Resumes from the checkpoint in `checkpoint_dir` if it is of the same run: `fingerprint` (the caller's
    digest of what the config does not hold: data, starting weights), the config and the step plan.
    `lengths`: every row's text length, which `cfg.group_by_length` needs."""
    if cfg.group_by_length and lengths is None:
        raise ValueError("group_by_length needs the rows' text lengths (fit(..., lengths=...))")
    with torch_kernels(cfg):
        return _fit(model, step_fn, dataset, collate, cfg, checkpoint_dir, live_dir, description, accelerator,
                    fingerprint, lengths if cfg.group_by_length else None)


def _fit(model, step_fn, dataset, collate, cfg, checkpoint_dir, live_dir, description, accelerator,
         fingerprint, lengths) -> FitResult:
    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=cfg.grad_accum)
    precision = resolve(cfg.mixed_precision, acc.device)  # once: `auto` asks the device
    check_supported(precision, acc.device)
    set_seed(cfg.seed)
    world, rank = acc.num_processes, acc.process_index
    if cfg.batch_size % (cfg.grad_accum * world):
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by grad_accum x processes = "
                         f"{cfg.grad_accum} x {world}")
    micro = cfg.batch_size // (cfg.grad_accum * world)
    sampler = EpochSampler(len(dataset), cfg.seed, micro, rank, world, lengths)
    loader = DataLoader(dataset, batch_size=micro, sampler=sampler, collate_fn=collate, drop_last=True)
    steps_per_epoch = sampler.batches_per_epoch // cfg.grad_accum
    if steps_per_epoch == 0:
        raise ValueError("fewer rows than one optimiser step; lower batch_size or grad_accum")
    total = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))

    groups = param_groups(model, cfg.lr, cfg.lr_multipliers)
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total, int(cfg.warmup_ratio * total)))
    # the scheduler is stepped by hand once per optimiser step (accelerate's wrapper would step it once per
    # process under DDP)
    model, optimizer = acc.prepare(model, optimizer)

    ckpt = StepCheckpoint(checkpoint_dir, digest(fingerprint, cfg, total, world))
    resume = ckpt.restore()
    step = 0
    if resume is not None:
        acc.load_state(str(resume.folder))
        step = resume.step
        scheduler.load_state_dict(resume.extra["scheduler"])
    resumed_from = step

    log = MetricLog(live_dir if acc.is_main_process else None, resume.history if resume else None)

    def batches() -> Iterator[dict]:
        epoch, skip = divmod(step * cfg.grad_accum, sampler.batches_per_epoch)
        while True:
            sampler.set_epoch(epoch)
            for i, batch in enumerate(loader):
                if i >= skip:
                    yield batch
            epoch, skip = epoch + 1, 0

    model.train()
    stream = batches()
    for step in track(range(step, total), description, total=total - step, unit="step"):
        for _ in range(cfg.grad_accum):
            batch = send_to_device(next(stream), acc.device)
            with acc.accumulate(model):
                with autocast(precision, acc.device):  # the forward pass; backward outside autocast
                    loss, metrics = step_fn(model, batch)
                acc.backward(loss)
                if cfg.grad_clip and acc.sync_gradients:
                    acc.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            if acc.sync_gradients:
                scheduler.step()
            log.add({"loss": float(loss.detach()), **metrics}, 1 / cfg.grad_accum)
        log.end_step()
        done = step + 1
        if done % cfg.log_every == 0 or done == total:
            log.flush(done, {"lr": scheduler.get_last_lr()[0]})
        if done % cfg.checkpoint_every == 0 and done < total:
            ckpt.save(done, lambda folder: acc.save_state(str(folder)), log.history,
                      {"scheduler": scheduler.state_dict()}, acc.is_main_process, acc.wait_for_everyone)
    log.end()
    acc.wait_for_everyone()
    return FitResult(steps=total, total_steps=total, resumed_from=resumed_from, history=log.history,
                     precision=precision.value)

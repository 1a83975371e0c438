"""Step checkpoints of a resumable run (SFT, dense pretraining, GRPO): one folder per run holding `step-<n>/`
and `state.json`, which names the latest complete step folder together with

* the run's **fingerprint**: a digest of everything that determines the run (its params, the total step count,
  the training data, the weights it starts from). A checkpoint whose fingerprint differs from this run's is
  discarded with a warning, never resumed: a changed `lr` starts over instead of silently finishing the old
  run.
* the **metric history** up to that step, so a resumed run's curves start at step 0 even when DVC removed
  the dvclive folder before rerunning the stage (`MetricLog(history=...)` replays it).

Writes are ordered so that a crash at any moment leaves `state.json` naming a complete checkpoint: the step
folder first, then state.json by atomic rename, then the older step folders are removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Resume", "StepCheckpoint", "checkpoint_for", "sweep_finished"]

log = logging.getLogger(__name__)


def checkpoint_for(out: str | os.PathLike) -> Path:
    """The checkpoint folder of the run writing `out`: `<out>.ckpt` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def sweep_finished(root: str | os.PathLike = "models") -> list[Path]:
    """Remove every `<name>.ckpt` under `root` whose output `<name>` is there: a stage's outputs exist only
    once it has finished (DVC deletes them before running it), so such a checkpoint is left over, e.g. from
    a killed run whose stage DVC later restored from its run cache instead of running it. Returns the removed
    folders."""
    root = Path(root)
    removed = []
    for ckpt in sorted(root.glob("*.ckpt")) if root.is_dir() else []:
        out = ckpt.with_name(ckpt.name.removesuffix(".ckpt"))
        if ckpt.is_dir() and out.is_dir() and any(out.iterdir()):
            shutil.rmtree(ckpt, ignore_errors=True)
            log.info("removed %s: %s is finished", ckpt, out)
            removed.append(ckpt)
    return removed


@dataclass
class Resume:
    """What a checkpoint gives back: the step it was written at, its step folder, the metric history up to
    then and any extra state the loop stored (e.g. a scheduler's state)."""

    step: int
    folder: Path
    history: list[dict[str, float]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class StepCheckpoint:
    """The checkpoint folder of one run with this `fingerprint` (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, fingerprint: str):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self._state = self.folder / "state.json"

    def restore(self) -> Resume | None:
        """The checkpoint to resume from, or None (none there, unreadable, or of another run: discarded)."""
        if not self._state.exists():
            return None
        try:
            state = json.loads(self._state.read_text())
            step, name = int(state["step"]), str(state["dir"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s: unreadable checkpoint state (%s); starting over", self._state, err)
            self.discard()
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s: the checkpoint at step %d is of another run (params, data or starting weights "
                        "changed since it was written); discarding it and starting over", self.folder, step)
            self.discard()
            return None
        folder = self.folder / name
        if not folder.is_dir() or Path(name).name != name:
            log.warning("%s: state.json names a missing step folder %r; starting over", self.folder, name)
            self.discard()
            return None
        return Resume(step=step, folder=folder, history=list(state.get("history", [])),
                      extra=dict(state.get("extra", {})))

    def save(self, step: int, write: Callable[[Path], None], history: list[dict[str, float]],
             extra: dict | None = None, main: bool = True, barrier: Callable[[], None] = lambda: None) -> None:
        """Write step `step`: `write(folder)` fills the step folder (called on every process: accelerate's
        save_state is collective), then the main process points state.json at it and drops older folders."""
        name = f"step-{step:07d}"
        folder = self.folder / name
        barrier()
        if main:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        barrier()
        write(folder)
        barrier()
        if main:
            state = {"step": step, "dir": name, "fingerprint": self.fingerprint, "history": history,
                     "extra": extra or {}}
            tmp = self.folder / "state.json.tmp"
            tmp.write_text(json.dumps(state))
            tmp.replace(self._state)
            for old in self.folder.glob("step-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
        barrier()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

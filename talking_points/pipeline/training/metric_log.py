"""Running means of per-step metrics, flushed every few steps into a history list and (optionally) dvclive.

A resumed run passes the history stored with its checkpoint: the dvclive folder is rewritten from it, so the
curves start at step 0 whatever dvclive left on disk (DVC removes a stage's outputs before rerunning it, and a
kill can leave dvclive's json half-written)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MetricLog"]


class MetricLog:
    """Sums metrics over optimiser steps; `flush(step)` records their means at `step` and starts over."""

    def __init__(self, live_dir: str | Path | None, history: list[dict[str, float]] | None = None):
        self.live = None
        if live_dir is not None:
            from dvclive import Live

            self.live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None)
        self.history: list[dict[str, float]] = []
        for point in history or []:
            self._record(dict(point))
        self._sums: dict[str, float] = {}
        self._steps = 0

    def _record(self, point: dict[str, float]) -> None:
        self.history.append(point)
        if self.live is not None:
            self.live.step = int(point["step"])
            for k, v in point.items():
                if k != "step":
                    self.live.log_metric(k, v)
            self.live.next_step()

    def add(self, metrics: dict[str, float], weight: float = 1.0) -> None:
        """Add `weight` x each metric to the running sums (several calls may make up one step)."""
        for k, v in metrics.items():
            self._sums[k] = self._sums.get(k, 0.0) + weight * v

    def end_step(self) -> None:
        self._steps += 1

    def flush(self, step: int, extra: dict[str, float] | None = None) -> None:
        point = {k: v / self._steps for k, v in self._sums.items()}
        point.update(extra or {})
        self._record({"step": step, **point})
        self._sums, self._steps = {}, 0

    def end(self) -> None:
        if self.live is not None:
            self.live.end()

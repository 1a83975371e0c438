"""Process pools for the per-image stages.

Pools start their workers with `spawn`, not `fork`: a forked child inherits the parent's OpenCV / torch
thread pools with their locks possibly held, and then hangs on its first call into them (seen with SIFT
after the parent had run OpenCV). Spawned workers import the package fresh, which costs about a second
once per run.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

__all__ = ["process_pool"]


def process_pool(workers: int, initializer: Callable[[], None] | None = None) -> ProcessPoolExecutor:
    """A `ProcessPoolExecutor` of `workers` spawned processes."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=initializer
    )

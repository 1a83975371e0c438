"""Shared test set-up: offline, quiet, and the real dataset samples in ../shared/fixtures when present."""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TP_NO_PROGRESS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the frozen towers' feature cache (models.feature_store) in a folder of this test session, never ~/.cache
_FEATURE_CACHE = tempfile.TemporaryDirectory(prefix="tp-feature-cache-")
atexit.register(_FEATURE_CACHE.cleanup)
os.environ["TP_FEATURE_CACHE"] = _FEATURE_CACHE.name

import torch  # noqa: E402

# The tests' models are tiny: one thread is faster than two for their small matrices, and on a shared 2-core
# machine two spinning threads per process slow everything down many times over.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("TP_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """Folder of real dataset samples (AP-10K, Pascal-Part .mat, ADE20K, Animal-Pose); skip if absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real dataset samples not found at {SHARED_FIXTURES} (set TP_SHARED_FIXTURES)")
    return SHARED_FIXTURES

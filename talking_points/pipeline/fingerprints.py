"""Content digests that say whether a stored result still holds: of params (pydantic models), files and
folders (their bytes). Used by the step checkpoints of training runs and the resume stores of row-wise work."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import BaseModel

__all__ = ["digest", "path_digest"]


def _jsonable(part):
    if isinstance(part, BaseModel):
        return part.model_dump(mode="json")
    if isinstance(part, os.PathLike):
        return path_digest(part)
    return part


def digest(*parts) -> str:
    """sha256 over the JSON of `parts` (pydantic models are dumped, paths replaced by their content digest)."""
    text = json.dumps([_jsonable(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def path_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, or of a folder's relative paths and file digests (sorted); '' if absent."""
    path = Path(path)
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return digest([[str(p.relative_to(path)), path_digest(p)] for p in files])
    return ""

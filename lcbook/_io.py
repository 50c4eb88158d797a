"""Atomic file writes: a crash never leaves a half-written checkpoint, result or export."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def checkpoint_path(checkpoint) -> Path:
    """``checkpoint`` as a ``Path`` whose folder exists; ``ValueError`` if it is a folder or its
    folder cannot be made (checked before any work, so nothing is trained for a bad path)."""
    checkpoint = Path(checkpoint)
    if checkpoint.exists() and not checkpoint.is_file():
        raise ValueError(f"checkpoint {str(checkpoint)!r} exists and is not a file")
    try:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"checkpoint {str(checkpoint)!r}: cannot create its folder ({e})") from None
    return checkpoint


def _atomic(path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(obj: Any, path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    import torch

    _atomic(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path) -> None:
    """Write ``obj`` as indented JSON (no NaN/inf) to ``path`` atomically."""
    text = json.dumps(obj, indent=2, default=str, allow_nan=False) + "\n"  # fails before any file exists
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(data: bytes, path) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data))

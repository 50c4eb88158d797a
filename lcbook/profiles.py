"""The profile switch: one environment variable, ``LCBOOK_PROFILE``, read only here.

* ``quick`` (default): real data subsets, a few epochs; each chapter runs in minutes on a
  2-core CPU (this is what CI executes);
* ``full``: the paper-scale recipes (full data, hundreds of epochs); meant for a GPU.
"""

from __future__ import annotations

import os
from typing import Any

PROFILES = ("quick", "full")


def profile() -> str:
    """The active profile: ``$LCBOOK_PROFILE`` (``"quick"`` if unset).

    Raises:
        ValueError: if ``LCBOOK_PROFILE`` holds anything but ``quick`` or ``full``.
    """
    p = os.environ.get("LCBOOK_PROFILE", "quick").strip().lower() or "quick"
    if p not in PROFILES:
        raise ValueError(f"LCBOOK_PROFILE must be 'quick' or 'full', got LCBOOK_PROFILE={p!r}")
    return p


def choose(quick: Any, full: Any) -> Any:
    """``quick`` or ``full`` according to :func:`profile`.

    Raises:
        ValueError: as :func:`profile` for a bad ``LCBOOK_PROFILE``.
    """
    return quick if profile() == "quick" else full


def chapter_profile(needs_gpu: bool = True) -> str:
    """The profile a chapter should run: :func:`profile`, except that ``full`` falls back to
    ``quick`` (with a printed note) when the chapter needs a GPU and none is available. The
    fallback sets ``LCBOOK_PROFILE=quick`` for the rest of this process, so that
    :func:`profile`, :func:`choose` and the package agree with the chapter.

    Args:
        needs_gpu: whether the chapter's full-profile work is GPU-scale (training CIFAR nets).

    Returns:
        ``"quick"`` or ``"full"``.

    Raises:
        ValueError: as :func:`profile` for a bad ``LCBOOK_PROFILE``.
    """
    p = profile()
    if p == "full" and needs_gpu:
        import torch  # local: keep this module importable without torch

        if not torch.cuda.is_available():
            print("LCBOOK_PROFILE=full asks for paper-scale runs, but no CUDA GPU is available: "
                  "this chapter runs the quick profile and reads stored results instead.")
            os.environ["LCBOOK_PROFILE"] = "quick"
            return "quick"
    return p

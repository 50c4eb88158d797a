"""The package's settings from the environment, read only here: the profile switch
``LCBOOK_PROFILE`` and the checkpoint folder ``LCBOOK_RUNS_DIR``.

Profiles:

* ``quick`` (default): real data subsets, a few epochs; each chapter runs in minutes on a
  2-core CPU (this is what CI executes);
* ``cpu``: long runs for a CPU, in the background over hours: all 50,000 training images,
  every evaluation on all 10,000 test images, LC schedules long enough that the test error has
  stopped moving (CI never runs them; the chapters read their stored results);
* ``full``: the paper-scale recipes (full data, hundreds of epochs); meant for a GPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROFILES = ("quick", "cpu", "full")


def runs_dir() -> Path:
    """Where unfinished runs keep their checkpoints (LC runs and reference trainings):
    ``$LCBOOK_RUNS_DIR`` if set, else ``<project>/data/runs`` (ignored by git). Point it at a
    folder outside the checkout for long runs, so that a new checkout resumes them."""
    default = Path(__file__).resolve().parent.parent / "data" / "runs"
    return Path(os.environ.get("LCBOOK_RUNS_DIR") or default).expanduser()


def profile() -> str:
    """The active profile: ``$LCBOOK_PROFILE`` (``"quick"`` if unset).

    Raises:
        ValueError: if ``LCBOOK_PROFILE`` holds anything but ``quick``, ``cpu`` or ``full``.
    """
    p = os.environ.get("LCBOOK_PROFILE", "quick").strip().lower() or "quick"
    if p not in PROFILES:
        raise ValueError(f"LCBOOK_PROFILE must be 'quick', 'cpu' or 'full', got LCBOOK_PROFILE={p!r}")
    return p


def choose(profile_name: str, quick: Any, full: Any, cpu: Any = None) -> Any:
    """``quick``, ``cpu`` or ``full`` according to ``profile_name``; the ``cpu`` profile takes
    ``quick``'s value when ``cpu`` is not given (what a chapter computes live stays quick-sized;
    the long runs are read from the store). Chapters pass their ``PROFILE``
    (:func:`chapter_profile`): the profile is read from the environment only by :func:`profile`.

    Raises:
        ValueError: ``profile_name`` is not one of :data:`PROFILES`.
    """
    if profile_name not in PROFILES:
        raise ValueError(f"profile_name must be one of {PROFILES}, got profile_name={profile_name!r}")
    if profile_name == "full":
        return full
    return cpu if profile_name == "cpu" and cpu is not None else quick


def chapter_profile(needs_gpu: bool = True) -> str:
    """The profile a chapter should run: :func:`profile`, except that ``full`` falls back to
    ``quick`` (with a printed note) when the chapter needs a GPU and none is available. A chapter
    calls it once and passes the result to everything that depends on the profile.

    Args:
        needs_gpu: whether the chapter's full-profile work is GPU-scale (training CIFAR nets).

    Returns:
        ``"quick"``, ``"cpu"`` or ``"full"``.

    Raises:
        ValueError: as :func:`profile` for a bad ``LCBOOK_PROFILE``.
    """
    p = profile()
    if p == "full" and needs_gpu:
        import torch  # local: keep this module importable without torch

        if not torch.cuda.is_available():
            print("LCBOOK_PROFILE=full asks for paper-scale runs, but no CUDA GPU is available: "
                  "this chapter runs the quick profile and reads stored results instead.")
            return "quick"
    return p

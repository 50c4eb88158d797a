"""Random-number-generator state in checkpoints: capture, check and restore.

One format for every checkpoint of the package (LC runs and reference training):
``{"torch": CPU generator state (uint8 tensor), "cuda": [one state per GPU] or []}``.
"""

from __future__ import annotations

from typing import Any, Dict

import torch


def rng_state() -> Dict[str, Any]:
    """The global torch RNG state: CPU and, where there are GPUs, every CUDA device."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def is_generator_state(state, device="cpu") -> bool:
    """``True`` if ``state`` is a uint8 tensor that a ``torch.Generator`` on ``device`` accepts as
    its state (so restoring it cannot fail half-way). A CPU generator's state (Mersenne Twister)
    and a CUDA generator's (Philox seed and offset) differ in size, so each is checked on its own
    kind of device; ``False`` for a device that is not available."""
    if not (torch.is_tensor(state) and state.dtype == torch.uint8):
        return False
    try:
        torch.Generator(device=device).set_state(state)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def restore_rng(state: Dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s output (the CUDA states only where the same number of GPUs is
    visible)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)

"""Wall-clock timing shared by the benchmarks: CUDA work is asynchronous, so a timer must wait for
the device before it starts and before it stops."""

from __future__ import annotations

import time
from typing import Any, Callable, Tuple

import torch


def sync(device: torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> Tuple[Any, float]:
    """``(fn(), seconds)``: the call's value and its wall-clock time in seconds, the device's queue
    drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0

"""Quantization C steps.

Adaptive quantization [P2]: the weights take values in a learned codebook
``C = {c_1, …, c_K}``; the C step ``min_{C, Z} Σ_i (w_i − c_{z_i})²`` is 1-D k-means, solved
here by Lloyd's algorithm warm-started from the previous codebook [P2, §4.1].

Storage: ``N·⌈log2 K⌉`` bits of assignments plus ``32·K`` bits of codebook [P2, §5; LC-tk].

References: [P2] Carreira-Perpiñán & Idelbayev, *Model compression as constrained optimization
... Part II: quantization*, arXiv:1707.04319.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .base import FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, check_int


def _work_dtype(w: torch.Tensor) -> torch.dtype:
    """Arithmetic precision of a C step: float64 stays, everything else runs in float32."""
    return torch.float64 if w.dtype == torch.float64 else torch.float32


def assign_nearest(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook value for every entry of ``x``.

    Args:
        x: ``(N,)`` values.
        codebook: ``(K,)`` values sorted ascending.

    Returns:
        ``(N,)`` int64 indices into ``codebook``; ties go to the lower value.
    """
    if codebook.numel() == 1:
        return torch.zeros_like(x, dtype=torch.long)
    mid = (codebook[1:] + codebook[:-1]) / 2
    return torch.bucketize(x, mid, right=False)


def kmeans_1d(
    x: torch.Tensor, k: int, init: Optional[torch.Tensor] = None, max_iter: int = 100
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm for 1-D k-means, in torch on ``x``'s device.

    Each iteration assigns every value to its nearest centroid (a ``bucketize`` against the
    midpoints of the sorted codebook, O(N log K)) and moves each centroid to the mean of its
    values. A centroid whose cluster is empty moves onto the value worst served by the others,
    so the distortion ``Σ (x − c_z)²`` never increases from the initial codebook.

    Args:
        x: ``(N,)`` finite values, N ≥ 1.
        k: number of centroids, ≥ 1. If ``x`` has fewer than ``k`` distinct values, the result
            is those distinct values (zero distortion) and has fewer than ``k`` entries.
        init: ``(k',)`` initial codebook (warm start); if ``None``, the centroids start at the
            (i + ½)/k quantiles of ``x``.
        max_iter: iteration limit; Lloyd stops earlier when no assignment changes.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` sorted centroids with K' ≤ k, and ``(N,)`` int64.
    """
    uniq = torch.unique(x)
    if uniq.numel() <= k:
        return uniq, torch.bucketize(x, uniq)  # exact: every value is its own centroid
    if init is None or init.numel() == 0:
        xs = torch.sort(x).values
        pos = ((torch.arange(k, device=x.device, dtype=x.dtype) + 0.5) * (x.numel() / k)).long()
        c = xs[pos.clamp_(max=x.numel() - 1)]
    else:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
    z = assign_nearest(x, c)
    for _ in range(max_iter):
        sums = torch.zeros_like(c).scatter_add_(0, z, x)
        counts = torch.bincount(z, minlength=c.numel()).to(x.dtype)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
        empty = counts == 0
        if bool(empty.any()):
            # Move each empty centroid onto one of the worst-served values: that value's error
            # drops to 0 and no other value gets worse, so the distortion still decreases.
            err = (x - c[z]) ** 2
            worst = torch.topk(err, int(empty.sum())).indices
            c = c.clone()
            c[empty] = x[worst]
        c = torch.sort(c).values
        z_new = assign_nearest(x, c)
        if torch.equal(z_new, z):
            break
        z = z_new
    return c, z


@dataclass(frozen=True)
class AdaptiveQuantization(Compression):
    """Adaptive quantization with a learned codebook of K values [P2].

    All weights in the task's view (one tensor, or several layers jointly) share one codebook.

    Args:
        k: codebook size K ≥ 1 (K = 2 is 1 bit per weight).
        max_iter: Lloyd iteration limit per C step (≥ 1).

    Θ: ``codebook`` ``(K,)`` in the weight's dtype, sorted; ``assignments`` ``(N,)`` int64;
    ``shape`` the weight's shape (int64).

    Storage: ``N·⌈log2 K⌉ + 32·K`` bits.

    Raises:
        ValueError/TypeError: if ``k`` < 1 or not an int, or ``max_iter`` < 1.
    """

    k: int
    max_iter: int = 100

    def __post_init__(self):
        check_int("k", self.k, 1)
        check_int("max_iter", self.max_iter, 1)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(_work_dtype(w))
        init = theta.get("codebook") if theta else None
        c, z = kmeans_1d(x, self.k, init=init, max_iter=self.max_iter)
        delta = c[z].reshape(w.shape).to(w.dtype)
        return delta, {
            "codebook": c.to(w.dtype),
            "assignments": z,
            "shape": torch.tensor(w.shape, dtype=torch.long),
        }

    def decompress(self, theta: Theta) -> torch.Tensor:
        shape = tuple(int(s) for s in theta["shape"])
        return theta["codebook"][theta["assignments"]].reshape(shape)

    def bits(self, theta: Theta) -> int:
        k = int(theta["codebook"].numel())
        n = int(theta["assignments"].numel())
        return n * ceil_log2(max(k, 1)) + FLOAT_BITS * k

    def describe(self) -> str:
        return f"Q(K={self.k})"

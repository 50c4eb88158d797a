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

    In 1-D every cluster of a sorted codebook is a contiguous run of the sorted values, so after
    one sort each Lloyd iteration needs only O(K log N) work: the cluster boundaries are a
    ``searchsorted`` of the codebook midpoints, the cluster sums differences of a prefix sum
    (float64). The cost is dominated by the sort and one final ``bucketize``: O(N log N).

    Each iteration moves every centroid to the mean of its cluster; a centroid whose cluster is
    empty moves onto the value worst served by the others. The distortion ``Σ (x − c_z)²``
    therefore never increases from the initial codebook. Lloyd stops when no boundary moves
    (a fixed point: every value is at its nearest centroid, every centroid at its cluster's mean).

    Args:
        x: ``(N,)`` finite values, N ≥ 1.
        k: number of centroids, ≥ 1. If ``x`` has at most ``k`` distinct values, the result
            is those distinct values (zero distortion) and may have fewer than ``k`` entries.
        init: ``(k',)`` initial codebook (warm start); if ``None``, the centroids start at the
            (i + ½)/k quantiles of ``x``.
        max_iter: iteration limit.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` sorted centroids with K' ≤ k, and ``(N,)`` int64.

    Source: Lloyd (1982); the warm-started C step of adaptive quantization [P2, §4.1].
    """
    n = x.numel()
    xs = torch.sort(x).values
    distinct = torch.ones(n, dtype=torch.bool, device=x.device)
    distinct[1:] = xs[1:] != xs[:-1]
    if int(distinct.sum()) <= k:
        uniq = xs[distinct]
        return uniq, torch.bucketize(x, uniq)  # exact: every value is its own centroid
    if init is None or init.numel() == 0:
        pos = ((torch.arange(k, device=x.device, dtype=torch.float64) + 0.5) * (n / k)).long()
        c = xs[pos.clamp_(max=n - 1)]
    else:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
    csum = torch.zeros(n + 1, dtype=torch.float64, device=x.device)
    csum[1:] = torch.cumsum(xs.to(torch.float64), 0)
    ends = torch.tensor([n], device=x.device)
    zero = torch.zeros(1, dtype=torch.long, device=x.device)
    bounds = None
    for _ in range(max_iter):
        # Cluster j holds the sorted values in [bounds[j], bounds[j+1]), as assign_nearest does.
        new = torch.cat([zero, torch.searchsorted(xs, (c[1:] + c[:-1]) / 2, right=True), ends])
        if bounds is not None and torch.equal(new, bounds):
            break
        bounds = new
        counts = (bounds[1:] - bounds[:-1]).to(torch.float64)
        sums = csum[bounds[1:]] - csum[bounds[:-1]]
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c.to(torch.float64)).to(x.dtype)
        empty = counts == 0
        if bool(empty.any()):
            # Move each empty centroid onto one of the worst-served values: that value's error
            # drops to 0 and no other value gets worse, so the distortion still decreases.
            err = (xs - torch.repeat_interleave(c, (bounds[1:] - bounds[:-1]))) ** 2
            worst = torch.topk(err, int(empty.sum())).indices
            c = c.clone()
            c[empty] = xs[worst]
        c = torch.sort(c).values
    return c, assign_nearest(x, c)


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

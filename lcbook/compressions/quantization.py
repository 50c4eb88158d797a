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

from .base import FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, check_int, work_dtype


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
        init: ``(k',)`` initial codebook (warm start); if ``None`` or larger than ``k``, the
            centroids start at the (i + ½)/k quantiles of ``x``; if shorter than ``k``, the
            missing centroids are added at the values worst served by it.
        max_iter: iteration limit.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` sorted centroids with K' ≤ k, and ``(N,)`` int64.

    Source: Lloyd (1982); the warm-started C step of adaptive quantization [P2, §4.1].
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int ≥ 1, got k={k!r}")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    check_finite(x, "x")
    n = x.numel()
    if n == 0:
        return x.new_empty(0), torch.zeros(0, dtype=torch.long, device=x.device)
    xs = torch.sort(x).values
    distinct = torch.ones(n, dtype=torch.bool, device=x.device)
    distinct[1:] = xs[1:] != xs[:-1]
    if int(distinct.sum()) <= k:
        uniq = xs[distinct]
        return uniq, torch.bucketize(x, uniq)  # exact: every value is its own centroid
    if init is None or init.numel() == 0 or init.numel() > k:
        pos = ((torch.arange(k, device=x.device, dtype=torch.float64) + 0.5) * (n / k)).long()
        c = xs[pos.clamp_(max=n - 1)]
    else:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
        if c.numel() < k:
            # Too few centroids (e.g. the weights had < k distinct values at the last C step):
            # duplicates of c[0] get empty clusters, which the loop moves to the worst-served values.
            c = torch.cat([c[:1].expand(k - c.numel()), c])
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

    Storage: ``N·⌈log2 K'⌉ + 32·K'`` bits, K' ≤ K the size of the codebook found (smaller than
    K only when the weights have fewer than K distinct values).

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
        x = w.detach().reshape(-1).to(work_dtype(w))
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


def _shape_of(theta: Theta) -> Tuple[int, ...]:
    return tuple(int(s) for s in theta["shape"])


@dataclass(frozen=True)
class ScaledBinarization(Compression):
    """Scaled binarization: every weight is −a or +a, with one learned scale a ≥ 0 [P2, §4.2].

    C step (exact): ``θ_i = a·sign(w_i)`` with ``a = mean |w_i|`` (sign(0) taken as +1).

    Θ: ``scale`` ``(1,)``, ``signs`` ``(N,)`` bool (True for +a), ``shape``.
    Storage: ``N + 32`` bits.
    """

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        a = (x.abs().to(torch.float64).sum() / max(x.numel(), 1)).to(x.dtype)
        pos = x >= 0
        delta = torch.where(pos, a, -a).reshape(w.shape).to(w.dtype)
        return delta, {"scale": a.reshape(1).to(w.dtype), "signs": pos, "shape": torch.tensor(w.shape, dtype=torch.long)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        a = theta["scale"][0]
        return torch.where(theta["signs"], a, -a).reshape(_shape_of(theta))

    def bits(self, theta: Theta) -> int:
        return int(theta["signs"].numel()) + FLOAT_BITS

    def describe(self) -> str:
        return "Q{−a,+a}"


@dataclass(frozen=True)
class ScaledTernarization(Compression):
    """Scaled ternarization: every weight is −a, 0 or +a, with one learned scale a ≥ 0 [P2, §4.2].

    C step (exact, O(N log N)): with |w| sorted in decreasing order, keeping the j largest as
    ±a_j with ``a_j`` the mean of those j magnitudes lowers the error by ``S_j²/j`` (``S_j``
    their sum); the best j maximises it, and the rest become 0.

    Θ: ``scale`` ``(1,)``, ``codes`` ``(N,)`` int8 in {−1, 0, +1}, ``shape``.
    Storage: ``2N + 32`` bits (⌈log2 3⌉ = 2 bits per weight).
    """

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        if x.numel() == 0:
            return w.detach().clone(), {"scale": w.new_zeros(1), "codes": torch.zeros(0, dtype=torch.int8, device=w.device),
                                        "shape": torch.tensor(w.shape, dtype=torch.long)}
        mags, order = torch.sort(x.abs(), descending=True)
        s = torch.cumsum(mags.to(torch.float64), 0)
        j = torch.arange(1, x.numel() + 1, device=x.device, dtype=torch.float64)
        best = int(torch.argmax(s * s / j)) + 1
        a = (s[best - 1] / best).to(x.dtype)
        codes = torch.zeros(x.numel(), dtype=torch.int8, device=x.device)
        keep = order[:best]
        codes[keep] = torch.where(x[keep] >= 0, 1, -1).to(torch.int8)
        if float(a) == 0.0:
            codes.zero_()
        delta = (codes.to(x.dtype) * a).reshape(w.shape).to(w.dtype)
        return delta, {"scale": a.reshape(1).to(w.dtype), "codes": codes, "shape": torch.tensor(w.shape, dtype=torch.long)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        return (theta["codes"].to(theta["scale"].dtype) * theta["scale"][0]).reshape(_shape_of(theta))

    def bits(self, theta: Theta) -> int:
        return 2 * int(theta["codes"].numel()) + FLOAT_BITS

    def describe(self) -> str:
        return "Q{−a,0,+a}"


@dataclass(frozen=True)
class FixedCodebook(Compression):
    """Quantization to a fixed, user-given codebook (e.g. {−1, +1} or {−1, 0, +1}) [P2, §4.2].

    C step (exact): each weight to its nearest codebook value.

    Args:
        values: the codebook, a non-empty sequence of distinct finite numbers.

    Θ: ``assignments`` ``(N,)`` int64 indices into the sorted codebook, ``shape``.
    Storage: ``N·⌈log2 K⌉`` bits; the codebook is fixed in advance and costs nothing.

    Raises:
        ValueError: empty, repeated or non-finite ``values``.
    """

    values: Tuple[float, ...]

    def __post_init__(self):
        try:
            vals = tuple(float(v) for v in self.values)
        except (TypeError, ValueError):
            raise ValueError(f"values must be a sequence of numbers, got values={self.values!r}") from None
        if not vals or len(set(vals)) != len(vals) or not all(torch.isfinite(torch.tensor(vals))):
            raise ValueError(f"values must be non-empty, distinct and finite, got values={self.values!r}")
        object.__setattr__(self, "values", tuple(sorted(vals)))

    def codebook(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.values, dtype=work_dtype(like), device=like.device)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        c = self.codebook(x)
        z = assign_nearest(x, c)
        return c[z].reshape(w.shape).to(w.dtype), {"assignments": z, "shape": torch.tensor(w.shape, dtype=torch.long)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        c = torch.tensor(self.values, device=theta["assignments"].device)
        return c[theta["assignments"]].reshape(_shape_of(theta))

    def bits(self, theta: Theta) -> int:
        return int(theta["assignments"].numel()) * ceil_log2(len(self.values))

    def describe(self) -> str:
        return "Q{" + ",".join(f"{v:g}" for v in self.values) + "}"

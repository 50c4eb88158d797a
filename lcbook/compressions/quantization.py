"""Quantization C steps.

Adaptive quantization [P2]: the weights take values in a learned codebook
``C = {c_1, …, c_K}``; the C step ``min_{C, Z} Σ_i (w_i − c_{z_i})²`` is 1-D k-means, solved
here by Lloyd's algorithm warm-started from the previous codebook [P2, §4.1].

Storage: ``N·⌈log2 K⌉`` bits of assignments plus ``32·K`` bits of codebook [P2, §5; LC-tk].

References: [P2] Carreira-Perpiñán & Idelbayev, *Model compression as constrained optimization
... Part II: quantization*, arXiv:1707.04319.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch

from .._checks import is_int, is_real
from .base import (FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, check_int, shape_of, shape_tensor,
                   work_dtype)


def assign_nearest(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook value for every entry of ``x``.

    Args:
        x: ``(N,)`` values.
        codebook: ``(K,)`` values sorted ascending.

    Returns:
        ``(N,)`` int64 indices into ``codebook``; ties go to the lower value. The index is the
        number of codebook midpoints below ``x``: counted by comparisons for K ≤ 8 (faster
        than a binary search for few levels), by ``bucketize`` above.
    """
    k = codebook.numel()
    if k == 1:
        return torch.zeros_like(x, dtype=torch.long)
    mid = (codebook[1:] + codebook[:-1]) / 2
    if k == 2:
        return (x > mid[0]).long()
    if k <= 8:
        return (x.unsqueeze(-1) > mid).sum(-1)
    return torch.bucketize(x, mid, right=False)


def _check_1d(x: torch.Tensor, k) -> None:
    if not is_int(k) or k < 1:
        raise ValueError(f"k must be an int ≥ 1, got k={k!r}")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    check_finite(x, "x")


def _prefix(v: torch.Tensor) -> torch.Tensor:
    """``(len(v)+1,)`` float64 prefix sums, starting at 0."""
    out = torch.zeros(v.numel() + 1, dtype=torch.float64, device=v.device)
    torch.cumsum(v.to(torch.float64), 0, out=out[1:])
    return out


def _dp_runs(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, k: int) -> torch.Tensor:
    """Optimal split of G sorted groups into k contiguous runs (dynamic programming).

    ``c0, c1, c2`` are ``(G+1,)`` float64 prefix sums of the groups' counts, sums and sums of
    squares; the error of a run of groups [i, j) about its mean is
    ``(c2[j]−c2[i]) − (c1[j]−c1[i])²/(c0[j]−c0[i])``. ``D_m(j) = min_{i<j} D_{m−1}(i) + cost(i, j)``;
    the best i is monotone in j, so each row is solved by divide and conquer over j, every
    subproblem of one recursion depth in one batch of tensor ops: O(G log G) per row,
    O(k·G log G) time and O(k·G) memory in all. Requires G ≥ k.

    Returns:
        ``(k+1,)`` int64 run boundaries ``0 = b_0 < b_1 < … < b_k = G`` (in groups).
    """
    g, dev = c0.numel() - 1, c0.device

    def cost(i, j):
        d1 = c1[j] - c1[i]
        return (c2[j] - c2[i] - d1 * d1 / (c0[j] - c0[i])).clamp_(min=0.0)

    pos = torch.arange(g + 1, device=dev)
    prev = cost(torch.zeros_like(pos), pos.clamp(min=1))  # one run: D_1(j)
    prev[0] = 0.0
    splits = []  # splits[m − 2][j]: start of the last run in the best m-run split of groups [0, j)
    big = torch.iinfo(torch.long).max
    idx_dtype = torch.int32 if g < 2**31 - 1 else torch.long
    for m in range(2, k + 1):
        cur = torch.full((g + 1,), float("inf"), dtype=torch.float64, device=dev)
        arg = torch.zeros(g + 1, dtype=idx_dtype, device=dev)
        table = torch.stack([c0, c1, c2, prev], 1)  # one gather per level fetches all four at i
        # Segments of the divide and conquer: j in [jl, jr], candidate split i in [il, ir].
        jl, jr = torch.tensor([m], device=dev), torch.tensor([g], device=dev)
        il, ir = torch.tensor([m - 1], device=dev), torch.tensor([g - 1], device=dev)
        while jl.numel():
            mid = (jl + jr) // 2
            lengths = torch.minimum(ir, mid - 1) - il + 1
            seg = torch.repeat_interleave(torch.arange(mid.numel(), device=dev), lengths)
            # per segment: first candidate minus its flat offset, and c0/c1/c2 at j = mid
            per = torch.stack([(il - torch.cumsum(lengths, 0) + lengths).to(torch.float64),
                               c0[mid], c1[mid], c2[mid]], 1).index_select(0, seg)
            i = per[:, 0].long() + torch.arange(seg.numel(), device=dev)
            at_i = table.index_select(0, i)
            d1 = per[:, 2] - at_i[:, 1]
            vals = at_i[:, 3] + (per[:, 3] - at_i[:, 2] - d1 * d1 / (per[:, 1] - at_i[:, 0])).clamp_(min=0.0)
            best = torch.full((mid.numel(),), float("inf"), dtype=torch.float64, device=dev)
            best = best.scatter_reduce(0, seg, vals, reduce="amin")
            cand = torch.where(vals <= best.index_select(0, seg), i, big)
            opt = torch.full_like(mid, big).scatter_reduce(0, seg, cand, reduce="amin")
            cur[mid] = best
            arg[mid] = opt.to(idx_dtype)
            left, right = jl <= mid - 1, mid + 1 <= jr
            jl, jr, il, ir = (torch.cat([jl[left], (mid + 1)[right]]), torch.cat([(mid - 1)[left], jr[right]]),
                              torch.cat([il[left], opt[right]]), torch.cat([opt[left], ir[right]]))
        splits.append(arg.cpu())
        prev = cur
    return _backtrack(splits, g, dev)


def _backtrack(splits, g: int, dev) -> torch.Tensor:
    """Run boundaries from the DP's split tables (``splits[m − 2][j]``: start of the last run
    of the best m-run split of groups [0, j)), walked back from j = G."""
    bounds, j = [g], g
    for arg in reversed(splits):
        j = int(arg[j])
        bounds.append(j)
    bounds.append(0)
    return torch.tensor(bounds[::-1], device=dev)


def _run_means(csum: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    return (csum[bounds[1:]] - csum[bounds[:-1]]) / (bounds[1:] - bounds[:-1]).to(torch.float64)


#: Groups of sorted values the cold start of :func:`kmeans_1d` runs its DP on.
_INIT_GROUPS = 512


def _dp_runs_dense(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, k: int) -> torch.Tensor:
    """As :func:`_dp_runs`, with the whole (G+1)×(G+1) cost matrix: O(k·G²) work in k batched
    steps, faster than divide and conquer for the few hundred groups of a cold start."""
    g, dev = c0.numel() - 1, c0.device
    i = torch.arange(g + 1, device=dev)
    d0 = c0[None, :] - c0[:, None]
    d1 = c1[None, :] - c1[:, None]
    cost = (c2[None, :] - c2[:, None] - d1 * d1 / d0.clamp(min=1)).clamp_(min=0)
    cost.masked_fill_(i[:, None] >= i[None, :], float("inf"))  # run [i, j) needs i < j
    prev = cost[0].clone()
    prev[0] = 0.0
    args = []
    for _ in range(2, k + 1):
        prev, arg = (prev[:, None] + cost).min(0)
        args.append(arg.cpu())
    return _backtrack(args, g, dev)


def kmeans_1d(
    x: torch.Tensor, k: int, init: Optional[torch.Tensor] = None, max_iter: int = 300
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm for 1-D k-means, in torch on ``x``'s device.

    * **Warm start** (``init`` of k values, the previous C step's codebook): Lloyd iterations on
      the unsorted values, each a ``bucketize`` against the codebook midpoints and two
      ``bincount`` sums, O(N log K); a warm codebook usually needs a few.
    * **Cold start**, or a warm start still moving after a few iterations, or with an empty
      cluster: one sort, then each Lloyd iteration needs only O(K log N) work, as every cluster
      of a sorted codebook is a contiguous run of the sorted values (boundaries by
      ``searchsorted``, sums by float64 prefix sums). The cold codebook is the optimal
      quantization (the DP of :func:`optimal_quantization_1d`) of a 512-bin histogram of the
      values, which Lloyd then refines on all values.

    A centroid whose cluster is empty moves onto the value worst served by the others, so the
    distortion ``Σ (x − c_z)²`` never increases from the initial codebook. Lloyd stops at a fixed
    point (no assignment changes: every value at its nearest centroid, every centroid at its
    cluster's mean) or after ``max_iter`` iterations.

    Args:
        x: ``(N,)`` finite values, N ≥ 1.
        k: number of centroids, ≥ 1. If ``x`` has at most ``k`` distinct values, the result
            is those distinct values (zero distortion) and may have fewer than ``k`` entries.
        init: ``(k',)`` initial codebook (warm start); ignored if empty or longer than ``k``;
            if shorter than ``k``, the missing centroids are added at the values worst served.
        max_iter: iteration limit.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` sorted centroids with K' ≤ k, and ``(N,)`` int64.

    Raises:
        ValueError: ``k`` not an int ≥ 1, ``x`` not 1-D or not finite.

    Source: Lloyd (1982); the warm-started C step of adaptive quantization [P2, §4.1].
    """
    _check_1d(x, k)
    check_int("max_iter", max_iter, 1)
    return _kmeans_1d(x, k, init, max_iter)


def _kmeans_1d(x: torch.Tensor, k: int, init: Optional[torch.Tensor], max_iter: int):
    n = x.numel()
    if n == 0:
        return x.new_empty(0), torch.zeros(0, dtype=torch.long, device=x.device)
    c = None
    if init is not None and init.numel() == k:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
        z = assign_nearest(x, c)
        x64 = x.to(torch.float64)
        for _ in range(min(8, max_iter)):
            counts = torch.bincount(z, minlength=k)
            if not bool(counts.all()):
                break  # an empty cluster: the sorted phase below handles it
            c = (torch.bincount(z, weights=x64, minlength=k) / counts).to(x.dtype)
            c = torch.sort(c).values
            z_new = assign_nearest(x, c)
            if torch.equal(z_new, z):
                return c, z  # a fixed point
            z = z_new
    return _kmeans_sorted(x, k, c if c is not None else init, max_iter)


def _kmeans_sorted(x: torch.Tensor, k: int, init: Optional[torch.Tensor], max_iter: int):
    n = x.numel()
    xs = torch.sort(x).values
    distinct = torch.ones(n, dtype=torch.bool, device=x.device)
    distinct[1:] = xs[1:] != xs[:-1]
    if int(distinct.sum()) <= k:
        uniq = xs[distinct]
        return uniq, torch.bucketize(x, uniq)  # exact: every value is its own centroid
    csum = _prefix(xs)
    if init is None or init.numel() == 0 or init.numel() > k:
        # Cold start: the optimal k runs over the sorted values grouped into G bins of equal
        # width (a histogram, as in Wu & Rokne's algorithm; unlike equal-count groups it keeps
        # the sparse tails apart, where the outer levels of a large codebook sit).
        lin = torch.linspace(0, 1, _INIT_GROUPS + 1, device=x.device, dtype=torch.float64)
        cuts = (xs[0].double() + lin * (xs[-1].double() - xs[0].double())).to(xs.dtype)
        edges = torch.searchsorted(xs, cuts[1:-1])
        edges = torch.unique(torch.cat([edges.new_zeros(1), edges, edges.new_full((1,), n)]))
        if edges.numel() - 1 < k:  # fewer non-empty bins than levels: equal-count groups instead
            g = min(n, _INIT_GROUPS)
            edges = torch.div(torch.arange(g + 1, device=x.device) * n, g, rounding_mode="floor")
        c2 = _prefix(xs.to(torch.float64) ** 2)
        runs = edges[_dp_runs_dense(edges.to(torch.float64), csum[edges], c2[edges], k)]
        c = _run_means(csum, runs).to(x.dtype)
    else:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
        if c.numel() < k:
            # Too few centroids (e.g. the weights had < k distinct values at the last C step):
            # duplicates of c[0] get empty clusters, which the loop moves to the worst-served values.
            c = torch.cat([c[:1].expand(k - c.numel()), c])
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


def optimal_quantization_1d(x: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The globally optimal K-level quantization of ``x`` (exact 1-D k-means), in torch.

    In 1-D an optimal partition is a split of the sorted values into K contiguous runs, so
    ``D_m(j) = min_{i<j} D_{m−1}(i) + cost(i, j)`` over the first j sorted values (cost: the
    squared error of a run about its mean, O(1) from prefix sums) gives the optimum (Wu & Rokne,
    CSC 1989; Wang & Song, *Ckmeans.1d.dp*, R Journal 2011). The best split point is monotone in
    j, so each row ``D_m`` is solved by divide and conquer over j (the middle j first, its
    optimum bounds both halves): O(N log N) per row, **O(K·N log N) time and O(K·N) memory** in
    all, plus one sort. All subproblems of one recursion depth run as one batch of tensor ops,
    so the Python loop has only about K·log2 N iterations and the work runs on ``x``'s device.

    Args:
        x: ``(N,)`` finite values, N ≥ 1.
        k: number of levels K ≥ 1. If ``x`` has at most K distinct values, the result is those
            values (zero error) and may have fewer than K entries.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` sorted levels (K' ≤ K), each the mean of its run,
        and ``(N,)`` int64 indices of the nearest level (ties to the lower one).

    Raises:
        ValueError: ``k`` not an int ≥ 1, ``x`` not 1-D or not finite.
    """
    _check_1d(x, k)
    return _optimal_1d(x, k)


def _optimal_1d(x: torch.Tensor, k: int):
    n, dev = x.numel(), x.device
    if n == 0:
        return x.new_empty(0), torch.zeros(0, dtype=torch.long, device=dev)
    xs = torch.sort(x).values
    distinct = torch.ones(n, dtype=torch.bool, device=dev)
    distinct[1:] = xs[1:] != xs[:-1]
    if int(distinct.sum()) <= k:
        uniq = xs[distinct]
        return uniq, torch.bucketize(x, uniq)
    xd = xs.to(torch.float64)
    xc = xd - xd.mean()  # centred: smaller prefix sums, less cancellation in the costs
    runs = _dp_runs(torch.arange(n + 1, device=dev, dtype=torch.float64), _prefix(xc), _prefix(xc * xc), k)
    c = torch.sort(_run_means(_prefix(xd), runs).to(x.dtype)).values
    return c, assign_nearest(x, c)


@dataclass(frozen=True)
class AdaptiveQuantization(Compression):
    """Adaptive quantization with a learned codebook of K values [P2].

    All weights in the task's view (one tensor, or several layers jointly) share one codebook.

    Args:
        k: codebook size K ≥ 1 (K = 2 is 1 bit per weight).
        max_iter: Lloyd iteration limit per C step (≥ 1; used by ``method="kmeans"``).
        method: ``"kmeans"`` (default): Lloyd's algorithm warm-started from the previous
            codebook, O(N log N) per C step, a local optimum [P2, §4.1]; ``"exact"``: the global
            optimum by dynamic programming (:func:`optimal_quantization_1d`), O(K·N log N) time
            and O(K·N) memory, cold-started each C step.

    Θ: ``codebook`` ``(K,)`` in the weight's dtype, sorted; ``assignments`` ``(N,)`` int64;
    ``shape`` the weight's shape (int64).

    Storage: ``N·⌈log2 K'⌉ + 32·K'`` bits, K' ≤ K the size of the codebook found (smaller than
    K only when the weights have fewer than K distinct values).

    Raises:
        ValueError/TypeError: if ``k`` < 1 or not an int, ``max_iter`` < 1, or ``method`` is
            not ``"kmeans"`` or ``"exact"``.
    """

    k: int
    max_iter: int = 300
    method: str = "kmeans"
    trainable = ("codebook",)

    def __post_init__(self):
        object.__setattr__(self, "k", check_int("k", self.k, 1))
        object.__setattr__(self, "max_iter", check_int("max_iter", self.max_iter, 1))
        if self.method not in ("kmeans", "exact"):
            raise ValueError(f"method must be 'kmeans' or 'exact', got method={self.method!r}")

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        if self.method == "exact":
            c, z = _optimal_1d(x, self.k)
        else:
            init = theta.get("codebook") if theta else None
            c, z = _kmeans_1d(x, self.k, init, self.max_iter)
        delta = c[z].reshape(w.shape).to(w.dtype)
        return delta, {
            "codebook": c.to(w.dtype),
            "assignments": z,
            "shape": shape_tensor(w.shape),
        }

    def decompress(self, theta: Theta) -> torch.Tensor:
        return theta["codebook"][theta["assignments"]].reshape(shape_of(theta))

    def bits(self, theta: Theta) -> int:
        k = int(theta["codebook"].numel())
        n = int(theta["assignments"].numel())
        return n * ceil_log2(max(k, 1)) + FLOAT_BITS * k

    def canonical(self, theta: Theta) -> Theta:
        c, order = torch.sort(theta["codebook"])
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=order.device)
        return {**theta, "codebook": c, "assignments": rank[theta["assignments"]]}

    def describe(self) -> str:
        return f"Q(K={self.k})" if self.method == "kmeans" else f"Q(K={self.k}, exact)"


@dataclass(frozen=True)
class ScaledBinarization(Compression):
    """Scaled binarization: every weight is −a or +a, with one learned scale a ≥ 0 [P2, §4.2].

    C step (exact): ``θ_i = a·sign(w_i)`` with ``a = mean |w_i|`` (sign(0) taken as +1).

    Θ: ``scale`` ``(1,)``, ``signs`` ``(N,)`` bool (True for +a), ``shape``.
    Storage: ``N + 32`` bits.
    """

    trainable = ("scale",)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        a = (x.abs().to(torch.float64).sum() / max(x.numel(), 1)).to(x.dtype)
        pos = x >= 0
        delta = torch.where(pos, a, -a).reshape(w.shape).to(w.dtype)
        return delta, {"scale": a.reshape(1).to(w.dtype), "signs": pos, "shape": shape_tensor(w.shape)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        a = theta["scale"][0]
        return torch.where(theta["signs"], a, -a).reshape(shape_of(theta))

    def canonical(self, theta: Theta) -> Theta:
        if float(theta["scale"][0]) >= 0:
            return theta
        return {**theta, "scale": -theta["scale"], "signs": ~theta["signs"]}

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

    trainable = ("scale",)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        if x.numel() == 0:
            return w.detach().clone(), {"scale": w.new_zeros(1), "codes": torch.zeros(0, dtype=torch.int8, device=w.device),
                                        "shape": shape_tensor(w.shape)}
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
        return delta, {"scale": a.reshape(1).to(w.dtype), "codes": codes, "shape": shape_tensor(w.shape)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        return (theta["codes"].to(theta["scale"].dtype) * theta["scale"][0]).reshape(shape_of(theta))

    def canonical(self, theta: Theta) -> Theta:
        if float(theta["scale"][0]) >= 0:
            return theta
        return {**theta, "scale": -theta["scale"], "codes": -theta["codes"]}

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

    Θ: ``assignments`` ``(N,)`` int64 indices into the sorted codebook, ``codebook`` ``(K,)`` the
    values in the weight's dtype (fixed, kept so that Δ(Θ) has that dtype), ``shape``.
    Storage: ``N·⌈log2 K⌉`` bits; the codebook is fixed in advance and costs nothing.

    Raises:
        ValueError: empty, repeated or non-finite ``values``.
    """

    values: Tuple[float, ...]

    def __post_init__(self):
        vals = self.values.tolist() if torch.is_tensor(self.values) else self.values
        if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__") or not all(is_real(v) for v in vals):
            raise ValueError(f"values must be a sequence of numbers, got values={self.values!r}")
        vals = tuple(float(v) for v in vals)
        as32 = torch.tensor(vals, dtype=torch.float32)  # the codebook is used in float32 (or float64) arithmetic
        if not vals or len(set(as32.tolist())) != len(vals) or not bool(torch.isfinite(as32).all()):
            raise ValueError(f"values must be non-empty, finite and distinct in float32, got values={self.values!r}")
        object.__setattr__(self, "values", tuple(sorted(vals)))

    def codebook(self, like: torch.Tensor) -> torch.Tensor:
        """The fixed values as a ``(K,)`` tensor on ``like``'s device, in its working dtype."""
        return torch.tensor(self.values, dtype=work_dtype(like), device=like.device)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1).to(work_dtype(w))
        c = self.codebook(x)
        z = assign_nearest(x, c)
        levels = c.to(w.dtype)
        return levels[z].reshape(w.shape), {"assignments": z, "codebook": levels, "shape": shape_tensor(w.shape)}

    def decompress(self, theta: Theta) -> torch.Tensor:
        c = theta.get("codebook")
        if c is None:
            c = torch.tensor(self.values, device=theta["assignments"].device)
        return c[theta["assignments"]].reshape(shape_of(theta))

    def bits(self, theta: Theta) -> int:
        return int(theta["assignments"].numel()) * ceil_log2(len(self.values))

    def describe(self) -> str:
        return "Q{" + ",".join(f"{v:g}" for v in self.values) + "}"


@dataclass(frozen=True)
class Binarization(FixedCodebook):
    """Binarization: every weight is −1 or +1 (the fixed codebook {−1, +1}) [P2, §4.2].

    C step (exact): ``θ_i = sign(w_i)`` (a weight at exactly 0, equally far from both, goes to −1).
    Θ and storage as :class:`FixedCodebook`: N bits, no codebook.
    """

    values: Tuple[float, ...] = field(default=(-1.0, 1.0), init=False)

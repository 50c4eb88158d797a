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
from .coding import check_codes, f32, need_int, pack_bits, read_shape, shape_meta, unpack_bits
from .base import (FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, check_int, register_compression, shape_of,
                   shape_tensor,
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


def _run_levels(xs: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """The level of each run ``[bounds[j], bounds[j+1])`` of the sorted values ``xs``: the mean
    of its own members, summed in float64 after subtracting the run's first value (exact for
    tiny values beside large ones, where differences of prefix sums lose them), and clamped to
    the run's smallest and largest member. Runs must be non-empty; runs that split the sorted
    values only between distinct values then give strictly increasing levels, in float64 and
    after rounding to ``xs``'s dtype (rounding is monotone and keeps each run's end values).

    Returns:
        ``(len(bounds) − 1,)`` float64 levels.
    """
    counts = bounds[1:] - bounds[:-1]
    first = xs[bounds[:-1]].to(torch.float64)
    last = xs[bounds[1:] - 1].to(torch.float64)
    seg = torch.repeat_interleave(torch.arange(counts.numel(), device=xs.device), counts)
    sums = torch.zeros(counts.numel(), dtype=torch.float64, device=xs.device)
    sums.index_add_(0, seg, xs.to(torch.float64) - first.index_select(0, seg))
    return torch.minimum(torch.maximum(first + sums / counts.to(torch.float64), first), last)


def _distinct(xs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Distinct values of the sorted ``xs`` and where each starts: ``(D,)`` values and
    ``(D+1,)`` int64 start positions (the last is N)."""
    u, counts = torch.unique_consecutive(xs, return_counts=True)
    starts = torch.zeros(u.numel() + 1, dtype=torch.long, device=xs.device)
    torch.cumsum(counts, 0, out=starts[1:])
    return u, starts


def _group_dp(xs: torch.Tensor, edges: torch.Tensor, k: int) -> torch.Tensor:
    """Optimal k runs of whole groups ``[edges[g], edges[g+1])`` of the sorted values (DP on
    centred float64 prefix sums of the groups); returns run boundaries in positions of ``xs``."""
    xd = xs.to(torch.float64)
    xc = xd - xd.mean()  # centred: smaller prefix sums, less cancellation in the costs
    c0, c1, c2 = edges.to(torch.float64), _prefix(xc)[edges], _prefix(xc * xc)[edges]
    g = edges.numel() - 1
    # The dense DP (all (G+1)² run costs at once) is faster for the few hundred groups of a cold
    # start; divide and conquer, O(k·G log G) time and O(k·G) memory, for many groups.
    runs = _dp_runs_dense(c0, c1, c2, k) if k * g * g <= 2**27 else _dp_runs(c0, c1, c2, k)
    return edges[runs]


#: Groups of sorted values the cold start of :func:`kmeans_1d` runs its DP on (at least; 4·K
#: for large K).
_INIT_GROUPS = 512


def _cold_starts(xs: torch.Tensor, starts: torch.Tensor, u: torch.Tensor, k: int):
    """Initial codebooks for a cold k-means (``xs`` sorted, more than ``k`` distinct values
    ``u`` starting at ``starts``): the standard starts, each run to convergence by the caller,
    who keeps the best.

    1. **Histogram DP**: the optimal k runs over groups of the sorted values, the groups cut at
       the edges of G equal-width bins *and* of G equal-count bins (equal width keeps the sparse
       tails apart, where the outer levels sit; equal count splits a dense core that a few
       outliers squeeze into one bin), never splitting equal values;
    2. **quantiles**: the values at the quantiles (j + ½)/k;
    3. **k-means++** (Arthur & Vassilvitskii, 2007) with a fixed seed, on the distinct values
       weighted by their counts.
    """
    n, dev = xs.numel(), xs.device
    d = u.numel()
    groups = max(_INIT_GROUPS, 4 * k)
    if d <= groups:
        edges = starts
    else:
        lin = torch.linspace(0, 1, groups + 1, device=dev, dtype=torch.float64)
        cuts = (xs[0].double() + lin * (xs[-1].double() - xs[0].double())).to(xs.dtype)
        width = torch.searchsorted(xs, cuts[1:-1])  # at the start of a run of equal values
        count = starts[torch.searchsorted(starts, torch.div(torch.arange(1, groups, device=dev) * n, groups,
                                                            rounding_mode="floor"))]
        edges = torch.unique(torch.cat([starts[:1], width, count, starts[-1:]]))
        if edges.numel() - 1 < k:  # too few groups for k runs: the distinct values themselves
            edges = starts
    out = [_run_levels(xs, _group_dp(xs, edges, k))]
    q = torch.div((2 * torch.arange(k, device=dev) + 1) * n, 2 * k, rounding_mode="floor")
    out.append(xs[q].to(torch.float64))
    # k-means++ on the distinct values, weighted by count; uniform draws from a fixed CPU
    # generator, so the start is the same on every device.
    gen = torch.Generator().manual_seed(0)
    w = (starts[1:] - starts[:-1]).to(torch.float64)
    ud = u.to(torch.float64)
    cum = torch.cumsum(w, 0)
    first = int(torch.searchsorted(cum, torch.rand(1, generator=gen, dtype=torch.float64).to(dev) * cum[-1]).clamp(max=d - 1))
    centres = [ud[first]]
    dist = (ud - ud[first]) ** 2
    for _ in range(1, k):
        cum = torch.cumsum(w * dist, 0)
        if float(cum[-1]) <= 0:
            break
        i = int(torch.searchsorted(cum, torch.rand(1, generator=gen, dtype=torch.float64).to(dev) * cum[-1]).clamp(max=d - 1))
        centres.append(ud[i])
        dist = torch.minimum(dist, (ud - ud[i]) ** 2)
    out.append(torch.stack(centres))
    return out


def _dp_runs_dense(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, k: int) -> torch.Tensor:
    """As :func:`_dp_runs`, with the whole (G+1)×(G+1) cost matrix: O(k·G²) work in k batched
    steps, faster than divide and conquer for the few hundred groups of a cold start."""
    g, dev = c0.numel() - 1, c0.device
    i = torch.arange(g + 1, device=dev)
    d0 = c0[None, :] - c0[:, None]
    d1 = c1[None, :] - c1[:, None]
    cost = (c2[None, :] - c2[:, None] - d1 * d1 / d0.clamp(min=1)).clamp_(min=0)
    cost.masked_fill_(i[:, None] >= i[None, :], float("inf"))  # run [i, j) needs i < j
    prev = cost[0].clone()  # D_1(j): one run over [0, j)
    prev[0] = float("inf")  # runs are never empty (a tie must not pick an empty first run)
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
      ``bincount`` sums, O(N log K). They stop at a fixed point (no assignment changes) or when
      the codebook moves by less than the tolerance of scikit-learn's ``KMeans``
      (``Σ_j (Δc_j)² ≤ 10⁻⁴·Var(x)``); only an empty cluster, or 20 iterations without stopping,
      hands over to the sorted phase below (one sort), so a warm C step never sorts when Lloyd
      converges.
    * **Cold start**, or a warm start handed over: one sort, then each Lloyd iteration needs only
      O(K log N) work, as every cluster of a sorted codebook is a contiguous run of the sorted
      values (boundaries by ``searchsorted``, sums by float64 prefix sums). A cold start runs
      Lloyd from each of the standard starts — the optimal quantization (DP) of a histogram of
      the values, the quantiles, and a seeded k-means++ — and keeps the codebook of least
      distortion, so it is never worse than any of them.

    A centroid whose cluster is empty moves onto the value worst served by the others, so the
    distortion ``Σ (x − c_z)²`` never increases from the initial codebook. Each final level is
    the mean of its cluster computed from the members themselves (exact for tiny values beside
    large ones) and lies within its cluster's range, so the levels are strictly increasing.

    Args:
        x: ``(N,)`` finite values, N ≥ 1.
        k: number of centroids, ≥ 1. If ``x`` has at most ``k`` distinct values, the result
            is those distinct values (zero distortion) and may have fewer than ``k`` entries.
        init: ``(k',)`` initial codebook (warm start); ignored if empty or longer than ``k``;
            if shorter than ``k``, the missing centroids are added at the values worst served.
        max_iter: iteration limit of each Lloyd run.

    Returns:
        ``(codebook, assignments)``: ``(K',)`` strictly increasing centroids with K' ≤ k, and
        ``(N,)`` int64 indices of the nearest centroid.

    Raises:
        ValueError: ``k`` not an int ≥ 1, ``x`` not 1-D or not finite.

    Source: Lloyd (1982); the warm-started C step of adaptive quantization [P2, §4.1]; k-means++
    (Arthur & Vassilvitskii, SODA 2007).
    """
    _check_1d(x, k)
    check_int("max_iter", max_iter, 1)
    return _kmeans_1d(x, k, init, max_iter)


#: Warm Lloyd iterations on the unsorted values before handing over to the sorted phase.
_WARM_ITERS = 20
#: Lloyd stops when the codebook moves by Σ (Δc)² ≤ _TOL·Var(x) (scikit-learn's default).
_TOL = 1e-4


def _kmeans_1d(x: torch.Tensor, k: int, init: Optional[torch.Tensor], max_iter: int):
    n = x.numel()
    if n == 0:
        return x.new_empty(0), torch.zeros(0, dtype=torch.long, device=x.device)
    c = None
    if init is not None and init.numel() == k:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
        z = assign_nearest(x, c)
        x64 = x.to(torch.float64)
        tol = _TOL * float(x64.var(unbiased=False)) if n > 1 else 0.0
        for _ in range(min(_WARM_ITERS, max_iter)):
            counts = torch.bincount(z, minlength=k)
            if not bool(counts.all()):
                break  # an empty cluster: the sorted phase below handles it
            sums = torch.bincount(z, weights=x64, minlength=k)
            lo = torch.full((k,), float("inf"), dtype=torch.float64, device=x.device).scatter_reduce(0, z, x64, "amin")
            hi = torch.full((k,), -float("inf"), dtype=torch.float64, device=x.device).scatter_reduce(0, z, x64, "amax")
            # Clusters of a sorted codebook are disjoint ranges: means clamped to their ranges increase strictly.
            new = torch.minimum(torch.maximum(sums / counts, lo), hi).to(x.dtype)
            shift = float(((new.to(torch.float64) - c.to(torch.float64)) ** 2).sum())
            c = new
            z_new = assign_nearest(x, c)
            if torch.equal(z_new, z) or shift <= tol:
                return c, z_new  # a fixed point, or the codebook has stopped moving
            z = z_new
    return _kmeans_sorted(x, k, c if c is not None else init, max_iter)


def _lloyd_sorted(xs: torch.Tensor, csum: torch.Tensor, c: torch.Tensor, max_iter: int) -> torch.Tensor:
    """Lloyd's iterations on the sorted values ``xs`` from the sorted codebook ``c`` to a fixed
    point (each costs O(K log N), so no tolerance is needed) or ``max_iter``; returns the final
    levels (each the mean of its non-empty cluster, from :func:`_run_levels`)."""
    n = xs.numel()
    ends = torch.tensor([n], device=xs.device)
    zero = torch.zeros(1, dtype=torch.long, device=xs.device)
    bounds = None
    for _ in range(max_iter):
        # Cluster j holds the sorted values in [bounds[j], bounds[j+1]), as assign_nearest does.
        new = torch.cat([zero, torch.searchsorted(xs, (c[1:] + c[:-1]) / 2, right=True), ends])
        if bounds is not None and torch.equal(new, bounds):
            break
        bounds = new
        counts = (bounds[1:] - bounds[:-1]).to(torch.float64)
        sums = csum[bounds[1:]] - csum[bounds[:-1]]
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c.to(torch.float64)).to(xs.dtype)
        empty = counts == 0
        if bool(empty.any()):
            # Move each empty centroid onto one of the worst-served values: that value's error
            # drops to 0 and no other value gets worse, so the distortion still decreases.
            err = (xs - torch.repeat_interleave(c, (bounds[1:] - bounds[:-1]))) ** 2
            worst = torch.topk(err, int(empty.sum())).indices
            c = c.clone()
            c[empty] = xs[worst]
        c = torch.sort(c).values
    return _polish(xs, _clusters(xs, c), c.numel(), max_iter)


def _clusters(xs: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Boundaries of the non-empty clusters of the sorted codebook ``c`` in the sorted values
    ``xs`` (nearest level, ties to the lower one, as :func:`assign_nearest`)."""
    ends = xs.new_tensor([0, xs.numel()], dtype=torch.long)
    mid = torch.searchsorted(xs, (c[1:] + c[:-1]) / 2, right=True)
    return torch.unique_consecutive(torch.cat([ends[:1], mid, ends[1:]]))


def _polish(xs: torch.Tensor, bounds: torch.Tensor, k: int, max_iter: int = 300) -> torch.Tensor:
    """Lloyd's iterations with each level computed from its members (:func:`_run_levels`, O(N)
    each) from the runs ``bounds`` of the sorted values ``xs`` to a fixed point: the returned
    levels (in ``xs``'s dtype) are then each the mean of the values nearest to it, and strictly
    increasing. Prefix-sum means (used before, for speed) lose tiny values beside large ones;
    these iterations put them back and never increase the distortion. Usually one or two.

    If fewer than ``k`` levels are left (clusters emptied by imprecise means) while more than
    that many distinct values exist, a level is added at the worst-served value (its error drops
    to 0, so the distortion falls) and the iterations resume, until there are ``k`` levels.
    """
    while True:
        for _ in range(max_iter):
            c = _run_levels(xs, bounds).to(xs.dtype)
            new = _clusters(xs, c)
            if torch.equal(new, bounds):
                break
            bounds = new
        if c.numel() >= k:
            return c
        err = (xs.to(torch.float64) - c.to(torch.float64)[assign_nearest(xs, c)]) ** 2
        worst = int(torch.argmax(err))
        if float(err[worst]) == 0.0:
            return c  # every value is a level already
        bounds = _clusters(xs, torch.sort(torch.cat([c, xs[worst:worst + 1]])).values)


def _kmeans_sorted(x: torch.Tensor, k: int, init: Optional[torch.Tensor], max_iter: int):
    xs = torch.sort(x).values
    u, starts = _distinct(xs)
    if u.numel() <= k:
        return u, torch.bucketize(x, u)  # exact: every value is its own centroid
    csum = _prefix(xs)
    if init is None or init.numel() == 0 or init.numel() > k:
        best, best_d = None, float("inf")
        for c0 in _cold_starts(xs, starts, u, k):
            c0 = torch.sort(c0.to(x.dtype)).values
            if c0.numel() < k:  # k-means++ ran out of distinct values: pad with duplicates (moved by Lloyd)
                c0 = torch.cat([c0[:1].expand(k - c0.numel()), c0])
            c = _lloyd_sorted(xs, csum, c0, max_iter)
            d = _distortion(xs, c)
            if d < best_d:
                best, best_d = c, d
        c = best
    else:
        c = torch.sort(init.to(device=x.device, dtype=x.dtype).flatten()).values
        if c.numel() < k:
            # Too few centroids (e.g. the weights had < k distinct values at the last C step):
            # duplicates of c[0] get empty clusters, which the loop moves to the worst-served values.
            c = torch.cat([c[:1].expand(k - c.numel()), c])
        c = _lloyd_sorted(xs, csum, c, max_iter)
    return c, assign_nearest(x, c)


def _distortion(x: torch.Tensor, c: torch.Tensor) -> float:
    """``Σ (x − c_z)²`` in float64 with z the nearest level."""
    return float(((x.to(torch.float64) - c.to(torch.float64)[assign_nearest(x, c)]) ** 2).sum())


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
    u, starts = _distinct(xs)
    if u.numel() <= k:
        return u, torch.bucketize(x, u)
    # The DP runs over the distinct values (an optimal partition never splits equal values), so
    # the levels, each from its own members, increase strictly.
    c = _polish(xs, _group_dp(xs, starts, k), k)
    return c, assign_nearest(x, c)


@register_compression
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

    def check_theta(self, theta: Theta) -> None:
        if theta["codebook"].numel() > self.k:
            raise ValueError(f"Θ has a codebook of {theta['codebook'].numel()} values, K={self.k}")

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``codebook`` (K' float32) and ``assignments`` (⌈log2 K'⌉ bits each, packed)."""
        k = int(theta["codebook"].numel())
        put("codebook", f32(theta["codebook"]))
        put("assignments", pack_bits(theta["assignments"], ceil_log2(max(k, 1))))
        return {**shape_meta(shape_of(theta)), "k": k}

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        k = need_int(meta, "k", 0, self.k)
        return {"shape": shape_tensor(shape), "codebook": get("codebook", "float32", (k,)),
                "assignments": check_codes(unpack_bits(get("assignments"), ceil_log2(max(k, 1)), n), max(k, 1),
                                           "assignments")}


@register_compression
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

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``scale`` (one float32) and ``signs`` (1 bit each, packed)."""
        put("scale", f32(theta["scale"]))
        put("signs", pack_bits(theta["signs"].long(), 1))
        return shape_meta(shape_of(theta))

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        return {"shape": shape_tensor(shape), "scale": get("scale", "float32", (1,)),
                "signs": unpack_bits(get("signs"), 1, n).bool()}


@register_compression
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

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``scale`` (one float32) and ``codes`` (code + 1 in 2 bits each, packed)."""
        put("scale", f32(theta["scale"]))
        put("codes", pack_bits(theta["codes"].long() + 1, 2))
        return shape_meta(shape_of(theta))

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        return {"shape": shape_tensor(shape), "scale": get("scale", "float32", (1,)),
                "codes": (check_codes(unpack_bits(get("codes"), 2, n), 3, "codes") - 1).to(torch.int8)}


@register_compression
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

    def encode(self, theta: Theta, put) -> dict:
        """Section ``assignments`` (⌈log2 K⌉ bits each, packed); the codebook is in the config."""
        put("assignments", pack_bits(theta["assignments"], ceil_log2(len(self.values))))
        return shape_meta(shape_of(theta))

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        return {"shape": shape_tensor(shape), "codebook": torch.tensor(self.values, dtype=torch.float32),
                "assignments": check_codes(unpack_bits(get("assignments"), ceil_log2(len(self.values)), n),
                                           len(self.values), "assignments")}


@register_compression
@dataclass(frozen=True)
class Binarization(FixedCodebook):
    """Binarization: every weight is −1 or +1 (the fixed codebook {−1, +1}) [P2, §4.2].

    C step (exact): ``θ_i = sign(w_i)`` (a weight at exactly 0, equally far from both, goes to −1).
    Θ and storage as :class:`FixedCodebook`: N bits, no codebook.
    """

    values: Tuple[float, ...] = field(default=(-1.0, 1.0), init=False)

"""Properties of every C step: feasibility, optimality on tiny inputs, invariants, bad input."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lcbook.compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    ConstraintL0Pruning,
    LowRank,
    RankSelection,
    kmeans_1d,
    sparse_bits,
)

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def numrank(d):
    """Numerical rank at the precision of d's dtype (rounding U@V to float32 adds tiny singular values)."""
    eps = torch.finfo(d.dtype).eps
    return int(torch.linalg.matrix_rank(d.double(), rtol=20 * eps * max(d.shape)))


def sq(a, b):
    return float(((a.double() - b.double()) ** 2).sum())


# --- quantization ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 2, 3, 16])
def test_quantization_feasible_and_keeps_shape_dtype_device(k, dtype, device):
    w = torch.randn(8, 4, 3, 3, dtype=dtype, device=device)
    delta, theta = AdaptiveQuantization(k).compress(w)
    assert delta.shape == w.shape and delta.dtype == dtype and delta.device == w.device
    assert torch.unique(delta).numel() <= k
    assert theta["codebook"].numel() <= k
    assert torch.equal(AdaptiveQuantization(k).decompress(theta), delta)


def test_quantization_is_a_lloyd_fixed_point():
    """Every weight goes to its nearest codebook value; every value is its cluster's mean."""
    torch.manual_seed(0)
    w = torch.randn(5000, dtype=torch.float64)
    delta, theta = AdaptiveQuantization(4).compress(w)
    c, z = theta["codebook"], theta["assignments"]
    nearest = (w[:, None] - c[None, :]).abs().argmin(1)
    assert torch.allclose(c[nearest], c[z])
    for j in range(c.numel()):
        assert torch.isclose(w[z == j].mean(), c[j])


def test_quantization_no_worse_than_its_quantile_start():
    """Lloyd only descends: the result beats the codebook it starts from (the (i+½)/K quantiles).

    (1-D Lloyd can stop in a local optimum; global optimality against brute force belongs to the
    exact dynamic-programming C step.)
    """
    torch.manual_seed(1)
    for _ in range(20):
        w = torch.randn(50, dtype=torch.float64)
        xs = torch.sort(w).values
        init = xs[((torch.arange(3) + 0.5) * 50 / 3).long()]
        start = sq(w, init[(w[:, None] - init).abs().argmin(1)])
        delta, _ = AdaptiveQuantization(3).compress(w)
        assert sq(w, delta) <= start + 1e-12


def test_quantization_warm_start_never_increases_distortion():
    torch.manual_seed(2)
    w = torch.randn(3000)
    init = torch.tensor([-3.0, -0.1, 0.0, 2.5])  # a poor codebook
    start = sq(w, init[(w[:, None] - init).abs().argmin(1)])
    delta, _ = AdaptiveQuantization(4).compress(w, {"codebook": init})
    assert sq(w, delta) <= start + 1e-6


def test_quantization_degenerate_inputs():
    q = AdaptiveQuantization(4)
    for w in [torch.zeros(10), torch.full((3, 3), 0.7), torch.tensor([1.0, 2.0, 1.0, 2.0])]:
        delta, theta = q.compress(w)
        assert torch.equal(delta, w)  # fewer distinct values than K: exact, no NaN
        assert theta["codebook"].numel() <= 4
    delta, _ = AdaptiveQuantization(100).compress(torch.randn(7))  # K > N
    assert torch.unique(delta).numel() <= 7


def test_quantization_idempotent():
    w = torch.randn(1000)
    q = AdaptiveQuantization(3)
    d1, th = q.compress(w)
    d2, _ = q.compress(d1, th)
    assert torch.equal(d1, d2)


def test_quantization_empty_cluster_is_reused():
    w = torch.cat([torch.zeros(50), torch.ones(50), 5 + torch.zeros(50)])
    c, z = kmeans_1d(w, 3, init=torch.tensor([0.0, 0.5, 100.0]))  # 100 serves nothing
    assert sorted(c.tolist()) == [0.0, 1.0, 5.0]


def test_quantization_bits():
    _, theta = AdaptiveQuantization(4).compress(torch.randn(1000))
    assert AdaptiveQuantization(4).bits(theta) == 1000 * 2 + 32 * 4
    _, theta = AdaptiveQuantization(2).compress(torch.randn(10, 10))
    assert AdaptiveQuantization(2).bits(theta) == 100 + 64


@pytest.mark.parametrize("bad", [0, -1])
def test_quantization_bad_k(bad):
    with pytest.raises(ValueError, match=f"k must be ≥ 1, got k={bad}"):
        AdaptiveQuantization(bad)
    with pytest.raises(TypeError, match="k must be an int"):
        AdaptiveQuantization(2.5)


@pytest.mark.parametrize("comp", [AdaptiveQuantization(2), ConstraintL0Pruning(kappa=2), LowRank(1)])
def test_non_finite_weights_raise_before_compressing(comp):
    w = torch.randn(4, 4)
    w[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        comp.compress(w)


# --- pruning -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES + [torch.bfloat16])
@pytest.mark.parametrize("device", DEVICES)
def test_pruning_feasible_and_keeps_shape_dtype_device(dtype, device):
    w = torch.randn(16, 8, 3, 3, device=device).to(dtype)
    delta, theta = ConstraintL0Pruning(kappa=100).compress(w)
    assert delta.shape == w.shape and delta.dtype == dtype and delta.device == w.device
    assert int((delta != 0).sum()) <= 100
    assert torch.equal(ConstraintL0Pruning(kappa=100).decompress(theta), delta)


def test_pruning_optimal_against_all_supports():
    torch.manual_seed(3)
    w = torch.randn(6, dtype=torch.float64)
    for kappa in range(7):
        best = min(
            sum(float(w[i] ** 2) for i in range(6) if i not in keep)
            for keep in itertools.combinations(range(6), kappa)
        )
        delta, _ = ConstraintL0Pruning(kappa=kappa).compress(w)
        assert sq(w, delta) == pytest.approx(best, abs=1e-12)


def test_pruning_edge_kappas():
    w = torch.randn(5, 5)
    d0, _ = ConstraintL0Pruning(kappa=0).compress(w)
    assert int((d0 != 0).sum()) == 0  # κ = 0 keeps nothing (the old toolkit kept everything)
    dall, _ = ConstraintL0Pruning(kappa=25).compress(w)
    assert torch.equal(dall, w)
    dfrac, _ = ConstraintL0Pruning(fraction=0.2).compress(w)
    assert int((dfrac != 0).sum()) == 5


def test_pruning_bad_kappa():
    with pytest.raises(ValueError, match="kappa must be ≥ 0, got kappa=-1"):
        ConstraintL0Pruning(kappa=-1)
    with pytest.raises(ValueError, match="kappa=26 is larger than the number of weights"):
        ConstraintL0Pruning(kappa=26).compress(torch.randn(5, 5))
    with pytest.raises(ValueError, match="fraction must be a number in"):
        ConstraintL0Pruning(fraction=1.5)
    with pytest.raises(ValueError, match="exactly one of kappa"):
        ConstraintL0Pruning()


def _sparse_bits_reference(indices, value_bits=32):
    idx = sorted(indices)
    best = None
    for b in range(1, 33):
        prev, slots = -1, 0
        for i in idx:
            slots += math.ceil((i - prev) / 2**b)
            prev = i
        cost = slots * (b + value_bits)
        best = cost if best is None else min(best, cost)
    return best or 0


@given(st.lists(st.integers(0, 5000), unique=True, max_size=60))
@settings(deadline=None)
def test_sparse_bits_matches_a_direct_count(idx):
    assert sparse_bits(torch.tensor(idx, dtype=torch.long)) == _sparse_bits_reference(idx)


# --- low-rank ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES + [torch.bfloat16])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rank", [0, 1, 3, 10, 50])
def test_low_rank_feasible_and_optimal(rank, dtype, device):
    w = torch.randn(12, 20, device=device).to(dtype)
    delta, theta = LowRank(rank).compress(w)
    assert delta.shape == w.shape and delta.dtype == dtype and delta.device == w.device
    r = min(rank, 12)
    assert numrank(delta) <= r
    s = torch.linalg.svdvals(w.double())
    tol = 1e-2 * float((s**2).sum()) if dtype == torch.bfloat16 else 1e-4
    assert sq(w, delta) == pytest.approx(float((s[r:] ** 2).sum()), abs=tol)
    assert LowRank(rank).bits(theta) == 32 * min(r * (12 + 20), 12 * 20)  # dense when factors are larger


def test_low_rank_full_rank_is_exact_and_zero_rank_is_zero():
    w = torch.randn(6, 4, dtype=torch.float64)
    d, _ = LowRank(10).compress(w)  # rank ≥ min(m, n): returns W, never None
    assert torch.allclose(d, w)
    d0, _ = LowRank(0).compress(w)
    assert torch.count_nonzero(d0) == 0


def test_low_rank_bad_input():
    with pytest.raises(ValueError, match="rank must be ≥ 0, got rank=-1"):
        LowRank(-1)
    with pytest.raises(ValueError, match="needs a non-empty 2-D weight"):
        LowRank(2).compress(torch.randn(3, 3, 3))
    for comp in (LowRank(1), RankSelection(1e-3)):
        with pytest.raises(ValueError, match=r"needs a non-empty 2-D weight view, got shape \(0, 4\)"):
            comp.compress(torch.zeros(0, 4), mu=1.0)
    with pytest.raises(TypeError, match="parts must be a sequence of two or more compressions, got parts=None"):
        AdditiveCombination(None)


# --- additive combinations ---------------------------------------------------------------


@pytest.mark.parametrize(
    "parts",
    [
        (AdaptiveQuantization(2), ConstraintL0Pruning(kappa=30)),
        (LowRank(2), ConstraintL0Pruning(kappa=30)),
        (AdaptiveQuantization(2), LowRank(1)),
        (AdaptiveQuantization(2), LowRank(1), ConstraintL0Pruning(kappa=10)),
    ],
    ids=["Q+P", "L+P", "Q+L", "Q+L+P"],
)
def test_additive_error_never_increases_and_parts_are_feasible(parts):
    torch.manual_seed(4)
    w = torch.randn(20, 15, dtype=torch.float64)
    add = AdditiveCombination(parts, max_sweeps=30, tol=0.0)
    delta, theta = add.compress(w)
    errs = theta["sweep_errors"]
    assert bool((errs[1:] <= errs[:-1] * (1 + 1e-12) + 1e-12).all()), errs
    assert sq(w, delta) == pytest.approx(float(errs[-1]), rel=1e-9)
    # Each part is feasible for its own compression.
    for i, p in enumerate(parts):
        sub = {k[2:]: v for k, v in theta.items() if k.startswith(f"{i}.")}
        d = p.decompress(sub).reshape(w.shape)
        if isinstance(p, AdaptiveQuantization):
            assert torch.unique(d).numel() <= p.k
        if isinstance(p, ConstraintL0Pruning):
            assert int((d != 0).sum()) <= p.kappa
        if isinstance(p, LowRank):
            assert numrank(d) <= p.rank
    assert torch.allclose(add.decompress(theta).reshape(w.shape), delta)
    assert add.bits(theta) == sum(
        p.bits({k[2:]: v for k, v in theta.items() if k.startswith(f"{i}.")}) for i, p in enumerate(parts)
    )


def test_additive_beats_its_first_part_and_warm_start_keeps_error():
    torch.manual_seed(5)
    w = torch.randn(2000)
    w[:20] *= 30  # outliers: what sparse corrections are for
    q, qp = AdaptiveQuantization(2), AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=20)))
    dq, _ = q.compress(w)
    dqp, th = qp.compress(w)
    assert sq(w, dqp) < 0.5 * sq(w, dq)
    d2, th2 = qp.compress(w, th)  # warm start from its own solution: no worse
    assert sq(w, d2) <= sq(w, dqp) * (1 + 1e-6)


def test_additive_bad_arguments():
    with pytest.raises(ValueError, match="at least two"):
        AdditiveCombination((AdaptiveQuantization(2),))
    with pytest.raises(TypeError, match=r"parts\[1\] must be a Compression"):
        AdditiveCombination((AdaptiveQuantization(2), "P"))
    with pytest.raises(ValueError, match="max_sweeps must be ≥ 1"):
        AdditiveCombination((AdaptiveQuantization(2), LowRank(1)), max_sweeps=0)


# --- property-based ----------------------------------------------------------------------


@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    k=st.integers(1, 6),
    frac=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
@settings(deadline=None)
def test_random_shapes_q_p_qp(shape, k, frac, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g)
    n = w.numel()
    kappa = int(frac * n)
    for comp in (AdaptiveQuantization(k), ConstraintL0Pruning(kappa=kappa),
                 AdditiveCombination((AdaptiveQuantization(k), ConstraintL0Pruning(kappa=kappa)))):
        delta, theta = comp.compress(w)
        assert delta.shape == w.shape and bool(torch.isfinite(delta).all())
        assert comp.bits(theta) >= 0
    dq, _ = AdaptiveQuantization(k).compress(w)
    assert torch.unique(dq).numel() <= k
    dp, _ = ConstraintL0Pruning(kappa=kappa).compress(w)
    assert int((dp != 0).sum()) <= kappa


@given(m=st.integers(1, 8), n=st.integers(1, 8), r=st.integers(0, 9), seed=st.integers(0, 2**16))
@settings(deadline=None)
def test_random_shapes_low_rank(m, n, r, seed):
    w = torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    d, th = LowRank(r).compress(w)
    assert d.shape == w.shape and bool(torch.isfinite(d).all())
    assert numrank(d) <= r


# --- binarization, ternarization, fixed codebooks ------------------------------------------

from lcbook.compressions import FixedCodebook, ScaledBinarization, ScaledTernarization  # noqa: E402


def _best_scaled(w, levels):
    """Brute force over every assignment of the values to the given level pattern: for each
    assignment the optimal scale is closed-form; return the least error."""
    best = math.inf
    for z in itertools.product(levels, repeat=w.numel()):
        z = torch.tensor(z, dtype=w.dtype)
        if float((z * z).sum()) == 0:
            err = float((w**2).sum())
        else:
            a = max(float((w * z).sum() / (z * z).sum()), 0.0)
            err = float(((w - a * z) ** 2).sum())
        best = min(best, err)
    return best


@pytest.mark.parametrize("comp,levels", [(ScaledBinarization(), (-1, 1)), (ScaledTernarization(), (-1, 0, 1))])
def test_scaled_binary_and_ternary_optimal_on_tiny_inputs(comp, levels):
    torch.manual_seed(6)
    for _ in range(10):
        w = torch.randn(6, dtype=torch.float64)
        delta, theta = comp.compress(w)
        assert sq(w, delta) <= _best_scaled(w, levels) + 1e-12
        assert torch.unique(delta.abs()).numel() <= (1 if levels == (-1, 1) else 2)
        assert torch.allclose(comp.decompress(theta), delta)


@pytest.mark.parametrize("comp", [ScaledBinarization(), ScaledTernarization(), FixedCodebook((-1, 0, 1))])
def test_fixed_forms_keep_shape_dtype_and_are_idempotent(comp):
    for dtype in DTYPES + [torch.bfloat16]:
        w = torch.randn(4, 3, 3, 3).to(dtype)
        delta, theta = comp.compress(w)
        assert delta.shape == w.shape and delta.dtype == dtype
        again, _ = comp.compress(delta)  # idempotent up to the rounding of the scale's mean
        assert torch.allclose(again.double(), delta.double(), rtol=4 * torch.finfo(dtype).eps, atol=0)
    assert torch.equal(ScaledTernarization().compress(torch.zeros(5))[0], torch.zeros(5))


def test_fixed_codebook_bits_and_bad_values():
    _, th = FixedCodebook((-1, 1)).compress(torch.randn(100))
    assert FixedCodebook((-1, 1)).bits(th) == 100
    _, th = FixedCodebook((-1, 0, 1)).compress(torch.randn(100))
    assert FixedCodebook((-1, 0, 1)).bits(th) == 200
    for bad in ((1, 1), (), (1e-50, 2e-50), (0, float("inf"))):  # 1e-50 and 2e-50 are both 0 in float32
        with pytest.raises(ValueError, match="non-empty, finite and distinct in float32"):
            FixedCodebook(bad)
    for bad in ("10", (True, False), None, (1, "2")):
        with pytest.raises(ValueError, match="values must be a sequence of numbers"):
            FixedCodebook(bad)
    assert FixedCodebook(torch.tensor([1.0, -1.0])).values == (-1.0, 1.0)


def test_fixed_codebook_plus_sparse_is_exact_against_brute_force():
    torch.manual_seed(7)
    c = (-1.0, 0.0, 1.0)
    for _ in range(10):
        w = 2 * torch.randn(6, dtype=torch.float64)
        for kappa in range(4):
            best = math.inf
            for keep in itertools.combinations(range(6), kappa):
                err = sum(min((float(w[i]) - v) ** 2 for v in c) for i in range(6) if i not in keep)
                best = min(best, err)
            add = AdditiveCombination((FixedCodebook(c), ConstraintL0Pruning(kappa=kappa)))
            delta, theta = add.compress(w)
            assert sq(w, delta) == pytest.approx(best, abs=1e-12)
            assert theta["1.indices"].numel() <= kappa

"""Quantization C steps (lcbook.compressions.quantization): feasibility, optimality against brute force on tiny inputs, invariants, bad input."""


import pytest
import torch
from helpers import ALL_DTYPES, DEVICES, DTYPES, MIXED, best_scaled, brute_kmeans, sq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lcbook.compressions import (
    AdaptiveQuantization,
    Binarization,
    FixedCodebook,
    ScaledBinarization,
    ScaledTernarization,
    kmeans_1d,
    optimal_quantization_1d,
)


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


@pytest.mark.parametrize("comp,levels", [(ScaledBinarization(), (-1, 1)), (ScaledTernarization(), (-1, 0, 1))])
def test_scaled_binary_and_ternary_optimal_on_tiny_inputs(comp, levels):
    torch.manual_seed(6)
    for _ in range(10):
        w = torch.randn(6, dtype=torch.float64)
        delta, theta = comp.compress(w)
        assert sq(w, delta) <= best_scaled(w, levels) + 1e-12
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


@given(
    st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=9),
    st.integers(1, 5),
)
@settings(deadline=None)
@example([0.0, 1.0, 2.0, 2.99e-21, 1.4e-30, -1.0], 5)  # a fresh clone's CI failure: a repeated level
def test_exact_quantization_matches_brute_force(values, k):
    x = torch.tensor(values, dtype=torch.float64)
    c, z = optimal_quantization_1d(x, k)
    assert c.numel() <= k and torch.all(c[1:] > c[:-1])
    assert sq(x, c[z]) <= brute_kmeans(values, k) + 1e-9 * (1 + float((x**2).sum()))


@given(MIXED, st.integers(1, 7), st.sampled_from(["kmeans", "exact"]), st.sampled_from([torch.float32, torch.float64]))
@settings(deadline=None)
@example([0.0, 1.0, 2.0, 2.99e-21, 1.4e-30, -1.0], 5, "exact", torch.float32)
@example([0.0, 1.0, 2.0, 2.99e-21, 1.4e-30, -1.0], 5, "kmeans", torch.float64)
@example([-1, 9.5e-14, -1, 6.2e-29, 4.6e-21, -82.0, 1.9e-29, -1, 0, 4.1e-9, 0], 6, "kmeans", torch.float32)  # crashed
@example([-1, 9.5e-14, -1, 6.2e-29, 4.6e-21, -82.0, 1.9e-29, -1, 0, 4.1e-9, 0], 6, "exact", torch.float64)
@example([0.0, 1.401298464324817e-45, 1.0], 2, "kmeans", torch.float32)  # explore: a subnormal mean rounds
@example([0.0, 1.0, 1.1202993327532955e-20, 1.3317846968999562e-20, 1.099730081261358e-20, -1.0], 5, "kmeans",
         torch.float32)  # explore: a cluster emptied by prefix-sum means left 4 levels
def test_quantization_levels_increase_strictly_and_are_their_members_means(values, k, method, dtype):
    x = torch.tensor(values, dtype=dtype)
    delta, theta = AdaptiveQuantization(k, method=method).compress(x)
    c, z = theta["codebook"], theta["assignments"]
    assert c.dtype == dtype and 1 <= c.numel() <= k and bool(torch.all(c[1:] > c[:-1]))
    assert c.numel() == min(k, len(set(x.tolist())))  # as many levels as the values allow
    assert torch.equal(delta, c[z])
    for j in range(c.numel()):
        members = x[z == j].double()
        assert members.numel() > 0, "every level serves some weight"
        mean = members.sum() / members.numel()
        # the mean of its members, to within the dtype's rounding of that mean (relative, and
        # absolute among the subnormal numbers)
        fi = torch.finfo(dtype)
        assert abs(float(c[j]) - float(mean)) <= 2 * fi.eps * float(members.abs().max()) + fi.tiny * fi.eps, (j, c, members)


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_cold_start_with_outliers_is_near_the_optimum(seed):
    # 1,000 small weights and three outliers: an equal-width histogram has fewer occupied bins
    # than K = 12, and the old fallback (equal-count groups) ended about 5% above the optimum.
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([0.01 * torch.randn(1000, generator=g), torch.tensor([5.0, 7.0, -6.0])])
    c, z = kmeans_1d(x, 12)
    ce, ze = optimal_quantization_1d(x, 12)
    assert sq(x, c[z]) <= 1.01 * sq(x, ce[ze])


def test_warm_kmeans_converges_without_sorting(monkeypatch):
    # A warm C step from a codebook near the optimum converges by Lloyd on the unsorted values
    # (the old code ran out of its 8 iterations on large layers and sorted everything).
    g = torch.Generator().manual_seed(0)
    x = 0.02 * torch.randn(300_000, generator=g)
    for k in (2, 4, 16):
        c, z = kmeans_1d(x, k)
        init = c * (1 + 0.01 * torch.randn(k, generator=g))

        real_sort = torch.sort

        def no_big_sort(t, *args, **kwargs):  # sorting the K levels is fine, sorting the weights is not
            if t.numel() > 1000:
                raise AssertionError("the warm start fell back to the sorted phase")
            return real_sort(t, *args, **kwargs)

        monkeypatch.setattr(torch, "sort", no_big_sort)
        cw, zw = kmeans_1d(x, k, init=init)
        monkeypatch.undo()
        assert sq(x, cw[zw]) <= sq(x, c[z]) * (1 + 1e-3)


@pytest.mark.parametrize("k", [2, 3, 8])
def test_exact_quantization_never_worse_than_kmeans(k):
    g = torch.Generator().manual_seed(k)
    for trial in range(5):
        x = torch.cat([torch.randn(300, generator=g), 4 + 0.1 * torch.randn(20, generator=g)]).double()
        c, z = optimal_quantization_1d(x, k)
        ck, zk = kmeans_1d(x, k)
        assert sq(x, c[z]) <= sq(x, ck[zk]) * (1 + 1e-12)


def test_exact_quantization_degenerate_inputs():
    assert optimal_quantization_1d(torch.zeros(7), 3)[0].tolist() == [0.0]  # constant: one level
    c, z = optimal_quantization_1d(torch.tensor([1.0, 1.0, 2.0, 2.0]), 4)  # fewer distinct values than K
    assert c.tolist() == [1.0, 2.0] and z.tolist() == [0, 0, 1, 1]
    c, z = optimal_quantization_1d(torch.tensor([3.0, -1.0]), 10)  # K larger than N
    assert sq(torch.tensor([3.0, -1.0]), c[z]) == 0.0
    with pytest.raises(ValueError, match="non-finite"):
        optimal_quantization_1d(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="k must be an int ≥ 1"):
        optimal_quantization_1d(torch.randn(4), 0)
    with pytest.raises(ValueError, match="method must be 'kmeans' or 'exact'"):
        AdaptiveQuantization(2, method="dp")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_exact_quantization_compression_keeps_shape_dtype_device(dtype, device):
    w = torch.randn(6, 5, 3, device=device).to(dtype)
    q = AdaptiveQuantization(4, method="exact")
    d, th = q.compress(w)
    assert d.shape == w.shape and d.dtype == dtype and d.device == w.device
    assert torch.unique(d).numel() <= 4
    assert torch.equal(q.decompress(th), d)
    d2, _ = q.compress(d)
    assert torch.equal(d2, d)  # idempotent


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_binarization(dtype, device):
    w = torch.randn(40, device=device).to(dtype)
    b = Binarization()
    d, th = b.compress(w)
    assert d.dtype == dtype and d.device == w.device
    assert set(d.float().unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(d, torch.where(w > 0, 1.0, -1.0).to(dtype))
    assert b.bits(th) == 40  # one bit per weight, no codebook
    assert torch.equal(b.compress(d)[0], d)
    with pytest.raises(TypeError):
        Binarization((0.0, 1.0))  # the levels of binarization are not a parameter

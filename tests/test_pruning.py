"""Pruning C steps and the sparse accounting (lcbook.compressions.pruning, coding): feasibility, optimality on tiny inputs, bad input."""

import itertools

import pytest
import torch
from helpers import (
    DEVICES,
    DTYPES,
    l1_projection_by_bisection,
    sparse_bits_reference,
    sq,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from lcbook.compressions import (
    ConstraintL0Pruning,
    ConstraintL1Pruning,
    PenaltyL0Pruning,
    PenaltyL1Pruning,
    project_l1_ball,
    sparse_bits,
)


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


@given(st.lists(st.integers(0, 5000), unique=True, max_size=60))
@settings(deadline=None)
def test_sparse_bits_matches_a_direct_count(idx):
    assert sparse_bits(torch.tensor(idx, dtype=torch.long)) == sparse_bits_reference(idx)


@given(st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=30), st.floats(0, 50))
@settings(deadline=None)
def test_l1_projection_feasible_and_optimal(values, radius):
    x = torch.tensor(values, dtype=torch.float64)
    p = project_l1_ball(x, radius)
    assert float(p.abs().sum()) <= radius * (1 + 1e-9) + 1e-12
    ref = l1_projection_by_bisection(x, radius)
    assert torch.allclose(p, ref, atol=1e-7)
    # no worse than feasible points we can name: 0, the scaled vector, a random feasible point
    l1 = float(x.abs().sum())
    named = [torch.zeros_like(x), x * min(1.0, radius / l1) if l1 > 0 else x]
    g = torch.Generator().manual_seed(len(values))
    r = torch.randn(x.shape, generator=g, dtype=torch.float64)
    named.append(r * (radius / float(r.abs().sum())) if float(r.abs().sum()) > 0 else r)
    for q in named:
        assert sq(x, p) <= sq(x, q) + 1e-9


def test_l1_pruning_compression():
    w = torch.tensor([[3.0, -1.0], [0.5, 0.25]])
    c = ConstraintL1Pruning(kappa=2.0)
    d, th = c.compress(w)
    assert d.shape == w.shape
    assert torch.allclose(d, torch.tensor([[2.0, 0.0], [0.0, 0.0]]))  # τ = 1: 3 → 2, the rest → 0
    assert th["indices"].tolist() == [0]
    assert torch.equal(c.decompress(th), d)
    assert torch.equal(c.compress(d)[0], d)  # inside the ball: unchanged
    assert torch.count_nonzero(ConstraintL1Pruning(kappa=0).compress(w)[0]) == 0
    assert torch.equal(ConstraintL1Pruning(kappa=100.0).compress(w)[0], w)
    for bad in (-1.0, float("inf")):
        with pytest.raises((ValueError, TypeError), match="kappa"):
            ConstraintL1Pruning(kappa=bad)


@given(
    st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=8),
    st.floats(0, 2), st.floats(0.01, 10),
)
@settings(deadline=None)
def test_l0_penalty_optimal_against_all_supports(values, alpha, mu):
    x = torch.tensor(values, dtype=torch.float64)
    d, th = PenaltyL0Pruning(alpha).compress(x, mu=mu)
    obj = alpha * int(torch.count_nonzero(d)) + mu / 2 * sq(x, d)
    n = len(values)
    best = min(
        alpha * len(s) + mu / 2 * sum(values[i] ** 2 for i in range(n) if i not in s)
        for size in range(n + 1) for s in itertools.combinations(range(n), size)
    )
    assert obj <= best + 1e-9
    assert torch.all((d == 0) | (d == x))  # kept weights are kept exactly


@given(
    st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=12),
    st.floats(0, 2), st.floats(0.01, 10), st.integers(0, 2**16),
)
@settings(deadline=None)
def test_l1_penalty_optimal(values, alpha, mu, seed):
    x = torch.tensor(values, dtype=torch.float64)
    d, _ = PenaltyL1Pruning(alpha).compress(x, mu=mu)

    def obj(t):
        return alpha * float(t.abs().sum()) + mu / 2 * sq(x, t)

    g = torch.Generator().manual_seed(seed)
    for _ in range(20):  # the objective is strictly convex: every perturbation is worse
        assert obj(d) <= obj(d + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)) + 1e-12
    assert obj(d) <= obj(torch.zeros_like(x)) + 1e-12 and obj(d) <= obj(x) + 1e-12


def test_penalty_thresholds_fall_as_mu_grows_and_need_mu():
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    for c in (PenaltyL0Pruning(0.01), PenaltyL1Pruning(0.01)):
        nnz = [int(torch.count_nonzero(c.compress(w, mu=mu)[0])) for mu in (0.01, 0.1, 1.0, 10.0)]
        assert nnz == sorted(nnz) and nnz[0] < nnz[-1]
        with pytest.raises(ValueError, match="pass mu > 0"):
            c.compress(w)
    assert PenaltyL0Pruning(0.5).threshold(4.0) == pytest.approx(0.5)
    assert PenaltyL1Pruning(0.5).threshold(4.0) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="alpha"):
        PenaltyL1Pruning(-1.0)


def test_l1_projection_refuses_non_finite_input():
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="non-finite"):
            project_l1_ball(torch.tensor([1.0, bad, 0.5]), 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        project_l1_ball(torch.tensor([1, 2]), 1.0)


@pytest.mark.parametrize("fraction, n, kappa", [
    (0.05, 10, 1),     # 0.5 rounds up (round-half-even kept 0 and emptied the layer)
    (0.25, 2, 1), (0.5, 3, 2), (0.15, 10, 2),  # halves round up
    (0.145, 100, 15),  # the decimal 0.145, not the float 0.14499999…
    (0.04, 10, 1), (1e-9, 10, 1),  # a positive fraction keeps at least one weight
    (0.0, 10, 0), (1.0, 7, 7), (0.3, 10, 3), (0.34, 10, 3), (0.36, 10, 4),
])
def test_kappa_from_a_fraction_rounds_half_up_and_never_empties_a_layer(fraction, n, kappa):
    p = ConstraintL0Pruning(fraction=fraction)
    assert p.kept(n) == kappa
    delta, theta = p.compress(torch.arange(1.0, n + 1))
    assert theta["indices"].numel() == kappa

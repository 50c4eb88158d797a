"""The contract every compression meets (lcbook.compressions.base): finite inputs, shapes, dtypes, devices, degenerate weights."""


import pytest
import torch
from helpers import ALL, ALL_DTYPES, DEVICES, numrank, sq
from hypothesis import given, settings
from hypothesis import strategies as st

from lcbook.compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    Binarization,
    ConstraintL0Pruning,
    ConstraintL1Pruning,
    FixedCodebook,
    LowRank,
    PenaltyL0Pruning,
    PenaltyL1Pruning,
    PruneThenQuantize,
    RankSelection,
    ScaledTernarization,
    SequentialCombination,
)


@pytest.mark.parametrize("comp", [AdaptiveQuantization(2), ConstraintL0Pruning(kappa=2), LowRank(1)])
def test_non_finite_weights_raise_before_compressing(comp):
    w = torch.randn(4, 4)
    w[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        comp.compress(w)


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


def test_non_finite_weights_raise_for_every_new_c_step():
    w = torch.tensor([[1.0, float("inf")], [0.0, 2.0]])
    for c in (AdaptiveQuantization(2, method="exact"), Binarization(), ConstraintL1Pruning(1.0),
              PenaltyL0Pruning(0.1), PenaltyL1Pruning(0.1), RankSelection(0.1)):
        with pytest.raises(ValueError, match="non-finite"):
            c.compress(w, mu=1.0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_new_c_steps_keep_shape_dtype_device(dtype, device):
    w = torch.randn(8, 6, device=device).to(dtype)
    for c in (ConstraintL1Pruning(3.0), PenaltyL0Pruning(0.05), PenaltyL1Pruning(0.05), RankSelection(0.01),
              ScaledTernarization(), FixedCodebook((-0.1, 0.0, 0.3)), LowRank(2), AdaptiveQuantization(3),
              AdaptiveQuantization(3, method="exact"), ConstraintL0Pruning(kappa=7), Binarization(),
              AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=3))),
              AdditiveCombination((FixedCodebook((-0.5, 0.5)), ConstraintL0Pruning(kappa=3))),
              AdditiveCombination((LowRank(1), PenaltyL1Pruning(0.01)))):
        d, th = c.compress(w, mu=1.0)
        assert d.shape == w.shape and d.dtype == dtype and d.device == w.device, c
        back = c.decompress(th).reshape(w.shape)
        assert back.dtype == dtype and torch.equal(back, d), c  # Δ(Θ) is exactly what the C step returned


@pytest.mark.parametrize("comp", ALL, ids=lambda c: c.describe())
@pytest.mark.parametrize("case", ["constant", "zeros", "one weight", "tiny"])
def test_degenerate_inputs_give_finite_feasible_results(comp, case):
    w = {"constant": torch.full((4, 3), 0.7), "zeros": torch.zeros(4, 3), "one weight": torch.full((1, 1), -2.0),
         "tiny": torch.tensor([[1e-30, -1e-30], [0.0, 1e-30]])}[case]
    if isinstance(comp, (ConstraintL0Pruning, PruneThenQuantize)) and comp.kappa is not None and comp.kappa > w.numel():
        with pytest.raises(ValueError, match="kappa"):
            comp.compress(w, mu=1.0)
        return
    d, th = comp.compress(w, mu=1.0)
    assert d.shape == w.shape and torch.isfinite(d).all()
    assert torch.equal(comp.decompress(th).reshape(w.shape), d)
    assert comp.bits(th) >= 0
    exact_on_constants = isinstance(comp, (AdaptiveQuantization, ScaledTernarization, LowRank, RankSelection,
                                           AdditiveCombination, SequentialCombination))\
        and not (isinstance(comp, LowRank) and comp.rank == 0)
    exact_on_constants |= isinstance(comp, (ConstraintL0Pruning, PruneThenQuantize)) and comp.fraction == 1.0
    if (case in ("constant", "one weight") and exact_on_constants) or (case == "zeros" and not isinstance(comp, Binarization)):
        assert sq(w, d) == pytest.approx(0.0, abs=1e-12)  # exactly representable: no error

"""The sequential pipelines the additive model is compared with: SequentialCombination (each part
fitted once, in order) and PruneThenQuantize (keep κ weights, quantize their values)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lcbook.compressions import (AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, LowRank,
                                 PruneThenQuantize, SequentialCombination, sparse_bits)
from lcbook.compressions.base import ceil_log2


def sq(a, b):
    return float(((a.double() - b.double()) ** 2).sum())


@given(seed=st.integers(0, 2**16), k=st.integers(1, 4), kappa=st.integers(0, 30))
@settings(deadline=None)
def test_sequential_is_each_part_once_in_order_and_never_beats_additive(seed, k, kappa):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(12, 10, generator=g, dtype=torch.float64)
    w[torch.rand(12, 10, generator=g) < 0.1] *= 8
    q, p = AdaptiveQuantization(k), ConstraintL0Pruning(kappa=kappa)
    seq = SequentialCombination((q, p))
    d, th = seq.compress(w)
    dq, tq = q.compress(w)
    dp, tp = p.compress(w - dq)
    assert torch.equal(d, dq + dp) and torch.equal(seq.decompress(th), d)
    assert seq.bits(th) == q.bits(tq) + p.bits(tp)
    da, _ = AdditiveCombination((q, p)).compress(w)
    assert sq(w, da) <= sq(w, d) * (1 + 1e-12) + 1e-12  # alternating starts from this point


def test_sequential_warm_start_uses_each_parts_previous_theta():
    w = torch.randn(30, 20, dtype=torch.float64)
    seq = SequentialCombination((LowRank(2), ConstraintL0Pruning(fraction=0.05)))
    d1, th1 = seq.compress(w)
    d2, th2 = seq.compress(w, th1)
    assert torch.allclose(d1, d2) and set(th2) == set(th1)
    assert " then " in seq.describe()
    with pytest.raises(ValueError, match="at least two"):
        SequentialCombination((LowRank(2),))
    with pytest.raises(TypeError, match=r"parts\[1\]"):
        SequentialCombination((LowRank(2), "P"))


@given(seed=st.integers(0, 2**16), k=st.integers(1, 5), frac=st.floats(0, 1))
@settings(deadline=None)
def test_prune_then_quantize_is_feasible_and_prunes_the_largest(seed, k, frac):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(200, generator=g)
    c = PruneThenQuantize(k, fraction=frac)
    d, th = c.compress(w)
    kappa = ConstraintL0Pruning(fraction=frac).kept(200)
    nz = torch.nonzero(d).flatten()
    assert nz.numel() <= kappa and th["indices"].numel() == kappa
    assert set(nz.tolist()) <= set(th["indices"].tolist())
    assert th["codebook"].numel() <= k and torch.unique(d[th["indices"]]).numel() <= k
    if kappa:  # the kept positions are the κ largest |w|
        assert float(w.abs()[th["indices"]].min()) >= float(w.abs().sort(descending=True).values[kappa - 1])
    assert torch.equal(c.decompress(th), d)
    kk = th["codebook"].numel()
    assert c.bits(th) == sparse_bits(th["indices"], value_bits=ceil_log2(kk + 1)) + 32 * kk
    assert c.macs(th, positions=3) == 3 * kappa


def test_prune_then_quantize_warm_start_and_validation():
    w = torch.randn(500)
    c = PruneThenQuantize(4, kappa=50)
    d1, th1 = c.compress(w)
    d2, th2 = c.compress(w, th1)
    assert torch.equal(d1, d2)  # the codebook of a converged k-means is a fixed point
    flipped = {**th1, "codebook": th1["codebook"].flip(0), "assignments": th1["codebook"].numel() - 1 - th1["assignments"]}
    assert torch.equal(c.decompress(c.canonical(flipped)), d1)
    with pytest.raises(ValueError, match="exactly one of kappa"):
        PruneThenQuantize(2)
    with pytest.raises(ValueError, match="k must be ≥ 1"):
        PruneThenQuantize(0, kappa=3)
    with pytest.raises(ValueError, match="larger than the number of weights"):
        PruneThenQuantize(2, kappa=600).compress(w)

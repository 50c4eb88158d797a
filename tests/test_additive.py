"""The sequential pipelines the additive model is compared with: SequentialCombination (each part
fitted once, in order) and PruneThenQuantize (keep κ weights, quantize their values)."""

import itertools
import math

import pytest
import torch
from helpers import numrank, sq
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
    PruneThenQuantize,
    SequentialCombination,
    sparse_bits,
)
from lcbook.compressions.base import ceil_log2


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


@pytest.mark.parametrize("parts", [
    (LowRank(2), PenaltyL0Pruning(1e-3)),
    (AdaptiveQuantization(2, method="exact"), ConstraintL1Pruning(2.0)),
    (Binarization(), ConstraintL0Pruning(kappa=5)),
    (AdaptiveQuantization(2), LowRank(1), ConstraintL0Pruning(kappa=4)),
])
def test_additive_with_new_parts(parts):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(10, 12, generator=g, dtype=torch.float64)
    comb = AdditiveCombination(parts, max_sweeps=30)
    d, th = comb.compress(w, mu=1.0)
    errs = th["sweep_errors"]
    assert torch.all(errs[1:] <= errs[:-1] + 1e-12)
    assert sq(w, d) == pytest.approx(float(errs[-1]), rel=1e-9, abs=1e-12)
    assert torch.allclose(comb.decompress(th).reshape(w.shape), d)
    assert comb.bits(th) == sum(p.bits({k[2:]: v for k, v in th.items() if k.startswith(f"{i}.")})
                                for i, p in enumerate(parts))


@pytest.mark.parametrize("seed", range(8))
def test_additive_cold_start_never_worse_than_either_sequential_order(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 50, generator=g, dtype=torch.float64)
    w[torch.rand(40, 50, generator=g) < 0.05] *= 10  # outliers the sparse part should take
    for first, second in [(AdaptiveQuantization(2), ConstraintL0Pruning(kappa=100)), (LowRank(3), ConstraintL0Pruning(kappa=100))]:
        d, _ = AdditiveCombination((first, second)).compress(w)
        for a, b in [(first, second), (second, first)]:
            da, _ = a.compress(w)
            db, _ = b.compress(w - da)
            assert sq(w, d) <= sq(w, da + db) + 1e-9

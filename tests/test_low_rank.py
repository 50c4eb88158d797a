"""Low-rank C steps (lcbook.compressions.low_rank): optimality, rank selection, conv views, bad input."""

import pytest
import torch
from helpers import DEVICES, DTYPES, numrank, sq
from torch import nn

from lcbook import LCAlgorithm, Task
from lcbook.compressions import AdditiveCombination, LowRank, RankSelection


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


@pytest.mark.parametrize("cost,positions", [("storage", 1), ("flops", 64)])
@pytest.mark.parametrize("mu", [1e-3, 1e-1, 10.0])
def test_rank_selection_optimal_over_all_ranks(cost, positions, mu):
    g = torch.Generator().manual_seed(1)
    w = (torch.randn(9, 4, generator=g) @ torch.randn(4, 7, generator=g) + 0.1 * torch.randn(9, 7, generator=g)).double()
    rs = RankSelection(alpha=1e-3, cost=cost, positions=positions)
    d, th = rs.compress(w, mu=mu)
    r = th["U"].shape[1]
    scale = positions if cost == "flops" else 1

    def obj(rr):
        dr = LowRank(rr).compress(w)[0]
        return 1e-3 * scale * min(rr * 16, 63) + mu / 2 * sq(w, dr)

    assert obj(r) <= min(obj(rr) for rr in range(8)) + 1e-9
    assert torch.allclose(d, LowRank(r).compress(w)[0])
    assert rs.bits(th) == 32 * min(r * 16, 63)


def test_rank_selection_rank_rises_with_mu_and_falls_with_alpha():
    w = torch.randn(30, 20, generator=torch.Generator().manual_seed(2))
    ranks = [RankSelection(0.01).compress(w, mu=mu)[1]["U"].shape[1] for mu in (1e-3, 1e-2, 1e-1, 1, 10)]
    assert ranks == sorted(ranks) and ranks[0] < ranks[-1]
    assert RankSelection(0.0).compress(w, mu=1.0)[1]["U"].shape[1] == 20  # no cost: keep it all
    assert RankSelection(1e9).compress(w, mu=1.0)[1]["U"].shape[1] == 0
    with pytest.raises(ValueError, match="cost must be one of"):
        RankSelection(0.1, cost="time")
    with pytest.raises(ValueError, match="positions must be ≥ 1"):
        RankSelection(0.1, positions=0)
    with pytest.raises(ValueError, match="pass mu > 0"):
        RankSelection(0.1).compress(w)


@pytest.mark.parametrize("groups", [1, 2, 8])  # 8 = depthwise
@pytest.mark.parametrize("view", ["matrix", "matrix_hw"])
def test_low_rank_views_of_conv_weights(groups, view):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=groups, padding=1))
    before = model[0].weight.detach().clone()
    lc = LCAlgorithm(model, [Task("0.weight", LowRank(2), view=view)], l_step=lambda lc: {},
                     mu_schedule=[1.0], progress=False)
    b = lc.tasks[0]
    o, i, kh, kw = before.shape
    w = b.gather()
    assert w.shape == ((o, i * kh * kw) if view == "matrix" else (o * kh, i * kw))
    assert torch.equal(b.scatter(w)[0], before)  # the view round-trips exactly
    lc.direct_compression()
    assert torch.linalg.matrix_rank(b.delta.double(), rtol=1e-5) <= 2  # rank at float32 precision
    with lc.compressed() as m:
        # the model holds Δ(Θ) mapped back from the view; its own view has rank ≤ 2 again
        assert torch.allclose(b.gather(), b.delta)
        assert m[0].weight.shape == before.shape
    assert torch.equal(model[0].weight.detach(), before)


def test_matrix_hw_view_rejects_non_conv_weights():
    with pytest.raises(ValueError, match="matrix_hw"):
        LCAlgorithm(nn.Linear(4, 3), [Task("weight", LowRank(1), view="matrix_hw")], l_step=lambda lc: {},
                    mu_schedule=[1.0], progress=False)

"""The rest of the C-step catalogue: exact quantization, binarization, ℓ1 projection, penalty
pruning, rank selection, the (n_out·k, n_in·k) conv view, per-layer storage and MACs.

Each C step is checked for feasibility, optimality against brute force on tiny inputs, being no
worse than feasible points we can name, degenerate inputs, and shape/dtype/device."""

import itertools
import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from lcbook import LCAlgorithm, Task, layer_positions, storage_report
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
    RankSelection,
    ScaledTernarization,
    PruneThenQuantize,
    SequentialCombination,
    kmeans_1d,
    optimal_quantization_1d,
    project_l1_ball,
)
from lcbook.models import build

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64, torch.bfloat16]


def sq(a, b):
    return float(((a.double() - b.double()) ** 2).sum())


# --- exact 1-D quantization ----------------------------------------------------------------


def brute_kmeans(values, k):
    """Smallest squared error over every split of the sorted values into k contiguous runs."""
    xs = sorted(values)
    n = len(xs)
    if len(set(xs)) <= k:
        return 0.0
    best = math.inf
    for cuts in itertools.combinations(range(1, n), k - 1):
        b = [0, *cuts, n]
        err = 0.0
        for lo, hi in zip(b, b[1:]):
            seg = xs[lo:hi]
            m = sum(seg) / len(seg)
            err += sum((v - m) ** 2 for v in seg)
        best = min(best, err)
    return best


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


# Values of very different magnitudes side by side, with repeats: where cluster means taken as
# differences of prefix sums lose the tiny values entirely.
_MIXED = st.lists(st.one_of(st.floats(-100, 100, width=32), st.floats(-2.0**-66, 2.0**-66, width=32),
                            st.sampled_from([0.0, -1.0, 1.0, 1e-30])), min_size=1, max_size=14)


@given(_MIXED, st.integers(1, 7), st.sampled_from(["kmeans", "exact"]), st.sampled_from([torch.float32, torch.float64]))
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
    import lcbook.compressions.quantization as q

    g = torch.Generator().manual_seed(0)
    x = 0.02 * torch.randn(300_000, generator=g)
    for k in (2, 4, 16):
        c, z = kmeans_1d(x, k)
        init = c * (1 + 0.01 * torch.randn(k, generator=g))

        def no_sort(*args):
            raise AssertionError("the warm start fell back to the sorted phase")

        monkeypatch.setattr(q, "_kmeans_sorted", no_sort)
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


@pytest.mark.parametrize("dtype", DTYPES)
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


# --- binarization --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
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


# --- ℓ1-constraint pruning -------------------------------------------------------------------


def l1_projection_by_bisection(x, radius):
    """An independent reference: bisection on the threshold τ of sign(x)·max(|x| − τ, 0)."""
    a = x.abs().double()
    if float(a.sum()) <= radius:
        return x.double()
    lo, hi = 0.0, float(a.max())
    for _ in range(200):
        tau = (lo + hi) / 2
        if float((a - tau).clamp(min=0).sum()) > radius:
            lo = tau
        else:
            hi = tau
    return torch.sign(x.double()) * (a - hi).clamp(min=0)


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


# --- penalty pruning ---------------------------------------------------------------------------


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


def test_lc_passes_mu_to_penalty_c_steps():
    torch.manual_seed(0)
    model = nn.Linear(30, 20)
    lc = LCAlgorithm(model, [Task("weight", PenaltyL0Pruning(1e-3))], l_step=lambda lc: {},
                     mu_schedule=[0.1, 1.0, 10.0], progress=False)
    lc.direct_compression()  # direct compression uses the first μ of the schedule
    expected = int((model.weight.detach() ** 2 > 2e-3 / 0.1).sum())
    assert int(torch.count_nonzero(lc.tasks[0].delta)) == expected
    hist = lc.run()
    assert int(torch.count_nonzero(lc.tasks[0].delta)) >= expected
    assert len(hist) == 4


# --- rank selection -----------------------------------------------------------------------------


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


# --- views: grouped, depthwise and the (n_out·k, n_in·k) reshape ----------------------------------


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


# --- combinations with the new parts ------------------------------------------------------------


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


def test_non_finite_weights_raise_for_every_new_c_step():
    w = torch.tensor([[1.0, float("inf")], [0.0, 2.0]])
    for c in (AdaptiveQuantization(2, method="exact"), Binarization(), ConstraintL1Pruning(1.0),
              PenaltyL0Pruning(0.1), PenaltyL1Pruning(0.1), RankSelection(0.1)):
        with pytest.raises(ValueError, match="non-finite"):
            c.compress(w, mu=1.0)


@pytest.mark.parametrize("dtype", DTYPES)
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


# --- storage and MACs ---------------------------------------------------------------------------


def test_per_layer_storage_adds_up_and_macs_of_low_rank():
    torch.manual_seed(0)
    model = build("resnet20")
    tasks = [
        Task("layer1.0.conv1.weight", LowRank(3)),
        Task("layer2.0.conv1.weight", LowRank(3), view="matrix_hw"),
        Task(("layer3.0.conv1.weight", "layer3.0.conv2.weight"), AdaptiveQuantization(2)),
        Task("layer3.1.conv1.weight", ConstraintL0Pruning(fraction=0.1)),
    ]
    lc = LCAlgorithm(model, tasks, l_step=lambda lc: {}, mu_schedule=[1.0], progress=False)
    lc.direct_compression()
    rep = storage_report(lc, torch.zeros(1, 3, 32, 32))
    assert sum(r["bits"] for r in rep["layers"]) == pytest.approx(rep["total_bits"])
    assert sum(r["weights"] for r in rep["layers"]) == sum(p.numel() for p in model.parameters())
    by = {r["param"]: r for r in rep["layers"]}
    assert by["layer1.0.conv1.weight"]["macs"] == 32 * 32 * 3 * (16 + 16 * 9)
    assert by["layer1.0.conv1.weight"]["reference_macs"] == 32 * 32 * 16 * 16 * 9
    assert by["layer2.0.conv1.weight"]["macs"] == 16 * 16 * 3 * (32 * 3 + 16 * 3)  # stride 2: 16×16 outputs
    assert by["layer3.0.conv1.weight"]["shared"] and by["layer3.0.conv1.weight"]["macs"] == by["layer3.0.conv1.weight"]["reference_macs"]
    kept = int(lc.tasks[3].theta["indices"].numel())
    assert by["layer3.1.conv1.weight"]["macs"] == 8 * 8 * kept
    assert by["bn1.weight"]["task"] is None and by["bn1.weight"]["bits"] == 32 * 16
    assert rep["macs"] < rep["reference_macs"]


def test_macs_of_one_kappa_over_several_layers_count_each_layers_kept_weights():
    torch.manual_seed(0)
    model = build("resnet20")
    names = ("layer3.0.conv2.weight", "layer3.1.conv1.weight")
    lc = LCAlgorithm(model, [Task(names, ConstraintL0Pruning(fraction=0.05))], l_step=lambda lc: {},
                     mu_schedule=[1.0], progress=False)
    lc.direct_compression()
    by = {r["param"]: r for r in storage_report(lc, torch.zeros(1, 3, 32, 32))["layers"]}
    kept = [int(torch.count_nonzero(t)) for t in lc.tasks[0].scatter(lc.tasks[0].delta)]
    assert [by[n]["macs"] for n in names] == [64 * k for k in kept]
    assert sum(kept) == round(0.05 * 2 * 36864)


def test_layer_positions():
    model = build("resnet20")
    pos = layer_positions(model, torch.zeros(2, 3, 32, 32))
    assert pos["conv1.weight"] == 1024 and pos["layer2.0.conv1.weight"] == 256
    assert pos["layer3.2.conv2.weight"] == 64 and pos["fc.weight"] == 1
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="example_input"):
        layer_positions(model, torch.zeros(()))


# --- every compression: degenerate inputs and state round trips -----------------------------------

ALL = [
    AdaptiveQuantization(3), AdaptiveQuantization(3, method="exact"), Binarization(), FixedCodebook((-1, 0, 1)),
    ScaledTernarization(), ConstraintL0Pruning(kappa=2), ConstraintL0Pruning(fraction=1.0), ConstraintL0Pruning(kappa=0),
    ConstraintL1Pruning(0.5), PenaltyL0Pruning(0.01), PenaltyL1Pruning(0.01), LowRank(0), LowRank(1), LowRank(99),
    RankSelection(0.01), RankSelection(0.01, cost="flops", positions=16),
    AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=1))),
    AdditiveCombination((LowRank(1), ConstraintL0Pruning(kappa=1))),
    AdditiveCombination((AdaptiveQuantization(2), LowRank(1), PenaltyL0Pruning(0.01))),
    SequentialCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=1))),
    SequentialCombination((LowRank(1), ConstraintL0Pruning(kappa=1))),
    PruneThenQuantize(2, kappa=2), PruneThenQuantize(3, fraction=1.0),
]


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


@pytest.mark.parametrize("comp", [c for c in ALL if not c.needs_matrix], ids=lambda c: c.describe())
def test_lc_state_round_trips_through_a_file_for_every_compression(comp, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    task = Task(("0.weight", "2.weight"), comp)
    lc = LCAlgorithm(model, [task], l_step=lambda lc: {}, mu_schedule=[0.5, 1.0], progress=False)
    lc.run()
    torch.save(lc.state_dict(), tmp_path / "lc.pt")
    model2 = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    lc2 = LCAlgorithm(model2, [task], l_step=lambda lc: {}, mu_schedule=[0.5, 1.0], progress=False)
    lc2.load_state_dict(torch.load(tmp_path / "lc.pt", weights_only=True))
    assert torch.equal(lc2.tasks[0].delta, lc.tasks[0].delta)
    assert lc2.compressed_bits() == lc.compressed_bits()
    x = torch.randn(3, 6)
    with lc.compressed() as m1, lc2.compressed() as m2:
        assert torch.equal(m1(x), m2(x))


@pytest.mark.parametrize("comp", [c for c in ALL if c.needs_matrix], ids=lambda c: c.describe())
def test_lc_state_round_trips_for_matrix_compressions(comp, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    task = Task("0.weight", comp)
    lc = LCAlgorithm(model, [task], l_step=lambda lc: {}, mu_schedule=[0.5, 1.0], progress=False)
    lc.run()
    torch.save(lc.state_dict(), tmp_path / "lc.pt")
    model2 = nn.Sequential(nn.Conv2d(3, 4, 3))
    lc2 = LCAlgorithm(model2, [task], l_step=lambda lc: {}, mu_schedule=[0.5, 1.0], progress=False)
    lc2.load_state_dict(torch.load(tmp_path / "lc.pt", weights_only=True))
    assert torch.equal(lc2.tasks[0].delta, lc.tasks[0].delta)


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


def test_macs_count_every_use_of_a_tied_weight():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 6, bias=False)
            self.b = nn.Linear(6, 6, bias=False)
            self.b.weight = self.a.weight  # one tensor, two layers

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    torch.manual_seed(0)
    m = Tied()
    assert layer_positions(m, torch.zeros(1, 6)) == {"a.weight": 2}
    lc = LCAlgorithm(m, [Task("a.weight", ConstraintL0Pruning(kappa=10))], l_step=lambda lc: {},
                     mu_schedule=[1.0])
    lc.direct_compression()
    rep = storage_report(lc, torch.zeros(1, 6))
    assert rep["reference_macs"] == 2 * 36 and rep["macs"] == 2 * 10

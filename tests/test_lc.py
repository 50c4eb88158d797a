"""The LC algorithm on tiny models: convergence to feasibility, tasks, state, bad input."""

import io

import pytest
import torch
from helpers import ALL, Interrupted, final_state, make_run
from torch import nn

from lcbook import LCAlgorithm, SGDLStep, Task, geometric_mu, storage_report, train
from lcbook.compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    ConstraintL0Pruning,
    LowRank,
    PenaltyL0Pruning,
)
from lcbook.models import LeNet300, resnet20


class Regression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(10, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 10, generator=g)
    teacher = Regression()
    with torch.no_grad():
        y = teacher(x) + 0.01 * torch.randn(256, 3, generator=g)
    torch.manual_seed(seed)
    model = Regression()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(300):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return model, x, y


def _l_step(x, y, iters=100, lr=1e-2):
    def l_step(lc):
        opt = torch.optim.Adam(lc.model.parameters(), lr)
        for _ in range(iters):
            opt.zero_grad()
            loss = ((lc.model(x) - y) ** 2).mean() + lc.penalty()
            loss.backward()
            opt.step()
        return {"train_loss": float(loss.detach())}

    return l_step


def _tasks():
    return [
        Task("a.weight", AdaptiveQuantization(2)),
        Task("b.weight", AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=3)))),
    ]


@pytest.mark.parametrize("multipliers", [True, False])
def test_lc_reaches_feasibility_and_beats_direct_compression(multipliers):
    model, x, y = _problem()
    mse = lambda m: {"mse": float(((m(x) - y) ** 2).mean())}
    lc = LCAlgorithm(model, _tasks(), _l_step(x, y), geometric_mu(1e-2, 2.0, 14), evaluate=mse,
                     multipliers=multipliers, progress=False)
    hist = lc.run()
    assert hist[0]["step"] == "DC" and len(hist) == 15
    assert hist[-1]["distance"] < 1e-3 * max(hist[1]["distance"], 1e-12) + 1e-6
    assert hist[-1]["mse"] < hist[0]["mse"]  # LC beats direct compression
    with lc.compressed() as m:
        assert torch.unique(m.a.weight).numel() <= 2
    # Feasibility of the additive task's parts.
    th = lc.tasks[1].theta
    assert th["0.codebook"].numel() <= 2 and th["1.indices"].numel() <= 3


def test_compressed_context_restores_weights_and_buffers_even_on_error():
    model = resnet20()
    tasks = [Task("layer1.0.conv1.weight", AdaptiveQuantization(2))]
    lc = LCAlgorithm(model, tasks, lambda lc: {}, [1.0], progress=False)
    lc.direct_compression()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        with lc.compressed() as m:
            assert torch.unique(m.layer1[0].conv1.weight).numel() <= 2
            m.bn1.running_mean.add_(1.0)
            raise RuntimeError("boom")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_joint_task_shares_one_codebook_and_one_kappa_across_layers():
    model = LeNet300()
    names = ["fc1.weight", "fc2.weight", "fc3.weight"]
    lc = LCAlgorithm(model, [Task(names, AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(fraction=0.01))))],
                     lambda lc: {}, [1.0], progress=False)
    lc.direct_compression()
    with lc.compressed() as m:
        ws = torch.cat([m.fc1.weight.flatten(), m.fc2.weight.flatten(), m.fc3.weight.flatten()])
    n = ws.numel()
    th = lc.tasks[0].theta
    assert th["0.codebook"].numel() == 2
    assert th["1.indices"].numel() == round(0.01 * n)
    # Every weight is a codebook value plus (for at most κ of them) a sparse correction.
    c = th["0.codebook"]
    off = (ws[:, None] - c[None]).abs().min(1).values > 0
    assert int(off.sum()) <= th["1.indices"].numel()


def test_low_rank_task_views_conv_as_matrix():
    model = resnet20()
    lc = LCAlgorithm(model, [Task("layer2.0.conv2.weight", LowRank(4))], lambda lc: {}, [1.0], progress=False)
    lc.direct_compression()
    assert lc.tasks[0].theta["U"].shape == (32, 4) and lc.tasks[0].theta["V"].shape == (4, 32 * 9)
    with lc.compressed() as m:
        w = m.layer2[0].conv2.weight
        assert w.shape == (32, 32, 3, 3)
        assert int(torch.linalg.matrix_rank(w.reshape(32, -1), rtol=1e-4)) <= 4


def test_storage_report_counts_every_parameter():
    model = LeNet300()
    lc = LCAlgorithm(model, [Task(["fc1.weight", "fc2.weight", "fc3.weight"], AdaptiveQuantization(2))],
                     lambda lc: {}, [1.0], progress=False)
    lc.direct_compression()
    rep = storage_report(lc)
    n_w = 784 * 300 + 300 * 100 + 100 * 10
    assert rep["compressed_bits"] == n_w * 1 + 2 * 32
    assert rep["uncompressed_params"] == 300 + 100 + 10
    assert rep["reference_bits"] == 32 * 266610
    assert rep["ratio"] == pytest.approx(32 * 266610 / (n_w + 64 + 32 * 410))


def test_state_dict_round_trip_and_resume_gives_same_result():
    model, x, y = _problem(1)
    mus = geometric_mu(1e-2, 2.0, 6)

    def make(m):
        return LCAlgorithm(m, _tasks(), _l_step(x, y, iters=20), mus, progress=False)

    torch.manual_seed(0)
    full = make(Regression())
    full.model.load_state_dict(model.state_dict())
    full.run()

    part = make(Regression())
    part.model.load_state_dict(model.state_dict())
    part.mu_schedule = mus[:3]
    part.run()
    buf = io.BytesIO()
    torch.save(part.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    resumed = make(Regression())
    resumed.load_state_dict(state)
    assert resumed.step == 2
    resumed.run()
    assert [r["step"] for r in resumed.history] == ["DC", 0, 1, 2, 3, 4, 5]
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_bad_arguments_name_the_argument():
    model = LeNet300()
    ok = lambda lc: {}
    with pytest.raises(ValueError, match="tasks is empty"):
        LCAlgorithm(model, [], ok, [1.0])
    with pytest.raises(ValueError, match="no parameter named 'fc9.weight'"):
        LCAlgorithm(model, [Task("fc9.weight", AdaptiveQuantization(2))], ok, [1.0])
    with pytest.raises(ValueError, match="kappa=10000 is larger than the number of weights"):
        LCAlgorithm(model, [Task("fc3.weight", ConstraintL0Pruning(kappa=10000))], ok, [1.0])
    with pytest.raises(ValueError, match="'fc1.weight' is in two tasks"):
        LCAlgorithm(model, [Task("fc1.weight", AdaptiveQuantization(2)), Task("fc1.weight", LowRank(2))], ok, [1.0])
    with pytest.raises(ValueError, match="mu_schedule must not decrease"):
        LCAlgorithm(model, [Task("fc1.weight", AdaptiveQuantization(2))], ok, [2.0, 1.0])
    with pytest.raises(ValueError, match="params must name at least one parameter"):
        Task([], AdaptiveQuantization(2))
    with pytest.raises(ValueError, match="view must be one of"):
        Task("fc1.weight", AdaptiveQuantization(2), view="cube")
    with pytest.raises(ValueError, match="mu0 must be a finite number > 0, got mu0=0"):
        geometric_mu(0, 1.1, 3)
    with pytest.raises(RuntimeError, match="no Θ yet"):
        with LCAlgorithm(model, [Task("fc1.weight", AdaptiveQuantization(2))], ok, [1.0]).compressed():
            pass


def test_penalty_gradient_matches_autograd():
    model, x, y = _problem(2)
    lc = LCAlgorithm(model, _tasks(), lambda lc: {}, [0.5], progress=False)
    lc.direct_compression()
    lc.mu = 0.5
    for b in lc.tasks:
        b.lam.normal_()  # λ changed in place: the penalty must read it (targets are computed on demand)
    model.zero_grad()
    lc.penalty().backward()
    auto = [p.grad.clone() for p in (model.a.weight, model.b.weight)]
    model.zero_grad()
    lc.add_penalty_grad_()  # no .grad yet: the gradient is set
    for a, p in zip(auto, (model.a.weight, model.b.weight)):
        assert torch.allclose(a, p.grad, atol=1e-6)
    model.zero_grad(set_to_none=False)
    for p in (model.a.weight, model.b.weight):
        p.grad.fill_(1.0)
    lc.add_penalty_grad_()  # a .grad from the loss: the gradient is added to it
    for a, p in zip(auto, (model.a.weight, model.b.weight)):
        assert torch.allclose(a + 1.0, p.grad, atol=1e-6)


# --- regressions found by trying to break the API ----------------------------------------


def _lin_lc(tasks=None, **kw):
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    tasks = tasks or [Task("0.weight", AdaptiveQuantization(2))]
    return LCAlgorithm(model, tasks, lambda lc: {}, [1.0, 2.0, 4.0], progress=False, **kw)


def test_warm_started_codebook_grows_back_to_k():
    lc = _lin_lc([Task("0.weight", AdaptiveQuantization(4))])
    with torch.no_grad():
        lc.model[0].weight.copy_(torch.where(lc.model[0].weight > 0, 0.1, -0.1))  # 2 distinct values at DC

    def l_step(lc):
        with torch.no_grad():
            lc.model[0].weight.add_(0.05 * torch.randn_like(lc.model[0].weight))
        return {}

    lc.l_step = l_step
    lc.run()
    assert lc.tasks[0].theta["codebook"].numel() == 4


def test_load_state_dict_checks_before_changing_anything():
    a = _lin_lc()
    a.run()
    b = _lin_lc([Task("0.weight", ConstraintL0Pruning(kappa=2))])
    b.direct_compression()
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    with pytest.raises(ValueError, match="Θ does not fit"):
        b.load_state_dict(a.state_dict())
    assert b.step == -1 and all(torch.equal(v, before[k]) for k, v in b.model.state_dict().items())
    c = _lin_lc()
    bad = a.state_dict()
    bad["lambdas"][0] = torch.zeros(5)
    with pytest.raises(ValueError, match=r"λ is \(5,\) torch.float32, expected \(12,\)"):
        c.load_state_dict(bad)
    bad = a.state_dict()
    bad["step"] = 99
    with pytest.raises(ValueError, match="outside this run's μ schedule"):
        c.load_state_dict(bad)
    with pytest.raises(ValueError, match="lacks the keys"):
        c.load_state_dict({})
    for key, value, match in [("step", "1", "must be an int"), ("step", 1.9, "must be an int"),
                              ("rng", {"torch": torch.zeros(5, dtype=torch.uint8)}, "not a torch RNG state"),
                              ("mu", "abc", "mu must be a number"), ("mu", None, "mu must be a number"),
                              ("lambdas", [torch.zeros(12, dtype=torch.float64)], "expected \\(12,\\) torch.float32"),
                              ("thetas", [None], "no Θ, but the state is at LC step"),
                              ("history", [], "a state at LC step"), ("model", {"0.weight": 3}, "dict of tensors"),
                              ("seconds", -1.0, "seconds=-1.0 must be"), ("seconds", "1", "seconds='1' must be")]:
        bad = a.state_dict()
        bad[key] = value
        with pytest.raises(ValueError, match=match):
            c.load_state_dict(bad)
        assert c.step == -1 and c.history == []


def test_load_state_dict_refuses_a_bad_l_step_state_without_changing_anything():
    a = _lin_lc()
    a.direct_compression()
    c = _lin_lc()
    batches = [(torch.randn(4, 5), torch.randint(0, 3, (4,)))]
    c.l_step = SGDLStep(batches, epochs=1, lr=0.1)
    bad = a.state_dict()
    bad["l_step"] = {"generator": torch.zeros(3, dtype=torch.uint8)}
    with pytest.raises(ValueError, match="l_step"):
        c.load_state_dict(bad)
    assert c.step == -1 and c.history == []


def test_load_state_dict_refuses_a_transposed_low_rank_theta():
    from lcbook import LowRank
    a = _lin_lc([Task("0.weight", LowRank(1))])
    a.direct_compression()
    bad = a.state_dict()
    th = bad["thetas"][0]
    bad["thetas"][0] = {"U": th["V"].t().contiguous(), "V": th["U"].t().contiguous()}
    c = _lin_lc([Task("0.weight", LowRank(1))])
    with pytest.raises(ValueError, match="decompresses to shape"):
        c.load_state_dict(bad)


def test_penalty_after_direct_compression_is_finite():
    lc = _lin_lc()
    lc.direct_compression()
    assert torch.isfinite(lc.penalty())


def test_methods_before_direct_compression_raise_clearly():
    lc = _lin_lc()
    for f in (lc.distance, lc.compressed_bits, lc.penalty, lc.add_penalty_grad_, lc.apply_compression_):
        with pytest.raises(RuntimeError, match="no Θ yet"):
            f()


def test_reserved_history_keys_are_refused():
    lc = LCAlgorithm(nn.Linear(4, 3), [Task("weight", AdaptiveQuantization(2))], lambda lc: {"mu": 1.0}, [1.0], progress=False)
    with pytest.raises(ValueError, match="reserved history keys"):
        lc.run()


def test_compressed_restores_every_parameter_and_the_mode():
    lc = _lin_lc()
    lc.direct_compression()
    lc.model.train()
    before = {k: v.clone() for k, v in lc.model.state_dict().items()}
    with lc.compressed() as m:
        m[2].weight.data.add_(100.0)  # not in any task
        m.eval()
    assert lc.model.training
    assert all(torch.equal(v, before[k]) for k, v in lc.model.state_dict().items())


def test_low_rank_on_a_bias_is_refused_and_errors_name_the_task():
    with pytest.raises(ValueError, match="≥ 2 dimensions"):
        _lin_lc([Task("0.bias", LowRank(1))])
    lc = _lin_lc()
    with torch.no_grad():
        lc.model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="task '0.weight': w has 1 non-finite"):
        lc.direct_compression()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_additive_sweep_errors_never_increase_in_half_precision(dtype):
    torch.manual_seed(8)
    for _ in range(10):
        w = torch.randn(6, 5).to(dtype)
        _, th = AdditiveCombination((AdaptiveQuantization(2), AdaptiveQuantization(2))).compress(w)
        e = th["sweep_errors"]
        assert bool((e[1:] <= e[:-1]).all()), e


def test_integer_weights_are_refused():
    with pytest.raises(TypeError, match="floating-point tensor, got dtype=torch.int64"):
        AdaptiveQuantization(2).compress(torch.arange(4))


def test_recalibrate_bn_restores_momentum_and_mode():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2, momentum=0.3))
    net.eval()
    x = torch.randn(8, 1, 5, 5) * 3 + 1
    train.recalibrate_bn(net, [(x, None)], max_batches=4)
    bn = net[1]
    assert bn.momentum == 0.3 and not net.training
    y = net[0](x)
    assert torch.allclose(bn.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.num_batches_tracked.item() == 1


def test_recalibrate_bn_rejects_bad_input_and_keeps_statistics():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    bn = net[1]
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(7.0)
    net.train()
    bn.eval()  # a frozen BatchNorm inside a training model keeps its own mode
    for bad in (0, -3, None, 1.5, True):
        with pytest.raises(ValueError, match="max_batches"):
            train.recalibrate_bn(net, [(torch.randn(8, 4), None)], max_batches=bad)
    with pytest.raises(ValueError, match="no batch"):
        train.recalibrate_bn(net, [])
    with pytest.raises(ValueError):  # a batch of one example cannot give BatchNorm statistics
        train.recalibrate_bn(net, [(torch.randn(1, 4), None)])
    assert torch.all(bn.running_mean == 5.0) and torch.all(bn.running_var == 7.0)
    assert net.training and not bn.training
    batches = iter([(torch.randn(8, 4), None) for _ in range(3)])
    train.recalibrate_bn(net, batches, max_batches=1)
    assert len(list(batches)) == 2  # took exactly one batch
    assert not torch.all(bn.running_mean == 5.0)


def test_direct_compression_helper_is_the_c_step_of_the_reference_and_has_no_l_step():
    from lcbook import PenaltyL0Pruning, direct_compression

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = AdaptiveQuantization(2)
    lc = direct_compression(model, Task("0.weight", q), evaluate=lambda m: {"out": float(m(torch.ones(1, 20)).sum())})
    assert [r["step"] for r in lc.history] == ["DC"] and "out" in lc.history[0]
    expected, _ = q.compress(before["0.weight"])
    assert torch.equal(lc.tasks[0].delta.reshape(expected.shape), expected)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights untouched
    with lc.compressed() as m:
        assert torch.equal(m[0].weight, expected)
    with pytest.raises(RuntimeError, match="no L step"):
        lc.run()
    # a penalty form's C step follows the μ given: a larger μ keeps more weights (threshold √(2α/μ))
    kept = [direct_compression(model, [Task("2.weight", PenaltyL0Pruning(1e-3))], mu=mu).tasks[0].theta["indices"].numel()
            for mu in (0.1, 10.0)]
    assert kept[0] < kept[1]
    with pytest.raises(ValueError, match="mu_schedule"):
        direct_compression(model, [Task("0.weight", q)], mu=0.0)


def test_evaluate_restores_mixed_train_eval_modes_even_after_an_error():

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 3))
    model.train()
    model[1].eval()  # mixed modes, e.g. a frozen dropout during training
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    train.evaluate(model, [(x, y)])
    assert [m.training for m in model.modules()] == [True, True, False, True]
    with pytest.raises(RuntimeError):
        train.evaluate(model, [(torch.randn(5, 7), y)])  # wrong input width fails inside the model
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_a_direct_compression_refuses_run_even_with_a_finished_checkpoint(tmp_path):
    from lcbook import direct_compression

    done = _lin_lc()
    done.mu_schedule = [1.0]
    with pytest.warns(UserWarning, match="no state_dict"):  # its L step is a plain function
        done.run(checkpoint=tmp_path / "run.pt")  # a finished run with the same task and μ schedule
    dc = direct_compression(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)),
                            [Task("0.weight", AdaptiveQuantization(2))])
    before = {k: v.clone() for k, v in dc.model.state_dict().items()}
    with pytest.raises(RuntimeError, match="no L step"):
        dc.run(checkpoint=tmp_path / "run.pt")
    assert dc.mu == 0.0 and [r["step"] for r in dc.history] == ["DC"]
    assert all(torch.equal(before[k], v) for k, v in dc.model.state_dict().items())


def test_run_restores_the_models_train_eval_mode():
    lc = _lin_lc()
    lc.l_step = lambda run: run.model.train() and {}
    lc.model.eval()
    lc.run()
    assert not any(m.training for m in lc.model.modules())


def test_rerunning_after_a_failed_evaluate_does_not_update_the_multipliers_twice():
    calls = {"n": 0}

    def flaky(m):
        calls["n"] += 1
        if calls["n"] == 3:  # DC, step 0, then step 1 fails once
            raise KeyboardInterrupt
        return {}

    torch.manual_seed(0)
    lc = _lin_lc(evaluate=flaky)
    with pytest.raises(KeyboardInterrupt):
        lc.run()
    assert lc.step == 0
    lc.run()  # redoes step 1: λ must be λ_0 − μ_1(w − Δ), once
    torch.manual_seed(0)
    ref = _lin_lc(evaluate=lambda m: {})
    ref.run()
    assert [r["step"] for r in lc.history] == [r["step"] for r in ref.history]
    assert torch.allclose(lc.tasks[0].lam, ref.tasks[0].lam)


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


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    ref = make_run()
    ref.run()
    ref_w, ref_d = final_state(ref)

    ckpt = tmp_path / "run.pt"
    first = make_run(checkpoint_fail_at=3)  # dies inside the third L step
    with pytest.raises(Interrupted):
        first.run(checkpoint=ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 1  # DC and two L/C steps completed and saved
    torch.manual_seed(12345)  # whatever the RNG did since, the checkpoint restores it
    resumed = make_run(seed=999)  # a fresh process: different initial weights, restored from the file
    resumed.run(checkpoint=ckpt)
    w, d = final_state(resumed)
    for k in ref_w:
        assert torch.equal(w[k], ref_w[k]), k
    for a, b in zip(d, ref_d):
        assert torch.equal(a, b)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in ref.history]
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    # the wall time counts both processes: the first one's saved seconds plus the resumed steps
    steps_time = sum(r["l_seconds"] + r["c_seconds"] for r in resumed.history)
    assert 0 < saved["seconds"] < resumed.seconds and resumed.seconds >= steps_time


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    make_run().run(checkpoint=ckpt)
    other = make_run()
    other.mu_schedule = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="another configuration"):
        other.run(checkpoint=ckpt)


def test_no_partial_checkpoint_files_are_left(tmp_path):
    make_run().run(checkpoint=tmp_path / "run.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_a_checkpointed_run_whose_l_step_has_no_state_warns(tmp_path):
    lc = make_run()
    plain = lc.l_step
    lc.l_step = lambda run: plain(run)  # a plain function: its batch generator cannot be saved
    lc.mu_schedule = lc.mu_schedule[:1]
    with pytest.warns(UserWarning, match="no state_dict"):
        lc.run(checkpoint=tmp_path / "run.pt")


# --- regressions from the break-it review of the new contract ---------------------------


def _mk():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 12), nn.Tanh(), nn.Linear(12, 5))


def test_set_thetas_checks_every_theta_before_changing_anything():
    from lcbook import direct_compression

    lc = direct_compression(_mk(), [Task("0.weight", AdaptiveQuantization(2)), Task("2.weight", ConstraintL0Pruning(kappa=5))])
    good = [dict(b.theta) for b in lc.tasks]
    before = [b.delta.clone() for b in lc.tasks], len(lc.history)
    too_many = {**good[0], "codebook": torch.tensor([-1.0, 0, 1, 2]), "assignments": torch.randint(0, 4, (240,))}
    nan = {**good[0], "codebook": torch.tensor([float("nan"), 1.0])}
    for thetas, match in (([too_many, good[1]], "K=2"), ([nan, good[1]], "non-finite"), ([good[1], good[0]], "does not fit"),
                          ([None, good[1]], "dict of tensors"), ([good[0]], "one Θ per task")):
        with pytest.raises(ValueError, match=match):
            lc.set_thetas(thetas)
    with pytest.raises(TypeError, match="str → number"):
        lc.set_thetas(good, stats={"x": "a"})
    assert all(torch.equal(b.delta, d) for b, d in zip(lc.tasks, before[0])) and len(lc.history) == before[1]


def test_a_failed_direct_compression_leaves_the_run_as_it_was():
    from lcbook import direct_compression

    model = _mk()
    lc = direct_compression(model, [Task("0.weight", AdaptiveQuantization(2)), Task("2.weight", AdaptiveQuantization(2))])
    thetas, history = [b.theta for b in lc.tasks], list(lc.history)
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        lc.direct_compression()
    assert [b.theta for b in lc.tasks] == thetas and lc.history == history

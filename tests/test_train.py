"""Training (lcbook.train): fine-tuning with the structure fixed, reference training's inputs."""

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import iter_once, reference_setup
from torch import nn

from lcbook import LCAlgorithm, Task, train
from lcbook.compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    ConstraintL0Pruning,
)


@pytest.mark.parametrize("comp", [
    AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=10))),
    AdaptiveQuantization(3),
    ConstraintL0Pruning(kappa=20),
])
def test_finetune_keeps_the_structure_and_lowers_the_loss(comp):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(256, 8)
    y = (x[:, :3] @ torch.randn(3, 3)).argmax(1)
    data = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    lc = LCAlgorithm(model, [Task(("0.weight", "2.weight"), comp)], l_step=lambda lc: {}, mu_schedule=[1.0],
                     progress=False)
    lc.direct_compression()

    def loss():
        with lc.compressed() as m, torch.no_grad():
            return float(torch.nn.functional.cross_entropy(m(x), y))

    before_loss, before_bits = loss(), lc.compressed_bits()
    fixed = {k: v.clone() for k, v in lc.tasks[0].theta.items() if not v.is_floating_point()}
    w_before = model[0].weight.detach().clone()
    rec = train.finetune(lc, data, epochs=20, lr=0.05)
    assert rec["step"] == "FT" and lc.history[-1] is rec
    assert loss() < before_loss
    assert lc.compressed_bits() == before_bits
    for k, v in fixed.items():  # kept positions unchanged; assignments the same partition (relabelled if sorted)
        new = lc.tasks[0].theta[k]
        if k.endswith("assignments"):
            pairs = torch.unique(torch.stack([v, new]), dim=1).shape[1]
            assert pairs == torch.unique(v).numel() == torch.unique(new).numel(), k
        else:
            assert torch.equal(new, v), k
    assert torch.equal(comp.decompress(lc.tasks[0].theta).reshape(-1), lc.tasks[0].delta.reshape(-1))
    assert torch.equal(model[0].weight.detach(), w_before)  # w itself is untouched
    with pytest.raises(ValueError, match="epochs must be"):
        train.finetune(lc, data, epochs=0)
    with pytest.raises(ValueError, match="batches is empty"):
        train.finetune(lc, [], epochs=1)
    theta_before = {k: v.clone() for k, v in lc.tasks[0].theta.items()}
    b_before = model[0].bias.detach().clone()
    with pytest.raises(ValueError, match="diverged|non-finite"):
        train.finetune(lc, data, epochs=3, lr=1e38)
    assert torch.equal(model[0].bias.detach(), b_before)  # a failed fine-tuning changes nothing
    assert all(torch.equal(lc.tasks[0].theta[k], v) for k, v in theta_before.items())


def test_train_reference_takes_batches_without_len_unless_one_cycle():
    from lcbook.train import train_reference

    model, batches = reference_setup()
    plain = [b for b in batches.batches]
    train_reference(model, iter_once(plain), epochs=1, lr=0.05, schedule="exp", gamma=0.9, progress=False)
    with pytest.raises(TypeError, match="needs len"):
        train_reference(model, iter_once(plain), epochs=1, lr=0.05, schedule="onecycle", progress=False)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        train_reference(model, plain, epochs=1, lr=0.05, gamma=float("nan"), progress=False)


def _tiny_cnn_run(**options):
    from lcbook import LCAlgorithm, SGDLStep, Task, geometric_mu
    from lcbook.compressions import AdaptiveQuantization, ConstraintL0Pruning

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(32, 10))
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(4)]
    tasks = [Task("0.weight", AdaptiveQuantization(2)), Task("5.weight", ConstraintL0Pruning(kappa=40))]
    lc = LCAlgorithm(model, tasks, SGDLStep(data, epochs=2, lr=0.05, **options), geometric_mu(1e-2, 2.0, 2),
                     multipliers=True, progress=False)
    lc.run()
    return lc


@pytest.mark.parametrize("options,tol", [({"autocast": torch.bfloat16}, 5e-2), ({"channels_last": True}, 1e-5),
                                         ({"compile": True}, 1e-4)])
def test_speed_options_keep_float32_state_and_the_loss_within_tolerance(options, tol, tmp_path):
    from lcbook import export

    base, fast = _tiny_cnn_run(), _tiny_cnn_run(**options)
    for lb, lf in zip(base.history[1:], fast.history[1:]):
        # bf16 autocast rounds the forward pass to ~3 significant digits: the loss agrees to 5%;
        # channels_last changes only the memory layout, compile only the kernels: float32 rounding
        assert abs(lf["train_loss"] - lb["train_loss"]) <= tol * lb["train_loss"], (lf, lb)
    for b in fast.tasks:  # weights, Θ and λ stay float32: the C steps and bits are the float32 ones
        assert all(t.dtype == torch.float32 for t in b.tensors) and b.lam.dtype == torch.float32
        assert all(v.dtype in (torch.float32, torch.int64) for v in b.theta.values() if torch.is_tensor(v))
        again = b.task.compression.compress(b.gather().contiguous(), b.theta)[0]
        assert torch.equal(again.reshape(b.delta.shape), b.task.compression.compress(b.gather(), b.theta)[0].reshape(b.delta.shape))
    assert fast.compressed_bits() == fast.tasks[0].task.compression.bits(fast.tasks[0].theta) + \
        fast.tasks[1].task.compression.bits(fast.tasks[1].theta)
    def builder():
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                             nn.Flatten(), nn.Linear(32, 10))

    export.export(fast, tmp_path / "f.lcbk", "tiny-cnn", builder=builder)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), fast.compressed() as m:
        want = m.eval()(x.contiguous())
    got = export.load(tmp_path / "f.lcbk", builder=builder)(x)
    assert torch.allclose(got, want, atol=1e-6)


def test_autocast_loss_of_one_batch_matches_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 30 * 30, 10))
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    with torch.no_grad():
        full = F.cross_entropy(model(x), y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = F.cross_entropy(model(x), y)
    assert abs(float(half) - float(full)) <= 2e-2 * float(full)  # the tolerance the L step option is held to


def test_speed_options_are_validated():
    from lcbook import SGDLStep

    with pytest.raises(ValueError, match="autocast must be None or torch.bfloat16"):
        SGDLStep([], autocast=torch.float16)
    with pytest.raises(TypeError, match="compile must be a bool"):
        SGDLStep([], compile="yes")


def test_finetune_names_a_wrong_first_argument():
    with pytest.raises(TypeError, match="lc must be an LCAlgorithm"):
        train.finetune(nn.Linear(2, 2), [])


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_make_sgd_is_fused_only_on_a_gpu_and_steps_like_plain_sgd(device):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 2)).to(device)
    twin = copy.deepcopy(model)
    opt = train.make_sgd(model, 0.1, momentum=0.9, weight_decay=5e-4)
    assert all(g["fused"] is (True if device == "cuda" else None) for g in opt.param_groups)
    # the same update as PyTorch's reference (for-loop) SGD with the same groups
    ref = torch.optim.SGD([{"params": [p for p in twin.parameters() if p.ndim > 1], "weight_decay": 5e-4},
                           {"params": [p for p in twin.parameters() if p.ndim <= 1], "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9, nesterov=True, foreach=False)
    x = torch.randn(8, 6, device=device)
    for _ in range(3):
        for m, o in ((model, opt), (twin, ref)):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

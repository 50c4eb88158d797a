"""Training (lcbook.train): fine-tuning with the structure fixed, reference training's inputs."""

import pytest
import torch
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

"""The storage accounting and MACs (lcbook.storage)."""

import pytest
import torch
from torch import nn

from lcbook import LCAlgorithm, Task, layer_positions, storage_report
from lcbook.compressions import AdaptiveQuantization, ConstraintL0Pruning, LowRank
from lcbook.models import build


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


def test_macs_of_prune_then_quantize_over_several_layers_count_each_layers_kept_weights():
    from lcbook.compressions import PruneThenQuantize

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 12), nn.Tanh(), nn.Linear(12, 5))
    lc = LCAlgorithm(model, [Task(("0.weight", "2.weight"), PruneThenQuantize(2, kappa=7))], lambda lc: None, [1.0])
    lc.direct_compression()
    report = storage_report(lc, torch.zeros(1, 20))
    macs = {r["param"]: r["macs"] for r in report["layers"] if r.get("macs") is not None and r["param"].endswith("weight")}
    kept = {n: int(torch.count_nonzero(d)) for n, d in zip(lc.tasks[0].task.params, lc.tasks[0].scatter(lc.tasks[0].delta))}
    assert macs == kept and sum(kept.values()) == 7

"""Make ``lenet300-v1.lcbk`` and ``lenet300-v1-outputs.pt``: a file in export format version 1,
written by the exporter as it was before compressions encoded themselves (commit c15b7ab), and the
outputs its model gives on a fixed input. ``tests/test_export.py`` checks that today's loader
reads it to the same outputs, bit for bit. Kept for the record; rerunning it with a later
exporter makes a file that no longer tests the old writer.

    .venv/bin/python tests/data/make_v1_export.py
"""

from pathlib import Path

import torch

from lcbook import Task, direct_compression, export, models
from lcbook.compressions import (AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, ConstraintL1Pruning,
                                 FixedCodebook, LowRank, RankSelection, ScaledBinarization, ScaledTernarization)

HERE = Path(__file__).resolve().parent

torch.manual_seed(0)
model = models.build("lenet300")
tasks = [
    Task("fc1.weight", AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(fraction=0.01)))),
    Task("fc2.weight", AdditiveCombination((LowRank(5), ConstraintL0Pruning(kappa=50)))),
    Task("fc3.weight", RankSelection(1e-4)),
    Task("fc1.bias", FixedCodebook((-0.05, 0.0, 0.05))),
    Task("fc2.bias", ScaledBinarization()),
    Task("fc3.bias", ConstraintL1Pruning(0.1)),
]
lc = direct_compression(model, tasks)
export.export(lc, HERE / "lenet300-v1.lcbk", "lenet300")
x = torch.randn(4, 784, generator=torch.Generator().manual_seed(1))
with torch.no_grad(), lc.compressed() as m:
    torch.save({"x": x, "y": m.eval()(x)}, HERE / "lenet300-v1-outputs.pt")
print((HERE / "lenet300-v1.lcbk").stat().st_size, "bytes")

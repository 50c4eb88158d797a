"""A compression written outside the package, in this file only, gets the whole contract: C step,
bits, LC, storage accounting, export and reload (issue 13: no edit outside its own file)."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import pytest
import torch

from lcbook import LCAlgorithm, Task, direct_compression, export, models, storage_report
from lcbook.compressions import Compression, register_compression
from lcbook.compressions.coding import (
    FormatError,
    f32,
    need_int,
    pack_bits,
    read_shape,
    shape_meta,
    unpack_bits,
)


@register_compression
@dataclass(frozen=True)
class UniformQuantization(Compression):
    """K evenly spaced levels lo, lo + step, …, lo + (K−1)·step from the weights' min to max; each
    weight to the nearest (a uniform quantizer: not the optimal codebook, a cheap one).

    Θ: ``lo`` ``(1,)``, ``step`` ``(1,)``, ``codes`` ``(N,)`` int64, ``shape``.
    Storage: ``N·⌈log2 K⌉ + 64`` bits."""

    k: int

    def __post_init__(self):
        if not (isinstance(self.k, int) and self.k >= 2):
            raise ValueError(f"k must be an int ≥ 2, got k={self.k!r}")

    def compress(self, w: torch.Tensor, theta=None, mu: Optional[float] = None) -> Tuple[torch.Tensor, dict]:
        x = w.detach().reshape(-1)
        lo, hi = x.min(), x.max()
        step = (hi - lo) / (self.k - 1) if hi > lo else torch.ones((), dtype=x.dtype)
        codes = torch.clamp(torch.round((x - lo) / step), 0, self.k - 1).long()
        theta = {"lo": lo.reshape(1), "step": step.reshape(1), "codes": codes,
                 "shape": torch.tensor(tuple(w.shape), dtype=torch.long)}
        return self.decompress(theta).to(w.dtype), theta

    def decompress(self, theta):
        return (theta["lo"] + theta["step"] * theta["codes"].to(theta["lo"].dtype)).reshape(
            tuple(int(s) for s in theta["shape"]))

    def bits(self, theta) -> int:
        return int(theta["codes"].numel()) * (self.k - 1).bit_length() + 64

    def encode(self, theta, put) -> dict:
        put("lo", f32(theta["lo"]))
        put("step", f32(theta["step"]))
        put("codes", pack_bits(theta["codes"], (self.k - 1).bit_length()))
        return shape_meta(theta["shape"].tolist())

    def decode(self, meta, get):
        shape, n = read_shape(meta)
        return {"lo": get("lo", "float32", (1,)), "step": get("step", "float32", (1,)),
                "codes": unpack_bits(get("codes"), (self.k - 1).bit_length(), n),
                "shape": torch.tensor(shape, dtype=torch.long)}


class Unregistered(UniformQuantization):
    """A subclass the format would rebuild as its parent: refused."""


def test_the_new_compression_exports_and_reloads_to_the_same_outputs(tmp_path):
    model = models.build("lenet300")
    tasks = [Task("fc1.weight", UniformQuantization(4)), Task("fc2.weight", UniformQuantization(2))]
    lc = direct_compression(model, tasks)
    report = storage_report(lc)
    assert report["tasks"][0]["bits"] == 784 * 300 * 2 + 64
    info = export.export(lc, tmp_path / "u.lcbk", "lenet300")
    # the payload is the accounting rounded up to whole bytes per section, plus the float parameters
    assert info["accounted_bits"] / 8 <= info["params"] < info["accounted_bits"] / 8 + 64
    assert export.read_header(tmp_path / "u.lcbk")["tasks"][0]["compression"] == {"class": "UniformQuantization", "k": 4}
    x = torch.randn(8, 784)
    with torch.no_grad(), lc.compressed() as m:
        want = m.eval()(x)
    assert torch.equal(export.load(tmp_path / "u.lcbk")(x), want)


def test_the_new_compression_runs_in_lc_and_its_state_reloads():
    torch.manual_seed(0)
    model = models.build("lenet300")
    lc = LCAlgorithm(model, [Task("fc3.weight", UniformQuantization(3))], l_step=lambda lc: None,
                     mu_schedule=[1e-3, 2e-3])
    lc.run()
    state = lc.state_dict()
    again = LCAlgorithm(models.build("lenet300"), [Task("fc3.weight", UniformQuantization(3))],
                        l_step=lambda lc: None, mu_schedule=[1e-3, 2e-3])
    again.load_state_dict(state)
    assert torch.equal(again.tasks[0].delta, lc.tasks[0].delta)
    assert len(torch.unique(lc.tasks[0].delta)) <= 3


def test_an_unregistered_subclass_is_refused_before_any_file_is_written(tmp_path):
    lc = direct_compression(models.build("lenet300"), [Task("fc3.weight", Unregistered(2))])
    with pytest.raises(TypeError, match="Unregistered.*not registered"):
        export.export(lc, tmp_path / "s.lcbk", "lenet300")
    assert not (tmp_path / "s.lcbk").exists()


def test_a_users_own_network_exports_with_a_builder(tmp_path):
    def build():
        return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))

    torch.manual_seed(1)
    net = build()
    lc = direct_compression(net, [Task("0.weight", UniformQuantization(2))])
    with pytest.raises(ValueError, match="registered architecture"):
        export.export(lc, tmp_path / "n.lcbk", "tiny")
    export.export(lc, tmp_path / "n.lcbk", "tiny", builder=build)
    with pytest.raises(FormatError, match="pass builder="):
        export.load(tmp_path / "n.lcbk")
    x = torch.randn(3, 6)
    with torch.no_grad(), lc.compressed() as m:
        want = m(x)
    assert torch.equal(export.load(tmp_path / "n.lcbk", builder=build)(x), want)


def test_a_file_whose_compression_is_not_registered_here_is_a_format_error(tmp_path):
    # written by another process in which the compression is registered, read in this one where it is not
    code = (
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "from dataclasses import dataclass\n"
        "from lcbook import Task, direct_compression, export, models\n"
        "from lcbook.compressions import register_compression\n"
        "from test_new_compression import UniformQuantization\n"
        "@register_compression(name='ElsewhereQ')\n"
        "@dataclass(frozen=True)\n"
        "class ElsewhereQ(UniformQuantization):\n"
        "    pass\n"
        "lc = direct_compression(models.build('lenet300'), [Task('fc3.weight', ElsewhereQ(2))])\n"
        "export.export(lc, %r, 'lenet300')\n"
    ) % (str(Path(__file__).parent), str(tmp_path / "e.lcbk"))
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(FormatError, match="unknown compression 'ElsewhereQ'"):
        export.load(tmp_path / "e.lcbk")


def test_header_entries_are_checked_with_errors_that_name_them():
    assert need_int({"k": 3}, "k", 0, 4) == 3
    for bad in ({"k": True}, {"k": -1}, {"k": 5}, {}):
        with pytest.raises(FormatError, match="'k'"):
            need_int(bad, "k", 0, 4)
    with pytest.raises(FormatError, match="'shape'"):
        read_shape({"shape": [2, -1]})

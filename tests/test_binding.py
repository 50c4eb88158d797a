"""Tasks and their binding to a model (lcbook.binding): views, gather/scatter, bad tasks."""

import pytest
import torch
from torch import nn

from lcbook.binding import Binding, Task
from lcbook.compressions import AdaptiveQuantization, LowRank


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 5))


@pytest.mark.parametrize("params,comp,view,shape", [
    (("0.weight",), AdaptiveQuantization(2), "auto", (8 * 3 * 3 * 3,)),
    (("0.weight", "3.weight"), AdaptiveQuantization(2), "flat", (8 * 27 + 5 * 7200,)),
    (("0.weight",), LowRank(2), "auto", (8, 27)),
    (("0.weight",), LowRank(2), "matrix_hw", (8 * 3, 3 * 3)),
    (("3.weight",), LowRank(2), "matrix", (5, 7200)),
])
def test_scatter_inverts_gather_in_every_view(params, comp, view, shape):
    model = net()
    named = dict(model.named_parameters())
    b = Binding(Task(params, comp, view), named)
    w = b.gather()
    assert tuple(w.shape) == shape and b.numel() == w.numel()
    assert b.view != "auto" and b.theta is None and b.delta is None and torch.equal(b.lam, torch.zeros(shape))
    for part, p in zip(b.scatter(w), (named[n] for n in params)):
        assert torch.equal(part, p.detach())
    # gather reads the parameters as they are now: a change to one shows in the next gather
    before = b.gather().clone()
    with torch.no_grad():
        named[params[0]].add_(1.0)
    assert torch.allclose(b.gather().sum() - before.sum(), torch.tensor(float(named[params[0]].numel())), rtol=1e-4)


def test_bad_tasks_name_the_problem():
    named = dict(net().named_parameters())
    with pytest.raises(ValueError, match="no parameter named 'nope'"):
        Binding(Task("nope", AdaptiveQuantization(2)), named)
    with pytest.raises(ValueError, match="takes exactly one parameter"):
        Binding(Task(("0.weight", "3.weight"), LowRank(1)), named)
    with pytest.raises(ValueError, match="matrix_hw"):
        Binding(Task("3.weight", LowRank(1), "matrix_hw"), named)
    with pytest.raises(ValueError, match="≥ 2 dimensions"):
        Binding(Task("0.bias", LowRank(1)), named)
    with pytest.raises(ValueError, match="view must be one of"):
        Task("0.weight", LowRank(1), "diagonal")
    with pytest.raises(ValueError, match="twice"):
        Task(("0.weight", "0.weight"), AdaptiveQuantization(2))


def test_task_arguments_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="params must be a parameter name"):
        Task(5, AdaptiveQuantization(2))
    with pytest.raises(TypeError, match="name must be a string"):
        Task("0.weight", AdaptiveQuantization(2), name=5)

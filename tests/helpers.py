"""Helpers shared by the test files: dtypes and devices to test on, brute-force references,
interruptible runs."""

import itertools
import math

import numpy as np
import torch
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from lcbook import (
    LCAlgorithm,
    SGDLStep,
    Task,
)
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
    PruneThenQuantize,
    RankSelection,
    ScaledTernarization,
    SequentialCombination,
)
from lcbook.data import Batches

DTYPES = [torch.float32, torch.float64]


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def numrank(d):
    """Numerical rank at the precision of d's dtype (rounding U@V to float32 adds tiny singular values)."""
    eps = torch.finfo(d.dtype).eps
    return int(torch.linalg.matrix_rank(d.double(), rtol=20 * eps * max(d.shape)))


def sq(a, b):
    return float(((a.double() - b.double()) ** 2).sum())


def sparse_bits_reference(indices, value_bits=32):
    idx = sorted(indices)
    best = None
    for b in range(1, 33):
        prev, slots = -1, 0
        for i in idx:
            slots += math.ceil((i - prev) / 2**b)
            prev = i
        cost = slots * (b + value_bits)
        best = cost if best is None else min(best, cost)
    return best or 0


def best_scaled(w, levels):
    """Brute force over every assignment of the values to the given level pattern: for each
    assignment the optimal scale is closed-form; return the least error."""
    best = math.inf
    for z in itertools.product(levels, repeat=w.numel()):
        z = torch.tensor(z, dtype=w.dtype)
        if float((z * z).sum()) == 0:
            err = float((w**2).sum())
        else:
            a = max(float((w * z).sum() / (z * z).sum()), 0.0)
            err = float(((w - a * z) ** 2).sum())
        best = min(best, err)
    return best


ALL_DTYPES = [torch.float32, torch.float64, torch.bfloat16]


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


# Values of very different magnitudes side by side, with repeats: where cluster means taken as
# differences of prefix sums lose the tiny values entirely.
MIXED = st.lists(st.one_of(st.floats(-100, 100, width=32), st.floats(-2.0**-66, 2.0**-66, width=32),
                            st.sampled_from([0.0, -1.0, 1.0, 1e-30])), min_size=1, max_size=14)


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


def image_tree(root, channels, n_per_class=3, size=8):
    for split in ("train", "test"):
        for c in ("a", "b", "c"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n_per_class):
                arr = np.full((size, size) if channels == 1 else (size, size, 3), 10 * i + ord(c) - 97, np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")


class Interrupted(Exception):
    pass


def make_run(checkpoint_fail_at=None, seed=0):
    """A tiny CIFAR-shaped conv net with dropout (global RNG) and augmented, shuffled batches
    (the batches' own generator), compressed by Q+P with the augmented Lagrangian."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    batches = Batches(x, y, "cifar10", batch_size=16, train=True, augment=True, seed=3)
    step = SGDLStep(batches, epochs=1, lr=0.05)
    calls = {"n": 0}

    def l_step(lc):
        calls["n"] += 1
        if checkpoint_fail_at is not None and calls["n"] == checkpoint_fail_at:
            raise Interrupted()
        return step(lc)

    l_step.state_dict = step.state_dict
    l_step.load_state_dict = step.load_state_dict
    tasks = [Task(("0.weight", "6.weight"), AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=10))))]
    return LCAlgorithm(model, tasks, l_step=l_step, mu_schedule=[1e-2, 2e-2, 4e-2, 8e-2], progress=False)


def final_state(lc):
    return {k: v.clone() for k, v in lc.model.state_dict().items()}, [b.delta.clone() for b in lc.tasks]


class InterruptingBatches:
    """Batches that raise in the middle of pass ``fail_pass`` (a killed process), with the
    generator and length of the batches they wrap."""

    def __init__(self, batches, fail_pass=None):
        self.batches, self.fail_pass, self.passes = batches, fail_pass, 0
        self.generator = batches.generator

    def __len__(self):
        return len(self.batches)

    def __getattr__(self, name):  # batch_size, seed, y, ... of the wrapped batches
        return getattr(self.batches, name)

    def __iter__(self):
        self.passes += 1
        for i, b in enumerate(self.batches):
            if self.passes == self.fail_pass and i == 2:
                raise Interrupted()
            yield b


def reference_setup(fail_pass=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    return model, InterruptingBatches(Batches(x, y, "cifar10", batch_size=16, train=True, augment=True, seed=3), fail_pass)


class iter_once:
    """An iterable with no len()."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

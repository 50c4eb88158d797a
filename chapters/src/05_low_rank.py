# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Low-rank compression and rank selection
#
# **What you will learn**
#
# - why the C step of low-rank compression is the truncated SVD (Eckart–Young), and how a conv
#   weight becomes the matrix that it factorizes;
# - how to read the singular-value spectra of a net's layers, and what they say about how much
#   a rank budget keeps;
# - how a low-rank layer is stored (bits) and run (two thinner layers, fewer multiply-accumulates);
# - how **rank selection** {cite}`idelbayev2020lowrank` chooses the rank of every layer from one
#   hyperparameter α, trading error for storage or for FLOPs;
# - how far direct compression (DC) is from LC for low-rank VGG.
#
# The net is VGG-16 at a quarter of the width {cite}`simonyan2015vgg` on CIFAR-10
# {cite}`krizhevsky2009cifar`: the same 13 conv and 3 linear layers as VGG-16, with 16 to 128
# channels.
#
# ```{admonition} Budget
# :class: note dropdown
# This chapter trains nothing. It runs C steps (SVDs, well under a second in total), evaluates a
# few directly compressed nets on a subset of the CIFAR-10 test images, and reads the LC run of
# low-rank VGG-16/4 from the results store (`data/results/quick/`, made by
# `python -m lcbook run vgg16_quarter l rank=0.25`). It executes in under a minute on one CPU
# thread. The same analysis of the full-width VGG-16, and its LC runs, need a GPU
# ({doc}`08_lp_vgg16`, {doc}`11_reproducing_the_paper`).
# ```

# %% tags=["remove-cell"]
# Set-up: where lcbook is not installed (Colab, a bare Jupyter), fetch the book's repository and
# install its package from it, with the stored references and results; in the book's own
# environment this does nothing. Made from _config.yml by scripts/sync_chapters.py.
import importlib.util
import os
import subprocess
import sys

REPOSITORY, BRANCH = "https://github.com/lcbook/lcbook", "main"
if importlib.util.find_spec("lcbook") is None:
    class SetupError(Exception):
        def _render_traceback_(self):  # IPython shows this one line instead of a traceback
            return [str(self)]

    try:
        if not os.path.isdir("lcbook-src"):
            subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", BRANCH, REPOSITORY, "lcbook-src"],
                           check=True, capture_output=True, timeout=600)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "lcbook-src"],
                       check=True, capture_output=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        raise SetupError(
            f"lcbook is not installed and could not be fetched from {REPOSITORY} ({type(e).__name__}): "
            f"without internet, copy that repository here and run `pip install -e <its folder>` "
            f"(PyTorch 2.x, torchvision, matplotlib, pandas, ipywidgets), then run this cell again.") from None
    sys.path.insert(0, os.path.abspath("lcbook-src"))

# %%
import math
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import lcbook
import lcbook.display
from lcbook import LowRank, RankSelection, Task, references, export, models, plots, experiments, train

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile()
DEVICE = references.device()
print(f"profile: {PROFILE}, device: {DEVICE}")

# %% [markdown]
# ## The reference net and its layers
#
# We load the committed quick-profile reference (trained by this project's code with a short
# one-cycle schedule; its error is therefore higher than that of a 300-epoch VGG-16). DC nets
# are tested on a class-balanced subset of the test images, after re-estimating the BatchNorm
# statistics {cite}`ioffe2015batchnorm` on a few batches of training images, as the LC runs do.

# %%
TEST_SIZE = 1000 if PROFILE == "quick" else None  # None: all 10,000 test images
CALIB_SIZE = 1024 if PROFILE == "quick" else 2048
test_batches = references.batches("cifar10", "test", 500, size=TEST_SIZE)
calib_batches = references.batches("cifar10", "train", 256, size=CALIB_SIZE, seed=1)

reference, record = references.reference("vgg16_quarter", "quick", progress=False)
ref_error = train.evaluate(reference, test_batches)["error"]
print(f"reference test error on {len(test_batches.y)} test images: {ref_error:.2f}% "
      f"(on all 10,000: {record['test_error']:.2f}%; {record['recipe']['epochs']} epochs, commit {record['git_commit'][:8]})")

LAYERS = models.conv_and_linear_weights(reference)  # every conv and linear weight, in order
PARAMS = dict(reference.named_parameters())
SHORT = {}
for name in LAYERS:
    kind = "conv" if PARAMS[name].ndim == 4 else "fc"
    SHORT[name] = f"{kind}{sum(SHORT[n].startswith(kind) for n in SHORT) + 1}"
print(f"{len(LAYERS)} weight matrices: " + ", ".join(f"{SHORT[n]} {tuple(PARAMS[n].shape)}" for n in LAYERS))

# %% [markdown]
# ## The C step: truncated SVD
#
# Low-rank compression constrains a layer's weight matrix $\mathbf{W}\in\mathbb{R}^{m\times n}$
# to have rank at most $r$: $\mathbf{W} = \mathbf{U}\mathbf{V}^\top$ with $\mathbf{U}\in\mathbb{R}^{m\times r}$
# and $\mathbf{V}\in\mathbb{R}^{n\times r}$, so $\boldsymbol{\Theta} = (\mathbf{U}, \mathbf{V})$ and
# $\boldsymbol{\Delta}(\boldsymbol{\Theta}) = \mathbf{U}\mathbf{V}^\top$. The C step
#
# $$
# \min_{\mathbf{U},\mathbf{V}} \big\|\mathbf{W} - \mathbf{U}\mathbf{V}^\top\big\|_F^2
# $$
#
# is solved exactly by the truncated SVD (Eckart–Young): with $\mathbf{W} = \sum_i s_i
# \mathbf{u}_i\mathbf{v}_i^T$ and $s_1 \ge s_2 \ge \dots \ge 0$, keep the first $r$ terms. The
# error left is the energy of the discarded singular values,
#
# $$
# \big\|\mathbf{W} - \mathbf{W}_r\big\|_F^2 = \sum_{i>r} s_i^2 .
# $$
#
# Storing the two factors costs $r(m+n)$ floats instead of $mn$, which only pays below the
# **break-even rank** $mn/(m+n)$; above it the package stores the dense matrix, so a layer costs
# $32\cdot\min\big(r(m+n),\, mn\big)$ bits. This is `lcbook.LowRank(rank)`
# {cite}`idelbayev2020lowrank`.
#
# ## From a conv weight to a matrix
#
# A conv weight has shape $(n_\text{out}, n_\text{in}, k, k)$. To factorize it, a `Task` views it
# as a matrix:
#
# - `view="matrix"` (the default for low-rank): $(n_\text{out},\; n_\text{in}k^2)$, one row per
#   output channel. $\mathbf{U}\mathbf{V}^\top$ then runs as a $k\times k$ conv from $n_\text{in}$
#   to $r$ channels (the rows of $\mathbf{V}^\top$ are $r$ filters) followed by a $1\times 1$ conv
#   from $r$ to $n_\text{out}$ channels ($\mathbf{U}$).
# - `view="matrix_hw"`: $(n_\text{out}k,\; n_\text{in}k)$, rows indexed by (output channel,
#   filter row) and columns by (input channel, filter column). $\mathbf{U}\mathbf{V}^\top$ runs as a
#   $1\times k$ conv into $r$ channels followed by a $k\times 1$ conv (scheme 2 of Jaderberg,
#   Vedaldi and Zisserman, BMVC 2014).
#
# A linear layer's weight is already a matrix. The cell below builds both tasks on one conv layer
# and checks the package's view against the reshape written out by hand.

# %% tags=["nbval-check-output"]
LAYER = "features.27.weight"
w = PARAMS[LAYER].detach()
o, i, kh, kw = w.shape
by_hand = {
    "matrix": w.reshape(o, i * kh * kw),
    "matrix_hw": w.permute(0, 2, 1, 3).reshape(o * kh, i * kw),  # (o, kh, i, kw) -> rows (o, kh), cols (i, kw)
}
RANK_DEMO = 16
same_view = {}
for view, mat in by_hand.items():
    lc = lcbook.direct_compression(reference, [Task(LAYER, LowRank(RANK_DEMO), view=view)])
    bound = lc.tasks[0]
    same_view[view] = torch.equal(bound.gather(), mat)
    u, v = bound.theta["U"], bound.theta["V"]
    print(f"{SHORT[LAYER]} {tuple(w.shape)}  view={view:9s} -> matrix {tuple(mat.shape)}, "
          f"U {tuple(u.shape)}, V {tuple(v.shape)}, {lc.compressed_bits()} bits")

# %% tags=["remove-cell"]
assert all(same_view.values()), same_view  # the package's view is this reshape

# %% [markdown]
# Both views hold the same numbers, but not the same matrix, so they have different spectra and
# different storage for a given rank. The fair comparison is at **equal storage**: for a budget
# of $b$ parameters the rank is $\lfloor b/(m+n)\rfloor$, which is larger for the square
# `matrix_hw` view ($m+n$ smaller). The figure shows the relative error
# $\|\mathbf{W}-\mathbf{W}_r\|^2/\|\mathbf{W}\|^2$ of each view against its storage, for the same
# layer.

# %%
def svals(mat):
    """Singular values, descending, in float64."""
    return torch.linalg.svdvals(mat.detach().double().cpu())


def tail_energy(s):
    """E[r] = Σ_{i>r} s_i² for r = 0..len(s)."""
    s2 = s ** 2
    return torch.cat([s2.flip(0).cumsum(0).flip(0), s2.new_zeros(1)])


fig, ax = plt.subplots(figsize=(6.4, 3.8))
rel_at = {}
budget_grid = np.linspace(0.02, 0.6, 30)
for view, mat in by_hand.items():
    m, n = mat.shape
    E = tail_energy(svals(mat))
    ranks = [int(b * m * n // (m + n)) for b in budget_grid]
    rel = [float(E[r] / E[0]) for r in ranks]
    rel_at[view] = dict(zip(budget_grid.round(3), rel))
    ax.plot(100 * budget_grid, 100 * np.array(rel), marker=".", label=f"view={view} {tuple(mat.shape)}")
ax.set_xlabel("storage of the factors (% of the dense layer)")
ax.set_ylabel("relative squared error ‖W − W_r‖² / ‖W‖² (%)")
ax.set_title(f"{SHORT[LAYER]} of VGG-16/4: the two matrix views at equal storage")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %%
hw_better = sum(rel_at["matrix_hw"][b] < rel_at["matrix"][b] for b in rel_at["matrix"])
display(Markdown(
    f"For this layer the `matrix_hw` view has the lower error at {hw_better} of the {len(budget_grid)} storage "
    f"budgets shown. " + ("It is the better use of the bits here, for the weights alone; whether the *net* is "
                          "better too is an experiment (exercise 2)." if hw_better > len(budget_grid) / 2 else
                          "The default `matrix` view is the better use of the bits here.")))

# %% [markdown]
# ## Singular-value spectra of every layer
#
# How much a rank-$r$ approximation keeps depends on how fast the singular values decay. Below,
# every conv and linear layer (in the `matrix` view) with $s_i/s_1$ against the rank fraction
# $i/\min(m,n)$; then the **captured energy** $\sum_{i\le r}s_i^2/\sum_i s_i^2$, which is one minus
# the relative error of the truncated SVD. A flat spectrum would capture energy in proportion to
# the rank (the dotted diagonal).

# %%
SPECTRA = {name: svals(PARAMS[name].reshape(PARAMS[name].shape[0], -1)) for name in LAYERS}
colors = plt.cm.viridis(np.linspace(0, 0.95, len(LAYERS)))

fig, ax = plt.subplots(figsize=(7.5, 4.2))
for c, name in zip(colors, LAYERS):
    s = SPECTRA[name]
    k = len(s)
    ax.plot(np.arange(1, k + 1) / k, (s / s[0]).numpy(), color=c, lw=1.2, label=SHORT[name])
ax.set_yscale("log")
ax.set_xlabel("rank fraction i / min(m, n)")
ax.set_ylabel("normalized singular value s_i / s_1")
ax.set_title("Singular-value spectra of VGG-16/4 (reference weights)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7, ncol=2, loc="lower left")
plt.show()

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for c, name in zip(colors, LAYERS):
    s2 = SPECTRA[name] ** 2
    k = len(s2)
    ax.plot(np.arange(0, k + 1) / k, 100 * np.concatenate([[0.0], (s2.cumsum(0) / s2.sum()).numpy()]),
            color=c, lw=1.2, label=SHORT[name])
ax.plot([0, 1], [0, 100], ls=":", color="gray", label="flat spectrum")
ax.set_xlabel("rank fraction r / min(m, n)")
ax.set_ylabel("captured energy Σ_{i≤r} s_i² / Σ s_i² (%)")
ax.set_title("Energy kept by the truncated SVD")
ax.grid(alpha=0.3)
ax.legend(fontsize=7, ncol=2, loc="lower right")
plt.show()

# %% [markdown]
# The package's C step must leave exactly the discarded energy as error (Eckart–Young). We check
# it on every layer at a quarter of the full rank.

# %% tags=["hide-input"]
for name in LAYERS:
    W = PARAMS[name].detach().reshape(PARAMS[name].shape[0], -1)
    s = SPECTRA[name]
    r = max(1, len(s) // 4)
    delta, theta = LowRank(r).compress(W)
    err = float(((W.double() - delta.double()) ** 2).sum())
    expected = float((s[r:] ** 2).sum())
    assert theta["U"].shape[1] == r and torch.linalg.matrix_rank(delta.double(), rtol=1e-5) <= r  # float32 rounding aside
    assert abs(err - expected) <= 1e-4 * float((s ** 2).sum()), (name, err, expected)
energy = pd.DataFrame({
    "layer": [SHORT[n] for n in LAYERS],
    "matrix (m×n)": [f"{PARAMS[n].shape[0]}×{PARAMS[n][0].numel()}" for n in LAYERS],
    **{f"energy at r/min = {f:g} (%)": [100 * float((SPECTRA[n][:max(1, math.ceil(f * len(SPECTRA[n])))] ** 2).sum()
                                                    / (SPECTRA[n] ** 2).sum()) for n in LAYERS] for f in (0.1, 0.25, 0.5)},
}).set_index("layer")

# %% tags=["remove-cell"]
assert (energy["energy at r/min = 0.25 (%)"] < 95).all()  # no layer is nearly rank-1/4

# %%
energy.round(1)

# %% [markdown]
# **Move the rank.** The singular values of the layer above that the rank-$r$ C step keeps (blue)
# and discards (grey). The discarded energy is exactly the squared error of
# $\boldsymbol{\Delta}(\boldsymbol{\Theta}) = \mathbf{U}\mathbf{V}^\top$ (Eckart–Young); the factors
# store $r(m+n)$ numbers against the dense layer's $mn$, so past $r = mn/(m+n)$ the low-rank layer
# is *larger* than the dense one.

# %%
W_layer = PARAMS[LAYER].detach().reshape(PARAMS[LAYER].shape[0], -1)
m_l, n_l = W_layer.shape
s_layer = SPECTRA[LAYER].numpy()
R_CHOICES = sorted({max(1, round(f * len(s_layer))) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)})
rank_frames = {}
for r in R_CHOICES:
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    idx = np.arange(1, len(s_layer) + 1)
    ax.bar(idx[:r], s_layer[:r], width=1.0, color="C0", label=f"kept: r = {r}")
    ax.bar(idx[r:], s_layer[r:], width=1.0, color="0.75", label="discarded")
    ax.set_yscale("log")
    ax.set_xlabel("index i of the singular value")
    ax.set_ylabel("singular value s_i")
    ax.set_title(f"{SHORT[LAYER]} ({m_l}×{n_l}): the rank-{r} C step")
    ax.legend(loc="upper right")
    rel = float((s_layer[r:] ** 2).sum() / (s_layer ** 2).sum())
    rank_frames[(r,)] = (fig, f"rank {r}: the factors store {r * (m_l + n_l):,} numbers, "
                              f"{100 * r * (m_l + n_l) / (m_l * n_l):.1f}% of the dense layer's {m_l * n_l:,}; "
                              f"relative squared error ‖W − UVᵀ‖²/‖W‖² = {100 * rel:.2f}%")
lcbook.display.chooser(rank_frames, [("rank r", R_CHOICES)], start=(R_CHOICES[2],),
                       alt="singular values of the layer, kept and discarded at the chosen rank")

# %% [markdown]
# These spectra decay slowly: a quarter of the rank keeps only part of each layer's energy, so
# direct compression at that rank will hurt (measured below). The weights were not trained to be
# low-rank; LC's L step is what moves them there.
#
# ## Storage and FLOPs of a low-rank layer
#
# A layer applied at $P$ output positions per example ($P = H_\text{out}W_\text{out}$ for a conv,
# $P=1$ for a linear layer) costs $P\,mn$ multiply-accumulates (MACs) when dense. Run as two layers
# — first $\mathbf{V}^\top$ ($n\to r$), then $\mathbf{U}$ ($r \to m$) — it costs $P\,r(m+n)$ MACs,
# so FLOPs fall with storage by the same factor $r(m+n)/(mn)$ when $r$ is below the break-even
# rank:
#
# $$
# \text{bits} = 32\cdot\min\big(r(m+n),\, mn\big), \qquad
# \text{MACs} = P\cdot\min\big(r(m+n),\, mn\big).
# $$
#
# `lcbook.layer_positions(model, example_input)` counts $P$ for every layer with one forward
# pass; `lcbook.storage_report(lc, example_input)` adds per-layer bits and MACs. Here is the
# direct compression with the tasks of the stored LC run: rank $\lceil 0.25\min(m,n)\rceil$ in
# every layer (`lcbook.experiments.make_tasks`).

# %% tags=["hide-input"]
RANK_FRACTION = 0.25
example = next(iter(test_batches))[0][:1]
POSITIONS = lcbook.layer_positions(reference, example)


def dc_low_rank(tasks, mu=1.0):
    """Direct compression of the reference: an LCAlgorithm holding Θ (no L step is ever run)."""
    return lcbook.direct_compression(reference, tasks, mu=mu)


lc25 = dc_low_rank(experiments.make_tasks("vgg16_quarter", reference, "l", {"rank": RANK_FRACTION}))
report25 = lcbook.storage_report(lc25, example)
rows = []
for b, row in zip(lc25.tasks, (r for r in report25["layers"] if r["task"] is not None)):
    m, n = b.gather().shape
    r = b.theta["U"].shape[1]
    assert row["param"] == b.task.params[0]
    assert row["bits"] == 32 * min(r * (m + n), m * n)  # the storage formula
    assert row["macs"] == POSITIONS[row["param"]] * min(r * (m + n), m * n)  # two layers
    rows.append({"layer": SHORT[row["param"]], "m×n": f"{m}×{n}", "positions P": POSITIONS[row["param"]], "rank r": r,
                 "break-even rank": round(m * n / (m + n), 1), "bits (dense)": 32 * m * n, "bits": int(row["bits"]),
                 "MACs (dense)": row["reference_macs"], "MACs": row["macs"]})
layer_table = pd.DataFrame(rows).set_index("layer")
layer_table

# %% tags=["nbval-check-output"]
print("ranks at rank fraction 0.25:", [int(r) for r in layer_table["rank r"]])
print("compressed bits:", int(report25["compressed_bits"]), " uncompressed parameters:", int(report25["uncompressed_params"]))
print("total bits:", int(report25["total_bits"]), " reference bits:", int(report25["reference_bits"]))
print("MACs per image:", int(report25["macs"]), " reference MACs:", int(report25["reference_macs"]))

# %%
print(f"compression ratio {report25['ratio']:.2f}x (biases and BatchNorm at 32 bits), "
      f"{report25['bits_per_weight']:.2f} bits per compressed weight, "
      f"MACs reduced {report25['reference_macs'] / report25['macs']:.2f}x")

# %% [markdown]
# The stored LC run used the same tasks, so its per-layer bits and MACs must be the ones just
# computed (LC changes the factors, not the ranks).

# %%
stored = experiments.load_results("quick", model="vgg16_quarter", combo="l")
stored = [r for r in stored if r["budget"] == {"rank": RANK_FRACTION}]

# %% tags=["remove-cell"]
assert len(stored) == 1, "the results store lacks vgg16_quarter l rank=0.25 (python -m lcbook run vgg16_quarter l rank=0.25)"

# %% tags=["remove-cell"]
stored = stored[0]
by_param = {r["param"]: r for r in stored["layers"]}
for row in report25["layers"]:
    s = by_param[row["param"]]
    assert s["bits"] == row["bits"] and s.get("macs") == row.get("macs") and s["compression"] == row["compression"], row["param"]

# %% tags=["remove-cell"]
assert stored["total_bits"] == report25["total_bits"] and stored["macs"] == report25["macs"]

# %%
print(f"stored run {stored['id']}: {stored['total_bits']:,} bits, {stored['macs']:,} MACs — same as above")

# %% [markdown]
# ```{admonition} Do low-rank layers really save FLOPs?
# :class: tip
# Only when they are *run* as two layers. Inside LC (and in `lc.compressed()`) the net keeps its
# dense layers with weights $\mathbf{U}\mathbf{V}^\top$: same speed as the reference. The export
# module writes the factors to a file, and `lcbook.export.load(path, factorized=True)` rebuilds
# every low-rank layer as two layers (a $k\times k$ conv into $r$ channels then a $1\times 1$ conv,
# or two linear layers). Chapter {doc}`08_lp_vgg16` uses it; here we only check that the
# factorized net computes the same function with exactly the MACs counted above.
# ```

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "vgg16_quarter_rank025.lcbk"
    sizes = export.export(lc25, path, "vgg16_quarter")
    factorized = export.load(path, factorized=True).to(DEVICE)
fact_positions = lcbook.layer_positions(factorized, example)
fact_params = dict(factorized.named_parameters())
fact_macs = sum(p * fact_params[name].numel() for name, p in fact_positions.items())
with lc25.compressed() as dense, torch.no_grad():
    x = next(iter(test_batches))[0][:64]
    gap = float((dense(x) - factorized(x)).abs().max())
n_two_layer = sum(isinstance(mod, torch.nn.Sequential) and len(mod) == 2 and
                  all(isinstance(c, (torch.nn.Conv2d, torch.nn.Linear)) for c in mod) for mod in factorized.modules())
print(f"file: {sizes['file']:,} bytes; {n_two_layer} layers run as two layers; "
      f"MACs of the factorized net {fact_macs:,} (counted: {report25['macs']:,}); largest output difference {gap:.1e}")

# %% tags=["remove-cell"]
assert fact_macs == report25["macs"] and n_two_layer == len(LAYERS)
assert gap < 1e-3

# %% [markdown]
# ## Rank selection
#
# A single rank fraction for every layer ignores that layers differ in spectrum, size and cost.
# Idelbayev and Carreira-Perpiñán {cite}`idelbayev2020lowrank` let LC choose the ranks: the
# problem becomes $\min_\mathbf{w} L(\mathbf{w}) + \alpha\sum_l C_l(r_l)$ with each layer's rank a
# variable, and in the C step each layer solves, over its SVD,
#
# $$
# \min_{0\le r\le \min(m,n)}\; \alpha\, C(r) + \frac{\mu}{2}\sum_{i>r} s_i^2 ,
# $$
#
# where $C(r)$ is the cost of the layer at rank $r$: its **storage**
# $\min\big(r(m+n), mn\big)$ parameters, or its **FLOPs** $P\cdot\min\big(r(m+n), mn\big)$ MACs.
# Every rank is scored from one SVD, so the C step is exact. One α, shared by all layers, sets the
# exchange rate between a unit of cost and a unit of error; a larger α gives smaller ranks, a
# larger μ (later in LC) larger ones. In `lcbook` this is
# `RankSelection(alpha, cost="storage" | "flops", positions=P)`.
#
# Only $\alpha/\mu$ matters in one C step. In this section we fix $\mu = 1$ and apply the C step
# to the reference weights (the first C step of an LC run, i.e. direct compression). First, the
# ranks chosen for one α, by storage:

# %%
MU = 1.0
ALPHA = 3e-4


def rank_selection_tasks(alpha, cost):
    return [Task(name, RankSelection(alpha, cost=cost, positions=POSITIONS[name])) for name in LAYERS]


def chosen_ranks(lc):
    return [int(b.theta["U"].shape[1]) for b in lc.tasks]


# %% tags=["nbval-check-output"]
lc_rs = dc_low_rank(rank_selection_tasks(ALPHA, "storage"), mu=MU)
report_rs = lcbook.storage_report(lc_rs, example)
print("alpha = 3e-4, mu = 1, cost = storage")
print("full ranks:  ", [int(min(PARAMS[n].shape[0], PARAMS[n][0].numel())) for n in LAYERS])
print("chosen ranks:", chosen_ranks(lc_rs))
print("compressed bits:", int(report_rs["compressed_bits"]), " total bits:", int(report_rs["total_bits"]))

# %% [markdown]
# The C step must return the exact minimizer. For one layer we score every rank by hand from its
# singular values (no package code) and compare with the rank the package chose, for both costs.

# %% tags=["hide-input"]
CHECK = "features.7.weight"
n_weights = sum(PARAMS[n].numel() for n in LAYERS)
s = SPECTRA[CHECK]
m, n = PARAMS[CHECK].shape[0], PARAMS[CHECK][0].numel()
W = PARAMS[CHECK].detach().reshape(m, n)
for cost, alpha in (("storage", ALPHA), ("flops", ALPHA * n_weights / report25["reference_macs"])):
    objective = []
    for r in range(min(m, n) + 1):
        c = min(r * (m + n), m * n) * (POSITIONS[CHECK] if cost == "flops" else 1)
        objective.append(alpha * c + MU / 2 * float((s[r:] ** 2).sum()))
    best = int(np.argmin(objective))  # the first minimum: the smallest best rank
    got = RankSelection(alpha, cost=cost, positions=POSITIONS[CHECK]).compress(W, mu=MU)[1]["U"].shape[1]
    print(f"{SHORT[CHECK]}, cost={cost}: brute force r* = {best}, RankSelection r = {got}, "
          f"objective {objective[got]:.4f} (r = 0: {objective[0]:.4f}, full rank: {objective[-1]:.4f})")
    assert got == best and objective[got] <= min(objective) + 1e-9

# %% [markdown]
# ### Storage or FLOPs?
#
# Now a sweep of α for both costs. To put them on one scale, the FLOPs α is divided by the net's
# average number of positions per weight (reference MACs / weights), so that a given α puts about
# the same total price on the net under both costs. The figure shows the chosen rank of every
# layer as a fraction of its full rank.

# %%
ALPHAS = [2e-4, 4e-4, 8e-4, 1.6e-3]
FLOPS_SCALE = n_weights / report25["reference_macs"]  # weights per MAC
sweep = {}
for cost in ("storage", "flops"):
    for alpha in ALPHAS:
        lc = dc_low_rank(rank_selection_tasks(alpha * (FLOPS_SCALE if cost == "flops" else 1.0), cost), mu=MU)
        rep = lcbook.storage_report(lc, example)
        sweep[cost, alpha] = {"ranks": chosen_ranks(lc), "bits": rep["compressed_bits"], "macs": rep["macs"],
                              "error": lc.distance()}

full_rank = np.array([min(PARAMS[n].shape[0], PARAMS[n][0].numel()) for n in LAYERS])
def draw_ranks(fig, axes):
    for ax, cost in zip(axes, ("storage", "flops")):
        for j, alpha in enumerate(ALPHAS):
            ax.plot(range(len(LAYERS)), np.array(sweep[cost, alpha]["ranks"]) / full_rank, marker="o",
                    color=plt.cm.plasma(j / len(ALPHAS)), label=f"α = {alpha:g}")
        ax.set_xticks(range(len(LAYERS)), [SHORT[n] for n in LAYERS], rotation=60, fontsize=8)
        ax.set_title(f"cost = {cost!r}")
        ax.set_xlabel("layer")
        ax.set_ylabel("chosen rank / full rank")
        ax.grid(alpha=0.3)
    handles, _ = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"α = {a:g}" for a in ALPHAS], loc="outside lower center", ncol=min(len(ALPHAS), 4),
               title="storage: α;  flops: α × weights/MACs")
    fig.suptitle("Rank selection on the reference weights (μ = 1)")


display(lcbook.display.panels(draw_ranks, 2, panel_size=(5.6, 4.0), sharey=True,
                              alt="the rank each layer gets under the storage and the flops cost, for several α"))

# %% tags=["remove-cell"]
# A larger α never raises a layer's rank (for either cost): ranks are non-increasing in α.
for cost in ("storage", "flops"):
    for a_lo, a_hi in zip(ALPHAS, ALPHAS[1:]):
        lo, hi = sweep[cost, a_lo]["ranks"], sweep[cost, a_hi]["ranks"]
        assert all(h <= l for l, h in zip(lo, hi)), (cost, a_lo, a_hi, lo, hi)
        # the break-even rank: a rank is either below mn/(m+n) or full
        for name, r in zip(LAYERS, hi):
            m, n = PARAMS[name].shape[0], PARAMS[name][0].numel()
            assert r * (m + n) <= m * n or r == min(m, n), (cost, name, r)

# %% tags=["remove-cell"]
assert sweep["storage", ALPHAS[0]]["bits"] > sweep["storage", ALPHAS[-1]]["bits"]

# %% tags=["hide-input"]
# Storage keeps the early convs (conv1-4) and cuts the late ones (conv8-13) more; FLOPs the opposite.
for cost in ("storage", "flops"):
    frac = np.array(sweep[cost, 8e-4]["ranks"]) / full_rank
    early, late = frac[:4].mean(), frac[7:13].mean()
    print(f"α = 8e-4, cost = {cost}: mean rank fraction conv1-4 {early:.2f}, conv8-13 {late:.2f}")
    assert (early > late) if cost == "storage" else (early < late), cost
pd.DataFrame([{"cost": cost, "α": alpha, "bits (compressed layers)": v["bits"],
               "MACs per image": v["macs"], "Σ‖W − W_r‖²": v["error"]} for (cost, alpha), v in sweep.items()]
             ).set_index(["cost", "α"]).style.format({"Σ‖W − W_r‖²": "{:.1f}", "bits (compressed layers)": "{:,}",
                                                     "MACs per image": "{:,}"})

# %% [markdown]
# Read the figure from left (input) to right (classifier). The early convs are small (few
# parameters) but run at many positions (32×32), the late convs are large but run at 2×2 or 4×4.
# Charged by storage, rank selection keeps the early layers and cuts the big late convs; charged
# by FLOPs it does the opposite. Rank selection by storage also shows the break-even rank at
# work: a layer is either factorized below $mn/(m+n)$ or kept at full rank, since the ranks in
# between cost as much as the dense matrix and lose energy.
#
# ### Why one α for all layers
#
# For the storage cost and a given μ, the ranks that rank selection picks are the best allocation
# of that much storage for the total squared error $\sum_l\|\mathbf{W}_l - \mathbf{W}_{l,r_l}\|^2$:
# if another allocation used no more storage and had a smaller error, it would have a smaller
# objective (a Lagrangian argument). The figure compares it with one rank fraction for every
# layer; the assertion below checks the argument on this net.

# %%
def uniform_allocation(fraction):
    """Total storage (parameters) and squared error of the ranks ⌈fraction·min(m, n)⌉."""
    st, err = 0, 0.0
    for name in LAYERS:
        s = SPECTRA[name]
        m, n = PARAMS[name].shape[0], PARAMS[name][0].numel()
        r = max(1, math.ceil(fraction * len(s)))
        st += min(r * (m + n), m * n)
        err += float((s[r:] ** 2).sum())
    return st, err


def selected_allocation(alpha):
    """Total storage and squared error of the ranks RankSelection(alpha) chooses (μ = MU)."""
    st, err = 0, 0.0
    for name in LAYERS:
        s = SPECTRA[name]
        m, n = PARAMS[name].shape[0], PARAMS[name][0].numel()
        r = int(torch.argmin(RankSelection(alpha).objective(s, m, n, MU)))
        st += min(r * (m + n), m * n)
        err += float((s[r:] ** 2).sum())
    return st, err


uniform = [uniform_allocation(f) for f in np.linspace(0.02, 1.0, 40)]
selected = [selected_allocation(a) for a in np.logspace(-5.5, -2, 40)]

# %% tags=["remove-cell"]
for st_s, err_s in selected:  # no uniform allocation with no more storage has a smaller error
    assert all(err_u >= err_s - 1e-6 for st_u, err_u in uniform if st_u <= st_s), (st_s, err_s)

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot([32 * st / 8e6 for st, _ in uniform], [e for _, e in uniform], marker=".", label="one rank fraction for all layers")
ax.plot([32 * st / 8e6 for st, _ in selected], [e for _, e in selected], marker=".", label="rank selection (storage), α swept")
ax.set_xlabel("storage of the compressed layers (MB, 32-bit floats)")
ax.set_ylabel("Σ_layers ‖W − W_r‖² (squared weight error)")
ax.set_title("Direct compression of VGG-16/4: error vs storage")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Smaller weight error is not the same as smaller loss: a unit of squared error costs different
# layers different amounts of accuracy. That is why, in the paper, rank selection runs inside LC
# {cite}`idelbayev2020lowrank`: the L step reports, through the weights it learns, which layers
# the loss needs, and the ranks settle as μ grows.
#
# ## Direct compression: test error against rank
#
# How much does direct compression (the truncated SVD of the reference weights, then BatchNorm
# re-estimation) cost in accuracy? We compress every layer to the rank fraction
# $\lceil f\min(m,n)\rceil$ for a few values of $f$.

# %%
FRACTIONS = [0.1, 0.25, 0.5, 0.75]
dc_rows = []
for f in FRACTIONS:
    lc = dc_low_rank(experiments.make_tasks("vgg16_quarter", reference, "l", {"rank": f}))
    rep = lcbook.storage_report(lc, example)
    with lc.compressed() as net:
        train.recalibrate_bn(net, calib_batches, max_batches=8)
        err = train.evaluate(net, test_batches)["error"]
    dc_rows.append({"rank fraction": f, "test error %": err, "ratio": rep["ratio"],
                    "MACs reduction": rep["reference_macs"] / rep["macs"]})
    print(f"rank fraction {f:4.2f}: DC test error {err:5.1f}%  compression ratio {rep['ratio']:5.2f}x  "
          f"MACs / {rep['reference_macs'] / rep['macs']:.2f}")
dc_table = pd.DataFrame(dc_rows).set_index("rank fraction")

# %% tags=["remove-cell"]
assert dc_table["test error %"].iloc[-1] < dc_table["test error %"].iloc[0]  # more rank, less error
assert dc_table.loc[RANK_FRACTION, "test error %"] > ref_error + 5  # DC at a quarter of the rank hurts

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot(dc_table.index, dc_table["test error %"], marker="o", label=f"DC + BN re-estimation ({len(test_batches.y)} test images)")
for f, row in dc_table.iterrows():
    ax.annotate(f"×{row['ratio']:.1f}", (f, row["test error %"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
ax.scatter([RANK_FRACTION], [stored["dc_error"]], marker="x", color="C3", s=60, label="stored run: DC")
ax.scatter([RANK_FRACTION], [stored["lc_error"]], marker="o", color="C3", s=60, label="stored run: LC")
ax.axhline(ref_error, ls="--", color="gray", lw=1, label="reference")
ax.set_xlabel("rank fraction r / min(m, n) (every layer)")
ax.set_ylabel("test error (%)")
ax.set_title("Low-rank VGG-16/4: direct compression (labels: compression ratio)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The stored points were evaluated on a different test subset (the run's own, 2000 images), so
# compare them with the curve, not digit by digit.
#
# ## LC at rank 0.25 (from the results store)
#
# The stored run compressed every layer at rank fraction 0.25 with the quick profile's LC
# schedule (quadratic penalty, one epoch per L step on a 4000-image training subset). Its history
# holds the test error of $\boldsymbol{\Delta}(\boldsymbol{\Theta})$ after every C step.

# %%
sched = stored["schedule"]
print(f"{stored['id']}: {sched['steps']} LC steps, μ = {sched['mu0']}·{sched['a']}^k, {sched['epochs']} epoch(s) per L step "
      f"on {sched['train_size']} training images, {'augmented Lagrangian' if sched['multipliers'] else 'quadratic penalty'}; "
      f"{stored['hardware']}, {stored['lc_seconds']:.0f} s, commit {stored['git_commit'][:8]}, {stored['date'][:10]}")
print(f"reference {stored['reference_error']:.2f}%  DC {stored['dc_error']:.2f}%  LC {stored['lc_error']:.2f}%  "
      f"(test subset of {sched['test_size']}); ratio {stored['ratio']:.2f}x, "
      f"MACs / {stored['reference_macs'] / stored['macs']:.2f}")

# %%
def draw_stored_run(fig, axes):
    plots.lc_paths({"L: rank fraction 0.25": stored["history"]}, key="test_error", ax=axes[0])
    axes[0].axhline(stored["reference_error"], ls="--", color="gray", lw=1, label="reference")
    axes[0].legend(fontsize=8)
    plots.lc_paths({"L: rank fraction 0.25": stored["history"]}, key="distance", ax=axes[1], ylabel="‖w − Δ(Θ)‖²")
    axes[1].set_yscale("log")
    fig.suptitle("Stored LC run of low-rank VGG-16/4 (× = direct compression)")


display(lcbook.display.panels(draw_stored_run, 2, panel_size=(5.5, 3.8),
                              alt="test error and distance along the stored LC run of low-rank VGG-16/4"))

# %% tags=["remove-cell"]
assert stored["lc_error"] < stored["dc_error"], "LC did not improve on DC in the stored run"
assert stored["history"][0]["step"] == "DC" and stored["history"][0]["test_error"] == stored["dc_error"]

# %%
gain = stored["dc_error"] - stored["lc_error"]
FULL = experiments.SCHEDULES[("vgg", "full")]
display(Markdown(
    f"LC lowers the test error of the rank-0.25 net from {stored['dc_error']:.1f}% (DC) to "
    f"{stored['lc_error']:.1f}% at the same storage, a gain of {gain:.1f} points, in a short quick-profile run; "
    f"the reference is at {stored['reference_error']:.1f}%. "
    + ("After this short run the gap to the reference is still large; the full profile's schedule "
       f"({FULL.epochs} epochs per L step, {FULL.steps} steps) trains far longer." if stored["lc_error"] > stored["reference_error"] + 5 else
       "LC nearly closes the gap to the reference.")))

# %% [markdown]
# The DC error is what the truncated SVD of weights that were never meant to be low-rank gives;
# LC starts there and trains the weights *for* the constraint. Adding a few sparse float
# corrections to the low-rank part ($\mathbf{W} = \mathbf{U}\mathbf{V}^\top + $ sparse) is the
# combination that Part V finds best for VGG nets {cite}`carreira2021part5`; chapter
# {doc}`08_lp_vgg16` runs it.

# %%
import lcbook.display

lcbook.display.provenance({"reference": record, f"LC run: {stored['id']}": stored})

# %% [markdown]
# ## In code: the low-rank C step
#
# Write the C step of low-rank compression at rank r: a best rank-r approximation
# $\mathbf{U}\mathbf{V}^T$ of a weight matrix, with $\mathbf{U} \in \mathbb{R}^{m\times r}$ and
# $\mathbf{V} \in \mathbb{R}^{n\times r}$ (`torch.linalg.svd` gives the singular vectors; where
# do the singular values go?). The check accepts any best factorisation: its squared error must
# be the discarded energy $\sum_{i>r}\sigma_i^2$.
#
# Complete the function and run the check below it: it says whether the function is right and,
# if not, on which input and by how much. A solution is folded away under the check. To run the
# cells, open this chapter as a notebook: the launch button at the top of the page (Colab), or
# Jupyter on your machine (`.venv/bin/pip install jupyterlab`, then `.venv/bin/jupyter lab
# chapters/`; see the README).

# %%
from lcbook import exercises
import torch


def truncated_svd(W, r):
    """W: (m, n) weight matrix; r: the rank.

    Returns (U, V): (m, r) and (n, r) with U @ V.T a best rank-r approximation of W."""
    raise NotImplementedError  # your code here


exercises.check_truncated_svd(truncated_svd)

# %% tags=["hide-cell"] mystnb={"code_prompt_show": "Show a solution", "code_prompt_hide": "Hide the solution"}
# A solution: run it, then the check again.
def truncated_svd(W, r):
    """W: (m, n) weight matrix; r: the rank.

    Returns (U, V): (m, r) and (n, r) with U @ V.T a best rank-r approximation of W."""
    u, s, vh = torch.linalg.svd(W, full_matrices=False)
    return u[:, :r] * s[:r], vh[:r].T


exercises.check_truncated_svd(truncated_svd)

# %% tags=["remove-cell"]
assert exercises.check_truncated_svd(truncated_svd).ok

# %% [markdown]
# ## Summary
#
# - Low-rank compression constrains each weight matrix to $\mathbf{U}\mathbf{V}^\top$; its C step is
#   the truncated SVD and leaves exactly $\sum_{i>r}s_i^2$ as error (Eckart–Young).
# - A conv weight $(n_\text{out}, n_\text{in}, k, k)$ is factorized as the matrix
#   $(n_\text{out}, n_\text{in}k^2)$ (`view="matrix"`) or $(n_\text{out}k, n_\text{in}k)$
#   (`view="matrix_hw"`); each view corresponds to a pair of thinner conv layers.
# - A rank-$r$ layer costs $32\min(r(m+n), mn)$ bits and, run as two layers, $P\min(r(m+n), mn)$
#   MACs; `storage_report(lc, example_input)` counts both, and `export.load(path, factorized=True)`
#   builds the two-layer net that realizes the FLOP savings.
# - Rank selection, $\min_r \alpha C(r) + \frac{\mu}{2}\sum_{i>r}s_i^2$, picks every layer's rank from
#   one α, by storage or by FLOPs; the two costs favour different layers.
# - Directly compressed VGG-16/4 loses accuracy already at a quarter of the rank, because its
#   spectra decay slowly; LC recovers part of it at the same storage.
#
# ## Exercises
#
# 1. Plot the spectra of the ResNet-20 reference (`references.reference("resnet20", "quick")`).
#    Do its conv layers look more or less low-rank than VGG's? Which layers would rank selection
#    cut first?
# 2. Repeat the direct-compression curve with `Task(name, LowRank(r), view="matrix_hw")` at the
#    same storage per layer as the `matrix` view. Does the better weight error of the figure
#    above carry over to the test error?
# 3. Show that, for the storage cost, rank selection never chooses a rank strictly between the
#    break-even rank $mn/(m+n)$ and $\min(m,n)$. For which layers of VGG-16/4 does this matter?
# 4. Rank selection with μ growing: for a fixed α, compute the chosen ranks of every layer for
#    μ = 0.1, 1, 10 on the reference weights. How would the ranks evolve over an LC run?
# 5. Using `storage_report`, find the α (cost `"flops"`) that matches the MACs of the uniform rank
#    fraction 0.25. Compare the chosen ranks with the uniform ones layer by layer.

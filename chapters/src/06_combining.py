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
# # Combining compressions
#
# **What you will learn**
#
# - the **additive model** of Part V {cite}`carreira2021part5`: the weights are a sum of
#   separately compressed parts, $\mathbf{w} = \boldsymbol{\Delta}_1(\boldsymbol{\theta}_1) +
#   \boldsymbol{\Delta}_2(\boldsymbol{\theta}_2) + \dots$, for example a 1-bit codebook plus a few
#   sparse float corrections (Q+P) or a low-rank matrix plus a few sparse corrections (L+P);
# - its **C step**: alternate each part's own C step on the residual left by the others, and why
#   the error $\|\mathbf{w} - \sum_i \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)\|^2$ can never
#   increase from one sweep to the next;
# - the **exact case**: a *fixed* codebook plus κ sparse corrections is solved optimally in one pass;
# - why, and where, a combination beats both of its parts at the same storage, measured on one
#   real layer of ResNet-20 {cite}`he2016deep` and one of VGG-16 {cite}`simonyan2015vgg`;
# - how recent compression methods for large language models build on the same C step.
#
# ```{admonition} Budget
# :class: note dropdown
# This chapter trains nothing: everything below is C steps on the weights of two trained
# reference nets (the `quick` references of {doc}`02_reference_models`), so it is meant to run in
# under a minute on one CPU core and is the same in both profiles. Full LC runs with these combinations
# follow in {doc}`07_qp_resnets`, {doc}`08_lp_vgg16` and {doc}`09_additive_vs_sequential`.
# ```

# %% [markdown]
# ## The additive model
#
# Each compression so far restricts the weights to one kind of structure: few distinct values
# (quantization, {doc}`03_quantization`), few nonzeros (pruning, {doc}`04_pruning`) or low rank
# ({doc}`05_low_rank`). Part V {cite}`carreira2021part5` lets the weights be a **sum** of such
# structures,
#
# $$
# \mathbf{w} = \boldsymbol{\Delta}(\boldsymbol{\Theta}) = \sum_{i=1}^{n}
# \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i),
# \qquad \boldsymbol{\Theta} = (\boldsymbol{\theta}_1, \dots, \boldsymbol{\theta}_n),
# $$
#
# where each part has its own parameters and its own storage. Two combinations matter in this book:
#
# - **Q+P**: $\mathbf{w} = \boldsymbol{\Delta}_Q(\mathcal{C}, \mathbf{z}) + \boldsymbol{\theta}_P$ with
#   a codebook $\mathcal{C}$ of K values, one index $z_j$ per weight, and a vector
#   $\boldsymbol{\theta}_P$ with at most κ nonzeros: every weight is a codebook value, and κ of
#   them get a float correction on top;
# - **L+P**: $\mathbf{W} = \mathbf{U}\mathbf{V}^\top + \boldsymbol{\Theta}_P$, a rank-r matrix plus κ
#   sparse corrections.
#
# The storage is the sum of the parts' storage. With the package's accounting (the chapters on the
# single compressions derive each term), a layer of N weights, viewed as an m×n matrix for
# low-rank, costs
#
# $$
# \underbrace{N\lceil\log_2 K\rceil + 32K}_{\text{adaptive codebook}}, \qquad
# \underbrace{N\lceil\log_2 K\rceil}_{\text{fixed codebook}}, \qquad
# \underbrace{32\,r\,(m+n)}_{\text{low-rank}}, \qquad
# \underbrace{\textstyle\sum_{\text{slots}} (b + 32)}_{\text{κ sparse floats}}
# $$
#
# bits, where a sparse entry is a 32-bit value plus its position coded as a b-bit gap from the
# previous one (b chosen per layer to minimise the total; a gap longer than $2^b$ costs extra
# slots).
#
# An additive combination is itself a compression, so LC needs nothing new: the L step is
# unchanged, and the C step is the projection onto the new feasible set,
#
# $$
# \min_{\boldsymbol{\theta}_1, \dots, \boldsymbol{\theta}_n}\;
# \Big\| \mathbf{w} - \tfrac{1}{\mu}\boldsymbol{\lambda} - \sum_{i=1}^{n}
# \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i) \Big\|^2 .
# $$
#
# In `lcbook` this is `AdditiveCombination((part_1, part_2, ...))`, and `Task(param,
# AdditiveCombination(...))` uses it exactly like any other compression. Below we write
# $\mathbf{w}$ for the vector the C step compresses ($\mathbf{w} - \boldsymbol{\lambda}/\mu$ inside
# LC, the reference weights $\bar{\mathbf{w}}$ for direct compression).

# %% [markdown]
# ## The C step: alternating over the parts
#
# The joint problem has no closed form (the best codebook depends on which weights the sparse part
# takes, and vice versa), but the problem in **one** part, the others fixed, is that part's own C
# step on a residual:
#
# $$
# \min_{\boldsymbol{\theta}_i}\; \big\| \mathbf{r}_i - \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)
# \big\|^2, \qquad \mathbf{r}_i = \mathbf{w} - \sum_{j \neq i} \boldsymbol{\Delta}_j(\boldsymbol{\theta}_j).
# $$
#
# For Q+P that is k-means on $\mathbf{w} - \boldsymbol{\theta}_P$ and "keep the κ largest entries"
# of $\mathbf{w} - \boldsymbol{\Delta}_Q$; for L+P a truncated SVD of $\mathbf{W} -
# \boldsymbol{\Theta}_P$ and the κ largest entries of $\mathbf{W} - \mathbf{U}\mathbf{V}^\top$. The
# C step of Part V {cite}`carreira2021part5` **alternates**: one *sweep* updates
# $\boldsymbol{\theta}_1, \boldsymbol{\theta}_2, \dots, \boldsymbol{\theta}_n$ in turn, each on the
# residual left by the current values of the others, and sweeps repeat until the error stops
# falling.
#
# **Why the error never increases.** Write $E(\boldsymbol{\Theta}) = \|\mathbf{w} - \sum_i
# \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)\|^2$. Updating part $i$ changes only the term
# $\|\mathbf{r}_i - \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)\|^2 = E$. If the part's C step is
# **exact** (pruning's top-κ, the truncated SVD, a fixed codebook), its result minimises this over
# all $\boldsymbol{\theta}_i$, so in particular it is no worse than the current
# $\boldsymbol{\theta}_i$:
#
# $$
# E(\dots, \boldsymbol{\theta}_i^{\text{new}}, \dots) = \min_{\boldsymbol{\theta}_i}
# \big\|\mathbf{r}_i - \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)\big\|^2
# \;\le\; \big\|\mathbf{r}_i - \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i^{\text{old}})\big\|^2
# = E(\dots, \boldsymbol{\theta}_i^{\text{old}}, \dots).
# $$
#
# The adaptive codebook's k-means is not exact in general, but it needs only the weaker property:
# **warm-started** from its current codebook, Lloyd's algorithm first assigns every value to its
# nearest centroid and then moves every centroid to its cluster's mean, and neither step can
# raise the distortion. (For a globally optimal codebook, `AdaptiveQuantization(k, method="exact")`
# solves 1-D k-means exactly by dynamic programming.) So every update, and every sweep, leaves
# $E$ no larger; $E \ge 0$, so the sequence converges. This is block-coordinate descent: it stops
# at a point where no single part can improve on its own, which need not be the global
# minimum, and *which* such point depends on where it starts.
#
# **Starting points.** Inside LC the C step is warm-started from the previous $\boldsymbol{\Theta}$:
# the sweeps start from it (on the new weights) and can only improve on it. Direct compression has no
# previous $\boldsymbol{\Theta}$ (a *cold start*). `AdditiveCombination` then makes one
# sequential pass (each part compresses what the parts before it leave), alternates from there,
# and does so for every rotation of the parts' order — for two parts: Q first, and P first —
# keeping the best result. The cold start is therefore never worse than compressing with the
# parts one after the other in either order ({doc}`09_additive_vs_sequential` compares the two on
# whole nets). Its Θ records the error after the first pass and after each sweep in
# `theta["sweep_errors"]`; `max_sweeps` (default 50) and `tol` (stop when a sweep gains less
# than that fraction, default $10^{-6}$) bound the work, and a sweep that rounding (in half
# precision) ever makes worse is discarded.

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
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

import lcbook
from lcbook import references, models, plots
import lcbook.display
from lcbook import AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, FixedCodebook, LowRank

torch.manual_seed(0)
T0 = time.perf_counter()

# The quick references are committed checkpoints; this chapter trains nothing, so it uses them in
# both profiles (a "full" reference would have to be trained first).
resnet, resnet_record = references.reference("resnet20", "quick", progress=False)
vgg, vgg_record = references.reference("vgg16_quarter", "quick", progress=False)


def largest_conv(model):
    params = dict(model.named_parameters())
    name = max(models.conv_and_linear_weights(model, include_linear=False), key=lambda n: params[n].numel())
    return name, params[name].detach().cpu()


R_NAME, R_CONV = largest_conv(resnet)
V_NAME, V_CONV = largest_conv(vgg)
w = R_CONV.reshape(-1)  # the vector a Q, P or Q+P C step sees ("flat" view)
W = V_CONV.reshape(V_CONV.shape[0], -1)  # the matrix a low-rank C step sees: (n_out, n_in·k·k)
print(f"ResNet-20 layer {R_NAME}: shape {tuple(R_CONV.shape)}, N = {w.numel():,} weights")
print(f"VGG-16/4  layer {V_NAME}: shape {tuple(V_CONV.shape)}, viewed as a {W.shape[0]}×{W.shape[1]} matrix")


# %% [markdown]
# Throughout, we measure a C step by its **relative distortion** $\|\mathbf{w} -
# \boldsymbol{\Delta}(\boldsymbol{\Theta})\|^2 / \|\mathbf{w}\|^2$ (in %) and its storage in bits
# per weight (the parts' bits over N).

# %%
def sqerr(x, d):
    """‖x − d‖² in float64."""
    return float(((x.double() - d.double()) ** 2).sum())


def rel(x, d):
    """Relative distortion ‖x − d‖² / ‖x‖² in percent."""
    return 100.0 * sqerr(x, d) / float((x.double() ** 2).sum())


# %% [markdown]
# ## Watching the alternation converge
#
# Here is the whole alternation in a dozen lines, using nothing but each part's own
# `compress(x, theta)` (its C step; `theta` is the warm start, which only the k-means uses). We
# record $E$ after the first sequential pass, after every single part's update, and after every
# sweep.

# %%
def alternate(x, parts, order, max_sweeps=50, tol=1e-6):
    """Didactic C step of Σ_i Δ_i(θ_i): a sequential pass in `order`, then sweeps over the parts.

    Returns (the parts' Δ's, their Θ's, E after the pass and after each sweep, E after each update).
    """
    deltas, thetas = [torch.zeros_like(x) for _ in parts], [None] * len(parts)
    for i in order:  # cold start: each part compresses what the ones before it leave
        deltas[i], thetas[i] = parts[i].compress(x - sum(deltas))  # deltas[i] is still 0 here
    sweeps = [sqerr(x, sum(deltas))]
    updates = list(sweeps)
    for _ in range(max_sweeps):
        for i, part in enumerate(parts):
            rest = sum(d for j, d in enumerate(deltas) if j != i)
            deltas[i], thetas[i] = part.compress(x - rest, thetas[i])  # part i's C step on its residual
            updates.append(sqerr(x, sum(deltas)))
        sweeps.append(updates[-1])
        if sweeps[-2] - sweeps[-1] <= tol * sweeps[-2]:
            break
    return deltas, thetas, sweeps, updates


# %% [markdown]
# We run it on the ResNet-20 layer with a K = 2 codebook plus corrections on 2% of the weights,
# from both starting orders, and compare with the package's `AdditiveCombination`.

# %%
KAPPA_DEMO = round(0.02 * w.numel())
QP_PARTS = (AdaptiveQuantization(k=2), ConstraintL0Pruning(kappa=KAPPA_DEMO))
alternations = {
    "Q first, then alternate": alternate(w, QP_PARTS, order=(0, 1)),
    "P first, then alternate": alternate(w, QP_PARTS, order=(1, 0)),
}
qp = AdditiveCombination(QP_PARTS)
delta_pkg, theta_pkg = qp.compress(w)
E_pkg = sqerr(w, delta_pkg)
norm2 = float((w.double() ** 2).sum())
for name, (_, _, sweeps, _) in alternations.items():
    print(f"{name:24s}: {len(sweeps) - 1:2d} sweeps, relative distortion "
          f"{100 * sweeps[0] / norm2:.3f}% after the first pass -> {100 * sweeps[-1] / norm2:.3f}%")
print(f"{'AdditiveCombination':24s}: relative distortion {100 * E_pkg / norm2:.3f}% "
      f"(best over both orders; its sweep_errors has {theta_pkg['sweep_errors'].numel()} entries)")

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.8))
for name, (_, _, sweeps, _) in alternations.items():
    ax.plot(range(len(sweeps)), [100 * e / norm2 for e in sweeps], marker="o", label=name)
ax.axhline(100 * E_pkg / norm2, ls="--", color="gray", lw=1, label="AdditiveCombination (result)")
ax.set_xlabel("sweep (0 = after the first sequential pass)")
ax.set_ylabel("relative distortion ‖w − Δ(Θ)‖²/‖w‖² (%)")
ax.set_title(f"C step of Q (K=2) + P (κ={KAPPA_DEMO}) on ResNet-20 {R_NAME}")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% tags=["remove-cell"]
for name, (deltas, thetas, sweeps, updates) in alternations.items():
    # monotone: no single part's update, hence no sweep, increases E (up to float32 rounding)
    assert all(b <= a * (1 + 1e-9) for a, b in zip(updates, updates[1:])), name
    assert sweeps[-1] < sweeps[0], f"{name}: alternation did not improve on the first pass"
    # feasibility: two codebook values, κ nonzeros
    assert thetas[0]["codebook"].numel() == 2 and thetas[1]["indices"].numel() == KAPPA_DEMO
best_ours = min(r[2][-1] for r in alternations.values())
# The package alternates from the same two starting orders and keeps the better one.
assert E_pkg <= best_ours * (1 + 1e-4), (E_pkg, best_ours)

# %%
print(f"package vs best didactic run: relative difference {(E_pkg - best_ours) / best_ours:+.1e}")

# %% [markdown]
# After the first pass the two parts do not yet fit each other: starting with Q, the two codebook
# values were fitted to all weights, including the large ones the corrections now cover; starting
# with P, the corrections went to the largest weights rather than to those the codebook serves
# worst. The first sweep repairs most of that — each later sweep gains less (checked below) — and
# then the set of corrected weights and the two codebook values settle together. The two starts
# need not end at the same point, since the alternation finds a local optimum; the package keeps
# the better one.

# %% tags=["hide-input"]
for name, (_, _, sweeps, _) in alternations.items():
    gains = [a - b for a, b in zip(sweeps, sweeps[1:])]
    assert gains[0] == max(gains), f"{name}: a later sweep gained more than the first"
orders = {name: r[2][-1] for name, r in alternations.items()}
winner = min(orders, key=orders.get)
gap = abs(orders["Q first, then alternate"] - orders["P first, then alternate"]) / min(orders.values())
display(Markdown(
    f"On this layer the two starts end **{gap:.2%}** apart in distortion; the better one is "
    f"*{winner.split(',')[0]}*. After the first pass alone, "
    f"*{min(alternations, key=lambda n: alternations[n][2][0]).split(',')[0]}* was ahead."))

# %% [markdown]
# ## The exact case: a fixed codebook plus κ corrections
#
# When the codebook is **fixed** — {−1, +1}, {−1, 0, +1}, or {−a, +a} with a chosen beforehand —
# the C step of Q+P needs no alternation {cite}`carreira2021part5`. Write the problem as a choice of
# an assignment $z_j$ for every weight, a set $S$ of at most κ corrected weights, and their
# corrections $v_j$:
#
# $$
# \min_{\mathbf{z},\, |S| \le \kappa,\, \mathbf{v}}\;
# \sum_{j \in S} (w_j - c_{z_j} - v_j)^2 + \sum_{j \notin S} (w_j - c_{z_j})^2 .
# $$
#
# A corrected weight costs nothing ($v_j = w_j - c_{z_j}$), and any other weight costs at least
# $d_j^2 = \min_k (w_j - c_k)^2$, reached by its nearest codebook value. So the error is
# $\sum_{j \notin S} d_j^2$, minimised by putting into $S$ the κ weights with the largest $d_j$.
# That is **one pass**: quantize every weight to its nearest value, then prune the residual to its
# κ largest entries. `AdditiveCombination` recognises `(FixedCodebook(...),
# ConstraintL0Pruning(...))` (and `Binarization`, a `FixedCodebook`) and does exactly that.
# With an *adaptive* codebook the argument breaks: the best codebook depends on $S$ (the corrected
# weights should not pull the centroids), so we are back to alternating.
#
# First a brute-force check on a tiny vector: all $2^8$ assignments times all supports of size κ = 2.

# %%
g = torch.Generator().manual_seed(0)
tiny = torch.randn(8, generator=g, dtype=torch.float64)
fixed_tiny = AdditiveCombination((FixedCodebook((-0.5, 0.5)), ConstraintL0Pruning(kappa=2)))
d_tiny, _ = fixed_tiny.compress(tiny)
codes = torch.tensor([[(a >> j) & 1 for j in range(8)] for a in range(2 ** 8)], dtype=torch.float64)
per_weight = (tiny - (codes - 0.5)) ** 2  # (256, 8): error of each weight under each assignment
supports = torch.tensor([[float(j in (s, t)) for j in range(8)] for s in range(8) for t in range(s + 1, 8)],
                        dtype=torch.float64)  # (28, 8): every set S of 2 corrected weights
brute = float((per_weight @ (1 - supports).T).min())  # min over z and S of Σ_{j∉S} (w_j − c_{z_j})²
print(f"one pass: {sqerr(tiny, d_tiny):.12f}   brute force over {256 * 28} (z, S): {brute:.12f}")

# %% tags=["remove-cell"]
assert abs(sqerr(tiny, d_tiny) - brute) <= 1e-12 * max(brute, 1.0)

# %% [markdown]
# Now on the ResNet-20 layer, with the codebook {−a, +a} for a = the layer's mean |w| (rounded, so
# that it is a fixed number chosen before the C step), and κ = 2% of the weights as above. The
# alternation, from either starting order, cannot beat the one-pass solution.

# %% tags=["hide-input"]
A = round(float(w.abs().double().mean()), 4)
FIXED_PARTS = (FixedCodebook((-A, A)), ConstraintL0Pruning(kappa=KAPPA_DEMO))
fixed = AdditiveCombination(FIXED_PARTS)
d_fixed, theta_fixed = fixed.compress(w)
E_fixed = sqerr(w, d_fixed)
print(f"codebook {{−{A}, +{A}}}, κ = {KAPPA_DEMO}")
print(f"{'one pass (AdditiveCombination)':34s}: {rel(w, d_fixed):.4f}%  (sweeps recorded: "
      f"{theta_fixed['sweep_errors'].numel() - 1})")
fixed_runs = {}
for order, label in (((0, 1), "alternation, Q first"), ((1, 0), "alternation, P first")):
    deltas, _, sweeps, updates = alternate(w, FIXED_PARTS, order)
    fixed_runs[label] = sweeps
    print(f"{label:34s}: {100 * sweeps[0] / norm2:.4f}% after the first pass -> "
          f"{100 * sweeps[-1] / norm2:.4f}% after {len(sweeps) - 1} sweep(s)")
    assert all(b <= a * (1 + 1e-9) for a, b in zip(updates, updates[1:]))
    assert sweeps[-1] >= E_fixed * (1 - 1e-6), "alternation beat the exact one-pass solution"

# %% tags=["remove-cell"]
assert theta_fixed["1.indices"].numel() == KAPPA_DEMO
# The Q-first pass is the one-pass algorithm itself; the P-first pass is worse and needs sweeps.
assert abs(fixed_runs["alternation, Q first"][0] - E_fixed) <= 1e-9 * E_fixed
assert fixed_runs["alternation, P first"][0] > E_fixed

# %% [markdown]
# Starting with Q, the first pass already *is* the one-pass solution, and the sweeps cannot
# improve on it. Starting with P, the first pass spends the κ corrections on the largest weights —
# not on the weights farthest from ±a — and the alternation then has to move them.
#
# The storage of this setting is fixed by N, K and κ plus the positions the sparse part picked.
# The fixed codebook itself is not stored (it is part of the format, like the {−1, +1} of a
# binary net):

# %% tags=["nbval-check-output"]
def part_theta(theta, i):
    """Part i's Θ inside an AdditiveCombination's Θ (stored under the key prefix "i.")."""
    return {k[len(f"{i}."):]: v for k, v in theta.items() if k.startswith(f"{i}.")}


q_bits = fixed.parts[0].bits(part_theta(theta_fixed, 0))
p_theta = part_theta(theta_fixed, 1)
p_bits = fixed.parts[1].bits(p_theta)
print(f"layer {R_NAME}: N = {w.numel()} weights")
print(f"Q part {{-a,+a}} fixed: {q_bits} bits (1 per weight, no codebook)")
print(f"P part: nnz = {int(p_theta['indices'].numel())}, {p_bits} bits")
print(f"total: {fixed.bits(theta_fixed)} bits = {q_bits} + {p_bits}")

# %% tags=["remove-cell"]
assert fixed.bits(theta_fixed) == q_bits + p_bits == w.numel() + p_bits

# %% [markdown]
# ## A picture in two dimensions
#
# Part V opens with a picture that explains the whole idea {cite}`carreira2021part5`; here is our
# version, computed with the package. Take a linear model with two weights $\mathbf{w} \in
# \mathbb{R}^2$ and a least-squares loss $L(\mathbf{w})$ on 200 random examples with correlated
# inputs: its contours are ellipses around the reference $\bar{\mathbf{w}}$. Each compression is
# a feasible set in the plane:
#
# - **Q**, the fixed codebook {−1, +1}: the four points $(\pm 1, \pm 1)$ (1 bit per weight);
# - **P**, κ = 1: the two axes (one weight kept, the other 0);
# - **Q+P**, the codebook plus one correction: the *sum* of the two sets, the four lines
#   $w_1 = \pm 1$ and $w_2 = \pm 1$. It contains Q's four points (a zero correction) and far
#   more, but not P's axes (0 is not in the codebook).
#
# Direct compression (×) projects $\bar{\mathbf{w}}$ on the set in the Euclidean sense and ignores
# the loss. LC runs the same `LCAlgorithm` as the CIFAR chapters, with an exact L step (for a
# quadratic loss the minimiser of $L(\mathbf{w}) + \frac{\mu}{2}\|\mathbf{w}-\Delta(\boldsymbol{\Theta})-\boldsymbol{\lambda}/\mu\|^2$
# is a 2×2 solve) and the package's C steps; the dots are $\mathbf{w}$ after each L step as μ
# grows: the **LC path over μ**, which starts at $\bar{\mathbf{w}}$ and ends on the set.

# %%
from lcbook import LCAlgorithm, Task, geometric_mu

g2 = torch.Generator().manual_seed(0)
X2 = torch.randn(200, 2, generator=g2, dtype=torch.float64) @ torch.tensor([[1.0, 0.0], [0.75, 0.6]], dtype=torch.float64)
y2 = X2 @ torch.tensor([-0.5, 1.4], dtype=torch.float64) + 0.3 * torch.randn(200, generator=g2, dtype=torch.float64)
H2 = X2.T @ X2 / len(y2)  # L(w) = ½ mean (x·w − y)² = ½ (w − w̄)ᵀ H (w − w̄) + const
w_bar = torch.linalg.solve(H2, X2.T @ y2 / len(y2))


def toy_loss(w):
    return float(0.5 * ((X2 @ w - y2) ** 2).mean())


TOY_SETS = {
    "Q: codebook {−1, +1}": FixedCodebook([-1.0, 1.0]),
    "P: κ = 1": ConstraintL0Pruning(kappa=1),
    "Q+P: codebook + 1 correction": AdditiveCombination((FixedCodebook([-1.0, 1.0]), ConstraintL0Pruning(kappa=1))),
}
# The sets as points and lines p + t·e, for the exact constrained minimum of the quadratic.
E1, E2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
CORNERS = [torch.tensor([a, b], dtype=torch.float64) for a in (-1.0, 1.0) for b in (-1.0, 1.0)]
TOY_GEOMETRY = {
    "Q: codebook {−1, +1}": {"points": CORNERS, "lines": []},
    "P: κ = 1": {"points": [], "lines": [(0 * E1, E1), (0 * E1, E2)]},
    "Q+P: codebook + 1 correction": {"points": [], "lines": [(c * E1, E2) for c in (-1.0, 1.0)] + [(c * E2, E1) for c in (-1.0, 1.0)]},
}


def exact_minimum(geom):
    """The minimiser of L over the set: every point, and the best t on every line (a 1-D quadratic)."""
    cands = list(geom["points"])
    for p, e in geom["lines"]:
        t = -float(e @ H2 @ (p - w_bar)) / float(e @ H2 @ e)
        cands.append(p + t * e)
    return min(cands, key=toy_loss)


def toy_lc(comp):
    """LC on the linear model: exact L steps, the package's C step; returns the path of w and Δ."""
    net = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(w_bar[None])
    path, deltas = [w_bar.clone()], []

    def exact_l_step(lc):
        ((w, target),) = lc.targets()
        with torch.no_grad():  # argmin_w ½(w − w̄)ᵀH(w − w̄) + μ/2 ‖w − target‖²
            w.copy_(torch.linalg.solve(H2 + lc.mu * torch.eye(2, dtype=torch.float64),
                                       H2 @ w_bar + lc.mu * target.reshape(-1)).reshape(w.shape))
        path.append(w.detach().reshape(-1).clone())
        return {}

    def record(model):
        deltas.append(model.weight.detach().reshape(-1).clone())
        return {"loss": toy_loss(deltas[-1])}

    lc = LCAlgorithm(net, [Task("weight", comp)], exact_l_step, geometric_mu(0.02, 1.4, 30), evaluate=record,
                     progress=False)
    lc.run()
    return torch.stack(path), torch.stack(deltas)


g1, g2_ = torch.meshgrid(torch.linspace(-2, 3, 200, dtype=torch.float64), torch.linspace(-2, 2.2, 200, dtype=torch.float64),
                         indexing="xy")
grid = torch.stack([g1.reshape(-1), g2_.reshape(-1)], 1)
loss_grid = (0.5 * ((grid @ X2.T - y2) ** 2).mean(1)).reshape(g1.shape)
toy_runs = {label: (toy_lc(comp), exact_minimum(TOY_GEOMETRY[label])) for label, comp in TOY_SETS.items()}
toy_rows = [{"set": label, "loss of w̄": toy_loss(w_bar), "DC loss": toy_loss(deltas[0]),
             "LC loss": toy_loss(deltas[-1]), "best loss on the set": toy_loss(best),
             "LC found the best point": bool(torch.allclose(deltas[-1], best, atol=1e-3))}
            for label, ((path, deltas), best) in toy_runs.items()]


def draw_toy(fig, axes):
    for ax, (label, ((path, deltas), best)) in zip(axes, toy_runs.items()):
        geom = TOY_GEOMETRY[label]
        ax.contour(g1, g2_, loss_grid, levels=toy_loss(w_bar) + torch.tensor([0.05, 0.2, 0.5, 1, 2, 3.5]).numpy(),
                   colors="0.7", linewidths=0.8)
        for p, e in geom["lines"]:
            ends = torch.stack([p - 5 * e, p + 5 * e])
            ax.plot(ends[:, 0], ends[:, 1], color="C0", lw=2, alpha=0.5)
        if geom["points"]:
            pts = torch.stack(geom["points"])
            ax.plot(pts[:, 0], pts[:, 1], "s", color="C0", ms=8, alpha=0.6)
        ax.plot(path[:, 0], path[:, 1], ".-", color="C3", lw=1, ms=4, label="LC path of w over μ")
        ax.plot(*w_bar, "ko", ms=6, label="reference w̄")
        ax.plot(*deltas[0], "x", color="k", ms=10, mew=2, label="DC: projection of w̄")
        ax.plot(*deltas[-1], "*", color="C3", ms=14, label="LC: Δ(Θ) at the end")
        ax.plot(*best, "o", mfc="none", mec="C2", ms=16, mew=2, label="best point of the set")
        ax.set_title(label, fontsize=11)
        ax.set(xlabel="w₁", ylabel="w₂", xlim=(-2, 3), ylim=(-2, 2.2))
        ax.set_aspect("equal")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=9.5, frameon=False)
    fig.suptitle("A linear model with two weights: loss contours, feasible sets (blue), DC and the LC path", fontsize=11)


display(lcbook.display.panels(draw_toy, 3, panel_size=(4.4, 4.0), sharex=True, sharey=True,
                              alt="two-weight toy: feasible sets of Q, P and Q+P, DC and the LC path"))
toy = pd.DataFrame(toy_rows).set_index("set")
toy.style.format(precision=3)

# %% tags=["remove-cell"]
# The sum set contains Q's points, so its best loss is no larger than Q's; on this example it is
# also below P's (what the text says). LC is never worse than DC here.
best_loss = toy["best loss on the set"]
assert best_loss["Q+P: codebook + 1 correction"] <= best_loss["Q: codebook {−1, +1}"] + 1e-12
assert best_loss["Q+P: codebook + 1 correction"] < best_loss["P: κ = 1"]
assert toy.loc["Q+P: codebook + 1 correction", "LC loss"] < toy.loc[["Q: codebook {−1, +1}", "P: κ = 1"], "LC loss"].min()
assert (toy["LC loss"] <= toy["DC loss"] + 1e-9).all(), toy

# %% [markdown]
# Three things to read off the picture, each of which the CIFAR chapters show at scale:
#
# - the sum set is much larger than Q (lines instead of points) and as large as P (four lines
#   instead of two), at 2 bits plus one float where P costs one float plus its index: it always
#   contains Q's best point, and here its best point also beats P's by far. *Combining enlarges
#   the feasible set at a small cost in bits*;
# - DC's projection ignores the shape of the loss: with correlated inputs the nearest feasible
#   point is not the one with the lowest loss, which is why direct compression of a real net
#   costs so much accuracy;
# - LC follows the loss: for small μ the L step barely moves $\mathbf{w}$ from $\bar{\mathbf{w}}$, and
#   as μ grows $\mathbf{w}$ is pulled onto the set at a point chosen by the loss (the table says
#   whether that is the best point of the set; on a nonconvex set it need not be, and LC finds a
#   local optimum from where the path enters).

# %% [markdown]
# ## Why a combination can beat both of its parts
#
# Storage and distortion trade off differently in each compression:
#
# - a codebook is cheap (⌈log₂K⌉ bits per weight) but every extra bit doubles K, so its storage
#   moves in **steps of one bit per weight**; and it serves the bulk of the weights well but the
#   few large weights in the tails badly;
# - pruning stores only the κ largest weights, each a 32-bit value plus its index bits (printed
#   below): cheap at low density, but it throws away the bulk of the weights;
# - together, the codebook serves the bulk at one bit and the κ most expensive errors — the tails
#   — get an exact correction. κ is continuous, so Q+P fills the storage between 1 and 2 bits
#   per weight that a single codebook cannot reach.
#
# We compute direct compression (the C step on the reference weights) on the ResNet-20 layer for
# quantization alone (K = 2, 4, 8, 16), pruning alone (a fine grid of κ) and Q+P (K = 2 plus κ
# corrections).

# %%
def point(family, label, comp, x):
    d, th = comp.compress(x)
    return {"family": family, "setting": label, "bits": comp.bits(th), "bits/weight": comp.bits(th) / x.numel(),
            "distortion %": rel(x, d)}


def pruning_curve(x, fractions):
    return [point("P", f"κ={f:.1%}", ConstraintL0Pruning(kappa=round(f * x.numel())), x) for f in fractions]


P_FRACTIONS = [i / 1000 for i in range(5, 401, 5)]  # 0.5% .. 40% kept
QP_FRACTIONS = [0.0025, 0.005, 0.01, 0.02, 0.03, 0.05]


def qp_parts(f):
    return AdaptiveQuantization(k=2), ConstraintL0Pruning(kappa=round(f * w.numel()))


resnet_points = (
    [point("Q", f"K={k}", AdaptiveQuantization(k=k), w) for k in (2, 4, 8, 16)]
    + pruning_curve(w, P_FRACTIONS)
    + [point("Q+P", f"K=2 + κ={f:.2%}", AdditiveCombination(qp_parts(f)), w) for f in QP_FRACTIONS]
)
resnet_df = pd.DataFrame(resnet_points)
p2 = resnet_df[(resnet_df.family == "P") & (resnet_df.setting == "κ=2.0%")].iloc[0]
print(f"pruning to 2% costs {p2.bits / round(0.02 * w.numel()):.1f} bits per kept weight on this layer")
resnet_df[resnet_df.family != "P"].set_index(["family", "setting"]).round(3)


# %%
def pareto_plot(df, styles, title, xmax, steps=()):
    """Distortion against bits per weight; families in `steps` are drawn as the staircase
    "best distortion with at most this many bits" (their storage comes in discrete steps)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for fam, (marker, ls) in styles.items():
        part = df[df.family == fam].sort_values("bits/weight")
        x, y = list(part["bits/weight"]), list(part["distortion %"])
        if fam in steps:
            line, = ax.step(x + [xmax], y + [y[-1]], where="post", ls=ls, label=f"{fam} (best within the bits)")
            ax.plot(x, y, marker=marker, ls="", ms=5, color=line.get_color())
        else:
            ax.plot(x, y, marker=marker, ls=ls, ms=5, label=fam)
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, 100)
    ax.set_xlabel("storage (bits per weight)")
    ax.set_ylabel("relative distortion ‖w − Δ(Θ)‖²/‖w‖² (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plt.show()


pareto_plot(resnet_df, {"Q": ("s", "-"), "P": ("", "-"), "Q+P": ("o", "-")},
            f"Direct compression of ResNet-20 {R_NAME}", xmax=5, steps=("Q",))


# %% [markdown]
# **Move κ.** Each Q+P point of the front, and what its C step did to the layer: the codebook
# (K = 2, red lines) serves the bulk of the weights; the κ corrected weights (orange) are the
# tails, where a 1-bit codebook errs most. More κ buys distortion at 32 bits plus index bits
# per correction.

# %%
def qp_frame(f):
    comp = AdditiveCombination(qp_parts(f))
    d, th = comp.compress(w)
    bits, dist = comp.bits(th) / w.numel(), rel(w, d)
    kept = torch.zeros(w.numel(), dtype=torch.bool)
    kept[th["1.indices"]] = True
    values = w.reshape(-1).numpy()
    bins = torch.linspace(float(w.min()), float(w.max()), 121).numpy()

    def draw(fig, axes):
        a1, a2 = axes
        for fam, combo, marker in (("Q", "q", "s"), ("P", "p", ""), ("Q+P", "qp", "o")):
            part = resnet_df[resnet_df.family == fam].sort_values("bits/weight")
            a1.plot(part["bits/weight"], part["distortion %"], marker=marker, ms=4, alpha=0.6,
                    color=plots.combo_color(combo), label=fam)
        a1.scatter([bits], [dist], s=140, facecolors="none", edgecolors="k", lw=2, zorder=5, label="this κ")
        a1.set(xlim=(0, 5), ylim=(0, 100), xlabel="storage (bits per weight)", ylabel="relative distortion (%)",
               title="the front, with the chosen point")
        a1.grid(alpha=0.3)
        a1.legend(fontsize=9)
        a2.hist(values[~kept.numpy()], bins=bins, color="0.75", label="served by the codebook")
        a2.hist(values[kept.numpy()], bins=bins, color=plots.combo_color("p"), label=f"κ = {int(kept.sum())} corrected")
        for j, cj in enumerate(th["0.codebook"]):
            a2.axvline(float(cj), color="C3", lw=1.6, label="codebook entries" if j == 0 else None)
        a2.set(yscale="log", xlabel="weight w", ylabel="number of weights (log)", title=f"{R_NAME}: who serves which weight")
        a2.legend(fontsize=9)

    return (lcbook.display.panels(draw, 2, panel_size=(5.5, 3.8), alt="the Q+P front and the weights the corrections serve"),
            f"K = 2 + κ = {f:.2%} of the weights: {bits:.2f} bits per weight, relative distortion {dist:.2f}%")


lcbook.display.chooser({(f"{f:.2%}",): qp_frame(f) for f in QP_FRACTIONS},
                       [("κ (kept fraction)", [f"{f:.2%}" for f in QP_FRACTIONS])], start=(f"{0.01:.2%}",),
                       alt="the Q+P front and the weights the corrections serve")


# %% [markdown]
# To compare at **matched storage**, take each Q+P point with B bits and ask what the best
# single compression achieves with **at most** B bits: among the codebooks, the largest K that
# fits; among the pruning settings (a fine grid of κ), the best that fits.

# %%
def best_within(df, family, bits):
    """Lowest distortion of `family` using at most `bits` bits (inf if nothing fits)."""
    fits = df[(df.family == family) & (df.bits <= bits)]
    return float(fits["distortion %"].min()) if len(fits) else math.inf


def matched(df, combo, singles):
    rows = []
    for _, r in df[df.family == combo].iterrows():
        row = {"setting": r.setting, "bits/weight": r["bits/weight"], combo: r["distortion %"]}
        row.update({f"best {s} within the bits": best_within(df, s, r.bits) for s in singles})
        row["beats both"] = all(r["distortion %"] < row[f"best {s} within the bits"] for s in singles)
        rows.append(row)
    return pd.DataFrame(rows)


resnet_matched = matched(resnet_df, "Q+P", ["Q", "P"])

# %% tags=["remove-cell"]
assert resnet_matched["beats both"].any(), "no Q+P setting beats both Q and P at matched storage"

# %%
resnet_matched.set_index("setting").round(3)

# %% [markdown]
# The table shows where the combination pays off in distortion. Past 2 bits per weight, a K = 4
# codebook fits, and the comparison changes:

# %%
q4 = resnet_df[(resnet_df.family == "Q") & (resnet_df.setting == "K=4")].iloc[0]
qp_at_or_above = resnet_df[(resnet_df.family == "Q+P") & (resnet_df.bits >= q4.bits)]
wins = resnet_matched[resnet_matched["beats both"]]
lines = [f"Q+P beats both parts at matched storage for {len(wins)} of {len(resnet_matched)} settings, "
         f"from {wins['bits/weight'].min():.2f} to {wins['bits/weight'].max():.2f} bits per weight."]
if len(qp_at_or_above):
    dominated = bool((qp_at_or_above["distortion %"] > q4["distortion %"]).all())
    lines.append(
        f"K = 4 ({q4['bits/weight']:.2f} bits per weight, {q4['distortion %']:.1f}%) "
        + ("has lower distortion than every Q+P setting of at least its storage: in pure distortion, "
           "a second codebook bit buys more than sparse corrections do."
           if dominated else "does not dominate the Q+P settings of at least its storage."))
display(Markdown(" ".join(lines)))

# %% [markdown]
# Distortion of the *reference* weights is what direct compression optimises, not what we want in
# the end. The LC algorithm's L step moves the weights to where the compression represents them
# well: a net trained under the Q+P constraint grows a bulk of weights that two values serve
# well plus a few large ones that the corrections take. That is why Part V reports ResNets at
# about one bit per weight plus a few float weights with no loss of accuracy
# {cite}`carreira2021part5`, and why {doc}`07_qp_resnets` compares Q, P and Q+P by test error after
# LC, not by distortion.

# %% [markdown]
# ### Low-rank plus sparse on a VGG layer
#
# The same comparison for low-rank (ranks 2 to 64 of the 128×1152 matrix), pruning and L+P
# (rank r plus κ corrections; every L+P C step alternates a truncated SVD and a top-κ).

# %%
m, n = W.shape
LP_SETTINGS = [(4, 0.01), (4, 0.03), (8, 0.01), (8, 0.03), (16, 0.01), (16, 0.03)]
vgg_points = (
    [point("L", f"r={r}", LowRank(r), W) for r in (2, 4, 8, 16, 32, 64)]
    + pruning_curve(W, P_FRACTIONS)
    + [point("L+P", f"r={r} + κ={f:.0%}", AdditiveCombination((LowRank(r), ConstraintL0Pruning(kappa=round(f * W.numel())))), W)
       for r, f in LP_SETTINGS]
)
vgg_df = pd.DataFrame(vgg_points)
pareto_plot(vgg_df, {"L": ("s", "-"), "P": ("", "-"), "L+P": ("o", "")},
            f"Direct compression of VGG-16/4 {V_NAME}", xmax=12)

# %%
vgg_matched = matched(vgg_df, "L+P", ["L", "P"])
vgg_matched["beats L"] = vgg_matched["L+P"] < vgg_matched["best L within the bits"]

# %% tags=["remove-cell"]
assert vgg_matched["beats L"].any(), "no L+P setting beats low-rank alone at matched storage"

# %%
vgg_matched.set_index("setting").round(3)

# %%
beats_l = int(vgg_matched["beats L"].sum())
beats_p = int((vgg_matched["L+P"] < vgg_matched["best P within the bits"]).sum())
p_vs_l = [best_within(vgg_df, "P", b) < d for b, d in zip(vgg_df[vgg_df.family == "L"].bits,
                                                           vgg_df[vgg_df.family == "L"]["distortion %"])]
display(Markdown(
    f"L+P beats low-rank alone at matched storage in {beats_l} of {len(vgg_matched)} settings, and "
    f"pruning alone in {beats_p}. Pruning alone beats low-rank alone at matched storage at "
    f"{sum(p_vs_l)} of {len(p_vs_l)} ranks: "
    + ("the weights of this reference layer are **not** close to low rank, so in distortion the "
       "sparse part does most of the work." if sum(p_vs_l) > len(p_vs_l) / 2 else
       "this reference layer is close enough to low rank for the SVD to pay off.")))

# %% [markdown]
# Whatever the verdict on this layer, it is a verdict on the trained reference weights. A
# reference net was trained without any constraint, so its layers need not be low-rank; LC
# trains them to become so, and Part V finds VGG nets compress best as low-rank plus a few
# floating-point weights {cite}`carreira2021part5` — by test error after LC. {doc}`08_lp_vgg16`
# runs that comparison on VGG-16.

# %% [markdown]
# ## The same C step in recent LLM compression
#
# Additive "dense plus sparse" decompositions have become standard for the weights of large
# language models:
#
# - **SqueezeLLM** {cite}`kim2023squeezellm` (*dense-and-sparse quantization*) keeps a small
#   fraction of outlier and sensitive weights in a sparse higher-precision matrix and quantizes
#   the rest with a non-uniform, k-means-like codebook — Q+P;
# - **SpQR** {cite}`dettmers2023spqr` quantizes the weights in small groups at a few bits and
#   stores the outlier weights, those the quantization serves worst, sparsely in higher precision —
#   Q+P with a small uniform grid of levels per group;
# - **LoSparse** {cite}`li2023losparse` writes each weight matrix as a low-rank matrix plus a sparse
#   one — L+P — initialised from the SVD and pruned during fine-tuning.
#
# SqueezeLLM and SpQR are **post-training** methods: they compress a trained model once, weighting
# the squared error by data statistics (sensitivity or Hessian information instead of our plain
# $\|\cdot\|^2$) and choosing the sparse part essentially in one pass. Their core is this
# chapter's C step — a decomposition into separately compressed parts, each found by its own
# projection — and in LC terms they are direct compression. (LoSparse instead fine-tunes the
# factors and the sparse matrix directly, pruning the sparse part as it goes, rather than
# alternating L and C steps.) The LC algorithm adds the **L step**: the weights are retrained,
# under a growing penalty μ, toward values that the combination represents well, with the
# alternating C step run inside that loop.

# %%
print(f"chapter compute time: {time.perf_counter() - T0:.1f} s")

# %%
import lcbook.display

lcbook.display.provenance({"ResNet-20 reference (quick)": resnet_record, "VGG-16/4 reference (quick)": vgg_record})

# %% [markdown]
# ## In code: the sparse half of the alternation
#
# In the alternating C step of Q+P, with the quantized part $\mathbf{q}$ fixed, the sparse part
# solves $\min_{\mathbf{s}} \|\mathbf{w}-\mathbf{q}-\mathbf{s}\|^2$ s.t. $\|\mathbf{s}\|_0 \le \kappa$.
# Write it: which κ entries should $\mathbf{s}$ correct, and by how much?
#
# Complete the function and run the check below it: it says whether the function is right and,
# if not, on which input and by how much. A solution is folded away under the check. To run the
# cells, open this chapter as a notebook: the launch button at the top of the page (Colab), or
# Jupyter on your machine (`.venv/bin/pip install jupyterlab`, then `.venv/bin/jupyter lab
# chapters/`; see the README).

# %%
from lcbook import exercises
import torch


def best_corrections(w, q, kappa):
    """w: (N,) weights; q: (N,) the quantized part; kappa: corrections allowed (int ≥ 0).

    Returns s: (N,) with at most kappa nonzeros, minimising ‖w − q − s‖²."""
    raise NotImplementedError  # your code here


exercises.check_best_corrections(best_corrections)

# %% tags=["hide-cell"] mystnb={"code_prompt_show": "Show a solution", "code_prompt_hide": "Hide the solution"}
# A solution: run it, then the check again.
def best_corrections(w, q, kappa):
    """w: (N,) weights; q: (N,) the quantized part; kappa: corrections allowed (int ≥ 0).

    Returns s: (N,) with at most kappa nonzeros, minimising ‖w − q − s‖²."""
    r = w - q
    s = torch.zeros_like(w)
    if kappa > 0:
        keep = torch.topk(r.abs(), kappa).indices
        s[keep] = r[keep]
    return s


exercises.check_best_corrections(best_corrections)

# %% tags=["remove-cell"]
assert exercises.check_best_corrections(best_corrections).ok

# %% [markdown]
# ## Summary
#
# - An additive combination $\sum_i \boldsymbol{\Delta}_i(\boldsymbol{\theta}_i)$ is itself a
#   compression: its storage is the sum of its parts', and LC uses it without change.
# - Its C step alternates the parts' own C steps on the residual left by the others. An exact
#   part step, or a warm-started k-means, cannot increase the error, so the sweeps decrease it
#   monotonically to a local optimum; `AdditiveCombination` cold-starts from every order of the
#   parts and keeps the best.
# - With a fixed codebook plus κ corrections the C step is exact in one pass: quantize to the
#   nearest value, then correct the κ largest residuals.
# - A combination reaches storage settings a single compression cannot (between a codebook's
#   integer bit widths) and there can have lower distortion than both parts; whether it wins after
#   training is a question for LC — {doc}`07_qp_resnets` (Q+P on ResNets), {doc}`08_lp_vgg16`
#   (L+P on VGG) and {doc}`09_additive_vs_sequential`.
#
# ## Exercises
#
# 1. Replace `AdaptiveQuantization(k=2)` by `AdaptiveQuantization(k=2, method="exact")` in
#    `alternate`. Is the error after each sweep still monotone? Does the final error change?
# 2. Run `alternate` for Q+P with three parts: `(AdaptiveQuantization(2), AdaptiveQuantization(2),
#    ConstraintL0Pruning(...))`. What does the sum of two 2-value codebooks represent, how many
#    bits does it cost, and how does it compare with K = 4?
# 3. Redo the ResNet-20 Pareto figure with Q+P at K = 4 plus κ corrections. Does it fill the gap
#    between 2 and 3 bits per weight as K = 2 + κ fills the gap between 1 and 2?
# 4. For the fixed codebook {−a, +a}, sweep a over a grid and plot the one-pass distortion against
#    a. Compare the best a with the scale found by `AdditiveCombination((ScaledBinarization(),
#    ConstraintL0Pruning(...)))` (an adaptive scale, hence alternation).
# 5. Repeat the VGG comparison for the classifier layer `classifier.1.weight` and for the other
#    convolutions (`models.conv_and_linear_weights(vgg)`). In which layers does low-rank beat
#    pruning at matched storage, and does L+P then beat both?

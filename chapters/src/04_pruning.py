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
# # Pruning
#
# **What you will learn**
#
# - the four pruning C steps of LC pruning {cite}`carreira2018pruning` — ℓ0 and ℓ1
#   **constraints**, ℓ0 and ℓ1 **penalties** — and their exact solutions: keep the κ largest
#   weights, project on the ℓ1 ball {cite}`duchi2008projection`, hard and soft thresholding;
# - why one κ shared by all layers of a ResNet-20 is not the same as the same fraction in every
#   layer, and where the surviving weights end up;
# - what a sparse weight costs to store (32-bit values plus gap-coded positions) and when it is
#   cheaper than the dense weight;
# - how far direct compression (DC) gets as the kept fraction shrinks, how a stored LC run
#   improves on it, and how the penalty forms let the net choose κ.
#
# ```{admonition} Budget
# :class: note dropdown
# This chapter trains nothing: the C steps run on the committed ResNet-20 reference
# {cite}`he2016deep` (the `quick` checkpoint of {doc}`02_reference_models`), direct compression is
# evaluated on a test subset after BatchNorm recalibration, and the LC run is read from the
# results store. It runs in under a minute on a 2-core CPU. `LCBOOK_PROFILE=full` only
# evaluates on all 10,000 test images (better on a GPU).
# ```

# %% [markdown]
# ## Four ways to ask for sparsity
#
# Pruning constrains or penalises the number (or the size) of nonzero weights. With LC the
# weights $\mathbf{w}$ are kept dense and a copy $\boldsymbol{\theta}$ carries the sparsity, tied
# to $\mathbf{w}$ by the constraint $\mathbf{w} = \boldsymbol{\theta}$ {cite}`carreira2018pruning`.
# The four forms differ only in how sparsity enters:
#
# | form | problem | parameter |
# |---|---|---|
# | ℓ0 constraint | $\min L(\mathbf{w})$ s.t. $\mathbf{w}=\boldsymbol{\theta},\ \|\boldsymbol{\theta}\|_0 \le \kappa$ | κ: number of nonzeros |
# | ℓ1 constraint | $\min L(\mathbf{w})$ s.t. $\mathbf{w}=\boldsymbol{\theta},\ \|\boldsymbol{\theta}\|_1 \le \kappa$ | κ: an ℓ1 budget |
# | ℓ0 penalty | $\min L(\mathbf{w}) + \alpha\|\boldsymbol{\theta}\|_0$ s.t. $\mathbf{w}=\boldsymbol{\theta}$ | α: loss cost of one weight |
# | ℓ1 penalty | $\min L(\mathbf{w}) + \alpha\|\boldsymbol{\theta}\|_1$ s.t. $\mathbf{w}=\boldsymbol{\theta}$ | α |
#
# The L step is the same for all four (SGD on $L(\mathbf{w})$ plus the quadratic pull towards
# $\boldsymbol{\theta}$). The C step, with $\mathbf{w}$ standing for $\mathbf{w} - \boldsymbol{\lambda}/\mu$,
# is a problem in $\boldsymbol{\theta}$ alone, with no data, and each has an exact solution:
#
# - **ℓ0 constraint**: $\min \|\mathbf{w}-\boldsymbol{\theta}\|^2$ s.t. $\|\boldsymbol{\theta}\|_0 \le \kappa$.
#   Keeping a set $S$ of weights costs $\sum_{i\notin S} w_i^2$, so keep the κ largest $|w_i|$.
# - **ℓ1 constraint**: the Euclidean projection on the ℓ1 ball. Its solution is a *soft*
#   threshold $\theta_i = \operatorname{sign}(w_i)\max(|w_i|-\tau, 0)$ with the τ ≥ 0 that makes
#   $\|\boldsymbol{\theta}\|_1 = \kappa$ (τ = 0 if $\mathbf{w}$ is already inside the ball); sorting
#   finds τ exactly in $O(N\log N)$ {cite}`duchi2008projection`.
# - **ℓ0 penalty**: $\min \alpha\|\boldsymbol{\theta}\|_0 + \frac{\mu}{2}\|\mathbf{w}-\boldsymbol{\theta}\|^2$
#   separates over weights: keeping $w_i$ costs α, dropping it costs $\frac{\mu}{2}w_i^2$. Keep it
#   iff $|w_i| > \sqrt{2\alpha/\mu}$: a *hard* threshold.
# - **ℓ1 penalty**: $\min \alpha\|\boldsymbol{\theta}\|_1 + \frac{\mu}{2}\|\mathbf{w}-\boldsymbol{\theta}\|^2$
#   is the soft threshold at $\alpha/\mu$.
#
# The constraint forms fix the budget and let the C step find the threshold; the penalty forms
# fix a price and the threshold depends on μ — it **falls as μ grows**, so late in LC the C step
# keeps whatever weights the L step has not driven to zero. In `lcbook` these are
# `ConstraintL0Pruning`, `ConstraintL1Pruning`, `PenaltyL0Pruning` and `PenaltyL1Pruning`; the
# LC algorithm passes the current μ to the penalty forms (DC uses the first μ of the schedule).

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

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

import lcbook
import lcbook.display
from lcbook import references, models, plots, experiments, train
from lcbook import ConstraintL0Pruning, ConstraintL1Pruning, PenaltyL0Pruning, PenaltyL1Pruning, Task
from lcbook.compressions import project_l1_ball, sparse_bits, sparse_layout

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile()  # a missing full-profile reference trains on a GPU
DEVICE = references.device()
print(f"profile: {PROFILE}, device: {DEVICE}, torch {torch.__version__}")

# %% [markdown]
# ## The four C steps on a line of weights
#
# Apply each C step to a vector whose entries are a grid of weights in $[-1, 1]$ and plot
# $w_i \mapsto \Delta(\mathbf{w})_i$. The ℓ0 forms keep a weight untouched or zero it (hard
# thresholding); the ℓ1 forms also shrink every kept weight by the threshold (soft thresholding).

# %%
grid = torch.linspace(-1, 1, 201, dtype=torch.float64)
MU_DEMO = 1.0
forms = {
    "ℓ0 constraint, κ = 60 of 201": ConstraintL0Pruning(kappa=60),
    "ℓ0 penalty, α = 0.08 (μ = 1)": PenaltyL0Pruning(alpha=0.08),
    "ℓ1 constraint, ℓ1 budget κ = 25": ConstraintL1Pruning(kappa=25.0),
    "ℓ1 penalty, α = 0.3 (μ = 1)": PenaltyL1Pruning(alpha=0.3),
}
deltas = {name: c.compress(grid, mu=MU_DEMO)[0] for name, c in forms.items()}

def draw_thresholds(fig, axes):
    for ax, kind in zip(axes, ("ℓ0", "ℓ1")):
        ax.plot(grid, grid, color="gray", lw=0.8, ls="--", label="identity (no pruning)")
        for name, d in deltas.items():
            if name.startswith(kind):
                ax.plot(grid, d, lw=2, label=name)
        ax.set_title(f"{kind}: {'hard' if kind == 'ℓ0' else 'soft'} thresholding")
        ax.set_xlabel("weight $w_i$")
        ax.set_ylabel("pruned weight $\\Delta(\\mathbf{w})_i$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


display(lcbook.display.panels(draw_thresholds, 2, panel_size=(4.8, 3.8), sharey=True,
                              alt="the ℓ0 and ℓ1 pruning C steps as functions of one weight"))

# %% [markdown]
# The thresholds are short enough to write by hand. The cell below does so — with the ℓ1-ball
# threshold τ found by bisection on $\sum_i \max(|w_i|-\tau, 0) = \kappa$ instead of by sorting —
# and checks that the package's C steps give the same result.

# %%
def hard(w, t):
    return torch.where(w.abs() > t, w, torch.zeros_like(w))


def soft(w, t):
    return torch.sign(w) * (w.abs() - t).clamp(min=0)


def l1_threshold(w, budget, iters=100):
    """τ with Σ max(|w_i| − τ, 0) = budget, by bisection (w outside the ℓ1 ball)."""
    lo, hi = 0.0, float(w.abs().max())
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(soft(w, mid).abs().sum()) > budget else (lo, mid)
    return hi


kth = torch.sort(grid.abs(), descending=True).values[60 - 1]  # the 60th largest |w|

# %% tags=["remove-cell"]
assert torch.equal(deltas["ℓ0 constraint, κ = 60 of 201"], torch.where(grid.abs() >= kth, grid, 0 * grid))
assert torch.equal(deltas["ℓ0 penalty, α = 0.08 (μ = 1)"], hard(grid, (2 * 0.08 / MU_DEMO) ** 0.5))
assert torch.allclose(deltas["ℓ1 penalty, α = 0.3 (μ = 1)"], soft(grid, 0.3 / MU_DEMO))
tau = l1_threshold(grid, 25.0)
assert torch.allclose(deltas["ℓ1 constraint, ℓ1 budget κ = 25"], soft(grid, tau), atol=1e-9)

# %%
print(f"ℓ1 ball of radius 25: threshold τ = {tau:.4f}; the hand-written C steps match the package")

# %% [markdown]
# ## On a real conv layer
#
# Now one convolution of the ResNet-20 reference, `layer2.1.conv1` (32 filters of 32×3×3). We
# keep 10% of its weights with the ℓ0 constraint, project on an ℓ1 ball of a quarter of its ℓ1
# norm, and run the two penalty forms at the μ schedule of the stored LC run below.

# %%
reference, record = references.reference("resnet20", "quick", progress=False)
params = dict(reference.named_parameters())
CONVS = models.conv_and_linear_weights(reference, include_linear=False)
LAYER = "layer2.1.conv1.weight"
w = params[LAYER].detach()
n = w.numel()
stored = experiments.load_results("quick", model="resnet20", combo="p")
stored = [r for r in stored if r["budget"] == {"fraction": 0.045}]

# %% tags=["remove-cell"]
assert len(stored) == 1, "the stored run resnet20 p fraction=0.045 is missing: python -m lcbook run resnet20 p fraction=0.045"

# %%
run = stored[0]
MUS = lcbook.geometric_mu(run["schedule"]["mu0"], run["schedule"]["a"], run["schedule"]["steps"])
print(f"{LAYER}: shape {tuple(w.shape)}, {n} weights, ‖w‖₁ = {float(w.abs().sum()):.2f}")
print("μ schedule of the stored run:", ", ".join(f"{m:.3g}" for m in MUS))

# %%
KAPPA0 = round(0.10 * n)
BUDGET1 = 0.25 * float(w.abs().sum())
ALPHA0, ALPHA1 = 2e-3, 2e-2
rows, results = [], {}
for name, c, mu in [
    (f"ℓ0 constraint κ={KAPPA0}", ConstraintL0Pruning(kappa=KAPPA0), None),
    (f"ℓ1 constraint κ={BUDGET1:.2f}", ConstraintL1Pruning(kappa=BUDGET1), None),
    (f"ℓ0 penalty α={ALPHA0:g}, μ={MUS[0]:g}", PenaltyL0Pruning(ALPHA0), MUS[0]),
    (f"ℓ1 penalty α={ALPHA1:g}, μ={MUS[0]:g}", PenaltyL1Pruning(ALPHA1), MUS[0]),
]:
    d, th = c.compress(w, mu=mu)
    results[name] = (d, th)
    rows.append({"C step": name, "nonzeros": int(th["indices"].numel()), "kept %": 100 * th["indices"].numel() / n,
                 "‖w − Δ‖² / ‖w‖²": float(((w - d) ** 2).sum() / (w**2).sum()), "‖Δ‖₁": float(d.abs().sum())})
pd.DataFrame(rows).set_index("C step").style.format(precision=3)

# %%
d0, th0 = results[f"ℓ0 constraint κ={KAPPA0}"]

# %% tags=["remove-cell"]
assert int(torch.count_nonzero(d0)) == KAPPA0 == th0["indices"].numel(), "the ℓ0 constraint must keep exactly κ weights"
assert float(d0.abs().min()) == 0 and float(w.abs().flatten()[th0["indices"]].min()) >= float(w.abs().flatten().kthvalue(n - KAPPA0).values)
d1, _ = results[f"ℓ1 constraint κ={BUDGET1:.2f}"]
assert float(w.abs().sum()) > BUDGET1, "w must lie outside the ℓ1 ball for this check"
assert abs(float(d1.abs().sum()) - BUDGET1) < 1e-4 * BUDGET1, "the projection must land on the ℓ1 sphere"
assert torch.allclose(d1.flatten(), project_l1_ball(w.flatten(), BUDGET1))
k1 = int(torch.count_nonzero(d1))  # top-k1 is the closest Δ with k1 nonzeros, so the shrunk projection is further
err_l1 = float(((w - d1) ** 2).sum() / (w**2).sum())
err_top = float(((w - ConstraintL0Pruning(kappa=k1).compress(w)[0]) ** 2).sum() / (w**2).sum())
assert err_l1 >= err_top

# %%
print(f"with {k1} nonzeros: ℓ1 projection ‖w − Δ‖²/‖w‖² = {err_l1:.3f}, keeping the {k1} largest = {err_top:.3f}")

# The penalty thresholds fall as μ grows, so the C step keeps more weights of the same w.
thr = {"ℓ0 penalty": [PenaltyL0Pruning(ALPHA0).threshold(m) for m in MUS],
       "ℓ1 penalty": [PenaltyL1Pruning(ALPHA1).threshold(m) for m in MUS]}
kept = {"ℓ0 penalty": [PenaltyL0Pruning(ALPHA0).compress(w, mu=m)[1]["indices"].numel() for m in MUS],
        "ℓ1 penalty": [PenaltyL1Pruning(ALPHA1).compress(w, mu=m)[1]["indices"].numel() for m in MUS]}

# %% tags=["remove-cell"]
for form in thr:
    assert all(a > b for a, b in zip(thr[form], thr[form][1:])), f"{form}: threshold must fall as μ grows"
    assert all(a <= b for a, b in zip(kept[form], kept[form][1:])), f"{form}: kept count must not fall as μ grows"

# %%
print("ℓ0 constraint keeps exactly κ; the ℓ1 projection lies on the ball; penalty thresholds fall with μ")

# %% [markdown]
# For the same number of nonzeros the ℓ1 forms are further from $\mathbf{w}$ than the ℓ0 forms,
# because they also shrink the weights they keep; in exchange their C step is a convex problem.
# The figure shows the penalty forms on this layer along the μ schedule: with α fixed, the
# threshold falls and the C step keeps more of the same weights. In LC the L step meanwhile
# pulls the small weights towards zero, so what survives is decided by the loss, not by α alone.

# %%
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for form, ks in kept.items():
    ax.plot(MUS, [100 * k / n for k in ks], marker="o", label=f"{form} (α = {ALPHA0 if form == 'ℓ0 penalty' else ALPHA1:g})")
ax.set_xscale("log")
ax.set_xlabel("μ")
ax.set_ylabel(f"weights kept in {LAYER.removesuffix('.weight')} (%)")
ax.set_title("Penalty C steps on fixed weights: the threshold falls as μ grows")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## One κ for the whole net, or the same fraction in every layer?
#
# A `Task` may span several tensors: `Task(tuple_of_names, ConstraintL0Pruning(fraction=f))`
# concatenates them into one vector and keeps its $\kappa = \mathrm{round}(fN)$ largest entries,
# so **the layers compete** for the kept weights. This is how the results store prunes
# (combination `p`, {doc}`07_qp_resnets`). The alternative is one task per layer, each keeping
# the fraction $f$ of its own weights. With $f$ = 4.5% (the stored LC run), where do the
# survivors sit?

# %%
FRACTION = run["budget"]["fraction"]
sizes = [params[p].numel() for p in CONVS]
w_all = torch.cat([params[p].detach().reshape(-1) for p in CONVS])
delta_all, theta_all = ConstraintL0Pruning(fraction=FRACTION).compress(w_all)
offsets = torch.tensor(sizes).cumsum(0).to(theta_all["indices"].device)
layer_of = torch.bucketize(theta_all["indices"], offsets, right=True)  # which conv each kept index falls in
kept_global = torch.bincount(layer_of, minlength=len(CONVS)).tolist()
kept_per_layer = [ConstraintL0Pruning(fraction=FRACTION).compress(params[p].detach())[1]["indices"].numel() for p in CONVS]

# %% tags=["nbval-check-output"]
print(f"keep {FRACTION:g} of {w_all.numel()} conv weights: κ = {theta_all['indices'].numel()}")
print(f"{'layer':24s}{'weights':>8s}{'global κ':>10s}{'per layer':>11s}")
for p, size, kg, kl in zip(CONVS, sizes, kept_global, kept_per_layer):
    print(f"{p.removesuffix('.weight'):24s}{size:8d}{kg:10d}{kl:11d}")
print(f"{'total':24s}{sum(sizes):8d}{sum(kept_global):10d}{sum(kept_per_layer):11d}")

# %% tags=["remove-cell"]
assert sum(kept_global) == round(FRACTION * w_all.numel()) == theta_all["indices"].numel()
assert all(kl == round(FRACTION * s) for kl, s in zip(kept_per_layer, sizes))
frac_global = [k / s for k, s in zip(kept_global, sizes)]
assert max(frac_global) > 2 * FRACTION > 0.5 * FRACTION > min(frac_global), "one κ should spread unevenly over the layers"

# %%
fig, ax = plt.subplots(figsize=(8, 3.8))
x = range(len(CONVS))
ax.bar(x, [100 * f for f in frac_global], label=f"one κ over all layers ({100 * FRACTION:g}% of all conv weights)")
ax.axhline(100 * FRACTION, color="C1", lw=2, label=f"the same {100 * FRACTION:g}% in every layer")
ax.set_xticks(list(x), [p.removesuffix(".weight") for p in CONVS], rotation=90, fontsize=8)
ax.set_ylabel("weights kept in the layer (%)")
ax.set_yscale("log")
ax.grid(alpha=0.3, axis="y", which="both")
ax.legend(fontsize=8)
plt.show()

# %%
def stage(p):
    return p.split(".")[0] if p.startswith("layer") else "layer1"  # conv1 counts with the first stage


mean_abs = {st: float(torch.cat([params[p].detach().abs().reshape(-1) for p in CONVS if stage(p) == st]).mean())
            for st in ("layer1", "layer2", "layer3")}
kept_stage = {st: sum(k for p, k in zip(CONVS, kept_global) if stage(p) == st) / sum(s for p, s in zip(CONVS, sizes) if stage(p) == st)
              for st in mean_abs}
cut_last = sum(s - k for p, s, k in zip(CONVS, sizes, kept_global) if stage(p) == "layer3") / (w_all.numel() - sum(kept_global))

# %% tags=["remove-cell"]
assert mean_abs["layer1"] > mean_abs["layer2"] > mean_abs["layer3"] and kept_stage["layer1"] > kept_stage["layer2"] > kept_stage["layer3"]
assert cut_last > 0.5

# %%
print("mean |w| per stage:", {k: round(v, 4) for k, v in mean_abs.items()})
print("kept per stage (%):", {k: round(100 * v, 2) for k, v in kept_stage.items()})
top = max(range(len(CONVS)), key=lambda i: frac_global[i])
low = min(range(len(CONVS)), key=lambda i: frac_global[i])
display(Markdown(
    f"With one κ, `{CONVS[top].removesuffix('.weight')}` keeps {100 * frac_global[top]:.1f}% of its weights and "
    f"`{CONVS[low].removesuffix('.weight')}` only {100 * frac_global[low]:.2f}%. The small early layers have "
    f"larger weights (fewer inputs per filter), so magnitude pruning over the whole net spares them and "
    f"takes {100 * cut_last:.0f}% of its cuts from the wide last stage, which holds "
    f"{100 * sum(s for p, s in zip(CONVS, sizes) if stage(p) == 'layer3') / sum(sizes):.0f}% of the conv weights."))

# %% [markdown]
# Magnitudes are compared across layers here, so a layer whose weights happen to be small loses
# more. That is a property of the C step applied to the reference weights (DC); inside LC the L
# step can move weights between layers, so the final allocation is chosen by the loss
# {cite}`carreira2018pruning`.
#
# ## Storing a sparse weight
#
# A pruned layer is stored as its κ kept values (32-bit floats) and their positions. `lcbook`
# codes positions by **relative indexing with fixed-width gaps** {cite}`han2016deep` (the LC
# toolkit's scheme {cite}`idelbayev2020flexible`): sort the kept positions, store the gap
# $g_i \ge 1$ from the previous one (the first from position −1) in $b$ bits. A gap longer than
# $2^b$ is bridged by filler entries (a zero value at the largest gap), so each gap costs
# $\lceil g_i / 2^b \rceil$ slots of $b + 32$ bits, and `sparse_layout` picks $b \in 1..32$ to
# minimise
#
# $$
# \text{bits}(b) = (b + 32) \sum_{i=1}^{\kappa} \left\lceil \frac{g_i}{2^b} \right\rceil .
# $$
#
# Small $b$ wastes slots on fillers; large $b$ wastes index bits on every entry. A hand-made
# example, then the whole pruned ResNet-20:

# %% tags=["nbval-check-output"]
idx = torch.tensor([2, 3, 4, 15, 60])
gaps = torch.diff(idx, prepend=torch.tensor([-1]))
print("kept positions:", idx.tolist(), " gaps:", gaps.tolist())
by_hand = {b: int(sum(-(-int(g) // 2**b) for g in gaps)) * (b + 32) for b in range(1, 9)}
for b, bits in by_hand.items():
    print(f"b = {b}: {bits // (b + 32)} slots x {b + 32} bits = {bits} bits")
b_best, bits_best = sparse_layout(idx)
print(f"sparse_layout: b = {b_best}, {bits_best} bits")
b_all, bits_all = sparse_layout(theta_all["indices"])
print(f"ResNet-20 convs, one κ = {theta_all['indices'].numel()}: b = {b_all}, {bits_all} bits "
      f"(dense: {32 * w_all.numel()} bits)")

# %% tags=["remove-cell"]
assert (b_best, bits_best) == min(by_hand.items(), key=lambda kv: kv[1]) and bits_best == sparse_bits(idx)
# The same C step inside the LC machinery (a Task over all convs) and in the results store:
lc_dc = lcbook.direct_compression(reference, [Task(tuple(CONVS), ConstraintL0Pruning(fraction=FRACTION))])
assert torch.equal(lc_dc.tasks[0].theta["indices"], theta_all["indices"])
assert lc_dc.compressed_bits() == bits_all == run["history"][0]["bits"], "DC storage must match the stored run"
assert abs(lc_dc.distance() - run["history"][0]["distance"]) < 1e-3 * run["history"][0]["distance"]

# %%
print(f"{bits_all / theta_all['indices'].numel():.2f} bits per kept weight, {bits_all / w_all.numel():.3f} bits per "
      f"conv weight (stored run: {run['bits_per_weight']:.3f}); compression ratio of the convs "
      f"{32 * w_all.numel() / bits_all:.1f}x, of the whole net (BatchNorm, linear layer at 32 bits) {run['ratio']:.1f}x")

# %% [markdown]
# How does the cost per kept weight depend on the density κ/N? For kept positions drawn at
# random, the gaps are about N/κ long, so $b \approx \log_2(N/\kappa)$ and a kept weight costs a
# little more than $32 + \log_2(N/\kappa)$ bits. The dense layer costs $32N$ bits, i.e. $32/\rho$
# bits per kept weight at density ρ; sparse storage wins below the density where the two curves
# cross. The dots are the layers of the globally pruned ResNet-20, each coded on its own.

# %%
N_DEMO = 100_000
g = torch.Generator().manual_seed(0)
densities = torch.logspace(-3, 0, 31).tolist()
per_kept = []
for rho in densities:
    k = max(1, round(rho * N_DEMO))
    per_kept.append(sparse_bits(torch.randperm(N_DEMO, generator=g)[:k]) / k)
layer_pts = [(k / s, sparse_bits(theta_all["indices"][layer_of == i] - (offsets[i] - s)) / k)
             for i, (k, s) in enumerate(zip(kept_global, sizes)) if k > 0]
# The break-even density: the largest density at which the sparse code is no longer than dense storage.
cheaper = [rho for rho, c in zip(densities, per_kept) if c * rho <= 32]

# %% tags=["remove-cell"]
assert all(c >= 32 + math.log2(1 / r) - 1e-9 for r, c in zip(densities, per_kept)), "a kept weight costs at least 32 + log2(1/ρ) bits"
assert all(c > 32 for c in per_kept) and per_kept[-1] * densities[-1] > 32 and cheaper, "sparse storage: >32 bits per kept weight"

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.plot(densities, per_kept, marker=".", label=f"sparse: random positions (N = {N_DEMO:,})")
ax.plot(densities, [32 + math.log2(1 / r) for r in densities], color="C0", lw=0.8, ls=":", label="32 + log₂(1/ρ)")
ax.plot(densities, [32 / r for r in densities], color="gray", ls="--", label="dense float32 (32/ρ)")
ax.scatter(*zip(*layer_pts), color="C3", zorder=3, label=f"ResNet-20 layers (one κ, {100 * FRACTION:g}%)")
ax.axhline(32, color="gray", lw=0.8, ls=":")
ax.axvline(max(cheaper), color="k", lw=0.8, ls="-.", label="break-even density")
ax.set_xscale("log")
ax.set_ylim(28, 60)
ax.set_xlabel("density ρ = κ/N (kept fraction)")
ax.set_ylabel("bits per kept weight")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.show()
print(f"sparse storage is smaller than dense up to a density of about {max(cheaper):.2f}; "
      f"at 1% density a kept weight costs {per_kept[densities.index(min(densities, key=lambda r: abs(r - 0.01)))]:.1f} bits")

# %% [markdown]
# ## Direct compression: error against the kept fraction
#
# Direct compression prunes the reference and does nothing else. We evaluate it on a test subset
# after re-estimating the BatchNorm statistics on training images (pruning shifts every layer's
# activations; {doc}`02_reference_models`), for one κ over all convs and for the same fraction in
# every layer.

# %%
TEST_SIZE = lcbook.choose(PROFILE, quick=500, full=None)  # None: all 10,000 test images
CALIB_SIZE = lcbook.choose(PROFILE, quick=512, full=2048)
test_batches = references.batches("cifar10", "test", 500, size=TEST_SIZE)
calib_batches = references.batches("cifar10", "train", 256, size=CALIB_SIZE, seed=1)
ref_error = train.evaluate(reference, test_batches)["error"]
print(f"reference: {ref_error:.1f}% test error on {len(test_batches.y)} test images "
      f"(BN recalibration of pruned nets on {len(calib_batches.y)} training images)")


def dc_error(tasks):
    """Test error (%) of the direct compression of the reference with these tasks."""
    lc = lcbook.direct_compression(reference, tasks, mu=MUS[0])
    with lc.compressed() as m:  # restores the reference weights and BN statistics on exit
        train.recalibrate_bn(m, calib_batches, max_batches=len(calib_batches))
        return train.evaluate(m, test_batches)["error"]


FRACTIONS = [0.02, FRACTION, 0.1, 0.25]
dc = {"one κ over all layers": [dc_error([Task(tuple(CONVS), ConstraintL0Pruning(fraction=f))]) for f in FRACTIONS],
      "same fraction per layer": [dc_error([Task(p, ConstraintL0Pruning(fraction=f)) for p in CONVS]) for f in FRACTIONS]}
pd.DataFrame(dc, index=pd.Index([f"{100 * f:g}%" for f in FRACTIONS], name="kept")).style.format(precision=1)

# %%
fig, ax = plt.subplots(figsize=(6.4, 4))
for name, errs in dc.items():
    ax.plot([100 * f for f in FRACTIONS], errs, marker="o", label=f"DC, {name}")
ax.axhline(ref_error, color="gray", ls="--", label="reference")
ax.axhline(90, color="gray", ls=":", lw=0.8, label="chance (10 classes)")
ax.set_xscale("log")
ax.set_xticks([100 * f for f in FRACTIONS], [f"{100 * f:g}" for f in FRACTIONS])
ax.minorticks_off()
ax.set_xlabel("conv weights kept (%)")
ax.set_ylabel("test error (%)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.show()

# %%
g_err = dc["one κ over all layers"]

# %% tags=["remove-cell"]
assert all(a > b for a, b in zip(g_err, g_err[1:])) and g_err[-1] > ref_error, "DC error must fall as more weights are kept"

# %%
worse = [f for f, a, b in zip(FRACTIONS, dc["one κ over all layers"], dc["same fraction per layer"]) if b > a]
display(Markdown(
    f"Keeping {100 * FRACTIONS[-1]:g}% of the weights, DC is at {dc['one κ over all layers'][-1]:.1f}% error "
    f"(reference {ref_error:.1f}%); at {100 * FRACTIONS[0]:g}% it is at {dc['one κ over all layers'][0]:.1f}%. "
    + ("The same fraction per layer is worse than one global κ at every kept fraction tried."
       if worse == FRACTIONS else
       f"The same fraction per layer is worse than one global κ at "
       f"{', '.join(f'{100 * f:g}%' for f in worse)} on this test subset."
       if worse else "On this test subset the same fraction per layer is never worse than one global κ.")))

# %% [markdown]
# ## LC against DC at 4.5%
#
# The results store holds an LC run of the ℓ0 constraint with one κ over all convs at the
# fraction above (`python -m lcbook run resnet20 p fraction=0.045`; the quick profile's short
# schedule: a few L steps of one epoch on a class-balanced subset of the training images). Its DC
# and LC errors are on the run's own test subset, so they differ slightly from the DC values
# above.

# %%
print(f"{run['id']}: reference {run['reference_error']:.1f}%, DC {run['dc_error']:.1f}%, LC {run['lc_error']:.1f}% "
      f"test error on {run['schedule']['test_size']} test images; {run['bits_per_weight']:.2f} bits per conv weight, "
      f"ratio {run['ratio']:.1f}x  [{run['hardware']}, {run['lc_seconds'] / 60:.0f} min, {run['date'][:10]}, "
      f"commit {run['git_commit'][:8]}]")

# %% tags=["remove-cell"]
assert run["lc_error"] < run["dc_error"], "LC must improve on direct compression for the stored run"
steps = [h for h in run["history"] if h["step"] != "DC"]
assert all(h["bits"] == run["history"][0]["bits"] for h in steps), "the ℓ0 constraint fixes κ: storage must not grow"
assert run["lc_error"] > run["reference_error"]
assert all(a["test_error"] >= b["test_error"] for a, b in zip(run["history"], run["history"][1:])), "the error should fall along the path"

# %%
plots.lc_paths({f"P: keep {100 * FRACTION:g}%, one κ": run["history"]}, key="test_error")
plt.title("LC path of the stored run (× = direct compression)")
plt.show()

# %% [markdown]
# ```{admonition} Reading a short LC run
# :class: tip
# LC starts from DC and each step trains the weights *for* the constraint: the error falls
# along the path while the storage stays fixed (κ is fixed). The quick profile's L steps are
# tiny, so the run stops well above the reference error. The full profile's schedule (15 epochs
# per L step and the augmented Lagrangian, as in the LC authors' CIFAR runs) needs a GPU:
# `python -m lcbook run resnet20 p fraction=0.045 --profile full`.
# ```
#
# ## Letting the net choose κ: the penalty forms
#
# With the ℓ0 constraint we pick κ and the C step picks *which* weights. With the ℓ0 penalty we
# pick α, the loss we are willing to pay per kept weight, and κ follows: DC keeps every weight
# above $\sqrt{2\alpha/\mu_0}$, and during LC the kept count is whatever the L step leaves above
# the falling threshold. Here are DC kept fractions of the whole ResNet-20 for two values of α, at
# the first and the last μ of the stored schedule (on the reference weights).

# %%
ALPHAS = [1e-3, 3e-3]
pen_rows, same_as_constraint = [], {}
for a in ALPHAS:
    lc_pen = lcbook.direct_compression(reference, [Task(tuple(CONVS), PenaltyL0Pruning(a))], mu=MUS[0])
    k_dc = lc_pen.tasks[0].theta["indices"].numel()
    k_last = PenaltyL0Pruning(a).compress(w_all, mu=MUS[-1])[1]["indices"].numel()
    same_as_constraint[a] = torch.equal(lc_pen.tasks[0].theta["indices"],
                                        ConstraintL0Pruning(kappa=k_dc).compress(w_all)[1]["indices"])
    pen_rows.append({"α": f"{a:g}", f"threshold at μ={MUS[0]:g}": PenaltyL0Pruning(a).threshold(MUS[0]),
                     f"kept % at μ={MUS[0]:g} (DC)": 100 * k_dc / w_all.numel(),
                     f"kept % at μ={MUS[-1]:.3g}": 100 * k_last / w_all.numel(),
                     "bits per conv weight (DC)": lc_pen.compressed_bits() / w_all.numel()})
pen = pd.DataFrame(pen_rows).set_index("α")
col_dc = f"kept % at μ={MUS[0]:g} (DC)"

# %% tags=["remove-cell"]
# The hard threshold keeps the same weights as the ℓ0 constraint with that κ.
assert all(same_as_constraint.values()), same_as_constraint

# %% tags=["remove-cell"]
assert pen[col_dc].is_monotonic_decreasing and (pen[f"kept % at μ={MUS[-1]:.3g}"] > pen[col_dc]).all()

# %%
pen.style.format(precision=3)

# %% [markdown]
# Move α and μ: the threshold $\sqrt{2\alpha/\mu}$ (red) splits the reference's conv weights into
# the kept (dark) and the pruned (light); the caption counts κ and the bits. The figures were
# computed when the page was built, so the controls work without a kernel.

# %%

A_CHOICES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
MU_CHOICES = [MUS[0], MUS[len(MUS) // 2], MUS[-1]]
logw = torch.log10(w_all.abs().clamp_min(1e-12))
edges = torch.linspace(float(logw.quantile(0.001)), float(logw.max()), 121)
counts = torch.histc(logw, bins=120, min=float(edges[0]), max=float(edges[-1]))
centres, width = (edges[1:] + edges[:-1]) / 2, float(edges[1] - edges[0])
alpha_frames, kept_at = {}, {}
for a in A_CHOICES:
    for m in MU_CHOICES:
        c = PenaltyL0Pruning(a)
        t = c.threshold(m)
        _, th = c.compress(w_all, mu=m)
        kept = kept_at[(a, m)] = th["indices"].numel()
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        keep = centres > math.log10(t)
        ax.bar(centres[~keep], counts[~keep], width=width, color="0.8", label="pruned")
        ax.bar(centres[keep], counts[keep], width=width, color="C0", label="kept")
        ax.axvline(math.log10(t), color="C3", lw=1.6, label="threshold √(2α/μ)")
        ax.set_xlabel("log₁₀ |w| (all conv weights of the reference)")
        ax.set_ylabel("number of weights")
        ax.legend(fontsize=9, loc="upper left")
        alpha_frames[(a, m)] = (fig, f"α = {a:g}, μ = {m:.3g}: threshold {t:.3g}; κ = {kept:,} of {w_all.numel():,} "
                                     f"weights kept ({100 * kept / w_all.numel():.2f}%), "
                                     f"{c.bits(th) / w_all.numel():.3f} bits per conv weight")
lcbook.display.chooser(alpha_frames, [("α", A_CHOICES), ("μ", MU_CHOICES)], start=(1e-3, MUS[0]),
                       alt="histogram of log |w| with the hard threshold of the ℓ0 penalty")

# %% tags=["remove-cell"]
# κ falls as α grows and rises as μ grows (the threshold √(2α/μ)).
assert all(kept_at[(A_CHOICES[i], m)] >= kept_at[(A_CHOICES[i + 1], m)] for i in range(len(A_CHOICES) - 1) for m in MU_CHOICES)
assert all(kept_at[(a, MU_CHOICES[j])] <= kept_at[(a, MU_CHOICES[j + 1])] for j in range(2) for a in A_CHOICES)

# %% [markdown]
# A larger α prices weights higher and keeps fewer; a larger μ lowers the threshold. The price α
# is in units of the loss, so it means the same in every layer: the penalty form does not need a
# per-layer κ, and an LC run with it ends at the κ at which one more weight is worth less than
# α to the loss {cite}`carreira2018pruning`. The storage then follows κ, so a penalty run must be
# read off the error–storage plane rather than at a preset budget.

# %%

lcbook.display.provenance({"reference": record, **{f"LC run: {r['id']}": r for r in stored}})

# %% [markdown]
# ## In code: the ℓ0-penalty C step
#
# Write the C step of the ℓ0 penalty, $\min_{\boldsymbol{\theta}} \alpha\|\boldsymbol{\theta}\|_0 + \frac{\mu}{2}\|\mathbf{w}-\boldsymbol{\theta}\|^2$:
# weight by weight, keeping $w_i$ costs α and pruning it costs $\frac{\mu}{2}w_i^2$: keep it
# when that is cheaper. The check compares your Δ with `PenaltyL0Pruning(α)`.
#
# Complete the function and run the check below it: it says whether the function is right and,
# if not, on which input and by how much. A solution is folded away under the check. To run the
# cells, open this chapter as a notebook: the launch button at the top of the page (Colab), or
# Jupyter on your machine (`.venv/bin/pip install jupyterlab`, then `.venv/bin/jupyter lab
# chapters/`; see the README).

# %%
from lcbook import exercises
import math
import torch


def hard_threshold(w, alpha, mu):
    """w: (N,) weights; alpha: the price α > 0 of a kept weight; mu: the penalty μ > 0.

    Returns Δ: (N,), w where it is kept and 0 elsewhere."""
    raise NotImplementedError  # your code here


exercises.check_hard_threshold(hard_threshold)

# %% tags=["hide-cell"] mystnb={"code_prompt_show": "Show a solution", "code_prompt_hide": "Hide the solution"}
# A solution: run it, then the check again.
def hard_threshold(w, alpha, mu):
    """w: (N,) weights; alpha: the price α > 0 of a kept weight; mu: the penalty μ > 0.

    Returns Δ: (N,), w where it is kept and 0 elsewhere."""
    return torch.where(w.abs() > math.sqrt(2 * alpha / mu), w, torch.zeros_like(w))


exercises.check_hard_threshold(hard_threshold)

# %% tags=["remove-cell"]
assert exercises.check_hard_threshold(hard_threshold).ok

# %% [markdown]
# ## Summary
#
# - Pruning has four C steps {cite}`carreira2018pruning`: the ℓ0 constraint keeps the κ largest
#   weights, the ℓ1 constraint is the projection on the ℓ1 ball (a soft threshold whose τ makes the
#   ℓ1 norm equal the budget) {cite}`duchi2008projection`, and the ℓ0/ℓ1 penalties are hard/soft
#   thresholds at $\sqrt{2\alpha/\mu}$ and $\alpha/\mu$, which fall as μ grows.
# - One κ over several layers (one `Task` over their names) lets layers compete for the kept
#   weights; on the ResNet-20 reference it spares the small early layers and cuts the wide late
#   ones much deeper than a uniform fraction would.
# - A kept weight costs its 32-bit value plus a gap code of about $\log_2(1/\rho)$ bits, so
#   sparse storage pays off only well below full density.
# - Direct compression degrades quickly as the kept fraction shrinks; LC starts there and trains
#   the weights for the constraint, and the stored run improves on DC at the same storage.
# - The penalty forms replace κ by a price α: the net chooses how many weights to keep.
#
# ## Exercises
#
# 1. On the grid of the first figure, find the ℓ1 budget κ for which the ℓ1 constraint keeps
#    exactly as many weights as the ℓ0 constraint with κ = 60. Compare $\|\mathbf{w}-\Delta(\mathbf{w})\|^2$
#    of the two. Which is smaller, and why must it be?
# 2. Prove that the ℓ0-penalty C step keeps $w_i$ iff $|w_i| > \sqrt{2\alpha/\mu}$, and show that
#    the ℓ0 constraint with κ = (number of kept weights) gives the same Δ (the notebook asserts
#    this on ResNet-20).
# 3. Prune with one κ over all convs *plus* the linear layer (`include_linear=True`). How many of
#    the linear layer's 640 weights survive at 4.5%, and what does DC do to the error?
# 4. `sparse_layout` uses one gap width $b$ for the whole vector. Write a variant that codes each
#    layer with its own $b$ and compare the total bits with the joint code for the globally
#    pruned ResNet-20. When can a per-layer width help?
# 5. Following the LC loop of {doc}`07_qp_resnets` (`LCAlgorithm` with `train.SGDLStep`), run LC
#    with `Task(tuple(CONVS), PenaltyL0Pruning(α))` for α = 1e-3 (a GPU helps; on a CPU use a
#    few steps on a training subset). Record the kept fraction after each C step
#    (`lc.tasks[0].theta["indices"].numel()`) and plot it against μ. Does it settle, and where?

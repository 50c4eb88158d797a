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
# # Quantization
#
# **What you will learn**
#
# - what the C step of quantization is: the ℓ2 projection of the weights onto the set of weights
#   that take only K values, i.e. 1-D k-means {cite}`carreira2017part2`;
# - how to solve it: Lloyd's algorithm (`AdaptiveQuantization(k)`), the globally optimal dynamic
#   programme (`method="exact"`), and the closed forms of binarization, scaled binarization,
#   scaled ternarization and fixed codebooks;
# - how quantized weights are stored and counted in bits, and what one codebook per layer costs
#   compared with one codebook shared by all layers;
# - how much accuracy *direct compression* (DC) loses at 1–4 bits per weight on a CIFAR-10
#   ResNet-20, and how much of it the LC algorithm wins back at 1 bit.
#
# ```{admonition} Budget
# :class: note dropdown
# Nothing is trained here. The C steps run in milliseconds on a CPU; the costly part is testing
# each directly compressed net, which the `quick` profile (the default) does on a class-balanced
# subset of the CIFAR-10 test images, so the whole chapter runs in about a minute on one CPU
# core. `LCBOOK_PROFILE=full` tests on all 10,000 images (minutes on a CPU, seconds on a GPU).
# The LC run of the last section comes from the results store (`data/results/`), written by
# `python -m lcbook run resnet20 q k=2`.
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

import matplotlib.pyplot as plt
import pandas as pd
import torch

import lcbook
from lcbook import references, models, plots, experiments, train, display
from lcbook import (AdaptiveQuantization, Binarization, FixedCodebook, ScaledBinarization,
                    ScaledTernarization, Task)
from lcbook.compressions import assign_nearest

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile()  # DC only, but a missing full-profile reference trains on a GPU
DEVICE = references.device()
print(f"profile: {PROFILE}, device: {DEVICE}")

# %% [markdown]
# ## The C step of quantization
#
# Quantization constrains every weight to take one of K values, the **codebook**
# $\mathcal{C} = \{c_1, \dots, c_K\}$. The compressed parameters are the codebook and one index
# per weight, $\boldsymbol{\Theta} = (\mathcal{C}, \mathbf{z})$ with $z_i \in \{1,\dots,K\}$, and the
# decompression is a table look-up: $\Delta(\boldsymbol{\Theta})_i = c_{z_i}$. The C step of LC
# {cite}`carreira2017part1` is the ℓ2 projection of the weights onto this set,
#
# $$
# \min_{\mathcal{C},\,\mathbf{z}} \; \sum_{i=1}^{N} \big(w_i - c_{z_i}\big)^2 ,
# $$
#
# which is k-means clustering of the N scalars $w_i$ {cite}`carreira2017part2`. With the
# codebook fixed, each weight goes to its **nearest** entry; with the assignments fixed, each
# entry is the **mean** of its weights:
#
# $$
# z_i = \arg\min_{k} \, |w_i - c_k| ,
# \qquad
# c_k = \frac{1}{|\{i : z_i = k\}|} \sum_{i:\, z_i = k} w_i .
# $$
#
# Lloyd's algorithm alternates the two; it converges to a local optimum, and inside LC each C
# step warm-starts from the previous codebook (`AdaptiveQuantization(k)`, the default
# `method="kmeans"`). In one dimension the global optimum is also within reach: with the weights
# sorted, $w_{(1)} \le \dots \le w_{(N)}$, every optimal cluster is a run of consecutive sorted
# weights, so the best error $D_m(j)$ of m clusters over the first j sorted weights obeys
#
# $$
# D_m(j) = \min_{m-1 \le i < j} \Big( D_{m-1}(i) + E(i, j) \Big),
# \qquad
# E(i, j) = \sum_{l=i+1}^{j} \Big(w_{(l)} - \tfrac{1}{j-i}\textstyle\sum_{l'=i+1}^{j} w_{(l')}\Big)^2 ,
# $$
#
# where $E(i, j)$ costs O(1) from prefix sums of $w_{(l)}$ and $w_{(l)}^2$. $D_K(N)$ is the
# optimum; `method="exact"` solves this dynamic programme in $O(KN\log N)$ time.
#
# ## Data and the reference net
#
# We quantize the ResNet-20 {cite}`he2016deep` reference of {doc}`02_reference_models`. A
# compressed net is tested after re-estimating its BatchNorm statistics
# {cite}`ioffe2015batchnorm` on training images, as the stored LC runs are (they use 2,048 images;
# the quick profile here uses fewer, to stay fast): the statistics of the reference weights no
# longer fit the compressed ones.

# %%
REF_PROFILE = PROFILE if references.reference_path("resnet20", PROFILE).is_file() else "quick"
model, record = references.reference("resnet20", REF_PROFILE, progress=False)
TEST_SIZE = lcbook.choose(PROFILE, quick=1000, full=None)  # None: all 10,000 test images
RECAL_SIZE = lcbook.choose(PROFILE, quick=256, full=2048)  # training images for BatchNorm recalibration
test_batches = references.batches("cifar10", "test", 250, size=TEST_SIZE)
recal_batches = references.batches("cifar10", "train", 256, size=RECAL_SIZE, seed=1)  # no augmentation


def test_error(net, recalibrate=True):
    """Test error (%) of ``net``, after re-estimating its BatchNorm statistics."""
    if recalibrate:
        train.recalibrate_bn(net, recal_batches, max_batches=math.ceil(RECAL_SIZE / 256))
    return train.evaluate(net, test_batches)["error"]


ref_error = test_error(model, recalibrate=False)
CONVS = models.conv_and_linear_weights(model, include_linear=False)
params = dict(model.named_parameters())
print(f"reference ({record['profile']} profile, commit {record['git_commit'][:8]}): "
      f"{ref_error:.2f}% test error on {len(test_batches.y)} test images "
      f"({record['test_error']:.2f}% on all 10,000)")
print(f"{len(CONVS)} conv layers, {sum(params[n].numel() for n in CONVS):,} conv weights; "
      f"BatchNorm recalibration on {len(recal_batches.y)} training images")

# %% [markdown]
# ## One layer, two codebooks
#
# Take the weights of one convolution and quantize them with K = 2 and K = 4, once with Lloyd's
# algorithm and once with the exact dynamic programme. A C step is a method of the compression
# object: `compress(w)` returns $\Delta(\boldsymbol{\Theta})$ and $\boldsymbol{\Theta}$.

# %%
LAYER = "layer3.0.conv2.weight"
w = params[LAYER].detach().reshape(-1)


def distortion(delta):
    return float(((w - delta.reshape(-1)) ** 2).sum())


codebooks, distortions, distinct = {}, {}, {}
for k in (2, 4):
    for method in ("kmeans", "exact"):
        delta, theta = AdaptiveQuantization(k, method=method).compress(w)
        codebooks[k, method], distortions[k, method] = theta["codebook"], distortion(delta)
        distinct[k, method] = delta.unique().numel()
    print(f"K={k}: Lloyd distortion {distortions[k, 'kmeans']:.6f}, exact {distortions[k, 'exact']:.6f}; "
          f"codebook (exact) {[round(float(c), 4) for c in codebooks[k, 'exact']]}")

# %% tags=["remove-cell"]
# Feasible: at most K distinct values. The dynamic programme is the global optimum: Lloyd can
# match it, never beat it.
for (k, method), n in distinct.items():
    assert n <= k, (k, method, n)
    assert distortions[k, "exact"] <= distortions[k, "kmeans"] * (1 + 1e-6) + 1e-9, k

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.hist(w.numpy(), bins=120, density=True, color="0.75", label=f"weights of {LAYER}")
styles = {(2, "kmeans"): ("C0", "-"), (2, "exact"): ("C1", "--"), (4, "kmeans"): ("C2", "-"), (4, "exact"): ("C3", "--")}
for (k, method), (color, ls) in styles.items():
    for j, c in enumerate(codebooks[k, method]):
        ax.axvline(float(c), color=color, ls=ls, lw=1.6, label=f"K={k}, {method}" if j == 0 else None)
ax.set_xlabel("weight value")
ax.set_ylabel("density (1 / weight unit)")
ax.set_title("Codebooks of K = 2 and K = 4 values on one conv layer")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The codebook adapts to the weights: its entries sit in the mass of the distribution, not at
# its extremes. Where Lloyd's solution and the exact one coincide the lines overlap; the printed
# distortions say how close they are.
#
# ## Each weight to its nearest codebook entry
#
# For a sorted codebook $c_1 < \dots < c_K$ the nearest-entry rule is a staircase: the decision
# thresholds are the midpoints $t_k = (c_k + c_{k+1})/2$, and
#
# $$
# \Delta(\boldsymbol{\Theta})_i = c_k \quad\text{if}\quad t_{k-1} < w_i \le t_k ,
# \qquad t_0 = -\infty,\; t_K = +\infty .
# $$
#
# The cell below checks the package's assignments against a literal reading of the formula,
# $z_i = \arg\min_k |w_i - c_k|$, and checks that the solution is a fixed point of Lloyd's
# algorithm (every entry is the mean of its cluster).

# %%
k = 4
delta, theta = AdaptiveQuantization(k, method="exact").compress(w)
c, z = theta["codebook"], theta["assignments"]
z_by_formula = (w[:, None] - c[None, :]).abs().argmin(dim=1)  # the C step formula, literally

# %% tags=["remove-cell"]
assert torch.equal(z_by_formula, z)
assert torch.equal(delta.reshape(-1), c[z])
means = torch.stack([w[z == j].double().mean() for j in range(k)])
assert torch.allclose(means, c.double(), rtol=1e-5, atol=1e-7)

# %%
print(f"K={k}: all {w.numel()} assignments follow the nearest-entry rule; cluster sizes "
      f"{torch.bincount(z, minlength=k).tolist()}")

# %%
grid = torch.linspace(float(w.min()), float(w.max()), 2001)
fig, ax = plt.subplots(figsize=(6.4, 3.8))
ax.plot(grid, grid, color="0.6", lw=1, ls=":", label="no compression, Δ(w) = w")
ax.plot(grid, c[assign_nearest(grid, c)], color="C3", lw=2, label=f"C step, K = {k}")
for j, t in enumerate((c[1:] + c[:-1]) / 2):
    ax.axvline(float(t), color="C0", lw=0.8, ls="--", label="thresholds (c_k + c_k+1)/2" if j == 0 else None)
ax.set_xlabel("weight w")
ax.set_ylabel("quantized weight Δ(Θ)")
ax.set_title(f"The nearest-entry map of {LAYER}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Move K.** The same layer's weights with the optimal codebook for each K (red lines) and the
# thresholds between entries (dashed): each extra bit per weight doubles K, and the entries
# spread to follow the bulk of the weights, while the tails stay far from every entry.

# %%
K_CHOICES = [2, 3, 4, 8, 16]
k_frames = {}
for kk in K_CHOICES:
    d_k, th_k = AdaptiveQuantization(kk, method="exact").compress(w)
    cb = th_k["codebook"]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.hist(w.numpy(), bins=150, color="0.75", label="weights of the layer")
    for j, cj in enumerate(cb):
        ax.axvline(float(cj), color="C3", lw=1.6, label="codebook entries c_k" if j == 0 else None)
    for j, t in enumerate((cb[1:] + cb[:-1]) / 2):
        ax.axvline(float(t), color="C0", lw=0.8, ls="--", label="thresholds" if j == 0 else None)
    ax.set_xlabel("weight w")
    ax.set_ylabel("number of weights")
    ax.set_title(f"{LAYER}: optimal codebook of K = {kk}")
    ax.legend(fontsize=9, loc="upper right")
    share = 100 * float(((w - d_k.reshape(-1)) ** 2).sum() / (w ** 2).sum())
    k_frames[(kk,)] = (fig, f"K = {kk}: {math.ceil(math.log2(kk))} bit(s) per weight plus {kk} 32-bit entries; "
                            f"distortion ‖w − Δ(Θ)‖² = {share:.2f}% of ‖w‖²")
display.chooser(k_frames, [("K", K_CHOICES)], start=(4,), alt="histogram of the layer's weights with the codebook")

# %% [markdown]
# ## Fixed and scaled codebooks
#
# Restricting the codebook gives cheaper C steps in closed form {cite}`carreira2017part2`:
#
# - **binarization**, $\mathcal{C} = \{-1, +1\}$: $\Delta_i = \operatorname{sign}(w_i)$
#   (`Binarization()`);
# - **scaled binarization**, $\mathcal{C} = \{-a, +a\}$ with a learned $a \ge 0$: minimising
#   $\sum_i (w_i - a s_i)^2$ over $s_i \in \{-1,+1\}$ and $a$ gives
#   $s_i = \operatorname{sign}(w_i)$ and $a = \frac{1}{N}\sum_i |w_i|$ (`ScaledBinarization()`);
# - **scaled ternarization**, $\mathcal{C} = \{-a, 0, +a\}$: if the $j$ largest $|w_i|$ become
#   $\pm a$ and the rest 0, the best $a$ is their mean and the error is
#   $\|\mathbf{w}\|^2 - S_j^2/j$, with $S_j$ the sum of the $j$ largest $|w_i|$; so the C step sorts
#   $|w_i|$ and keeps the $j$ that maximises $S_j^2/j$ (`ScaledTernarization()`);
# - **any fixed codebook**, e.g. $\{-1, 0, +1\}$ or powers of two (multiplications become
#   shifts): each weight to its nearest entry (`FixedCodebook(values)`).
#
# Each is a K-value codebook with fewer degrees of freedom, so the optimal adaptive codebook of
# the same K can never be worse in distortion. The table measures the relative distortion
# $\|\mathbf{w} - \Delta(\boldsymbol{\Theta})\|^2 / \|\mathbf{w}\|^2$ on the same layer, and the
# asserts check the closed forms and the orderings.

# %%
POW2 = FixedCodebook((0.0,) + tuple(s * 2.0 ** -e for s in (-1, 1) for e in range(3, 7)))  # 0, ±1/8 … ±1/64
compressions = {
    "adaptive K=2 (exact)": AdaptiveQuantization(2, method="exact"),
    "scaled binarization {−a,+a}": ScaledBinarization(),
    "binarization {−1,+1}": Binarization(),
    "adaptive K=3 (exact)": AdaptiveQuantization(3, method="exact"),
    "scaled ternarization {−a,0,+a}": ScaledTernarization(),
    "fixed {−1,0,+1}": FixedCodebook((-1.0, 0.0, 1.0)),
    f"adaptive K={len(POW2.values)} (exact)": AdaptiveQuantization(len(POW2.values), method="exact"),
    "fixed powers of two": POW2,
}
rows, thetas = [], {}
for name, comp in compressions.items():
    delta, thetas[name] = comp.compress(w)
    rows.append({"compression": name, "C step": comp.describe(), "K": int(delta.unique().numel()),
                 "relative distortion": distortion(delta) / float((w ** 2).sum())})
table = pd.DataFrame(rows).set_index("compression")
table.style.format({"relative distortion": "{:.4f}"})

# %%
d = table["relative distortion"]
a = float(thetas["scaled binarization {−a,+a}"]["scale"][0])

# %% tags=["remove-cell"]
assert math.isclose(a, float(w.abs().mean()), rel_tol=1e-5)  # a = mean |w|
codes = thetas["scaled ternarization {−a,0,+a}"]["codes"]
s = torch.cumsum(w.abs().double().sort(descending=True).values, 0)
j_best = int(torch.argmax(s ** 2 / torch.arange(1, w.numel() + 1))) + 1
assert int((codes != 0).sum()) == j_best  # keeps the j that maximises S_j²/j
a3 = float(thetas["scaled ternarization {−a,0,+a}"]["scale"][0])
assert math.isclose(a3, float(w.abs()[codes != 0].mean()), rel_tol=1e-5)  # a = mean of the kept |w|
# The optimal adaptive codebook beats every restricted codebook with the same number of values.
assert d["adaptive K=2 (exact)"] <= d["scaled binarization {−a,+a}"] + 1e-9
assert d["scaled binarization {−a,+a}"] < d["binarization {−1,+1}"]  # the scale matters for the distortion
assert float(w.abs().max()) < 0.5  # so the fixed codebook {−1,0,+1} sends every weight of this layer to 0
assert d["adaptive K=3 (exact)"] <= d["scaled ternarization {−a,0,+a}"] + 1e-9
assert d[f"adaptive K={len(POW2.values)} (exact)"] <= d["fixed powers of two"] + 1e-9

# %%
print(f"scaled binarization: a = {a:.4f} = mean|w|; scaled ternarization keeps {j_best} of {w.numel()} "
      f"weights at ±{a3:.4f} and sets the rest to 0")
print(f"binarization {{−1,+1}} is {d['binarization {−1,+1}'] / d['scaled binarization {−a,+a}']:.0f} times "
      f"further from the weights than {{−a,+a}}")

# %% [markdown]
# The K column counts the values actually used: a fixed codebook whose entries lie far from the
# weights may leave some of them unused (the entries ±1 of $\{-1,0,+1\}$ are far outside this
# layer's range of weights, plotted above). For the same reason unscaled binarization is far from
# the weights. That does not have to hurt the net: every convolution of this ResNet is
# followed by BatchNorm, which divides its outputs by their standard deviation, so multiplying a
# layer's weights by a positive constant changes nothing once the BatchNorm statistics are
# re-estimated. We test this below.
#
# ## Storage in bits
#
# A layer of $N$ weights quantized with its own codebook of K values stores one index of
# $\lceil \log_2 K \rceil$ bits per weight and the K codebook entries as 32-bit floats:
#
# $$
# \text{bits} = N \lceil \log_2 K \rceil + 32K .
# $$
#
# A fixed codebook costs no codebook bits; a scaled one costs 32 bits for $a$. Parameters no task
# compresses (here the linear layer, biases and BatchNorm parameters) cost 32 bits each, and the
# compression ratio is $32 \times (\text{all parameters}) / \text{total bits}$ (`lcbook.storage`).
# To get the bits of a whole net we run the direct compression of the reference with one task
# per conv layer — `lcbook.direct_compression(model, tasks)`: the C step on the reference
# weights, no L step; it returns an `LCAlgorithm` holding Θ — and ask `lcbook.storage_report`.

# %%
def direct_compression(make, tasks_per_layer=True, layers=CONVS):
    """An LCAlgorithm on the reference with one task per layer (or one for all) after DC only."""
    tasks = [Task(n, make()) for n in layers] if tasks_per_layer else [Task(tuple(layers), make(), name="all convs")]
    return lcbook.direct_compression(model, tasks)


# %% tags=["nbval-check-output"]
dc, by_formula = {}, {}
n_weights = sum(params[n].numel() for n in CONVS)
for k in (2, 4, 16):
    dc[f"K={k}"] = lc = direct_compression(lambda: AdaptiveQuantization(k))
    report = lcbook.storage_report(lc)
    by_formula[k] = (report["compressed_bits"], sum(params[n].numel() * math.ceil(math.log2(k)) + 32 * k for n in CONVS))
    print(f"K={k:2d}: {n_weights} conv weights in {report['compressed_bits']} bits; "
          f"whole net {report['total_bits']} bits (reference {report['reference_bits']} bits)")

# %% tags=["remove-cell"]
# The package's count is the storage formula: ⌈log2 K⌉ bits per weight plus K 32-bit entries per layer.
for k, (counted, formula) in by_formula.items():
    assert counted == formula, k

# %%
for name in ("K=2", "K=4", "K=16"):
    r = lcbook.storage_report(dc[name])
    print(f"{name:5s}: {r['bits_per_weight']:.3f} bits per conv weight, compression ratio {r['ratio']:.1f}x")

# %% [markdown]
# The codebook adds $32K/N$ bits to each weight's $\lceil\log_2 K\rceil$; that matters only for
# small layers (the first convolution has the fewest weights) and for large K.
#
# ## One codebook per layer, or one for all layers?
#
# A `Task` may span several tensors: `Task(tuple_of_names, AdaptiveQuantization(2))` quantizes
# all conv weights with **one** shared codebook, while one task per layer gives every layer its
# own. The shared codebook saves $32K$ bits per extra layer, a negligible amount, and it pays in
# distortion: on every layer, that layer's optimal codebook is at least as good as the shared one.
# We use the exact C step for the per-layer codebooks, so that this is a theorem the assert can
# check layer by layer (the shared codebook uses the default Lloyd C step).

# %%
per_layer = direct_compression(lambda: AdaptiveQuantization(2, method="exact"))
shared = direct_compression(lambda: AdaptiveQuantization(2), tasks_per_layer=False)


params_ref = {n: params[n].detach().clone() for n in CONVS}  # the reference weights


def layer_distortions(lc):
    with lc.compressed() as net:
        q = dict(net.named_parameters())
        return {n: float(((q[n].detach() - params_ref[n]) ** 2).sum()) for n in CONVS}


dist = {"one codebook per layer": layer_distortions(per_layer), "one codebook for all layers": layer_distortions(shared)}

# %% tags=["remove-cell"]
for n in CONVS:
    assert dist["one codebook per layer"][n] <= dist["one codebook for all layers"][n] * (1 + 1e-6) + 1e-9, n
assert math.isclose(sum(dist["one codebook per layer"].values()), per_layer.distance(), rel_tol=1e-4)

# %%
for name, lc in (("one codebook per layer", per_layer), ("one codebook for all layers", shared)):
    r = lcbook.storage_report(lc)
    print(f"{name:28s}: total distortion {lc.distance():8.2f}, "
          f"{r['compressed_bits']:,} bits ({r['bits_per_weight']:.4f} bits per weight)")

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.8))
x = torch.arange(len(CONVS))
for i, (name, dd) in enumerate(dist.items()):
    rel = [dd[n] / float((params_ref[n] ** 2).sum()) for n in CONVS]
    ax.bar(x + (i - 0.5) * 0.4, rel, width=0.4, label=name)
ax.set_xticks(x, [n.replace(".weight", "") for n in CONVS], rotation=75, fontsize=7)
ax.set_ylabel("relative distortion ‖w − Δ‖² / ‖w‖²")
ax.set_title("K = 2: per-layer versus shared codebook")
ax.legend(fontsize=8)
plt.show()

# %%
worst = max(CONVS, key=lambda n: dist["one codebook for all layers"][n] / dist["one codebook per layer"][n])
scale = {n: float(params_ref[n].abs().mean()) for n in CONVS}
print(f"the shared codebook hurts {worst} most (relative to its own codebook); its mean |w| is "
      f"{scale[worst]:.3f}, against {min(scale.values()):.3f}–{max(scale.values()):.3f} over all conv layers")

# %% [markdown]
# Layers have different weight scales (printed above), so a single pair of values cannot fit
# them all. One codebook per layer is the usual choice, and the one the results store uses.
#
# ## Direct compression of all convolutions
#
# Now quantize every conv layer (each with its own codebook or scale) and test the net:
# adaptive codebooks of K = 2, 4, 8, 16 and the three fixed-form codebooks. This is DC: the
# weights are not retrained, only projected. Bits per weight are over the conv weights and
# include the codebooks.

# %%
SETTINGS = {f"K={k}": (lambda k=k: AdaptiveQuantization(k)) for k in (2, 4, 8, 16)}
SETTINGS.update({"binarization {−1,+1}": Binarization, "scaled binarization {−a,+a}": ScaledBinarization,
                 "scaled ternarization {−a,0,+a}": ScaledTernarization})
results = []
for name, make in SETTINGS.items():
    dc[name] = lc = dc.get(name) or direct_compression(make)
    r = lcbook.storage_report(lc)
    with lc.compressed() as net:  # Δ(Θ) swapped in; weights and BatchNorm statistics restored on exit
        err = test_error(net)
    results.append({"setting": name, "bits per weight": r["bits_per_weight"], "ratio": r["ratio"],
                    "DC test error (%)": err})
results = pd.DataFrame(results).set_index("setting")
results.style.format(precision=3)

# %%
fig, ax = plt.subplots(figsize=(6.4, 4.2))
adaptive = results.loc[[f"K={k}" for k in (2, 4, 8, 16)]]
ax.plot(adaptive["bits per weight"], adaptive["DC test error (%)"], "o-", label="adaptive codebook, K = 2, 4, 8, 16")
for (marker, size, fill), name in zip([("s", 130, "none"), ("D", 45, None), ("^", 60, None)], list(SETTINGS)[4:]):
    color = f"C{list(SETTINGS).index(name) - 3}"
    ax.scatter(results.loc[name, "bits per weight"], results.loc[name, "DC test error (%)"], marker=marker, s=size,
               facecolors=fill or color, edgecolors=color, label=name, zorder=3)
ax.axhline(ref_error, ls="--", color="gray", lw=1, label="reference (32 bits per weight)")
ax.set_xlabel("bits per conv weight (codebooks included)")
ax.set_ylabel("test error (%)")
ax.set_title(f"ResNet-20, direct compression of all conv layers ({len(test_batches.y)} test images)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
e = results["DC test error (%)"]

# %% tags=["remove-cell"]
assert e["K=2"] > ref_error and e["K=16"] < e["K=2"]
assert e["K=4"] - ref_error < 0.5 * (e["K=2"] - ref_error)  # 2 bits lose far less than 1 bit
# With BatchNorm re-estimated, {−1,+1} and {−a,+a} give the same net up to rounding (and BN's ε).
assert abs(e["binarization {−1,+1}"] - e["scaled binarization {−a,+a}"]) <= 0.5

# %%
monotone = all(e[f"K={a}"] >= e[f"K={b}"] for a, b in ((2, 4), (4, 8), (8, 16)))
print(f"DC error falls from {e['K=2']:.1f}% at K=2 to {e['K=16']:.1f}% at K=16 (reference {ref_error:.1f}%); "
      f"{'monotonically' if monotone else 'not monotonically (within test-set noise)'} in K.")
print(f"binarization {e['binarization {−1,+1}']:.1f}% vs scaled binarization {e['scaled binarization {−a,+a}']:.1f}%: "
      "the scale is absorbed by BatchNorm.")

# %% tags=["remove-cell"]
assert dc["K=2"].distance() <= dc["scaled binarization {−a,+a}"].distance()  # adaptive K=2 is closer to w

# %%
better = "lower" if e["scaled binarization {−a,+a}"] < e["K=2"] else "not lower"
print(f"At 1 bit, the symmetric {{−a,+a}} gives a {better} DC error than the adaptive K=2 codebook "
      f"({e['scaled binarization {−a,+a}']:.1f}% vs {e['K=2']:.1f}%), although its distortion is not smaller "
      f"({dc['scaled binarization {−a,+a}'].distance():.2f} vs {dc['K=2'].distance():.2f}).")

# %% [markdown]
# Direct compression costs far less accuracy at two or more bits per weight than at one bit (the
# assert above checks this for K = 4 against K = 2). Lower distortion need not mean lower error
# (compare the adaptive K = 2 codebook with $\{-a,+a\}$): the C step measures the distance to the
# reference weights, not the loss. Taking the loss into account is what LC adds.
#
# ## DC versus LC at one bit per weight
#
# LC starts from the same direct compression and then alternates L steps (training with the
# quadratic pull $\tfrac{\mu}{2}\|\mathbf{w} - \Delta(\boldsymbol{\Theta})\|^2$) and C steps (the
# k-means above, warm-started) as μ grows. Training is too slow for this chapter, so we read the
# stored run of K = 2 per layer on all conv layers from the results store. Its history holds the
# test error of $\Delta(\boldsymbol{\Theta})$ after direct compression and after every LC step.

# %%
stored = [r for r in experiments.load_results(PROFILE, model="resnet20", combo="q") if r["budget"] == {"k": 2}]
if not stored and PROFILE != "quick":
    print(f"no stored {PROFILE} run of resnet20 q k=2: showing the quick one")
    stored = [r for r in experiments.load_results("quick", model="resnet20", combo="q") if r["budget"] == {"k": 2}]

# %% tags=["remove-cell"]
assert stored, "the results store has no resnet20 q k=2 run: python -m lcbook run resnet20 q k=2"
run = stored[0]
hist = run["history"]
assert hist[0]["step"] == "DC" and hist[0]["test_error"] == run["dc_error"]
assert run["lc_error"] < run["dc_error"]  # LC beats DC ...
assert len({h["bits"] for h in hist}) == 1  # ... at the same storage in every step

# %%
sch = run["schedule"]
print(f"stored run {run['id']} ({run['profile']} profile, {run['hardware']}, {run['date'][:10]}, "
      f"commit {run['git_commit'][:8]}): {len(hist) - 1} LC steps of {sch['epochs']} epoch(s) on "
      f"{sch['train_size'] or 50000} training images, μ from {hist[1]['mu']:g} to {hist[-1]['mu']:g}")
print(f"test error on {sch['test_size'] or 10000} test images: reference {run['reference_error']:.2f}%, "
      f"DC {run['dc_error']:.2f}%, LC {run['lc_error']:.2f}% at {run['bits_per_weight']:.3f} bits per weight "
      f"(ratio {run['ratio']:.1f}x)")
print(f"the DC of this chapter, on its own {len(test_batches.y)} test images: {e['K=2']:.2f}%")

# %%
ax = plots.lc_paths({"LC, K = 2 per layer": hist}, key="test_error")
ax.axhline(run["reference_error"], ls="--", color="gray", lw=1, label="reference")
ax.set_title("Test error of Δ(Θ) along the LC path (× = direct compression)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# LC ends at a lower error than DC with the same bits: the L step moves the weights to where a
# 1-bit codebook loses less, instead of rounding the reference. The L steps of the `quick`
# profile are short (one epoch on a subset of the training images); the LC authors' CIFAR runs
# use 15 epochs per L step {cite}`idelbayev2020flexible`, and Part V reports that ResNets reach
# one bit per weight without loss of accuracy once a few floating-point weights are added to the
# codebook {cite}`carreira2021part5` ({doc}`07_qp_resnets`).

# %%
import lcbook.display

lcbook.display.provenance({"reference": record, **{f"LC run: {r['id']} ({r['profile']})": r for r in stored}})

# %% [markdown]
# ## In code: one Lloyd iteration
#
# The C step of adaptive quantization is 1-D k-means. Write one iteration of Lloyd's algorithm:
# assign every weight to its nearest codebook entry, then move every entry to the mean of its
# weights (an entry that got no weight keeps its value). `kmeans_1d` repeats this until no
# assignment changes.
#
# Complete the function and run the check below it: it says whether the function is right and,
# if not, on which input and by how much. A solution is folded away under the check. To run the
# cells, open this chapter as a notebook: the launch button at the top of the page (Colab), or
# Jupyter on your machine (`.venv/bin/pip install jupyterlab`, then `.venv/bin/jupyter lab
# chapters/`; see the README).

# %%
from lcbook import exercises
import torch


def lloyd_step(x, codebook):
    """x: (N,) weights; codebook: (K,) sorted entries.

    Returns (assignments, new_codebook): (N,) int64 index of each weight's nearest entry and
    (K,) entries moved to the mean of their weights."""
    raise NotImplementedError  # your code here


exercises.check_lloyd_step(lloyd_step)

# %% tags=["hide-cell"] mystnb={"code_prompt_show": "Show a solution", "code_prompt_hide": "Hide the solution"}
# A solution: run it, then the check again.
def lloyd_step(x, codebook):
    """x: (N,) weights; codebook: (K,) sorted entries.

    Returns (assignments, new_codebook): (N,) int64 index of each weight's nearest entry and
    (K,) entries moved to the mean of their weights."""
    assignments = torch.argmin((x[:, None] - codebook[None, :]).abs(), dim=1)
    sums = torch.zeros_like(codebook).index_add_(0, assignments, x)
    counts = torch.bincount(assignments, minlength=len(codebook)).to(x.dtype)
    return assignments, torch.where(counts > 0, sums / counts.clamp_min(1), codebook)


exercises.check_lloyd_step(lloyd_step)

# %% tags=["remove-cell"]
assert exercises.check_lloyd_step(lloyd_step).ok

# %% [markdown]
# ## Summary
#
# - The C step of quantization is 1-D k-means of the weights: nearest-entry assignments and
#   cluster means. Lloyd's algorithm (`AdaptiveQuantization(k)`) finds a local optimum; the
#   dynamic programme (`method="exact"`) finds the global one.
# - Binarization, scaled binarization, scaled ternarization and fixed codebooks have closed-form C
#   steps; the adaptive codebook of the same K never has a larger distortion.
# - Storage is $N\lceil\log_2 K\rceil + 32K$ bits per layer; `lcbook.storage_report` counts it
#   for a whole net after direct compression, with no training.
# - One codebook per layer costs a few bits more than one shared codebook and fits every layer at
#   least as well.
# - Direct compression of a ResNet-20 costs far less accuracy at 2–4 bits per weight than at one
#   bit; with BatchNorm, the scale of a binary codebook is free. LC lowers the error of the 1-bit
#   net at the same storage.
#
# ## Exercises
#
# 1. Test the binarized and the scale-binarized nets *without* BatchNorm recalibration
#    (`test_error(net, recalibrate=False)`). What happens, and why does recalibration make the
#    two identical?
# 2. Test the DC net with one K = 2 codebook shared by all conv layers. Which is worse in error,
#    and is the ordering the same as for the distortion?
# 3. Build a 1-D data set on which Lloyd's algorithm, started from a poor codebook
#    (`lcbook.compressions.quantization.kmeans_1d(x, k, init=...)`), ends worse than
#    `optimal_quantization_1d`. How large can the gap be?
# 4. Compare the powers-of-two codebook with the adaptive K = 9 codebook for the whole net
#    (bits per weight and DC error). When would hardware make the fixed codebook worth it?
# 5. Make the stored LC run for K = 4 (`python -m lcbook run resnet20 q k=4`) and add it to the
#    error-versus-bits figure. How much does LC gain over DC at 2 bits?

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
# # Reference models
#
# **What you will learn**
#
# - which networks this book compresses: LeNet300 on MNIST {cite}`lecun1998mnist`, the CIFAR-10
#   ResNets of He et al. {cite}`he2016deep` and VGG-16 with BatchNorm
#   {cite}`simonyan2015vgg,ioffe2015batchnorm`, and how `lcbook.models` builds them;
# - how many parameters each has, where they sit layer by layer, and which of them LC
#   compresses;
# - the training recipes of the reference nets (the LC authors' full recipes and this book's
#   short CPU recipes), and the records that travel with every committed checkpoint;
# - why the committed *quick* references are weaker than the published ones, and why BatchNorm
#   statistics must be re-estimated after compression.
#
# Every compression in this book starts from a trained **reference** net with weights
# $\bar{\mathbf{w}} = \arg\min_{\mathbf{w}} L(\mathbf{w})$. Its test error is the bar a compressed
# net is measured against, and its size in bits is the numerator of the compression ratio.
#
# ```{admonition} Budget
# :class: note dropdown
# This chapter trains nothing. It builds the networks, reads the committed reference checkpoints
# and their records from `data/references/`, and evaluates them on test subsets: well under a
# minute on a 2-core CPU, in either profile.
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
import copy
import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

import lcbook
import lcbook.display
from lcbook import references, models, experiments, train
from lcbook import AdaptiveQuantization

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile()  # a missing full-profile reference trains on a GPU
DEVICE = references.device()
print(f"profile: {PROFILE}, device: {DEVICE}, torch {torch.__version__}")

# %% [markdown]
# ## The networks
#
# **LeNet300** is the fully connected 784–300–100–10 net with tanh units of the LC toolkit's
# MNIST examples {cite}`idelbayev2020flexible`; {doc}`01_lenet300_mnist` uses it.
#
# **CIFAR-10 ResNets** {cite}`he2016deep` (§4.2 of the paper) take a 32×32 colour image through a
# 3×3 convolution with 16 channels and then three *stages* of $n$ residual blocks with 16, 32
# and 64 channels; the first block of stages 2 and 3 halves the resolution with stride 2. A
# block computes
#
# $$
# \mathbf{y} = \operatorname{ReLU}\big(\mathbf{x} + \operatorname{BN}(W_2 *
#   \operatorname{ReLU}(\operatorname{BN}(W_1 * \mathbf{x})))\big),
# $$
#
# two 3×3 convolutions $W_1, W_2$ without bias, each followed by BatchNorm. Where the shape
# changes, the shortcut $\mathbf{x}$ is subsampled by 2 and padded with zero channels
# (**option A**: the shortcut has no parameters). Global average pooling and one linear layer
# give the 10 logits. The net has $6n+2$ weight layers: ResNet-20, -32, -56 and -110 are
# $n = 3, 5, 9, 18$.
#
# **VGG-16** {cite}`simonyan2015vgg` (configuration D) adapted to CIFAR-10 has 13 3×3
# convolutions of 64 to 512 channels, each followed by BatchNorm {cite}`ioffe2015batchnorm` and
# ReLU, with five 2×2 max-pools that take 32×32 to 1×1, then a classifier of three linear layers
# (512–512–10, dropout and BatchNorm between them; the logits have no ReLU).
# `vgg16_quarter` is the same net at a quarter of the width (16 to 128 channels): the quick
# profile's stand-in, small enough for a CPU to train and compress.

# %%
NAMES = ["lenet300", "resnet20", "resnet32", "resnet56", "resnet110", "vgg16", "vgg16_quarter"]

# %% tags=["remove-cell"]
assert set(NAMES) == set(models.MODELS), "a model of lcbook.models is missing from this chapter"

# %%
NETS = {name: models.build(name) for name in NAMES}
print(NETS["resnet20"].layer2[0])

# %% [markdown]
# ## Parameter counts
#
# The cell below builds every model of `lcbook.models` and counts its parameters by kind:
# convolution and linear weights, and the rest (biases, BatchNorm scales and shifts). BatchNorm
# running means and variances are buffers, not parameters, and are not counted (the storage
# accounting leaves them out on both sides of the ratio, as the papers do). The last column
# counts the weights LC compresses in this book (next section).

# %%
def breakdown(name, net):
    params = dict(net.named_parameters())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    layer_weights = models.conv_and_linear_weights(net)
    compressed = experiments.compressed_weights(name, net)
    return {
        "model": name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "conv layers": len(convs),
        "linear layers": len(linears),
        "conv+linear weights": sum(params[n].numel() for n in layer_weights),
        "other (bias, BN)": sum(p.numel() for n, p in params.items() if n not in layer_weights),
        "compressed weights": sum(params[n].numel() for n in compressed),
    }


COUNTS = {name: breakdown(name, net) for name, net in NETS.items()}

# %% tags=["nbval-check-output"]
cols = list(next(iter(COUNTS.values())))
print(" | ".join(f"{c:>19s}" for c in cols))
for row in COUNTS.values():
    print(" | ".join(f"{row[c]:>19}" for c in cols))

# %% [markdown]
# The published parameter counts of the CIFAR ResNets (0.27M, 0.46M, 0.85M and 1.7M, as listed
# with the low-rank experiments {cite}`idelbayev2020lowrank`) are rounded; the assert checks that
# ours round to them, and that each ResNet has $6n+2$ weight layers.

# %% tags=["remove-cell"]
PUBLISHED_PARAMS_M = {"resnet20": 0.27, "resnet32": 0.46, "resnet56": 0.85, "resnet110": 1.7}  # published, rounded
for name, millions in PUBLISHED_PARAMS_M.items():
    digits = len(str(millions).split(".")[1])
    assert round(COUNTS[name]["parameters"] / 1e6, digits) == millions, (name, COUNTS[name]["parameters"])
    depth = int(name.removeprefix("resnet"))
    assert COUNTS[name]["conv layers"] + COUNTS[name]["linear layers"] == depth == 6 * ((depth - 2) // 6) + 2

# %% tags=["remove-cell"]
assert COUNTS["vgg16"]["conv layers"] == 13 and COUNTS["vgg16"]["linear layers"] == 3

# %%
print("parameter counts agree with the published (rounded) ones; layer counts are 6n+2")

# %% [markdown]
# ## Where the parameters are
#
# The bar chart shows the weights of every convolution and linear layer of ResNet-20 and of the
# full-width VGG-16, on a log scale. A 3×3 convolution from $c_\text{in}$ to $c_\text{out}$
# channels has $9\,c_\text{in}c_\text{out}$ weights, so the count grows with the square of the
# width: the last stage of a ResNet and the 512-channel layers of VGG-16 hold most of the
# weights. Bars of weights that LC compresses (see below) are filled; the others are hollow.

# %%
def layer_sizes(name):
    net = NETS[name]
    params = dict(net.named_parameters())
    compressed = set(experiments.compressed_weights(name, net))
    names = models.conv_and_linear_weights(net)
    return names, [params[n].numel() for n in names], [n in compressed for n in names]


def draw_layers(fig, axes):
    for ax, name, title in zip(axes, ["resnet20", "vgg16"], ["ResNet-20", "VGG-16 (BN, CIFAR-10)"]):
        names, sizes, comp = layer_sizes(name)
        colors = ["C0" if name.startswith("resnet") else "C1"] * len(names)
        ax.bar(range(len(names)), sizes, color=[c if k else "none" for c, k in zip(colors, comp)],
               edgecolor=colors, linewidth=1.2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.removesuffix(".weight") for n in names], rotation=90, fontsize=8)
        ax.set_ylabel("weights in the layer (count, log)")
        ax.set_title(f"{title}: {sum(sizes):,} conv/linear weights")
        ax.grid(axis="y", alpha=0.3, which="both")


lcbook.display.panels(draw_layers, 2, panel_size=(5.6, 4.4), width_ratios=[20, 16],
                      alt="weights per layer of ResNet-20 and VGG-16, compressed layers filled")

# %%
r20_names, r20_sizes, _ = layer_sizes("resnet20")
stage3 = sum(s for n, s in zip(r20_names, r20_sizes) if n.startswith("layer3"))
v_names, v_sizes, _ = layer_sizes("vgg16")
big = sum(s for s in v_sizes if s >= 9 * 512 * 512)

# %% tags=["remove-cell"]
assert stage3 > sum(r20_sizes) / 2 and big > sum(v_sizes) / 2  # the claim of the text above

# %%
display(Markdown(
    f"In ResNet-20 the six convolutions of the last stage hold {100 * stage3 / sum(r20_sizes):.0f}% of the "
    f"conv/linear weights and the first convolution only {r20_sizes[0]:,} weights; in VGG-16 the "
    f"{sum(s >= 9 * 512 * 512 for s in v_sizes)} convolutions from 512 to 512 channels hold "
    f"{100 * big / sum(v_sizes):.0f}%."))

# %% [markdown]
# ## Which weights get compressed
#
# `lcbook.experiments.compressed_weights(model_name, model)` names the weights that the experiments of
# this book compress. It follows the LC authors' CIFAR experiments: for a ResNet every
# **convolution** (the final linear layer, 640 weights in ResNet-20, stays a float layer); for
# VGG-16 and LeNet300 every **convolution and linear** layer. Biases and BatchNorm parameters are
# never compressed; they are stored as 32-bit floats and count as such in every compression ratio.

# %% tags=["nbval-check-output"]
for name in ["resnet20", "vgg16", "vgg16_quarter", "lenet300"]:
    net = NETS[name]
    compressed = experiments.compressed_weights(name, net)
    params = dict(net.named_parameters())
    left = [n for n in params if n not in compressed]
    print(f"{name}: {len(compressed)} compressed tensors ({compressed[0]} ... {compressed[-1]}), "
          f"{sum(params[n].numel() for n in compressed)} weights; "
          f"{len(left)} float tensors, {sum(params[n].numel() for n in left)} values")

# %%
for name in ["resnet20", "vgg16"]:
    c = COUNTS[name]
    print(f"{name}: {100 * c['compressed weights'] / c['parameters']:.2f}% of the parameters are compressed")

# %% tags=["remove-cell"]
assert "fc.weight" not in experiments.compressed_weights("resnet20", NETS["resnet20"])
assert experiments.compressed_weights("vgg16", NETS["vgg16"]) == models.conv_and_linear_weights(NETS["vgg16"])

# %% [markdown]
# ## Training recipes
#
# `lcbook.references.RECIPES` holds one recipe per (network, profile). All use SGD with
# Nesterov momentum 0.9 on the cross-entropy loss, with weight decay on conv and linear weights
# only; a loss term $c\sum\|W\|^2$ as written in the LC authors' recipes is weight decay $2c$.
#
# - **full**: the LC authors' reference recipes {cite}`idelbayev2020flexible`. ResNets: 200
#   epochs, learning rate 0.1 divided by 10 at epochs 100 and 150 (the schedule of
#   {cite}`he2016deep`); VGG-16: 300 epochs, learning rate 0.05 multiplied by 0.97716 every epoch.
#   Random crops (4-pixel padding) and horizontal flips.
# - **quick**: the same data and augmentation, but a few epochs with a *one-cycle* learning rate
#   (linear warm-up over 15% of the steps, then linear decay to 0), which gets the most out of a
#   short budget on a CPU.
#
# Inputs are normalised with the CIFAR-10 (or MNIST) channel statistics of `lcbook.data.STATS`.

# %%
recipes = pd.DataFrame([{"model": m, "profile": p, **r.asdict()} for (m, p), r in references.RECIPES.items()])
recipes["gamma"] = recipes["gamma"].where(recipes["schedule"] != "onecycle")  # one-cycle has no γ
recipes["milestones"] = recipes["milestones"].where(recipes["schedule"] == "step")  # only "step" has milestones
recipes = recipes.sort_values(["profile", "model"], ascending=[False, True]).set_index(["model", "profile"])
recipes.astype(object).where(recipes.notna(), "")

# %% [markdown]
# ## The committed references and their records
#
# `references.reference(name, profile)` loads `data/references/<model>-<dataset>-<profile>.pt`
# and the JSON record beside it (and trains the net only if the checkpoint is missing). The
# repository commits the quick references. Every record says how the checkpoint was made: the
# command, the recipe, the test error on all test images, the training time, the hardware,
# the library versions and the git commit. The table is read from those files.

# %%
RECORDS = {}
for path in sorted(references.REFERENCE_DIR.glob("*.json")):
    rec = json.loads(path.read_text())
    RECORDS[(rec["model"], rec["profile"])] = rec

# %% tags=["remove-cell"]
assert {("lenet300", "quick"), ("resnet20", "quick"), ("vgg16_quarter", "quick")} <= set(RECORDS)

# %%
pd.DataFrame([{
    "model": r["model"], "profile": r["profile"], "dataset": r["recipe"]["dataset"],
    "epochs": r["recipe"]["epochs"], "test error %": r["test_error"],
    "train minutes": round(r["train_seconds"] / 60, 1), "hardware": r["hardware"],
    "date": r["date"][:10], "git commit": r["git_commit"][:10], "command": r["command"],
} for r in RECORDS.values()]).set_index(["model", "profile"])

# %% [markdown]
# A record's command, `python -m lcbook reference ...` (or, in records made before the command
# line moved, `python -m lcbook.experiments reference ...`, which hands over to it), remakes it.
#
# ## Checking a reference against its record
#
# A record's test error is measured on all 10,000 test images. Here we evaluate the ResNet-20
# quick reference on a class-balanced subset of the test set (to keep the chapter fast) with
# `lcbook.train.evaluate`, and check that the two agree within the noise of a subset: an error
# rate $p$ measured on $n$ images has standard error $\sqrt{p(1-p)/n}$. A forward hook keeps the
# predictions for the figure after it.

# %%
TEST_SIZE = lcbook.choose(PROFILE, quick=2000, full=None)  # None: all 10,000 test images
resnet, rec = references.reference("resnet20", "quick", progress=False)
test_batches = references.batches("cifar10", "test", 500, size=TEST_SIZE)
n_test = len(test_batches.y)

logits = []
hook = resnet.register_forward_hook(lambda module, inputs, output: logits.append(output.detach()))
measured = train.evaluate(resnet, test_batches)["error"]
hook.remove()
pred = torch.cat(logits).argmax(1)

se = 100 * math.sqrt(rec["test_error"] / 100 * (1 - rec["test_error"] / 100) / n_test)
tolerance = 4 * se if n_test < 10_000 else 0.05  # all images: at most 5 predictions may flip (float rounding)
print(f"ResNet-20 (quick) on {n_test} test images: {measured:.2f}%; record (10,000 images): "
      f"{rec['test_error']:.2f}%; standard error of the subset ≈ {se:.2f} points")

# %% tags=["remove-cell"]
assert abs(measured - rec["test_error"]) <= tolerance + 1e-9, "the checkpoint does not match its record"
assert abs(100 * int((pred != test_batches.y).sum()) / n_test - measured) < 1e-9

# %% [markdown]
# LeNet300 is small enough to test on all 10,000 MNIST test images, where the error must equal
# the record exactly; VGG-16 at quarter width gets a smaller subset.

# %% tags=["hide-input"]
for name, dataset, size in [("lenet300", "mnist", None), ("vgg16_quarter", "cifar10", lcbook.choose(PROFILE, quick=1000, full=None))]:
    net, r = references.reference(name, "quick", progress=False)
    b = references.batches(dataset, "test", 1000, size=size)
    err = train.evaluate(net, b)["error"]
    n = len(b.y)
    se_n = 100 * math.sqrt(r["test_error"] / 100 * (1 - r["test_error"] / 100) / n)
    print(f"{name} (quick) on {n} test images: {err:.2f}%; record: {r['test_error']:.2f}%")
    assert abs(err - r["test_error"]) <= (1e-6 if size is None else max(4 * se_n, 0.1)), name

# %% [markdown]
# Test images that ResNet-20 gets wrong, with the true class and the predicted one: the first
# mistake of each class in the subset (not a selection). Looking at mistakes is a cheap way
# to see what a reference has not learned; after compression, compare which images are lost.

# %%
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
y_test = test_batches.y
wrong = [int(torch.nonzero((pred != y_test) & (y_test == c))[0]) for c in range(10) if ((pred != y_test) & (y_test == c)).any()]
def draw_mistakes(fig, axes):
    for ax, i in zip(axes, wrong):
        ax.imshow(test_batches.x[i].permute(1, 2, 0).cpu().numpy())
        ax.set_title(f"{CIFAR10_CLASSES[y_test[i]]}\n→ {CIFAR10_CLASSES[pred[i]]}", fontsize=10)
    for ax in axes:
        ax.axis("off")


lcbook.display.panels(draw_mistakes, len(wrong), panel_size=(1.8, 2.1), columns=min(5, len(wrong)),
                      narrow_columns=min(2, len(wrong)),
                      alt="ResNet-20 (quick reference) mistakes: true class → predicted class")

# %% [markdown]
# ## Published reference errors, and why the quick references are weaker
#
# The LC authors trained their references with the full recipes. The errors below are
# **published** numbers, read off the error–compression plot of the low-rank paper
# {cite}`idelbayev2020lowrank` (so approximate, about ±0.1 points); they are not measured here.
# Beside them are the errors of this book's committed references, from their records.

# %%
PUBLISHED_ERROR = {"resnet20": 8.3, "resnet32": 7.1, "resnet56": 6.6, "resnet110": 6.1, "vgg16": 6.6}  # CVPR20 plot
OURS = {"resnet20": "resnet20", "vgg16": "vgg16_quarter"}  # the quick stand-in of each network
rows = []
for name, pub in PUBLISHED_ERROR.items():
    ours = RECORDS.get((OURS.get(name, name), "quick"))
    full = RECORDS.get((name, "full"))
    rows.append({
        "network": name, "published error % (full recipe, approx.)": pub,
        "our quick reference": ours["model"] if ours else "—",
        "its error %": ours["test_error"] if ours else "—",
        "its epochs": ours["recipe"]["epochs"] if ours else "—",
        "full recipe epochs": references.RECIPES[(name, "full")].epochs,
        "our full reference error %": full["test_error"] if full else "not trained yet",
    })
pd.DataFrame(rows).set_index("network")

# %% tags=["hide-input"]
for name in ["resnet20", "vgg16"]:
    ours = RECORDS[(OURS[name], "quick")]
    full_epochs = references.RECIPES[(name, "full")].epochs
    assert ours["test_error"] > PUBLISHED_ERROR[name] and ours["recipe"]["epochs"] < full_epochs
    hours = ours["train_seconds"] / ours["recipe"]["epochs"] * full_epochs / 3600
    factor = COUNTS[name]["parameters"] / COUNTS[OURS[name]]["parameters"]
    note = f"; {name} itself has {factor:.0f}× as many weights" if OURS[name] != name else ""
    print(f"{OURS[name]}: {ours['recipe']['epochs']} epochs in {ours['train_seconds'] / 60:.0f} min on {ours['hardware']}; "
          f"the {full_epochs} epochs of the full recipe would take ≈{hours:.0f} h at that speed{note}")

# %% [markdown]
# The quick references were trained for a few epochs on a 2-core CPU, a small fraction of the full
# recipes' epochs, so their errors are well above the published ones (the assert above checks
# it). Keep that in mind when reading the quick-profile results of later chapters: they start
# from a higher error and run short LC schedules, so their errors after compression are not
# comparable with the papers' numbers. The *orderings* (DC
# versus LC, one compression versus a combination) are what the quick profile shows; the full
# profile is for the papers' numbers.
#
# ```{admonition} Training the full references needs a GPU
# :class: warning
# The full recipes take 200 (ResNets) and 300 (VGG-16) epochs on all 50,000 training images: hours
# on one GPU, days or weeks on a CPU. On a machine with a CUDA GPU, from the repository root:
#
#     python -m lcbook reference resnet20 --profile full
#     python -m lcbook reference resnet32 --profile full
#     python -m lcbook reference resnet56 --profile full
#     python -m lcbook reference resnet110 --profile full
#     python -m lcbook reference vgg16 --profile full
#
# Each command trains the net if `data/references/<model>-cifar10-full.pt` is missing (add
# `--retrain` to train again), writes the checkpoint and its record, and prints the record. The
# table of records above then lists it, and `LCBOOK_PROFILE=full` makes the chapters use it.
# ```
#
# ## BatchNorm statistics and compression
#
# At test time a BatchNorm layer {cite}`ioffe2015batchnorm` normalises each channel $z$ of its
# input with a running mean $m$ and variance $v$ collected during training,
#
# $$
# \operatorname{BN}(z) = \gamma\,\frac{z - m}{\sqrt{v + \epsilon}} + \beta .
# $$
#
# $m$ and $v$ describe the activations *of the reference weights*. When compression replaces the
# weights by $\boldsymbol{\Delta}(\boldsymbol{\Theta})$, the activations change, and so do their
# mean and variance; with the stored $m, v$ every layer is normalised wrongly, and the error
# compounds with depth. The fix costs no training: reset $m, v$ and re-estimate them on a few
# batches of training images in training mode (`lcbook.train.recalibrate_bn`). `run_experiment`
# does this on 2,048 training images before every evaluation of a compressed net.
#
# The cell below shows the effect on ResNet-20. It quantizes every convolution directly to a
# codebook of K = 2 values (direct compression, no LC), runs a batch of training images through
# the net and compares, at every BatchNorm layer, the variance of the actual input with the
# stored $v$ (median over channels): 1 means the stored statistics fit.

# %%
stats_batches = references.batches("cifar10", "train", 256, size=768, seed=1)
(x_cal1, _), (x_cal2, _), (x_check, _) = list(stats_batches)


def variance_ratios(net, x):
    """Median over channels of (variance of the BN input) / (stored running variance), per BN layer."""
    out, hooks = [], []
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            hooks.append(module.register_forward_hook(
                lambda m, inp, o: out.append(float((inp[0].var(dim=(0, 2, 3)) / m.running_var).median()))))
    with torch.no_grad():
        net.eval()(x)
    for h in hooks:
        h.remove()
    return out


dc = copy.deepcopy(resnet)
params = dict(dc.named_parameters())
with torch.no_grad():
    for name in experiments.compressed_weights("resnet20", dc):
        params[name].copy_(AdaptiveQuantization(k=2).compress(params[name])[0])
ratios = {"reference": variance_ratios(resnet, x_check), "DC, K=2, stored statistics": variance_ratios(dc, x_check)}
train.recalibrate_bn(dc, [(x_cal1, None), (x_cal2, None)])
ratios["DC, K=2, recalibrated"] = variance_ratios(dc, x_check)

fig, ax = plt.subplots(figsize=(7, 3.6))
for label, r in ratios.items():
    ax.plot(range(1, len(r) + 1), r, marker="o", ms=4, label=label)
ax.axhline(1, color="gray", lw=1, ls="--")
ax.set_yscale("log")
ax.set_xlabel("BatchNorm layer of ResNet-20 (input to output)")
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.set_ylabel("actual / stored variance (median over channels)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()


# %%
def worst(r):
    return max(abs(math.log(v)) for v in r)


for label, r in ratios.items():
    print(f"{label:28s} farthest layer off by a factor {math.exp(worst(r)):.1f}")

# %% tags=["remove-cell"]
assert worst(ratios["DC, K=2, stored statistics"]) > 2 * worst(ratios["reference"])
assert worst(ratios["DC, K=2, recalibrated"]) < min(math.log(1.5), worst(ratios["DC, K=2, stored statistics"]))
stale = ratios["DC, K=2, stored statistics"]
assert abs(math.log(stale[-1])) > abs(math.log(stale[0]))  # the mismatch grows with depth

# %% [markdown]
# The recalibrated statistics were estimated on two batches and checked on a third, so they fit
# it up to sampling noise. What this does to the test error of compressed ResNets, before and
# after LC, is shown in {doc}`07_qp_resnets`.

# %%

lcbook.display.provenance({f"{name} reference (quick)": references.reference(name, "quick", progress=False)[1]
                           for name in ("lenet300", "resnet20", "vgg16_quarter")})

# %% [markdown]
# ## Summary
#
# - The book compresses LeNet300 (MNIST), the CIFAR-10 ResNets (16/32/64 channels, option-A
#   shortcuts, $6n+2$ layers) and VGG-16 with BatchNorm; `lcbook.models.build(name)` makes each,
#   and the parameter counts above are checked against the published ones.
# - Most weights sit in the widest layers; LC compresses every convolution of a ResNet and every
#   convolution and linear layer of VGG-16 and LeNet300, and counts everything else at 32 bits.
# - References come with records (command, recipe, error, time, hardware, commit). The committed
#   quick references are short CPU runs and are weaker than the published full-recipe references;
#   full references need a GPU and one command each.
# - After compression, BatchNorm statistics are stale; re-estimating them on a few training
#   batches is part of every evaluation of a compressed net.
#
# ## Exercises
#
# 1. Count by hand the weights of one residual block of stage 2 of ResNet-20 and of the VGG-16
#    convolution from 256 to 512 channels; check them against the bar chart.
# 2. How many weights would compressing ResNet-20's final linear layer add to the compressed set,
#    and what share of the parameters would then stay float? Is it worth it?
# 3. Evaluate the ResNet-20 reference on test subsets of 500, 1000 and 4000 images with different
#    `seed` values of `references.batches`. How does the spread of the error compare with
#    $\sqrt{p(1-p)/n}$?
# 4. In the BatchNorm experiment, recalibrate with one batch of 32 images instead of two of 256.
#    How far off is the variance then? Why does `run_experiment` use 2,048 images?
# 5. `vgg16_quarter` has a quarter of VGG-16's width. By what factor does that divide the number
#    of weights of a 3×3 convolution? Check your answer against the parameter counts.

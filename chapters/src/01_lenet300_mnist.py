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
# # LeNet300 on MNIST: direct compression versus LC
#
# **What you will learn**
#
# - how compression is written as a constrained optimization problem, and why compressing the
#   trained weights directly (*direct compression*) is not its solution;
# - how the Learning-Compression (LC) algorithm {cite}`carreira2017part1` alternates an **L step**
#   (learning) and a **C step** (compression) under a growing penalty μ;
# - how to compress with `lcbook`: quantization, pruning and their **additive combination**
#   {cite}`carreira2021part5`, and how to count their storage in bits.
#
# Everything below runs on real MNIST: the L steps train on a class-balanced subset of the
# training images in the quick profile (all 60,000 in the full one) and every test uses all 10,000
# test images. The
# environment variable `LCBOOK_PROFILE` selects the scale: `quick` (default, a 2-core CPU runs
# this chapter in a few minutes) or `full` (longer schedules).

# %% [markdown]
# ## The problem
#
# A trained reference net has weights $\bar{\mathbf{w}} = \arg\min_{\mathbf{w}} L(\mathbf{w})$.
# A compressed net has weights $\mathbf{w} = \boldsymbol{\Delta}(\boldsymbol{\Theta})$ given by a
# small set of parameters $\boldsymbol{\Theta}$: a codebook and one index per weight
# (quantization), the positions and values of a few weights (pruning), or a sum of such parts.
# The best compressed net solves
#
# $$
# \min_{\mathbf{w},\,\boldsymbol{\Theta}} L(\mathbf{w})
# \quad\text{s.t.}\quad \mathbf{w} = \boldsymbol{\Delta}(\boldsymbol{\Theta}).
# $$
#
# **Direct compression (DC)** takes $\boldsymbol{\Theta}^{\mathrm{DC}} = \arg\min_{\boldsymbol{\Theta}}
# \|\bar{\mathbf{w}} - \boldsymbol{\Delta}(\boldsymbol{\Theta})\|^2$: the compressed weights closest to
# the reference. It ignores the loss, so it is feasible but not optimal.
#
# **LC** solves the constrained problem with the augmented Lagrangian. Starting from DC and
# $\boldsymbol{\lambda} = \mathbf{0}$, for $\mu_0 < \mu_1 < \dots$ it repeats
#
# $$
# \begin{aligned}
# \text{L step:}\quad & \mathbf{w} \leftarrow \arg\min_{\mathbf{w}}\; L(\mathbf{w}) + \tfrac{\mu}{2}
#   \big\|\mathbf{w} - \boldsymbol{\Delta}(\boldsymbol{\Theta}) - \tfrac{1}{\mu}\boldsymbol{\lambda}\big\|^2
#   \quad\text{(SGD on the loss plus a quadratic pull)}\\
# \text{C step:}\quad & \boldsymbol{\Theta} \leftarrow \arg\min_{\boldsymbol{\Theta}}\;
#   \big\|\mathbf{w} - \tfrac{1}{\mu}\boldsymbol{\lambda} - \boldsymbol{\Delta}(\boldsymbol{\Theta})\big\|^2
#   \quad\text{(compress the weights; no data involved)}\\
# \text{multipliers:}\quad & \boldsymbol{\lambda} \leftarrow \boldsymbol{\lambda} - \mu\,
#   \big(\mathbf{w} - \boldsymbol{\Delta}(\boldsymbol{\Theta})\big)
# \end{aligned}
# $$
#
# As μ grows, $\mathbf{w}$ and $\boldsymbol{\Delta}(\boldsymbol{\Theta})$ meet at a compressed net
# that the loss had a say in. The C step is each compression's own projection: k-means for a
# codebook, "keep the κ largest weights" for pruning, and for an additive combination
# $\boldsymbol{\Delta}_1(\boldsymbol{\theta}_1) + \boldsymbol{\Delta}_2(\boldsymbol{\theta}_2)$ an
# alternation of the two on the residual the other leaves {cite}`carreira2021part5`.

# %% [markdown]
# **What λ does, and when it is used.** Without the multipliers ($\boldsymbol{\lambda}$ kept at
# $\mathbf{0}$, the *quadratic-penalty* method, `LCAlgorithm(..., multipliers=False)`), the L step
# pulls $\mathbf{w}$ towards $\boldsymbol{\Delta}(\boldsymbol{\Theta})$ but the loss pulls back,
# so the two meet only as $\mu \to \infty$. The multipliers accumulate that remaining pull
# ($\boldsymbol{\lambda} \leftarrow \boldsymbol{\lambda} - \mu(\mathbf{w} - \boldsymbol{\Delta})$) and
# shift the target of both steps by $\boldsymbol{\lambda}/\mu$, so the *augmented Lagrangian*
# can become feasible at a finite μ {cite}`carreira2017part1`. Both end at a compressed net;
# the quadratic penalty is simpler and, with few LC steps, less sensitive to a μ schedule that
# grows fast. The schedule of each stored profile says which one its runs use (the table is
# read from `lcbook.experiments.SCHEDULES`):

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
import time

import matplotlib.pyplot as plt
import torch

import lcbook
from lcbook import references, plots, train
import lcbook.display
from lcbook import AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, LCAlgorithm, Task

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile(needs_gpu=False)
DEVICE = references.device()
print(f"profile: {PROFILE}, device: {DEVICE}, torch {torch.__version__}")

# %% [markdown]
# ## Data and the reference net
#
# LeNet300 is a 784–300–100–10 fully connected net with tanh units (266,610 parameters). The
# reference is trained once and cached under `data/references/` together with a record of how it
# was made; the cell below loads it, or trains it if it is missing.

# %%
TRAIN_SIZE = lcbook.choose(PROFILE, quick=20000, full=None)  # None: all 60,000 images
train_batches = references.batches("mnist", "train", batch_size=256, size=TRAIN_SIZE, train_mode=True)
test_batches = references.batches("mnist", "test", batch_size=2000)
print(f"MNIST: {len(train_batches.y)} training and {len(test_batches.y)} test images")

reference, record = references.reference("lenet300", PROFILE)
ref_error = train.evaluate(reference, test_batches)["error"]
print(f"reference test error: {ref_error:.2f}%  (trained {record['recipe']['epochs']} epochs)")

# %% tags=["remove-cell"]
assert abs(ref_error - record["test_error"]) < 1e-6, "the cached reference does not match its record"

# %% [markdown]
# ## Three compressions as tasks
#
# A `lcbook.Task` binds a compression to parameters by name. The three settings
# follow the examples of the LC toolkit {cite}`idelbayev2020flexible`:
#
# 1. **Q**: each layer quantized with its own codebook of K = 2 values (1 bit per weight);
# 2. **P**: pruning that keeps 5% of all weights, with one κ shared by the three layers (the
#    layers compete for the kept weights);
# 3. **Q+P**: one K = 2 codebook over all layers *plus* sparse corrections on 1% of the weights:
#    $\mathbf{w} = \boldsymbol{\Delta}_Q(\boldsymbol{\theta}_Q) + \boldsymbol{\Delta}_P(\boldsymbol{\theta}_P)$.
#
# Biases stay as 32-bit floats.

# %%
LAYERS = ["fc1.weight", "fc2.weight", "fc3.weight"]


def make_tasks(name):
    if name == "Q: K=2 per layer":
        return [Task(p, AdaptiveQuantization(k=2)) for p in LAYERS]
    if name == "P: keep 5%":
        return [Task(LAYERS, ConstraintL0Pruning(fraction=0.05))]
    if name == "Q+P: K=2 + 1% sparse":
        return [Task(LAYERS, AdditiveCombination((AdaptiveQuantization(k=2), ConstraintL0Pruning(fraction=0.01))))]
    raise ValueError(name)


SETTINGS = ["Q: K=2 per layer", "P: keep 5%", "Q+P: K=2 + 1% sparse"]
# Test errors published in the LC toolkit's README (a tanh LeNet300) — cited, not measured here.
CITED = {"reference": 2.13, "Q: K=2 per layer": 2.56, "P: keep 5%": 2.18, "Q+P: K=2 + 1% sparse": 2.17}

# %% [markdown]
# ## The LC schedule
#
# The L step is `lcbook.SGDLStep`: epochs of SGD (Nesterov momentum 0.9, batch
# 256) on the loss plus the penalty, with the learning rate restarted at every L step. μ grows
# geometrically, $\mu_k = \mu_0 a^k$. The profile sets the budget.

# %%
EPOCHS_PER_STEP = lcbook.choose(PROFILE, quick=1, full=3)
MU = lcbook.geometric_mu(mu0=5e-3, a=lcbook.choose(PROFILE, quick=1.25, full=1.15), steps=lcbook.choose(PROFILE, quick=20, full=40))
LR = 0.1
print(f"{len(MU)} LC steps, μ from {MU[0]:.3g} to {MU[-1]:.3g}, {EPOCHS_PER_STEP} epoch(s) per L step")

# %%
import pandas as pd
from lcbook import experiments

pd.DataFrame([{"network family": fam, "profile": prof, "LC steps": sch.steps, "μ0": sch.mu0, "μ factor a": sch.a,
               "method": "augmented Lagrangian (λ)" if sch.multipliers else "quadratic penalty (λ = 0)"}
              for (fam, prof), sch in sorted(experiments.SCHEDULES.items())]).set_index(["network family", "profile"])

# %%
def test_error(model):
    return {"test_error": train.evaluate(model, test_batches)["error"]}


# %% [markdown]
# ## Run: direct compression, then LC
#
# For each setting we start from the same reference, compress it directly (the first record of
# the history), then run LC. `lc.compressed()` swaps $\boldsymbol{\Delta}(\boldsymbol{\Theta})$
# into the net only inside the `with` block.

# %%
results, histories, lcs = [], {}, {}
for name in SETTINGS:
    torch.manual_seed(0)
    train_batches.generator.manual_seed(0)  # every setting sees the same batches
    model, _ = references.reference("lenet300", PROFILE)
    lc = LCAlgorithm(
        model,
        make_tasks(name),
        l_step=lcbook.SGDLStep(train_batches, epochs=EPOCHS_PER_STEP, lr=LR, step_decay=0.98),
        mu_schedule=MU,
        evaluate=test_error,
    )
    t0 = time.perf_counter()
    history = lc.run()
    seconds = time.perf_counter() - t0
    report = lcbook.storage_report(lc)
    results.append({
        "name": name,
        "ratio": report["ratio"],
        "bits_per_weight": report["bits_per_weight"],
        "dc_error": history[0]["test_error"],
        "lc_error": history[-1]["test_error"],
        "cited_error": CITED[name],
        "seconds": seconds,
        "c_seconds": sum(r["c_seconds"] for r in history),
    })
    histories[name] = history
    lcs[name] = lc
    print(f"{name:24s} DC {results[-1]['dc_error']:5.2f}%  LC {results[-1]['lc_error']:5.2f}%  "
          f"ratio {report['ratio']:5.1f}x  ({seconds:.0f} s, of which C steps {results[-1]['c_seconds']:.1f} s)")

# %% [markdown]
# Storage is fixed by the compression, not by the training: the 1-bit codebooks cost one bit per
# weight plus their two 32-bit values, and pruning keeps exactly κ weights.

# %% tags=["nbval-check-output"]
n_weights = sum(dict(lcs["P: keep 5%"].model.named_parameters())[p].numel() for p in LAYERS)
print(f"{n_weights} weights in the three layers")
print(f"Q: {lcbook.storage_report(lcs['Q: K=2 per layer'])['total_bits']} bits in all (biases included)")
kept = sum(int((b.task.compression.decompress(b.theta) != 0).sum()) for b in lcs["P: keep 5%"].tasks)
print(f"P: {kept} weights kept")

# %% [markdown]
# ## Results
#
# Test error of the compressed net (percent) and compression ratio (reference bits over
# compressed bits, biases included at 32 bits; see `lcbook.storage_report`).
# The last column is the number the LC toolkit's README reports for the same setting on its own
# tanh LeNet300 {cite}`idelbayev2020flexible`: a **cited** number from a different reference
# net and a longer schedule, given for context only.

# %%
table = pd.DataFrame(
    [{"compression": "reference (none)", "bits/weight": 32.0, "ratio": 1.0, "DC error %": ref_error,
      "LC error %": ref_error, "cited error % (LC toolkit)": CITED["reference"]}]
    + [{"compression": r["name"], "bits/weight": r["bits_per_weight"], "ratio": r["ratio"],
        "DC error %": r["dc_error"], "LC error %": r["lc_error"], "cited error % (LC toolkit)": r["cited_error"]}
       for r in results]
).set_index("compression")
table.style.format(precision=2)

# %%
ax = plots.error_vs_storage(results, reference_error=ref_error, title=f"LeNet300 on MNIST ({PROFILE} profile)")
plt.show()

# %% [markdown]
# Crosses are direct compression, filled dots LC from the same start; hollow dots are the cited
# numbers. LC moves every compression towards the reference error at the same storage: the
# compressed weights are chosen for the loss, not only to be close to $\bar{\mathbf{w}}$.

# %% tags=["remove-cell"]
# The run must have done real work: every setting compressed, every error finite, and LC no
# worse than direct compression by more than noise on 10,000 test images.
assert len(results) == len(SETTINGS)
for r in results:
    assert 0 <= r["lc_error"] < 100 and r["ratio"] > 1, r
    assert r["lc_error"] <= r["dc_error"] + 0.2, f"LC did not improve on DC for {r['name']}: {r}"

# %% [markdown]
# ## Watching LC converge
#
# The distance $\|\mathbf{w} - \boldsymbol{\Delta}(\boldsymbol{\Theta})\|^2$ between the learned
# and the compressed weights shrinks as μ grows; the test error of the compressed net
# $\boldsymbol{\Delta}(\boldsymbol{\Theta})$ falls from its DC value.

# %%
def draw_paths(fig, axes):
    plots.lc_paths(histories, key="distance", ax=axes[0], ylabel="‖w − Δ(Θ)‖²")
    axes[0].set_yscale("log")
    plots.lc_paths(histories, key="test_error", ax=axes[1])


lcbook.display.panels(draw_paths, 2, panel_size=(5.5, 3.6), alt="LC paths over μ: distance and test error")

# %% [markdown]
# ## What the sparse corrections do
#
# Where do Q+P's two codebook values and its 1% of corrections go? Below, the reference weights
# of the three layers (grey) with the codebook (red lines) and the corrected weights (orange), for
# direct compression and after LC. DC puts the corrections on the largest weights, the tails
# that two values cannot serve; LC moves the codebook and the corrections to where the loss
# wants them, and the learned weights gather around the codebook values.

# %%
QP = "Q+P: K=2 + 1% sparse"
ref_model, _ = references.reference("lenet300", PROFILE)
dc_qp = lcbook.direct_compression(ref_model, make_tasks(QP)).tasks[0]
lc_qp = lcs[QP].tasks[0]
w_ref = dc_qp.gather().detach()
bins = torch.linspace(float(w_ref.min()), float(w_ref.max()), 161)
def draw_corrections(fig, axes):
    for ax, (title, bound, w_shown) in zip(axes, [("direct compression (reference weights)", dc_qp, w_ref),
                                                   ("LC (reference weights)", lc_qp, w_ref),
                                                   ("LC (learned weights w)", lc_qp, lc_qp.gather().detach())]):
        theta = bound.theta
        corrected = torch.zeros(w_shown.numel(), dtype=torch.bool)
        corrected[theta["1.indices"]] = True
        ax.hist(w_shown[~corrected].numpy(), bins=bins.numpy(), color="0.7", label="served by the codebook")
        ax.hist(w_shown[corrected].numpy(), bins=bins.numpy(), color=plots.combo_color("p"), label="corrected (κ = 1%)")
        for j, c in enumerate(theta["0.codebook"]):
            ax.axvline(float(c), color="C3", lw=1.5, label="codebook values" if j == 0 else None)
        ax.set(yscale="log", title=title, xlabel="weight", ylabel="number of weights (log)")
    axes[0].legend(fontsize=9)


display(lcbook.display.panels(draw_corrections, 3, panel_size=(4.6, 3.6), sharey=True,
                              alt="weight histograms of Q+P: DC, LC on the reference weights, LC's learned weights"))
same = len(set(dc_qp.theta["1.indices"].tolist()) & set(lc_qp.theta["1.indices"].tolist()))
print(f"codebook: DC {[round(float(c), 4) for c in dc_qp.theta['0.codebook']]}, "
      f"LC {[round(float(c), 4) for c in lc_qp.theta['0.codebook']]}; "
      f"{same} of the {lc_qp.theta['1.indices'].numel()} corrected weights are the same in DC and LC")

# %% [markdown]
# The same view for each of the three compressions: choose one to see the reference weights
# (grey) against the weights LC learned (blue), and the values Δ(Θ) can take (red lines: the
# codebook of each layer; pruning has no codebook and keeps 5% of the weights at any value).
# The figures were drawn when the page was built.

# %%
w_reference = torch.cat([dict(ref_model.named_parameters())[p].detach().reshape(-1) for p in LAYERS])
compression_frames = {}
for name, res in zip(SETTINGS, results):
    lc_n = lcs[name]
    w_learned = torch.cat([dict(lc_n.model.named_parameters())[p].detach().reshape(-1) for p in LAYERS])
    edges = torch.linspace(float(torch.minimum(w_reference.min(), w_learned.min())),
                           float(torch.maximum(w_reference.max(), w_learned.max())), 161).numpy()
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    ax.hist(w_reference.numpy(), bins=edges, color="0.75", label="reference weights w̄")
    ax.hist(w_learned.numpy(), bins=edges, histtype="step", color="C0", lw=1.4, label="weights w after LC")
    books = [b.theta.get("codebook", b.theta.get("0.codebook")) for b in lc_n.tasks]
    first = True
    for book in (b for b in books if b is not None):
        for c in book:
            ax.axvline(float(c), color="C3", lw=1, alpha=0.8, label="codebook values" if first else None)
            first = False
    ax.set(yscale="log", xlabel="weight", ylabel="number of weights (log)", title=name)
    ax.legend(fontsize=9)
    fig.tight_layout()
    compression_frames[(name,)] = (fig, f"{name}: {res['bits_per_weight']:.3f} bits per weight, test error DC "
                                        f"{res['dc_error']:.2f}% → LC {res['lc_error']:.2f}%")
lcbook.display.chooser(compression_frames, [("compression", SETTINGS)],
                       alt="histograms of the reference weights and of the weights after LC")

# %%
lcbook.display.provenance({"reference": record,
                           "LC runs of this page": {**references.provenance(), "profile": PROFILE,
                                                    "seconds": sum(r["seconds"] for r in results)}})

# %% [markdown]
# ## In code: the gradient the L step adds
#
# The L step trains the weights on the loss plus the penalty terms of the augmented Lagrangian,
# $-\boldsymbol{\lambda}^T(\mathbf{w}-\Delta(\boldsymbol{\Theta})) + \frac{\mu}{2}\|\mathbf{w}-\Delta(\boldsymbol{\Theta})\|^2$;
# the package adds their gradient to each compressed weight's gradient after `loss.backward()`
# (`LCAlgorithm.add_penalty_grad_`). Write that gradient for one tensor. With λ = 0 it is the
# quadratic-penalty method's, which every stored CIFAR-10 run uses.
#
# Complete the function and run the check below it: it says whether the function is right and,
# if not, on which input and by how much. A solution is folded away under the check. To run the
# cells, open this chapter as a notebook: the launch button at the top of the page (Colab), or
# Jupyter on your machine (`.venv/bin/pip install jupyterlab`, then `.venv/bin/jupyter lab
# chapters/`; see the README).

# %%
from lcbook import exercises
import torch


def penalty_gradient(w, delta, lam, mu):
    """∇_w of −λᵀ(w − Δ) + μ/2 ‖w − Δ‖².

    w, delta, lam: float tensors of one shape (the weights, Δ(Θ), the multipliers);
    mu: the penalty μ > 0. Returns a tensor of w's shape."""
    raise NotImplementedError  # your code here


exercises.check_penalty_gradient(penalty_gradient)

# %% tags=["hide-cell"] mystnb={"code_prompt_show": "Show a solution", "code_prompt_hide": "Hide the solution"}
# A solution: run it, then the check again.
def penalty_gradient(w, delta, lam, mu):
    """∇_w of −λᵀ(w − Δ) + μ/2 ‖w − Δ‖².

    w, delta, lam: float tensors of one shape (the weights, Δ(Θ), the multipliers);
    mu: the penalty μ > 0. Returns a tensor of w's shape."""
    return mu * (w - delta) - lam


exercises.check_penalty_gradient(penalty_gradient)

# %% tags=["remove-cell"]
assert exercises.check_penalty_gradient(penalty_gradient).ok

# %% [markdown]
# ## Summary
#
# - Compression is a constrained problem; direct compression is only its feasible starting point.
# - LC alternates an L step (training with a quadratic pull towards the compressed weights) and a
#   C step (the compression's own projection), with a growing μ.
# - An additive combination — a 1-bit codebook plus 1% of float corrections — is one more
#   compression to LC: its C step alternates over its parts.
#
# ## Exercises
#
# 1. Run the chapter with `multipliers=False` in `LCAlgorithm` (the quadratic-penalty method).
#    Does the final error change?
# 2. Replace the per-layer codebooks of setting Q by one codebook shared by all layers. Which is
#    better at (nearly) the same storage, and why?
# 3. Sweep the sparse fraction of Q+P over 0.25%, 0.5%, 1% and 2% and draw the error against the
#    compression ratio. Where does Q+P stop beating P alone?

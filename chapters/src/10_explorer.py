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
# # Explorer: choose a network, a combination and a budget
#
# **What you will learn**
#
# - how the stored LC runs of every network and combination compare, chosen with controls;
# - how the budget of a Q+P combination (codebook size K, sparse fraction) moves error and
#   storage, on a net small enough to compress while you watch.
#
# ```{admonition} Live kernel or static page
# :class: note
# The controls in the two explorers below work in this **static page** too: every choice they
# offer was computed when the book was built, and the page switches between the stored views
# without a Python kernel. In a live kernel (Jupyter, or Colab from the launch button at the
# top) the last section adds a control that compresses LeNet300 for *any* K and sparse fraction
# and evaluates it on the spot; that one needs the kernel.
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
import base64
import io
import itertools

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import lcbook
from lcbook import references, plots, experiments, train

torch.manual_seed(0)
PROFILE = lcbook.chapter_profile()
print(f"profile: {PROFILE}")


def png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (for an image widget), closing the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# %% [markdown]
# ## Explorer 1: every stored run
#
# Every LC run in the results store, of every profile: the `quick` runs that CI repeats and the
# long `cpu`-profile runs on all of CIFAR-10 (`data/results/<profile>/`, written by `python -m
# lcbook run` and `python -m lcbook evidence`). Choose a run (network, profile, combination and
# budget; the menu lists only what is stored): the figure draws that network's error-vs-bits front
# after LC, one curve per combination, the reference as a dashed line and direct compression as
# faint crosses, and rings the chosen run; the caption gives its numbers and the command that
# made it. The figures were drawn when the page was built, so this works without a kernel.

# %%
from lcbook import claims
import lcbook.display

STORES = {prof: experiments.load_results(prof) for prof in experiments.PROFILES}
stored = STORES[PROFILE]  # what this profile's chapters read (Explorer 2 and the checks below)
every = [r for prof in experiments.PROFILES for r in STORES[prof]]
fronts = sorted({(r["model"], r["profile"]) for r in every}, key=lambda mp: (experiments.PROFILES.index(mp[1]), mp[0]))


def run_label(r):
    return f"{claims.name(r['combo'])} {experiments.budget_text(r['budget'])}"


def front_label(model, prof):
    return f"{model} ({prof})"


explorer_frames = {}
for model, prof in fronts:
    rows = sorted((r for r in every if r["model"] == model and r["profile"] == prof),
                  key=lambda r: (r["combo"], r["bits_per_weight"]))
    for r in rows:
        lab = run_label(r)
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        plots.error_vs_bits(rows, reference_error=r["reference_error"], ax=ax,
                            title=f"{model} on {'MNIST' if model.startswith('lenet') else 'CIFAR-10'} ({prof} profile)")
        ax.scatter([r["bits_per_weight"]], [r["lc_error"]], s=260, facecolors="none", edgecolors="k", lw=2,
                   zorder=5, label="chosen run")
        ax.annotate("", xy=(r["bits_per_weight"], r["lc_error"]), xytext=(r["bits_per_weight"], r["dc_error"]),
                    arrowprops=dict(arrowstyle="->", color="0.4", lw=1))
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
        fig.tight_layout()
        spread = claims.last_steps_spread(r)
        caption = (f"<b>{lab}</b> on {model} ({prof}): {r['bits_per_weight']:.3f} bits per weight "
                   f"(×{r['ratio']:.1f}), DC {r['dc_error']:.2f}% → LC {r['lc_error']:.2f}% against the reference's "
                   f"{r['reference_error']:.2f}%; {len(r['history']) - 1} LC steps, last three within {spread:.2f} points; "
                   f"{r['hardware']}, {r['date'][:10]}, commit {r['git_commit'][:8]}. "
                   f"<code>{r['command']}</code>")
        explorer_frames[(f"{front_label(model, prof)} · {lab}",)] = (fig, caption)
# open on the evidence: the cpu-profile ResNet-20 Q+P run if it is stored, else the first stored run
first = next((k for k in explorer_frames if k[0].startswith(front_label("resnet20", "cpu") + " · Q+P ")),
             next(iter(explorer_frames)))
lcbook.display.chooser(explorer_frames, [("stored run", [k[0] for k in explorer_frames])], start=first,
                       alt="error against bits per weight of the stored runs, the chosen run ringed", dpi=100)

# %% tags=["nbval-check-output"]
for prof in experiments.PROFILES:
    nets = sorted({r["model"] for r in STORES[prof]})
    print(f"{prof}: {len(STORES[prof])} stored runs over {len(nets)} networks: {', '.join(nets) or '-'}")

# %% tags=["remove-cell"]
assert every, "the results store is empty"
n_runs = sum(not isinstance(v, str) for v in explorer_frames.values())
assert n_runs == len(every), (n_runs, len(every))  # every stored run has its frame, no run is shown twice
for r in every:
    assert 0 <= r["lc_error"] <= 100 and abs(r["ratio"] - r["reference_bits"] / r["total_bits"]) < 1e-9, r["id"]

# %% [markdown]
# ## Explorer 2: the budget of Q+P on LeNet300
#
# LeNet300 (784–300–100–10, 266,200 weights) on MNIST {cite}`lecun1998mnist` is small enough to
# compress for every choice here when the book is built: each layer gets its own codebook of K
# values plus sparse float corrections on a fraction of its weights,
# $\mathbf{w} = \boldsymbol{\Delta}_Q(\boldsymbol{\theta}_Q) + \boldsymbol{\Delta}_P(\boldsymbol{\theta}_P)$
# ({doc}`06_combining`), by **direct compression** of the reference (the C step alone, no
# retraining; LC would lower these errors, see {doc}`01_lenet300_mnist`). Choose K and the
# fraction; the card shows test error, bits per weight and compression ratio, and where the
# choice sits among all the others.

# %%
lenet, lenet_record = references.reference("lenet300", PROFILE, progress=False)
mnist_test = references.batches("mnist", "test", 1000, size=lcbook.choose(PROFILE, quick=5000, full=None))
lenet_error = train.evaluate(lenet, mnist_test)["error"]
KS = [2, 4, 8, 16]
FRACTIONS = [0.0, 0.005, 0.01, 0.02, 0.05]


def dc_lenet(k, fraction):
    """Direct compression of LeNet300 with a K codebook per layer (+ sparse fraction if > 0)."""
    model, _ = references.reference("lenet300", PROFILE, progress=False)
    combo, budget = ("qp", {"k": k, "fraction": fraction}) if fraction > 0 else ("q", {"k": k})
    lc = lcbook.direct_compression(model, experiments.make_tasks("lenet300", model, combo, budget))
    report = lcbook.storage_report(lc)
    with lc.compressed() as m:
        error = train.evaluate(m, mnist_test)["error"]
    return {"k": k, "fraction": fraction, "error": error, "bits_per_weight": report["bits_per_weight"],
            "ratio": report["ratio"], "total_bits": report["total_bits"]}


grid = [dc_lenet(k, f) for k, f in itertools.product(KS, FRACTIONS)]
print(f"{len(grid)} compressed LeNet300s; reference test error {lenet_error:.2f}% on {len(mnist_test.y)} test images")

# %%
def card(g):
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.scatter([r["bits_per_weight"] for r in grid], [r["error"] for r in grid], color="lightgray", s=25,
               label="other choices")
    ax.scatter([g["bits_per_weight"]], [g["error"]], color="C3", s=70, label="this choice")
    ax.axhline(lenet_error, ls="--", color="gray", lw=1, label="reference")
    ax.set_xlabel("bits per weight")
    ax.set_ylabel("test error (%)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    text = (f"<b>K = {g['k']}, sparse fraction {100 * g['fraction']:g}%</b><br>"
            f"test error {g['error']:.2f}% (reference {lenet_error:.2f}%)<br>"
            f"{g['bits_per_weight']:.2f} bits per weight, compression ratio {g['ratio']:.1f}×")
    return widgets.VBox([widgets.HTML(text), widgets.Image(value=png(fig), format="png")])


k_choice = widgets.Dropdown(options=[(f"K = {k} ({k.bit_length() - 1} bit)", k) for k in KS], description="codebook")
f_choice = widgets.Dropdown(options=[(f"{100 * f:g}%", f) for f in FRACTIONS], description="sparse")
inner = []
for k in KS:
    stack = widgets.Stack([card(g) for g in grid if g["k"] == k], selected_index=0)
    widgets.jslink((f_choice, "index"), (stack, "selected_index"))  # one control drives every inner stack
    inner.append(stack)
outer = widgets.Stack(inner, selected_index=0)
widgets.jslink((k_choice, "index"), (outer, "selected_index"))
wrap = widgets.Layout(display="flex", flex_flow="row wrap")  # the two menus stack on a phone
display(widgets.VBox([widgets.Box([k_choice, f_choice], layout=wrap), outer]))

# %% tags=["nbval-check-output"]
for g in grid:
    if g["fraction"] == 0:
        print(f"K={g['k']}: {g['total_bits']} bits in all")

# %% tags=["remove-cell"]
# Real properties of the grid: more codebook entries or more sparse corrections cost more bits,
# and sparse corrections never hurt direct compression at the same K (their C step starts from
# the K codebook alone and only lowers the distortion).
by = {(g["k"], g["fraction"]): g for g in grid}
for k in KS:
    bits = [by[k, f]["total_bits"] for f in FRACTIONS]
    assert bits == sorted(bits), (k, bits)
for f in FRACTIONS:
    bits = [by[k, f]["total_bits"] for k in KS]
    assert bits == sorted(bits), (f, bits)

# %% tags=["remove-cell"]
assert by[2, 0.05]["error"] <= by[2, 0.0]["error"] + 0.5

# %%
frame = pd.DataFrame(grid).pivot(index="k", columns="fraction", values="error")
fig, ax = plt.subplots(figsize=(6.4, 3.2))
im = ax.imshow(frame.values, cmap="viridis_r", aspect="auto")
ax.set_xticks(range(len(FRACTIONS)), [f"{100 * f:g}%" for f in FRACTIONS])
ax.set_yticks(range(len(KS)), [f"K={k}" for k in KS])
ax.set_xlabel("sparse fraction of each layer")
ax.set_ylabel("codebook size")
for (i, j), v in pd.DataFrame(frame.values).stack().items():
    ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v > frame.values.mean() else "black", fontsize=8)
fig.colorbar(im, ax=ax, label="DC test error (%)")
ax.set_title("LeNet300, direct compression: test error over the whole grid")
plt.show()

# %% [markdown]
# ## Explorer 3 (live kernel): any budget
#
# With a running kernel, this control compresses LeNet300 for any K and sparse fraction you pick
# and evaluates it (about a second on a CPU). In the static page it is inert: the two explorers
# above are the precomputed part.

# %%
slider_box = widgets.Layout(width="100%", max_width="26em")  # a phone gets a full-width track per slider
k_any = widgets.IntSlider(value=3, min=2, max=64, description="K", layout=slider_box,
                          style={"description_width": "initial"})
f_any = widgets.FloatLogSlider(value=0.003, base=10, min=-4, max=-0.7, description="sparse", readout_format=".4f",
                               layout=slider_box, style={"description_width": "initial"})
go = widgets.Button(description="compress and test", layout=widgets.Layout(width="auto"))  # the whole label
out = widgets.Output()


def on_click(_):
    g = dc_lenet(k_any.value, f_any.value)
    with out:
        out.clear_output()
        print(f"K={g['k']}, sparse {100 * g['fraction']:.2f}%: test error {g['error']:.2f}%, "
              f"{g['bits_per_weight']:.2f} bits/weight, ratio {g['ratio']:.1f}x")


go.on_click(on_click)
display(widgets.VBox([widgets.Box([k_any, f_any, go], layout=wrap), out]))

# %%
# What the button runs, checked here without a browser: a budget outside the precomputed grid.
g = dc_lenet(k_any.value, f_any.value)

# %% tags=["remove-cell"]
assert g["k"] == k_any.value and g["fraction"] == f_any.value and 0 <= g["error"] <= 100

# %%
print(f"K={g['k']}, sparse {100 * g['fraction']:.2f}%: test error {g['error']:.2f}%, "
      f"{g['bits_per_weight']:.2f} bits/weight, ratio {g['ratio']:.1f}x")

# %%
import lcbook.display

lcbook.display.provenance({"LeNet300 reference": lenet_record, **{f"stored run ({r['profile']}): {r['id']}": r for r in every}})

# %% [markdown]
# ## Summary
#
# - The results store holds every LC run with its provenance; the first explorer reads it, so
#   it grows as you run more experiments (`python -m lcbook run ...`) and rebuild.
# - For a Q+P budget, the codebook size sets the dense cost (⌈log₂K⌉ bits per weight) and the
#   sparse fraction adds about 32 bits of value plus a few bits of position per correction; the
#   grid shows where extra bits buy the most accuracy.
#
# ## Exercises
#
# 1. In Explorer 2, find two choices with about the same bits per weight, one with larger K and
#    one with more sparse corrections. Which has the lower error, and does the answer change with
#    LC instead of direct compression (run both with `python -m lcbook run lenet300 qp ...`)?
# 2. Add a row of K = 32 to the grid. Where does the extra bit go?
# 3. Add a third control (the network) to Explorer 2 by compressing ResNet-20 instead; how long
#    does building the grid take, and how would you keep the page static?

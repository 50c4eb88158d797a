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
# # Appendix: how fast are the C steps?
#
# The C step is the part of LC that the older toolkit ran in numpy and scikit-learn on the CPU.
# `lcbook` runs it in torch, on the weight's own device. This appendix shows the measurements of
# `benchmarks/c_steps.py` (run it with `bash benchmarks/run.sh`), stored with their provenance in
# `data/results/c_step_benchmark.json`; the page only reads and plots that file, it does not
# re-time anything while the book builds.
#
# **What is compared**, layer by layer on the conv weights of ResNet-20 and VGG-16:
#
# | case | older toolkit's recipe | lcbook |
# |---|---|---|
# | quantization, cold (the direct compression) | scikit-learn `KMeans(K, n_init=10, tol=1e-10)`, k-means++ | `AdaptiveQuantization(K)`: DP on a 512-bin histogram, then Lloyd on sorted values |
# | quantization, warm (every later C step) | the same `KMeans` started from the previous codebook | Lloyd warm-started from the previous codebook |
# | low-rank | `numpy.linalg.svd` | `LowRank(r)`: truncated SVD from the Gram matrix |
# | ℓ0 pruning | stable numpy `argsort` of \|w\| | `ConstraintL0Pruning`: `torch.topk` |
# | Q+P, 10 sweeps | warm `KMeans` and numpy top-κ, alternated | `AdditiveCombination`, stops once a sweep no longer helps |
#
# The distortion $\sum_\text{layers}\|w-\Delta(\Theta)\|^2$ of both is recorded: a faster C step
# is only worth having if it is no worse.

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
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import lcbook.references as references

path = references.ROOT / "data" / "results" / "c_step_benchmark.json"
bench = json.loads(path.read_text()) if path.is_file() else None

# %% tags=["remove-cell"]
assert bench is not None and all(m["rows"] for m in bench["models"]), f"no stored benchmark at {path}: run bash benchmarks/run.sh"

# %%
if bench is not None:
    prov = bench["provenance"]
    print(f"measured on {prov['hardware']} ({bench['device']}, {bench['torch_threads']} torch threads), "
          f"torch {prov['torch']}, commit {prov['git_commit'][:10]}, {prov['date']}; "
          f"the whole benchmark took {bench['seconds'] / 60:.1f} min")

# %% tags=["nbval-check-output"]
for m in bench["models"]:
    print(f"{m['model']}: {m['layers']} conv layers, {m['weights']} weights, {len(m['rows'])} cases")

# %% [markdown]
# ## The table
#
# `speedup` is old seconds / lcbook seconds; `distortion ratio` is lcbook's error over the old
# recipe's (below 1: lcbook is closer to the weights); `× sort` is lcbook's quantization time
# over one `torch.sort` of the same weights, the floor for any method that sorts (— where it
# does not apply: only quantization sorts).

# %%
tables = {}
if bench is not None:
    for m in bench["models"]:
        df = pd.DataFrame(m["rows"]).set_index("case")
        df = df.rename(columns={"old_seconds": "old s", "lcbook_seconds": "lcbook s", "distortion_ratio": "distortion ratio",
                                "vs_sort": "× sort"})
        tables[m["model"]] = df
        print(f"{m['model']}: {m['layers']} conv layers, {m['weights']:,} weights; {m['weights_source']}")
        display(df[["old s", "lcbook s", "speedup", "distortion ratio", "× sort"]].style.format(precision=4, na_rep="—"))

# %%
if bench is not None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(tables)
    cases = list(tables[names[0]].index)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.barh([j + i * width for j in range(len(cases))], tables[name].loc[cases, "speedup"], height=width, label=name)
    ax.axvline(1, color="k", lw=0.8)
    ax.axvline(30, color="gray", ls="--", lw=0.8, label="30×")
    ax.set_xscale("log")
    ax.set_yticks([j + width * (len(names) - 1) / 2 for j in range(len(cases))], cases)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over the older toolkit's recipe (log scale)")
    ax.legend()
    fig.tight_layout()

# %% [markdown]
# ## Reading it
#
# The summary below is computed from the stored file.

# %%
if bench is not None:
    for name, df in tables.items():
        worse = df[df["distortion ratio"] > 1 + 1e-4]
        cold = df[df.index.str.contains("cold")]
        fast = df[df["speedup"] >= 30]
        print(f"{name}: {len(fast)} of {len(df)} cases at least 30x faster "
              f"(fastest {df['speedup'].max():.0f}x: {df['speedup'].idxmax()}; slowest {df['speedup'].min():.1f}x: "
              f"{df['speedup'].idxmin()}); "
              + ("no case has a higher distortion than the old recipe (beyond 0.01%)." if worse.empty else
                 f"higher distortion in: {', '.join(f'{c} ({100 * (r - 1):.2f}% more)' for c, r in worse['distortion ratio'].items())}."))
        print(f"    cold quantization: {cold['speedup'].min():.0f}x to {cold['speedup'].max():.0f}x faster; "
              f"quantization within {df['× sort'].max():.1f}x of one sort of the same weights")

# %% [markdown]
# Where the speedups come from, and where they do not:
#
# * **Cold quantization** is where the old recipe spends its time: ten k-means++ restarts of up
#   to 300 full passes over the weights each. In one dimension a near-optimal start is cheap: the
#   exact dynamic program on a 512-bin histogram of the weights, then Lloyd iterations that cost
#   O(K log N) each on the sorted weights. The distortion column shows how the two compare.
# * **Warm steps** (every C step after the first) are cheap for both: a warm k-means needs a few
#   passes, each O(N), and scikit-learn's passes are compiled loops, so lcbook's advantage shrinks
#   to what its smarter passes save; on small layers the fixed cost of a call dominates both. A
#   warm step is a tiny part of an LC iteration, whose L step is an epoch of training. On a GPU
#   the old recipe must also copy every weight to the CPU and back.
# * **Low-rank** and **pruning** are single LAPACK or selection calls in both; lcbook avoids the
#   full SVD of a wide conv matrix by the eigendecomposition of its small Gram matrix.

# %%
import lcbook.display
from IPython.display import display

if bench:
    display(lcbook.display.provenance({"C-step benchmark": bench}))

# %% [markdown]
# ## Exercises
#
# 1. Run `bash benchmarks/run.sh --models resnet20 --ks 2 64` and look at how the cold-start gap
#    grows with K.
# 2. On a GPU, run `bash benchmarks/run.sh --device cuda`: which rows change most, and why?

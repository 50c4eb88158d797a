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
# # Appendix: compressed models as files
#
# **What you will learn**
#
# - how large the exported file of each compression really is, next to the bits the package
#   counts (`lcbook.storage_report`);
# - how fast the reloaded models run on a CPU, and what they cost in multiply-accumulates (MACs).
#
# Chapters {doc}`07_qp_resnets` and {doc}`08_lp_vgg16` export their models as they run. This page
# shows a stored benchmark over every compression, made by
# `.venv/bin/python benchmarks/export_sizes.py --models resnet20 vgg16_quarter vgg16` (about ten
# minutes on 2 CPU cores; the full-width VGG-16 has no trained reference, so its weights are
# He-initialised — file sizes and speed do not depend on the values), which writes `data/results/export_benchmark_<device>.json` with its provenance. Each
# model is the direct compression of the reference: sizes and speed do not depend on how long
# LC trained. Timings come from one machine and are not re-measured when the book is built.
#
# The file (`lcbook.export`, format `LCBK` v1) holds a small header (architecture, compressions,
# versions, a checksum), the compressed parameters — codebooks and bit-packed indices, sparse
# values with gap-coded positions, low-rank factors — and the uncompressed parameters and
# BatchNorm buffers in float32. Nothing in it is executed when it is loaded.

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

import matplotlib.pyplot as plt
import pandas as pd

import lcbook
import lcbook.display
from lcbook import references

stored = sorted((references.ROOT / "data" / "results").glob("export_benchmark_*.json"))

# %% tags=["remove-cell"]
assert stored, "no stored export benchmark: run .venv/bin/python benchmarks/export_sizes.py"

# %%
benches = [json.loads(p.read_text()) for p in stored]
for b in benches:
    prov = b["provenance"]
    print(f"{b['device']}: {prov['hardware']}, {prov['threads']} threads, torch {prov['torch']}, "
          f"commit {prov['git_commit'][:10]}, {prov['date'][:10]}")

# %% [markdown]
# ## Sizes: the file against the accounting
#
# `payload` is the compressed and uncompressed parameters as written; `accounted` is the
# package's storage accounting in bytes (bits / 8). The payload rounds each section up to whole
# bytes (`sections` of them); the header and the BatchNorm running statistics (which a deployment could fold into the
# convolutions) come on top. `ratio` is the float32 file of the uncompressed model over this file.
# The reference is the plain float32 file, with no sections (—).

# %%
rows = [dict(r, device=b["device"]) for b in benches for r in b["rows"]]
frame = pd.DataFrame(rows)
frame["budget"] = frame["budget"].apply(lambda b: ", ".join(f"{k}={v:g}" for k, v in b.items()) if isinstance(b, dict) else "")
sizes = frame[frame["device"] == benches[0]["device"]][
    ["model", "case", "budget", "file_bytes", "param_payload_bytes", "accounted_bytes", "header_bytes", "buffer_bytes",
     "ratio", "sections"]]
sizes.set_index(["model", "case"]).style.format(precision=1, na_rep="—")

# %% tags=["nbval-check-output"]
for model, group in sizes.groupby("model", sort=False):
    print(f"{model}: {len(group)} rows: {', '.join(group['case'])}")

# %%
# The file is the accounting plus its header and buffers, and the payload never undercounts.
compressed = sizes[sizes["case"] != "reference"]

# %% tags=["remove-cell"]
assert len(compressed) > 0
for _, r in compressed.iterrows():
    # each section is rounded up to whole bytes: less than one byte per section
    assert r["accounted_bytes"] <= r["param_payload_bytes"] < r["accounted_bytes"] + r["sections"], (r["model"], r["case"])
    assert r["file_bytes"] == r["header_bytes"] + r["param_payload_bytes"] + r["buffer_bytes"], (r["model"], r["case"])

# %% [markdown]
# ## Speed and MACs
#
# Latency of one image (median over repeats) and throughput with batches of 128, on the device
# the benchmark ran on, for the reloaded `nn.Module`s. Quantized and pruned weights are expanded
# to dense tensors at load time, so they run as fast as the reference and save only storage;
# low-rank layers loaded as two layers (`l (two layers)`, `lcbook.export.load(path,
# factorized=True)`) also save MACs and time. The dense models (reference, q, p, qp, lp, l) run
# the same computation, so the spread of their timings is the measurement noise of this machine.

# %%
speed = frame[["model", "device", "case", "macs", "latency_ms", "images_per_second"]].copy()
speed["MACs (millions)"] = speed["macs"] / 1e6
speed.drop(columns="macs").set_index(["model", "device", "case"]).round(2)

# %%
def draw_speed(fig, axes):
    for ax, (model, group) in zip(axes, speed.groupby("model", sort=False)):
        ax.barh(group["case"] + " (" + group["device"] + ")", group["images_per_second"], color="C0")
        ax.set_xlabel("images per second (batch 128)")
        ax.set_title(model)
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")


lcbook.display.panels(draw_speed, speed["model"].nunique(), panel_size=(5.2, 3.6),
                      alt="inference speed of each exported model, per device")

# %% tags=["hide-input"]
# Two-layer low-rank models must really do fewer multiply-accumulates than the reference.
for model, group in speed.groupby("model", sort=False):
    ref = group[group["case"] == "reference"]["macs"].iloc[0]
    two = group[group["case"] == "l (two layers)"]["macs"]
    assert len(two) and (two < ref).all(), model
    print(f"{model}: low-rank as two layers does {100 * two.iloc[0] / ref:.0f}% of the reference's MACs")

# %%

lcbook.display.provenance({f"export benchmark: {b.get('model', i)}": b for i, b in enumerate(benches)})

# %% [markdown]
# ## Summary
#
# - An exported file is its storage accounting, rounded to bytes per section, plus a header of a
#   few kilobytes and the BatchNorm statistics; the accounting in this book is not a promise on
#   paper.
# - Quantization and pruning shrink the file, not the arithmetic of a dense runtime; low-rank
#   shrinks both when its layers run as two layers.
#
# ## Exercises
#
# 1. Run `benchmarks/export_sizes.py --models vgg16` and compare the header's share of the file
#    for VGG-16 and ResNet-20.
# 2. Fold the BatchNorm statistics into the preceding convolutions before export. How many bytes
#    does it save for ResNet-20, and does the reloaded model's output change?
# 3. An L+P layer reloads as one dense layer (its sparse part would need a sparse kernel). Write a
#    module that runs it as two low-rank layers plus a sparse convolution and count its MACs.

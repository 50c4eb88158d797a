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
# # Reproducing the paper
#
# **What you will learn**
#
# - what the results store holds: every LC experiment run with `python -m lcbook`, with its
#   errors, bits, compression ratio and provenance (date, hardware, git commit, command);
# - which results exist today, for the `quick` profile (short CPU runs) and the `full` profile
#   (the papers' schedules on a GPU), and how to read them beside the published numbers;
# - how much the quick runs depend on the first penalty value μ0 (a stored sweep);
# - the exact commands a GPU user runs to reproduce the paper-scale grid of Part V
#   {cite}`carreira2021part5`: ResNets under Q, P and Q+P, VGG-16 under L, L+P, P and Q+P.
#
# The earlier chapters run small experiments live. This one runs nothing: it reads the stored
# results and checks them. A number on this page is either read from a stored file and labelled
# with where it came from, or a **published** number with its citation.
#
# ```{admonition} Budget
# :class: note dropdown
# This chapter only reads `data/results/` and `data/references/`; it takes seconds in either
# profile. Producing the full-profile results it is waiting for needs a GPU (see below).
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
import json
import math
import shlex
from collections import Counter

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import pandas as pd
from IPython.display import Markdown, display

import lcbook
import lcbook.display
from lcbook import claims, references, models, plots, experiments
from lcbook.compressions import FLOAT_BITS

PROFILE = lcbook.chapter_profile()
print(f"profile: {PROFILE}, device: {references.device()}; this chapter reads the stored results of every profile")

# %% [markdown]
# ## The results store
#
# An experiment is a network, a combination, a budget, a profile and a seed. The combinations and
# the budget keys each takes are in `lcbook.experiments.COMBOS`:
#
# - `q`: adaptive quantization, a codebook of K values per layer [`k`];
# - `p`: ℓ0-constraint pruning, one κ shared by all compressed layers [`fraction` of the weights kept];
# - `qp`: a K-value codebook plus sparse float corrections, per layer [`k`, `fraction`];
# - `l`: low-rank, rank $\lceil \text{rank}\cdot\min(m, n)\rceil$ per layer [`rank`];
# - `lp`: that low rank plus sparse float corrections, per layer [`rank`, `fraction`].
#
# `python -m lcbook run MODEL COMBO BUDGET` runs direct compression (DC) and then LC with the
# profile's schedule, saving the whole LC state after every step (run the same command again after
# an interruption and it resumes), and writes one JSON file to `data/results/<profile>/`. Each file
# holds the test errors of DC and LC (in percent, on the profile's test images), per-layer and
# total bits, the compression ratio, the per-step history, wall times and provenance. Which
# weights are compressed, and how bits are counted, is described in {doc}`02_reference_models`
# and in `lcbook.storage`. `lcbook.experiments.load_results(profile)` reads the store:

# %%
STORE = {prof: experiments.load_results(prof) for prof in experiments.PROFILES}  # quick, cpu, full
for prof, rows in STORE.items():
    print(f"{prof}: {len(rows)} stored result(s) in data/results/{prof}/")

# %% tags=["remove-cell"]
assert STORE["quick"], "the committed quick-profile results are missing from data/results/quick"

# %%
budget_text = experiments.budget_text  # {"k": 2, "fraction": 0.02} -> "k=2,fraction=0.02", as the command line takes it


def table(rows):
    """One row per stored result, named by its command-line words; how each was made (date,
    hardware, commit, command) is in the provenance box at the end of the chapter."""
    return pd.DataFrame([{
        "run": f"{r['model']} {r['combo']} {budget_text(r['budget'])}",
        "reference error %": r["reference_error"], "DC error %": r["dc_error"], "LC error %": r["lc_error"],
        "bits/weight": r["bits_per_weight"], "ratio": r["ratio"],
        "test images": r["schedule"]["test_size"] or 10_000, "LC minutes": r["lc_seconds"] / 60,
    } for r in rows]).set_index("run")


# %% [markdown]
# ### Quick profile
#
# Short LC runs on a 2-core CPU, from the committed quick references, on class-balanced subsets
# (the `test images` column); the reference error is measured on the same test images. The
# ratio is reference bits over compressed bits, over *all* parameters (uncompressed ones at 32
# bits); bits per weight are over the compressed weights only.

# %%
table(STORE["quick"]).style.format(precision=2)

# %% [markdown]
# ### CPU profile: the evidence
#
# All 50,000 training images, every test on all 10,000 test images, 20 one-epoch L steps, from
# references trained for tens of epochs on this book's 2-core CPU (`python -m lcbook evidence
# MODEL`; {doc}`07_qp_resnets` and {doc}`08_lp_vgg16` show them as fronts). Hours per run, run
# in the background and committed with their provenance.

# %%
if STORE["cpu"]:
    display(table(STORE["cpu"]).style.format(precision=2))
else:
    print("No cpu-profile results are stored yet: python -m lcbook evidence resnet20 vgg16_quarter")

# %% [markdown]
# ### Full profile
#
# The papers' schedules: all 50,000 training and 10,000 test images, 15 epochs per L step, tens
# of LC steps, from references trained with the full recipes.

# %%
if STORE["full"]:
    display(table(STORE["full"]).style.format(precision=2))
else:
    print("No full-profile results are stored yet (data/results/full/ is empty): the paper-scale grid has not "
          "been run for this book. A GPU user fills it in with the commands of the next section, e.g.\n"
          "    python -m lcbook grid --models resnet20 --combos q p qp --budgets k=2 fraction=0.05 k=2,fraction=0.02 "
          "--profile full\n"
          "and this table then lists every result, with its provenance.")

# %% [markdown]
# ### What the store guarantees
#
# Every stored result is checked below against its own definitions: the ratio is
# `reference_bits / total_bits`; the reference bits are 32 bits per parameter of the network as
# `lcbook.models` builds it; the total is the bits of the compressed tasks plus 32 bits per
# uncompressed parameter, and equals the sum of the per-layer rows; the errors are percentages;
# the file's name is the experiment's id, and its command reproduces it.

# %% tags=["remove-cell"]
for prof, rows in STORE.items():
    for r in rows:
        exp = experiments.Experiment(r["model"], r["combo"], r["budget"], r["profile"], r["seed"])
        n_params = sum(p.numel() for p in models.build(r["model"]).parameters())
        n_compressed = sum(t["weights"] for t in r["tasks"])
        assert r["profile"] == prof and r["id"] == exp.id, r["id"]
        assert math.isclose(r["ratio"], r["reference_bits"] / r["total_bits"], rel_tol=1e-12), r["id"]
        assert r["reference_bits"] == FLOAT_BITS * n_params, r["id"]
        assert math.isclose(r["total_bits"], sum(t["bits"] for t in r["tasks"]) + FLOAT_BITS * (n_params - n_compressed)), r["id"]
        assert math.isclose(r["total_bits"], sum(layer["bits"] for layer in r["layers"]), rel_tol=1e-9), r["id"]
        assert math.isclose(r["bits_per_weight"], sum(t["bits"] for t in r["tasks"]) / n_compressed), r["id"]
        for key in ("reference_error", "dc_error", "lc_error"):
            assert 0.0 <= r[key] <= 100.0, (r["id"], key)
        assert r["history"][0]["step"] == "DC" and r["history"][0]["test_error"] == r["dc_error"], r["id"]
        assert r["command"].startswith(f"python -m lcbook run {r['model']} {r['combo']} ") and f"--profile {prof}" in r["command"]
print(f"checked {sum(map(len, STORE.values()))} stored results")

# %% [markdown]
# ## The error–compression plane
#
# Each point is one stored quick-profile result: crosses are DC, dots LC from the same start, at
# the same compression ratio (LC changes the weights, not the budget). The dashed line is the
# reference's error on the same test images. Better models are lower and further right.

# %% tags=["hide-input"]
quick_models = sorted({r["model"] for r in STORE["quick"]})


def draw_quick(fig, axes):
    for ax, model in zip(axes, quick_models):
        rows = [r for r in STORE["quick"] if r["model"] == model]
        refs = {r["reference_error"] for r in rows}
        assert len(refs) == 1, f"{model}: results measured against different references or test sets"
        plots.error_vs_storage([{"name": f"{r['combo'].upper()} {budget_text(r['budget'])}", **r} for r in rows],
                               reference_error=refs.pop(), ax=ax, title=f"{model} (quick profile, stored results)")
        ratios = [r["ratio"] for r in rows]
        ax.set_xlim(min(ratios) / 1.4, max(ratios) * 1.4)
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())


display(lcbook.display.panels(draw_quick, len(quick_models), panel_size=(6.0, 4.4),
                              alt="stored quick results: test error against compression ratio, DC and LC"))


# %% tags=["hide-input"]
def pareto(rows, key="lc_error"):
    """The results no other result beats in both ratio (higher) and error (lower)."""
    return [r for r in rows if not any(o["ratio"] >= r["ratio"] and o[key] <= r[key] and o is not r
                                       and (o["ratio"] > r["ratio"] or o[key] < r[key]) for o in rows)]


for model in quick_models:
    rows = [r for r in STORE["quick"] if r["model"] == model]
    front = sorted(pareto(rows), key=lambda r: r["ratio"])
    assert front and all(r in rows for r in front)
    print(f"{model}: Pareto front of the stored LC results (ratio ×, LC error %): "
          + "; ".join(f"{r['combo']} {budget_text(r['budget'])} ({r['ratio']:.1f}×, {r['lc_error']:.1f}%)" for r in front))

# %% [markdown]
# ## How much does μ0 matter?
#
# LC follows a path: for μ → 0 the L step minimises the loss alone and the weights stay at the
# reference $\bar{\mathbf{w}}$; as μ → ∞ the penalty forces them onto $\boldsymbol{\Delta}(\boldsymbol{\Theta})$.
# The schedule $\mu_k = \mu_0 a^k$ sets how the run moves along that path, and with only a few
# LC steps (the quick profile has 5) $\mu_0$ decides where it starts and where it ends. Too small,
# and the first L steps hardly feel the penalty: the compressed model stays near direct
# compression until the last steps. Too large, and the penalty dominates from the first L step:
# the weights are held near $\boldsymbol{\Delta}(\boldsymbol{\Theta})$ before the loss has had
# a chance to move them, and the later steps change little.
#
# The quick profile's $\mu_0$ was chosen by a sweep, run for the two combinations this book is
# about and stored in `data/results/quick/sweeps/mu0/`. Each of those runs was made by the
# command in its file (`python -m lcbook run … --set mu0=…`, which writes to
# `data/results/custom/`) and copied there; `experiments.load_results("quick", sweep="mu0")` reads them.
# Everything else (reference, data, schedule, seed) is the standard run's, so every run starts
# from the same direct compression.

# %%
SWEEP = experiments.load_results("quick", sweep="mu0")

# %% tags=["remove-cell"]
assert SWEEP, "the μ0 sweep is missing from data/results/quick/sweeps/mu0"
sweep_settings = sorted({(r["model"], r["combo"], budget_text(r["budget"])) for r in SWEEP})
sweep_runs = {s: [r for r in SWEEP + STORE["quick"] if (r["model"], r["combo"], budget_text(r["budget"])) == s]
              for s in sweep_settings}
for s, rs in sweep_runs.items():
    assert len({r["dc_error"] for r in rs}) == 1, f"{s}: the runs do not share one direct compression"
    assert all(set(r["overrides"]) <= {"mu0"} for r in rs), s

# %%
sweep_table = pd.DataFrame([{"setting": " ".join(s), "μ0": r["schedule"]["mu0"],
                             "LC error %": r["lc_error"]} for s, rs in sweep_runs.items() for r in rs])
sweep_table.pivot(index="μ0", columns="setting", values="LC error %").style.format(precision=2).format_index(
    lambda v: f"{v:g}").set_caption(
    "LC test error (%) after the quick profile's 5 LC steps, by μ0 (DC error: "
    + "; ".join(f"{' '.join(s)} {rs[0]['dc_error']:.2f}%" for s, rs in sweep_runs.items()) + ")")

# %%
def draw_sweeps(fig, axes):
    for ax, (s, rs) in zip(axes, sweep_runs.items()):
        for r in sorted(rs, key=lambda r: r["schedule"]["mu0"]):
            steps = [h for h in r["history"] if h["step"] != "FT"]
            ax.plot(range(len(steps)), [h["test_error"] for h in steps], marker="o",
                    label=f"μ0 = {r['schedule']['mu0']:g}" + ("" if r["overrides"] else " (quick schedule)"))
        ax.set_xticks(range(len(steps)), ["DC"] + [str(h["step"]) for h in steps[1:]])
        ax.set_xlabel("LC step")
        ax.set_ylabel("test error of Δ(Θ) (%)")
        ax.set_title(" ".join(s))
        ax.legend(fontsize=8)


display(lcbook.display.panels(draw_sweeps, len(sweep_runs), panel_size=(6.0, 4.0),
                              alt="test error along LC for each μ0 of the sweep"))
for s, rs in sweep_runs.items():
    best = min(rs, key=lambda r: r["lc_error"])
    std = [r for r in rs if not r["overrides"]]
    gap = f"; the quick schedule's μ0 = {std[0]['schedule']['mu0']:g} gives {std[0]['lc_error']:.2f}% ({std[0]['lc_error'] - best['lc_error']:+.2f} points)" if std else ""
    print(f"{' '.join(s)}: lowest LC error {best['lc_error']:.2f}% at μ0 = {best['schedule']['mu0']:g}{gap}")

# %% [markdown]
# Each μ0 was run with one seed and evaluated on the profile's test subset (the `test images`
# column of the quick table above), so differences of a few tenths of a point are within noise.
# The full profile's schedules (50–60 LC steps with a gentler $a$, listed in the GPU section
# below) have not been swept: its Q+P and L+P runs use each family's low-rank schedule, which
# still has to be tuned on a GPU in the same way (`--set mu0=…`).
#
# ## Beside the published numbers
#
# These are the numbers we can cite; all are **published** by the LC authors, none is measured
# here.
#
# **LeNet300 on MNIST** (the LC toolkit's README {cite}`idelbayev2020flexible`, a tanh
# 784–300–100–10 net). {doc}`01_lenet300_mnist` runs the same settings live; the results store
# holds LeNet300 results only if someone has run them with `python -m lcbook run lenet300 ...`.
# Note that the store's `qp` combination has one codebook *per layer*, while the toolkit's
# additive example shares one codebook over all layers, so the two are not the same setting.

# %%
PUBLISHED_LENET300 = [  # published: LC toolkit README, test error %
    ("reference", None, None, 2.13),
    ("quantize all 3 layers, K=2 codebook per layer", "q", {"k": 2}, 2.56),
    ("prune to 5% of weights (one κ over all layers)", "p", {"fraction": 0.05}, 2.18),
    ("one K=2 codebook over all layers + 1% sparse corrections", None, None, 2.17),
]
lenet_ref = references.REFERENCE_DIR / "lenet300-mnist-quick.json"
rows = []
for setting, combo, budget, published in PUBLISHED_LENET300:
    ours = [r for prof in STORE for r in STORE[prof] if r["model"] == "lenet300" and r["combo"] == combo
            and r["budget"] == budget] if combo else []
    if setting == "reference" and lenet_ref.is_file():
        ours_text = f"{json.loads(lenet_ref.read_text())['test_error']:.2f} (quick reference record)"
    elif ours:
        ours_text = "; ".join(f"{r['lc_error']:.2f} ({r['profile']}, {r['date'][:10]})" for r in ours)
    elif combo:
        ours_text = f"not stored: python -m lcbook run lenet300 {combo} {budget_text(budget)}"
    else:
        ours_text = "no matching combination in the store (chapter 1 runs it live)"
    rows.append({"setting": setting, "published test error % (LC toolkit)": published, "ours (stored) %": ours_text})
pd.DataFrame(rows).set_index("setting")

# %% [markdown]
# **CIFAR-10 references** (read off the error–compression plot of the low-rank paper
# {cite}`idelbayev2020lowrank`, so approximate, about ±0.1 points), beside the records of this
# book's references. A full-profile record appears here once its reference has been trained.

# %%
PUBLISHED_REFERENCE_ERROR = {"resnet20": 8.3, "resnet32": 7.1, "resnet56": 6.6, "resnet110": 6.1, "vgg16": 6.6}
records = {}
for path in references.REFERENCE_DIR.glob("*.json"):
    rec = json.loads(path.read_text())
    records[(rec["model"], rec["profile"])] = rec
QUICK_STAND_IN = {"vgg16": "vgg16_quarter"}  # the quick profile's smaller VGG-16


def record_text(model, prof):
    rec = records.get((model, prof))
    return f"{rec['test_error']:.2f} ({model}, {rec['recipe']['epochs']} epochs)" if rec else "not trained yet"


pd.DataFrame([{
    "network": name, "published error % (CVPR20 plot, approx.)": pub,
    "our full reference %": record_text(name, "full"),
    "our cpu reference %": record_text(QUICK_STAND_IN.get(name, name), "cpu"),
    "our quick reference %": record_text(QUICK_STAND_IN.get(name, name), "quick") if (QUICK_STAND_IN.get(name, name), "quick") in records else "—",
} for name, pub in PUBLISHED_REFERENCE_ERROR.items()]).set_index("network")

# %% [markdown]
# **Part V** {cite}`carreira2021part5`. Its result tables were not available to us, so this book
# quotes **no** per-network numbers from Part V. What it states in its abstract, and what the
# full grid below is designed to test, is qualitative: combinations find models that are
# significantly better in the error–compression plane than single compressions; ResNets compress
# to about 1 bit per weight plus a few floating-point weights without loss of accuracy; VGG nets
# compress better as low-rank plus a few floating-point weights.
#
# Every stored run of every profile tests one of these statements; the list below gives, per
# profile and network, each statement, the runs that test it, the verdict and the numbers it rests on, all computed from the store by `lcbook.claims` (its
# docstring defines each test; a claim *fails* only on a run that refutes it, and is *untested*
# when the run it needs is missing or is much smaller and less accurate). The quick runs come
# from short CPU runs and weak references, so they agree or disagree with the paper for reasons
# of scale too; the cpu runs are long enough to have settled (the span of the last three LC
# steps' test errors, in points, is given with each run), at the scale of ResNet-20 and a quarter-width VGG-16.

# %%
VERDICTS = pd.DataFrame(claims.verdicts([r for prof in experiments.PROFILES for r in STORE[prof]]))

# %% tags=["remove-cell"]
assert set(VERDICTS["id"]) == {r["id"] for prof in experiments.PROFILES for r in STORE[prof] if not r["overrides"]}

# %%
display(Markdown(claims.report([r for prof in experiments.PROFILES for r in STORE[prof]])))

# %%
counts = VERDICTS.groupby(["profile", "verdict"]).size().unstack(fill_value=0)
display(Markdown("\n".join(
    f"- {prof}: " + ", ".join(f"{int(counts.loc[prof].get(v, 0))} {v}" for v in ("holds", "fails", "untested"))
    for prof in counts.index)))

# %% [markdown]
# ## Reproducing the paper-scale grid on a GPU
#
# ```{admonition} This needs a GPU
# :class: warning
# A full-profile run trains for tens of LC steps of 15 epochs each on all of CIFAR-10, from a
# reference trained for 200 (ResNets) or 300 (VGG-16) epochs. That is GPU work: the commands below
# are meant for a machine with CUDA GPUs, run from the repository root. `grid` runs one job per
# visible GPU at a time, each as its own process, skips results already stored, and every job
# resumes from its last LC step if interrupted, so several GPUs (or machines sharing the folder)
# can work through one grid. Reference training also saves its state after every epoch and
# resumes, and a reference that several jobs need is trained by one of them while the others
# wait (a file lock).
# ```
#
# The full schedules, from `lcbook.experiments.SCHEDULES` (the quick ones beside them for contrast):
# `epochs` per L step, learning rate `lr` restarted at each L step and multiplied by
# `epoch_decay` every epoch, and $\mu_k = \mu_0 a^k$ for `steps` LC steps; `multipliers` says
# whether λ is updated (augmented Lagrangian) or kept at zero (quadratic penalty).

# %%
sched = pd.DataFrame([{"family": fam, "profile": prof, **{k: "all" if v is None else v for k, v in s.asdict().items()},
                       "last μ": s.mu0 * s.a ** (s.steps - 1), "L-step epochs per run": s.steps * s.epochs}
                      for (fam, prof), s in experiments.SCHEDULES.items()])
sched.set_index(["family", "profile"]).sort_index(ascending=[True, False])

# %% [markdown]
# The grid: references first (one command each: a grid whose references are all missing would
# have its jobs wait on the one that trains each), then the LC runs, then the listing. `grid` pairs every budget with the
# combinations whose keys it has exactly (`k=2` goes with `q`, `fraction=…` with `p`,
# `k=2,fraction=…` with `qp`, and so on). The budgets span the same range as the quick results
# above: 1-bit codebooks, 1–5% of the weights kept or added as corrections, a tenth or a quarter
# of the full rank. The cell checks every command against the package (model names, recipes,
# combinations, budget keys and ranges) before printing it.

# %% tags=["hide-input"]
RESNETS = ["resnet20", "resnet32", "resnet56", "resnet110"]
GRIDS = [
    "python -m lcbook grid --models " + " ".join(RESNETS) + " --combos q p qp "
    "--budgets k=2 k=4 fraction=0.05 fraction=0.02 k=2,fraction=0.01 k=2,fraction=0.02 k=2,fraction=0.03 --profile full",
    "python -m lcbook grid --models vgg16 --combos l lp p qp "
    "--budgets rank=0.25 rank=0.1 rank=0.25,fraction=0.01 rank=0.1,fraction=0.01 fraction=0.05 fraction=0.02 "
    "k=2,fraction=0.01 --profile full",
]
COMMANDS = ([f"python -m lcbook reference {m} --profile full" for m in RESNETS + ["vgg16"]] + GRIDS
            + ["python -m lcbook results --profile full"])


def grid_jobs(command):
    """The experiments `python -m lcbook grid ...` runs, built as its code does (raises on a bad command)."""
    argv = shlex.split(command)[4:]
    opts, key = {}, None
    for a in argv:
        if a.startswith("--"):
            key = a[2:]
            opts[key] = []
        else:
            opts[key].append(a)
    assert set(opts) == {"models", "combos", "budgets", "profile"} and all(c in experiments.COMBOS for c in opts["combos"])
    jobs = []
    for model in opts["models"]:
        for combo in opts["combos"]:
            for text in opts["budgets"]:
                budget = experiments.parse_budget(text)
                if set(budget) == set(experiments.COMBOS[combo]):
                    jobs.append(experiments.Experiment(model, combo, budget, opts["profile"][0], 0))
    unused = [t for t in opts["budgets"] if not any(set(experiments.parse_budget(t)) == set(experiments.COMBOS[c]) for c in opts["combos"])]
    assert not unused, f"budgets that match no combination: {unused}"
    return jobs


for cmd in COMMANDS[:5]:
    model = cmd.split()[4]
    assert (model, "full") in references.RECIPES, cmd
JOBS = [j for g in GRIDS for j in grid_jobs(g)]
print("\n".join(COMMANDS))

# %% [markdown]
# What the grid amounts to (job counts per network and combination, and L-step epochs; the
# reference trainings come on top):

# %% tags=["nbval-check-output"]
counts = Counter((j.model, j.combo) for j in JOBS)
for (model, combo), n in counts.items():
    print(f"{model:10s} {combo:3s} {n} jobs")
epochs = sum(experiments.SCHEDULES[(experiments.family(j.model), "full")].steps
             * experiments.SCHEDULES[(experiments.family(j.model), "full")].epochs for j in JOBS)
print(f"{len(JOBS)} jobs, {epochs} L-step epochs over all 50000 training images")
stored = sum(j.result_path().is_file() for j in JOBS)

# %%
print(f"{stored} of {len(JOBS)} grid results are stored today")

# %% tags=["remove-cell"]
assert all(j.profile == "full" and j.result_path().parent == experiments.RESULTS_DIR / "full" for j in JOBS)

# %% [markdown]
# When the grid has run, commit `data/references/*-full.*` and `data/results/full/*.json`; this
# chapter then shows the full-profile table, and the other chapters' full profile reads the same
# references. Single experiments run the same way, e.g.
# `python -m lcbook run resnet56 qp k=2,fraction=0.02 --profile full`; a smoke test of the whole
# pipeline in seconds is `python -m lcbook run lenet300 q k=2 --set steps=1 --set train_size=500
# --set test_size=500` (runs with `--set` overrides go to `data/results/custom/`, which is not
# committed and not read by the book).

# %%

lcbook.display.provenance({f"{r['profile']} run: {r['id']}": r for prof in STORE.values() for r in prof})

# %% [markdown]
# ## Summary
#
# - The results store holds one JSON file per experiment with errors, bits, ratio, history and
#   provenance; this chapter lists all of it for every profile and checks its internal
#   consistency (ratio, bit totals, error ranges, ids, commands).
# - The quick results are short CPU runs from weak references: they show orderings, not the
#   papers' errors. No full-profile results are stored unless the table above says otherwise.
# - The quick profile's μ0 comes from a stored sweep over μ0 for ResNet-20 Q+P and VGG-16/4 L+P;
#   the table and figure above show how far each run got from direct compression in 5 LC steps.
# - Published numbers (the LC toolkit's LeNet300 table, the CVPR20 reference errors) are shown
#   beside ours and labelled as such; Part V's per-network tables are not quoted.
# - The paper-scale grid is a handful of `python -m lcbook reference` and `grid` commands on a
#   GPU machine; the chapter validates them against the package before printing them.
#
# ## Exercises
#
# 1. Run the smoke test above and find its result under `data/results/custom/`. Which fields
#    record that it is not a standard run?
# 2. Pick one stored quick result and recompute its compression ratio from its `layers` rows by
#    hand. Which parameters cost 32 bits, and what share of the total bits do they take?
# 3. Plot `history` (test error against μ) of the stored results with `lcbook.plots.lc_paths`.
#    Which combination approaches its final error fastest?
# 4. Add a `k=4,fraction=0.01` ResNet budget and a `rank=0.05,fraction=0.02` VGG budget to the
#    grid commands. How many jobs and L-step epochs do they add?
# 5. Part V says the best combination depends on the network. Which stored quick results would
#    you need, at which ratios, to test that for ResNet-20 against VGG-16?

"""LC experiments by name, their schedules per profile, and the results store.

An experiment is (network, combination, budget, profile, seed). :func:`run_experiment` trains
the reference if it is missing, runs LC with a checkpoint after every step (restarting the same
command resumes), and writes one JSON result to the store under ``data/results/<profile>/``:
test errors (DC and LC, in percent), per-layer and total bits, compression ratio, the history,
wall time, and provenance (hardware, versions, git commit, profile, seed). Chapters read the
store with :func:`load_results`. Runs with schedule overrides (``--set``) go to
``data/results/custom/`` instead; a tuning sweep worth keeping is copied from there to
``data/results/<profile>/sweeps/<name>/`` and read with ``load_results(sweep=name)``.

Combinations (``budget`` keys in brackets):

* ``q``  — adaptive quantization, one codebook of K values per layer [k];
* ``p``  — ℓ0-constraint pruning, one κ shared by all compressed layers [fraction];
* ``qp`` — K-value codebook plus a share of sparse corrections, per layer [k, fraction];
* ``l``  — low-rank, rank = ⌈rank·min(m, n)⌉ per layer [rank, a fraction];
* ``lp`` — that low-rank plus a share of sparse corrections, per layer [rank, fraction];
* ``qthenp`` — the sequential pipeline: quantize, then spend the sparse corrections on the
  largest errors, each part fitted once (:class:`~lcbook.compressions.SequentialCombination`),
  per layer [k, fraction];
* ``pthenq`` — prune, then quantize the kept values (Deep Compression;
  :class:`~lcbook.compressions.PruneThenQuantize`), per layer [k, fraction].

Optional fine-tuning (schedule entry ``finetune_epochs`` > 0, e.g. ``--set finetune_epochs=5``):
after LC, :func:`lcbook.train.finetune` trains the codebooks, kept values and factors
with the structure fixed; ``final_error`` is then the fine-tuned model's error, ``lc_error`` the
one before.

Which weights are compressed: every conv layer of a ResNet (as in the LC authors' CIFAR runs);
every conv and linear layer of VGG-16 and LeNet300. Biases and BatchNorm stay float (32 bits).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import hashlib
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ._checks import is_bool, is_int, is_real, plain_numbers
from . import models, train
from ._io import atomic_write_json
from .compressions import (AdaptiveQuantization, AdditiveCombination, ConstraintL0Pruning, LowRank, PruneThenQuantize,
                           SequentialCombination)
from .references import RECIPES, ROOT, batches, device, provenance, reference
from .lc import LCAlgorithm, Task, geometric_mu
from .profiles import PROFILES, runs_dir
from .storage import storage_report

log = logging.getLogger(__name__)

RESULTS_DIR = ROOT / "data" / "results"
RUNS_DIR = runs_dir()  # LC checkpoints ($LCBOOK_RUNS_DIR, default data/runs, ignored by git)

COMBOS: Dict[str, tuple] = {
    "q": ("k",),
    "p": ("fraction",),
    "qp": ("k", "fraction"),
    "l": ("rank",),
    "lp": ("rank", "fraction"),
    "qthenp": ("k", "fraction"),
    "pthenq": ("k", "fraction"),
}

#: LC schedules per (network family, profile). The full ones follow the LC authors' CIFAR runs
#: (15 epochs per L step, lr restarted at each L step and ×0.99 per epoch; μ0·a^k); the quick ones
#: are short runs on class-balanced subsets for a 2-core CPU. The quick μ0 = 0.3 was chosen by a
#: sweep over μ0 ∈ {0.03, 0.1, 0.3, 1, 3} (``--set mu0=…``) of ResNet-20 Q+P (K=2, 2%) and VGG-16/4
#: L+P (rank 0.25, 1%): it was within 0.1 points of the best LC test error of each (closing note of
#: 2026-12-01). The full Q+P and L+P runs use each family's low-rank μ schedule, not yet tuned
#: (that needs GPU runs).
def _check_schedule(sched: Dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the entry if a schedule value is out of range."""
    def bad(key, allowed):
        return ValueError(f"schedule entry {key}={sched[key]!r} is invalid: {allowed}")

    for key in ("epochs", "steps", "batch_size"):
        v = sched[key]
        if not is_int(v) or v < 1:
            raise bad(key, "an int ≥ 1")
    v = sched["finetune_epochs"]
    if not is_int(v) or v < 0:
        raise bad("finetune_epochs", "an int ≥ 0")
    for key in ("train_size", "test_size"):
        v = sched[key]
        if v is not None and (not is_int(v) or v < 1):
            raise bad(key, "null (all) or an int ≥ 1")
    for key in ("lr", "mu0", "finetune_lr", "step_decay", "epoch_decay"):
        v = sched[key]
        if not is_real(v) or not (math.isfinite(v) and v > 0):
            raise bad(key, "a finite number > 0")
    if not is_real(sched["a"]) or not (math.isfinite(sched["a"]) and sched["a"] >= 1):
        raise bad("a", "a finite number ≥ 1")
    for key in ("multipliers", "compile", "tf32"):
        if not is_bool(sched.get(key, False)):
            raise bad(key, "true or false")
    if sched.get("autocast") not in (None, "bfloat16"):
        raise bad("autocast", "null (float32) or \"bfloat16\"")
    geometric_mu(sched["mu0"], sched["a"], sched["steps"])  # an overflowing μ schedule fails here, before any training


@dataclass(frozen=True)
class Schedule:
    """An LC schedule: the L steps' SGD and the μ path [P1, §6]. Frozen; :meth:`replace` makes a
    changed copy (``--set`` overrides), :meth:`asdict` the JSON stored with every result.

    Raises:
        ValueError: an entry out of range (named, with what is allowed), or a μ schedule that
            overflows.
    """

    train_size: Optional[int]  # training images (a class-balanced subset); None: all of them
    test_size: Optional[int]  # test images every evaluation uses; None: all of them
    epochs: int  # epochs per L step
    lr: float  # SGD learning rate at the start of every L step
    step_decay: float  # the starting lr is multiplied by this after each L step
    epoch_decay: float  # and by this after each epoch within an L step
    mu0: float  # μ of the first LC step
    a: float  # μ grows by this factor per LC step: μ_k = μ0·a^k
    steps: int  # number of LC steps
    multipliers: bool  # True: augmented Lagrangian (λ updated); False: quadratic penalty (λ = 0)
    batch_size: int = 128  # training minibatch size
    finetune_epochs: int = 0  # epochs of fine-tuning Θ's continuous parts after LC (0: none)
    finetune_lr: float = 1e-3  # the fine-tuning learning rate
    autocast: Optional[str] = None  # "bfloat16": L steps' forward pass in bf16 autocast (weights, Θ, λ stay float32)
    compile: bool = False  # L steps' forward pass through torch.compile
    tf32: bool = False  # on a GPU: TF32 matmuls and cuDNN autotuning (cudnn.benchmark); no effect on a CPU

    def __post_init__(self):
        _check_schedule(self.asdict())
        plain_numbers(self)  # NumPy numbers become Python ones (results are plain JSON)

    def asdict(self) -> Dict[str, Any]:
        """The entries as a plain dict (what a result stores under ``"schedule"``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **overrides) -> "Schedule":
        """A copy with ``overrides`` (entry → value) replaced, validated.

        Raises:
            ValueError: an unknown entry (the message lists the entries) or a value out of range.
        """
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown schedule entries {unknown}; entries: {sorted(f.name for f in fields(self))}")
        return dataclasses.replace(self, **overrides)


SCHEDULES: Dict[tuple, "Schedule"] = {
    ("lenet300", "quick"): Schedule(train_size=None, test_size=None, epochs=1, lr=0.1, step_decay=0.98, epoch_decay=1.0,
                                mu0=5e-3, a=1.25, steps=20, multipliers=True, batch_size=256,
                        finetune_epochs=0, finetune_lr=1e-3),
    ("lenet300", "full"): Schedule(train_size=None, test_size=None, epochs=1, lr=0.1, step_decay=0.98, epoch_decay=1.0,
                               mu0=9e-5, a=1.1, steps=40, multipliers=True, batch_size=256,
                        finetune_epochs=0, finetune_lr=1e-3, tf32=True),
    ("resnet", "quick"): Schedule(train_size=4000, test_size=2000, epochs=1, lr=0.01, step_decay=1.0, epoch_decay=0.99,
                              mu0=0.3, a=2.4, steps=5, multipliers=False, batch_size=128,
                        finetune_epochs=0, finetune_lr=1e-3),
    ("resnet", "full"): Schedule(train_size=None, test_size=None, epochs=15, lr=7e-4, step_decay=1.0, epoch_decay=0.99,
                             mu0=1e-3, a=1.25, steps=50, multipliers=True, batch_size=128,
                        finetune_epochs=0, finetune_lr=1e-3, tf32=True),
    ("vgg", "quick"): Schedule(train_size=4000, test_size=2000, epochs=1, lr=0.01, step_decay=1.0, epoch_decay=0.99,
                           mu0=0.3, a=2.4, steps=5, multipliers=False, batch_size=128,
                        finetune_epochs=0, finetune_lr=1e-3),
    # cpu: long background runs on all 50k training images, evaluated on all 10k test images;
    # 20 L steps of one epoch, the augmented Lagrangian, μ from 0.03 to ≈ 30 (×1.44 per step),
    # lr 0.02 decayed ×0.9 per step (one pass over the data per μ; about 1.5 h per ResNet-20 run
    # on one core).
    ("resnet", "cpu"): Schedule(train_size=None, test_size=None, epochs=1, lr=0.02, step_decay=0.9, epoch_decay=1.0,
                            mu0=0.03, a=1.44, steps=20, multipliers=True, batch_size=128,
                            finetune_epochs=0, finetune_lr=1e-3),
    ("vgg", "cpu"): Schedule(train_size=None, test_size=None, epochs=1, lr=0.02, step_decay=0.9, epoch_decay=1.0,
                         mu0=0.03, a=1.44, steps=20, multipliers=True, batch_size=128,
                         finetune_epochs=0, finetune_lr=1e-3),
    ("vgg", "full"): Schedule(train_size=None, test_size=None, epochs=15, lr=7e-4, step_decay=1.0, epoch_decay=0.99,
                          mu0=2e-5, a=1.2, steps=60, multipliers=True, batch_size=128,
                        finetune_epochs=0, finetune_lr=1e-3, tf32=True),
}


def family(model: str) -> str:
    """The schedule family of a model name: ``"resnet"``, ``"vgg"``, or the name itself (``"lenet300"``)."""
    return "resnet" if model.startswith("resnet") else ("vgg" if model.startswith("vgg") else model)


#: The largest codebook a budget may ask for (2^16 values: 16 bits per weight, as many as float16 has).
MAX_K = 2**16

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _check_budget(combo: str, budget: Dict[str, float]) -> Dict[str, float]:
    if combo not in COMBOS:
        raise ValueError(f"combo must be one of {sorted(COMBOS)}, got combo={combo!r}")
    want = set(COMBOS[combo])
    if set(budget) != want:
        raise ValueError(f"combo {combo!r} takes the budget keys {sorted(want)}, got {sorted(budget)}")
    out = {}
    for key, v in budget.items():
        if key == "k":
            if not is_real(v) or not float(v).is_integer() or not 1 <= v <= MAX_K:
                raise ValueError(f"budget k must be an integer in [1, {MAX_K}], got k={v!r}")
            out[key] = int(v)
        else:
            if not is_real(v) or not 0 <= v <= 1 or (key == "rank" and v == 0):
                span = "(0, 1]" if key == "rank" else "[0, 1]"
                raise ValueError(f"budget {key} must be a number in {span}, got {key}={v!r}")
            out[key] = float(v) + 0.0  # -0.0 becomes 0.0 (one id per budget)
    return out


def format_number(v) -> str:
    """The shortest text that reads back as exactly ``v`` (``2``, ``0.02``, ``1e-05``,
    ``0.10000000000001``): used in experiment ids and commands, so two different budgets never
    share an id or a command."""
    if is_int(v):
        return str(int(v))
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def budget_text(budget: Dict[str, float]) -> str:
    """A budget as the command line takes it: ``{"k": 2, "fraction": 0.02}`` → ``"k=2,fraction=0.02"``;
    :func:`parse_budget` reads it back to the same values."""
    return ",".join(f"{k}={format_number(v)}" for k, v in budget.items())


def parse_budget(text: str) -> Dict[str, float]:
    """``"k=2,fraction=0.01"`` → ``{"k": 2.0, "fraction": 0.01}``; ``ValueError`` on bad text."""
    if not isinstance(text, str):
        raise ValueError(f"budget must be text such as 'k=2,fraction=0.01', got {text!r}")
    out = {}
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"([a-z]+)=(.+)", part)
        if not m:
            raise ValueError(f"budget must look like 'k=2,fraction=0.01', got {text!r}")
        key, value = m.groups()
        if key in out:
            raise ValueError(f"budget gives {key!r} twice in {text!r}")
        if not _NUMBER.fullmatch(value.strip()):
            raise ValueError(f"budget {key}={value!r} is not a number (write e.g. 2, 0.02 or 2e-2)")
        out[key] = float(value)
        if not math.isfinite(out[key]):
            raise ValueError(f"budget {key}={value!r} must be finite")
        if out[key] == 0 and any(c in "123456789" for c in value.split("e")[0].split("E")[0]):
            raise ValueError(f"budget {key}={value!r} is too small for a float (it would read as 0)")
    return out


def compressed_weights(model_name: str, model) -> List[str]:
    """Names of the weights the experiments compress: every conv weight, and the linear weights
    too except for ResNets (whose small final layer stays float, as in the LC authors' runs)."""
    return models.conv_and_linear_weights(model, include_linear=family(model_name) != "resnet")


def make_tasks(model_name: str, model, combo: str, budget: Dict[str, float]) -> List[Task]:
    """The tasks of a combination on a network (see the module docstring)."""
    budget = _check_budget(combo, budget)
    names = compressed_weights(model_name, model)
    params = dict(model.named_parameters())

    def rank(name):
        w = params[name]
        return max(1, math.ceil(budget["rank"] * min(w.shape[0], w[0].numel())))

    if combo == "p":
        return [Task(tuple(names), ConstraintL0Pruning(fraction=budget["fraction"]), name="all layers")]
    tasks = []
    for n in names:
        if combo == "q":
            c = AdaptiveQuantization(budget["k"])
        elif combo == "qp":
            c = AdditiveCombination((AdaptiveQuantization(budget["k"]), ConstraintL0Pruning(fraction=budget["fraction"])))
        elif combo == "qthenp":
            c = SequentialCombination((AdaptiveQuantization(budget["k"]), ConstraintL0Pruning(fraction=budget["fraction"])))
        elif combo == "pthenq":
            c = PruneThenQuantize(budget["k"], fraction=budget["fraction"])
        elif combo == "l":
            c = LowRank(rank(n))
        else:
            c = AdditiveCombination((LowRank(rank(n)), ConstraintL0Pruning(fraction=budget["fraction"])))
        tasks.append(Task(n, c))
    return tasks


@dataclass(frozen=True)
class Experiment:
    """One LC experiment: network, combination, budget, profile and seed."""

    model: str
    combo: str
    budget: Dict[str, float]
    profile: str = "quick"
    seed: int = 0
    overrides: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.model not in models.MODELS:
            raise ValueError(f"model must be one of {sorted(models.MODELS)}, got model={self.model!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got profile={self.profile!r}")
        if not isinstance(self.budget, dict):
            raise ValueError(f"budget must be a dict such as {{'k': 2, 'fraction': 0.02}} (experiments.parse_budget reads "
                             f"'k=2,fraction=0.02'), got budget={self.budget!r}")
        if not isinstance(self.overrides, dict):
            raise ValueError(f"overrides must be a dict of schedule entries, got overrides={self.overrides!r}")
        object.__setattr__(self, "budget", _check_budget(self.combo, dict(self.budget)))
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int ≥ 0, got seed={self.seed!r}")
        if (self.model, self.profile) not in RECIPES:
            have = sorted(m for m, p in RECIPES if p == self.profile)
            raise ValueError(f"no reference recipe for model {self.model!r} in profile {self.profile!r}; "
                             f"models with one: {have}")
        sched = SCHEDULES[(family(self.model), self.profile)].replace(**self.overrides)  # unknown or bad entries raise
        # each override as the schedule holds it (Python numbers of the entry's type), so results and
        # ids are plain JSON and --set lr=1 is the same run as --set lr=1.0
        object.__setattr__(self, "overrides", {k: getattr(sched, k) for k in self.overrides})
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def id(self) -> str:
        """``model-combo-budget-seedN``, plus a hash of the schedule overrides if there are any
        (so a smoke test never shares a checkpoint or a result with the real run)."""
        b = "-".join(f"{k}{format_number(v)}" for k, v in sorted(self.budget.items()))
        base = f"{self.model}-{self.combo}-{b}-seed{self.seed}"
        if self.overrides:
            base += "-set" + hashlib.sha1(json.dumps(self.overrides, sort_keys=True).encode()).hexdigest()[:8]
        return base

    def result_path(self) -> Path:
        """The results store holds standard runs; a run with overrides goes to ``custom/`` (not
        tracked by git, not read by the chapters)."""
        folder = RESULTS_DIR / "custom" / self.profile if self.overrides else RESULTS_DIR / self.profile
        return folder / f"{self.id}.json"

    def checkpoint_path(self) -> Path:
        """Where the run's complete LC state is saved after every step (``data/runs/<profile>/<id>.pt``)."""
        return RUNS_DIR / self.profile / f"{self.id}.pt"


def is_tracked(path: Path) -> bool:
    """Whether git tracks ``path`` in this project (a committed result). Without git, or outside
    a git checkout, every file of the results store counts as tracked (it came with the book)."""
    import subprocess

    try:
        proc = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    if proc.returncode == 0:
        return True
    # "not a git repository" (e.g. an installed copy): the store came with the book
    return b"not a git repository" in proc.stderr


def run_experiment(exp: Experiment, progress: bool = True, result_path: Optional[Path] = None,
                   checkpoint: Optional[Path] = None) -> Dict[str, Any]:
    """Run one experiment (resuming from its checkpoint if there is one) and store its result.

    Args:
        exp: the experiment (its ``overrides`` replace schedule entries, e.g.
            ``{"steps": 2, "train_size": 500}`` for a smoke test; they are recorded).
        progress: tqdm bars.
        result_path: where to write the result (default ``exp.result_path()``).
        checkpoint: the LC checkpoint (default ``exp.checkpoint_path()``).

    Returns:
        The result dict, also written atomically to ``result_path``.
    """
    overrides = exp.overrides
    sched = SCHEDULES[(family(exp.model), exp.profile)].replace(**overrides).asdict()
    model, ref_record = reference(exp.model, exp.profile, progress=progress)
    dataset = ref_record.get("recipe", {}).get("dataset", "cifar10")
    if ref_record.get("recipe", {}).get("channels_last"):
        model.to(memory_format=torch.channels_last)  # as the reference trained: faster convs on a CPU
    dev = device()
    if sched.get("tf32") and dev.startswith("cuda"):  # the GPU profile's opt-in speed (global switches)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(exp.seed)
    train_b = batches(dataset, "train", sched["batch_size"], sched["train_size"], train_mode=True,
                      augment=dataset == "cifar10", seed=exp.seed, dev=dev)
    test_b = batches(dataset, "test", 1000, sched["test_size"], dev=dev)
    recal = batches(dataset, "train", 256, min(2048, sched["train_size"] or 2048), seed=exp.seed + 1, dev=dev)
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())

    def evaluate(m):
        if has_bn:
            train.recalibrate_bn(m, recal, max_batches=8)
        return {"test_error": train.evaluate(m, test_b)["error"]}

    with torch.no_grad():
        ref_error = train.evaluate(model, test_b)["error"]
    tasks = make_tasks(exp.model, model, exp.combo, exp.budget)
    lc = LCAlgorithm(
        model, tasks,
        l_step=train.SGDLStep(train_b, epochs=sched["epochs"], lr=sched["lr"], epoch_decay=sched["epoch_decay"],
                              step_decay=sched["step_decay"],
                              autocast=torch.bfloat16 if sched["autocast"] == "bfloat16" else None,
                              compile=sched["compile"]),
        mu_schedule=geometric_mu(sched["mu0"], sched["a"], sched["steps"]),
        evaluate=evaluate, multipliers=sched["multipliers"], progress=progress,
    )
    history = lc.run(checkpoint=checkpoint or exp.checkpoint_path())
    lc_error = history[-1]["test_error"]
    seconds = lc.seconds  # DC and LC steps, summed over the processes of a resumed run
    if sched["finetune_epochs"] > 0:  # optional: train Θ's continuous parts with the structure fixed
        t0 = time.perf_counter()
        train.finetune(lc, train_b, epochs=sched["finetune_epochs"], lr=sched["finetune_lr"])
        history = lc.history
        seconds += time.perf_counter() - t0
    example = next(iter(test_b))[0][:1]
    report = storage_report(lc, example)
    result = {
        "id": exp.id, "model": exp.model, "combo": exp.combo, "budget": exp.budget, "profile": exp.profile,
        "seed": exp.seed, "schedule": sched, "overrides": overrides,
        "reference_error": ref_error, "dc_error": history[0]["test_error"], "lc_error": lc_error,
        "final_error": history[-1]["test_error"],
        "ratio": report["ratio"], "bits_per_weight": report["bits_per_weight"], "total_bits": report["total_bits"],
        "reference_bits": report["reference_bits"], "macs": report["macs"], "reference_macs": report["reference_macs"],
        "layers": report["layers"], "tasks": report["tasks"], "history": history,
        "lc_seconds": seconds, "c_seconds": sum(r["c_seconds"] for r in history),
        "command": f"python -m lcbook run {exp.model} {exp.combo} {budget_text(exp.budget)} "
                   f"--profile {exp.profile} --seed {exp.seed}"
                   + "".join(f" --set {k}={json.dumps(v)}" for k, v in overrides.items()),
        **provenance(),
    }
    atomic_write_json(result, result_path or exp.result_path())
    return result


def load_results(profile_name: str, sweep: Optional[str] = None, **match) -> List[Dict[str, Any]]:
    """All stored results of the profile ``profile_name`` whose fields equal ``match``
    (e.g. ``model="resnet20"``, ``combo="qp"``), sorted by id.

    Args:
        sweep: read a committed tuning sweep instead, ``data/results/<profile>/sweeps/<sweep>/``:
            runs with schedule overrides (e.g. ``--set mu0=0.1``, made under
            ``data/results/custom/`` and copied there), such as ``"mu0"``.

    A file that is not a result (unreadable JSON, a missing field, a field of the wrong type, a
    non-finite number) is skipped with a logged warning.

    Raises:
        ValueError: ``profile_name`` is not a profile, ``sweep`` is not a plain folder name, or
            a ``match`` key is not a result field.
    """
    prof = profile_name
    if prof not in PROFILES:
        raise ValueError(f"profile_name must be one of {PROFILES}, got profile_name={prof!r}")
    if sweep is not None and not (isinstance(sweep, str) and re.fullmatch(r"[a-z0-9_]+", sweep)):
        raise ValueError(f"sweep must be a folder name of lowercase letters, digits and _, got sweep={sweep!r}")
    unknown = sorted(set(match) - set(RESULT_FIELDS))
    if unknown:
        raise ValueError(f"unknown result fields {unknown} in match; fields: {sorted(RESULT_FIELDS)}")
    folder = RESULTS_DIR / prof / "sweeps" / sweep if sweep else RESULTS_DIR / prof
    out = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            r = json.loads(p.read_text())
            _check_result(r)
        except (OSError, ValueError) as e:
            log.warning("skipping %s: not a valid result (%s)", p, e)
            continue
        if all(r.get(k) == v for k, v in match.items()):
            out.append(r)
    return out


#: The fields of a stored result and their types (numbers must be finite).
RESULT_FIELDS: Dict[str, tuple] = {
    "id": (str,), "model": (str,), "combo": (str,), "budget": (dict,), "profile": (str,), "seed": (int,),
    "schedule": (dict,), "overrides": (dict,), "reference_error": (int, float), "dc_error": (int, float),
    "lc_error": (int, float), "final_error": (int, float), "ratio": (int, float), "bits_per_weight": (int, float),
    "total_bits": (int,), "reference_bits": (int,), "macs": (int,), "reference_macs": (int,), "layers": (list,),
    "tasks": (list,), "history": (list,), "lc_seconds": (int, float), "c_seconds": (int, float), "command": (str,),
    "date": (str,), "git_commit": (str,), "python": (str,), "torch": (str,), "hardware": (str,), "threads": (int,),
}
_OPTIONAL_FIELDS = {"final_error"}  # results stored before fine-tuning existed lack it


def _check_result(r: Any) -> None:
    if not isinstance(r, dict):
        raise ValueError(f"a result is a JSON object, got {type(r).__name__}")
    missing = sorted(set(RESULT_FIELDS) - _OPTIONAL_FIELDS - set(r))
    if missing:
        raise ValueError(f"missing fields {missing}")
    for k, types in RESULT_FIELDS.items():
        if k not in r:
            continue
        v = r[k]
        if isinstance(v, bool) or not isinstance(v, types):
            raise ValueError(f"field {k!r} must be {'/'.join(t.__name__ for t in types)}, got {v!r:.60}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"field {k!r} is not finite: {v!r}")

if __name__ == "__main__":
    # ``python -m lcbook.experiments reference MODEL ...``, the command in records made before the
    # command line moved to ``python -m lcbook``: run that one with the same arguments (by name, so
    # no module of the package imports the command line)
    import runpy

    runpy.run_module("lcbook", run_name="__main__", alter_sys=True)

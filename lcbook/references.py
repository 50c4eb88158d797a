"""Reference models: their training recipes, training (resumable) and records with provenance.

Every function takes the profile (``quick``, ``cpu`` or ``full``) as an argument; the
environment variable ``LCBOOK_PROFILE`` is read only by :func:`lcbook.profiles.profile`, which
the command line and the chapters (:func:`lcbook.profiles.chapter_profile`) call once.

**References.** :func:`reference` returns a trained reference model, training it only if its
checkpoint ``data/references/<model>-<dataset>-<profile>.pt`` is missing. Each checkpoint has a
JSON record beside it: the command that made it, profile, recipe, epochs, test error, wall
time, hardware, versions, git commit and date. Files are written atomically.

Command line (to make or remake a reference)::

    python -m lcbook reference resnet20 --profile quick
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple

import torch
from filelock import FileLock
from torch import nn

from . import data, models, train
from ._checks import is_bool, is_int, is_real, plain_numbers
from ._io import atomic_save, atomic_write_json  # noqa: F401  (re-exported)
from .profiles import PROFILES, runs_dir  # noqa: F401  (PROFILES re-exported)
ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "data" / "references"
REFERENCE_RUNS_DIR = runs_dir() / "references"  # unfinished reference trainings ($LCBOOK_RUNS_DIR, ignored by git)


def device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Recipe:
    """How a reference is trained (:func:`lcbook.train.train_reference`): SGD with momentum 0.9.
    Frozen; :meth:`asdict` is what a reference's record stores under ``"recipe"``.

    Raises:
        ValueError: an entry out of range (named, with what is allowed).
    """

    dataset: str  # "mnist" or "cifar10"
    epochs: int  # passes over the training images
    lr: float  # initial learning rate
    schedule: str  # "step" (lr × gamma at each milestone), "exp" (× gamma every epoch), "onecycle"
    weight_decay: float  # PyTorch weight decay on conv/linear weights (= 2× a c·Σ‖W‖² loss term)
    augment: bool  # random crop (4-pixel padding) and horizontal flip of every training image
    batch_size: int = 128  # training minibatch size
    train_size: Optional[int] = None  # training images (a class-balanced subset); None: all of them
    gamma: float = 0.1  # the lr factor of "step" and "exp"
    milestones: Tuple[int, ...] = ()  # epochs at which "step" multiplies the lr by gamma
    channels_last: bool = False  # train in channels_last memory format (faster convolutions on a CPU)

    def __post_init__(self):
        def bad(key, allowed):
            return ValueError(f"recipe entry {key}={getattr(self, key)!r} is invalid: {allowed}")

        if self.dataset not in ("mnist", "cifar10"):
            raise bad("dataset", "'mnist' or 'cifar10'")
        if self.schedule not in ("step", "exp", "onecycle"):
            raise bad("schedule", "'step', 'exp' or 'onecycle'")
        for key in ("epochs", "batch_size"):
            if not is_int(getattr(self, key)) or getattr(self, key) < 1:
                raise bad(key, "an int ≥ 1")
        if self.train_size is not None and (not is_int(self.train_size) or self.train_size < 1):
            raise bad("train_size", "None (all) or an int ≥ 1")
        for key in ("lr", "gamma"):
            if not is_real(getattr(self, key)) or not (math.isfinite(getattr(self, key)) and getattr(self, key) > 0):
                raise bad(key, "a finite number > 0")
        if not is_real(self.weight_decay) or not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", "a finite number ≥ 0")
        for key in ("augment", "channels_last"):
            if not is_bool(getattr(self, key)):
                raise bad(key, "true or false")
        ms = self.milestones
        if isinstance(ms, (str, bytes)) or not hasattr(ms, "__iter__") or not all(is_int(m) for m in ms):
            raise bad("milestones", "a sequence of epoch numbers (ints)")
        ms = tuple(int(m) for m in ms)
        if any(not 1 <= m <= self.epochs for m in ms) or list(ms) != sorted(set(ms)):
            raise bad("milestones", f"increasing epoch numbers in 1..epochs={self.epochs}")
        object.__setattr__(self, "milestones", ms)
        plain_numbers(self)  # NumPy numbers become Python ones (records are plain JSON)

    def asdict(self) -> Dict[str, Any]:
        """The entries as a plain JSON-able dict (tuples as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


#: Reference training recipes: (dataset, profile) -> settings of :func:`lcbook.train.train_reference`.
#: ``train_size``/``None`` = the full training set. The full ResNet recipe is He et al. (2016) as
#: used by the LC authors (SGD Nesterov 0.9, batch 128, 200 epochs, lr 0.1 ÷10 at 100 and 150,
#: a 1e-4·Σ‖W‖² loss term = weight decay 2e-4); the quick recipe is a short one-cycle run that a
#: 2-core CPU finishes in well under an hour.
RECIPES: Dict[Tuple[str, str], Recipe] = {
    ("lenet300", "quick"): Recipe(dataset="mnist", train_size=None, epochs=20, batch_size=256, lr=0.1,
                                schedule="exp", gamma=0.9, weight_decay=0.0, augment=False),
    ("lenet300", "full"): Recipe(dataset="mnist", train_size=None, epochs=100, batch_size=256, lr=0.1,
                               schedule="exp", gamma=0.98, weight_decay=0.0, augment=False),
    ("resnet20", "quick"): Recipe(dataset="cifar10", train_size=None, epochs=10, batch_size=128, lr=0.2,
                                schedule="onecycle", weight_decay=5e-4, augment=True),
}
#: VGG-16 full: the LC authors' recipe (300 epochs, lr 0.05 × 0.97716 per epoch, a 5e-4·Σ‖W‖² term
#: = weight decay 1e-3, dropout in the classifier). Quick: VGG-16 at quarter width, a short
#: one-cycle run on all 50k images that a 2-core CPU finishes in about 20 minutes.
RECIPES[("vgg16", "full")] = Recipe(dataset="cifar10", train_size=None, epochs=300, batch_size=128, lr=0.05,
                                  schedule="exp", gamma=0.97716, weight_decay=1e-3, augment=True)
RECIPES[("vgg16_quarter", "quick")] = Recipe(dataset="cifar10", train_size=None, epochs=8, batch_size=128, lr=0.1,
                                           schedule="onecycle", weight_decay=5e-4, augment=True)
#: The ``cpu`` profile: references trained in the background on a 2-core CPU (one thread each,
#: measured fastest with other work on the cores; ``benchmarks/cpu_training.py``), on all 50,000
#: training images with the one-cycle schedule that gives the best error for a fixed number of
#: epochs, and ``channels_last`` (14% faster on this CPU for ResNet-20). ResNet-20: 60 epochs
#: (about 3.5 h on one core) aiming at ≤ 9.5% test error; VGG-16/4: 40 epochs (about 1 h).
RECIPES[("resnet20", "cpu")] = Recipe(dataset="cifar10", train_size=None, epochs=60, batch_size=128, lr=0.15,
                                    schedule="onecycle", weight_decay=5e-4, augment=True, channels_last=True)
RECIPES[("vgg16_quarter", "cpu")] = Recipe(dataset="cifar10", train_size=None, epochs=40, batch_size=128, lr=0.1,
                                         schedule="onecycle", weight_decay=5e-4, augment=True, channels_last=True)
for _depth in (20, 32, 56, 110):
    RECIPES[(f"resnet{_depth}", "full")] = Recipe(
        dataset="cifar10", train_size=None, epochs=200, batch_size=128, lr=0.1, schedule="step",
        milestones=(100, 150), gamma=0.1, weight_decay=2e-4, augment=True,
    )


def _git_state() -> str:
    """The checkout's commit, with ``+changes`` if tracked files differ from it ("unknown"
    outside git)."""
    try:
        run = dict(cwd=ROOT, capture_output=True, text=True, timeout=10)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+changes" if dirty else "")) if commit else "unknown"


#: The code this process runs: the commit when the package was imported (a run that lasts hours
#: records the code it started with, not whatever the checkout holds when it ends).
_CODE = _git_state()


def provenance() -> Dict[str, Any]:
    """Where and with what a result was made: hardware, versions, the git commit the running
    code was imported from (``+changes`` if the checkout had uncommitted changes then), date."""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _CODE,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hardware": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, {platform.machine()})",
        "threads": torch.get_num_threads(),
    }


def batches(dataset: str, split: str, batch_size: int = 256, size: Optional[int] = None,
            train_mode: bool = False, augment: bool = False, seed: int = 0, dev: Optional[str] = None) -> data.Batches:
    """:class:`lcbook.data.Batches` over a (class-balanced subset of a) dataset split."""
    x, y = data.load(dataset)[split]
    x, y = data.subset(x, y, size, seed=seed)
    return data.Batches(x, y, dataset, batch_size=batch_size, train=train_mode, augment=augment,
                        device=dev or device(), seed=seed)


def reference_path(name: str, prof: str) -> Path:
    """The checkpoint path of a reference: ``data/references/<name>-<dataset>-<profile>.pt``
    (its JSON record has the same name with ``.json``)."""
    ds = RECIPES[(name, prof)].dataset if (name, prof) in RECIPES else "data"
    return REFERENCE_DIR / f"{name}-{ds}-{prof}.pt"


def reference(name: str, prof: str, progress: bool = True, seed: int = 0,
              retrain: bool = False) -> Tuple[nn.Module, Dict[str, Any]]:
    """A trained reference model and its record, trained now only if no checkpoint exists.

    Training saves its state after every epoch (:func:`training_checkpoint_path`); the same call
    after an interruption resumes it (the record's ``train_seconds`` sums the training time of
    every process that worked on it). Processes that need the same missing reference at once
    (a ``grid`` on several GPUs) take a file lock beside the checkpoint: one trains, the others
    wait and load its result.

    Args:
        name: a model of :data:`lcbook.models.MODELS` with a recipe in :data:`RECIPES`.
        prof: ``"quick"``, ``"cpu"`` or ``"full"`` (default: :func:`profile`).
        retrain: train even if a checkpoint exists (it is replaced only once the new one is saved).

    Returns:
        ``(model, record)``: the model in eval mode on :func:`device`, and the record dict
        (recipe, test error in percent, wall time in seconds, provenance).

    Raises:
        ValueError: no recipe for ``(name, prof)``.
    """
    if (name, prof) not in RECIPES:
        known = sorted({n for n, _ in RECIPES})
        raise ValueError(f"no reference recipe for model {name!r} in profile {prof!r}; models: {known}")
    path = reference_path(name, prof)
    record_path = path.with_suffix(".json")
    model = models.build(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One trainer per reference: parallel grid jobs (or machines sharing the folder) that need the
    # same missing reference wait here for the first one instead of each training it.
    with FileLock(str(path) + ".lock"):
        if path.is_file() and record_path.is_file() and not retrain:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            record = json.loads(record_path.read_text())
        else:
            ckpt = training_checkpoint_path(name, prof, seed)
            if retrain and _finished(ckpt, RECIPES[(name, prof)].epochs):
                ckpt.unlink()  # a retrain starts afresh; an unfinished retrain resumes
            record = _train(name, prof, model, progress=progress, seed=seed, checkpoint=ckpt)
            atomic_save(model.state_dict(), path)
            atomic_write_json(record, record_path)
            # The finished training state is kept: if the reference file is lost (a new checkout
            # before it was committed), the same call rebuilds it from there in seconds.
    return model.to(device()).eval(), record


def _finished(ckpt: Path, epochs: int) -> bool:
    """Whether ``ckpt`` holds a training that ran all ``epochs``."""
    try:
        return len(torch.load(ckpt, map_location="cpu", weights_only=True)["losses"]) >= epochs
    except Exception:  # noqa: BLE001 - missing, unreadable or foreign: not a finished training
        return False


def training_checkpoint_path(name: str, prof: str, seed: int = 0) -> Path:
    """Where an unfinished reference training keeps its state after every epoch
    (``<runs_dir>/references/<name>-<profile>-seed<seed>.pt``, where ``runs_dir`` is
    ``$LCBOOK_RUNS_DIR`` or ``data/runs``, ignored by git): running the same command again
    resumes it. It is kept after the reference is saved (a lost reference file is rebuilt from
    it without training); ``retrain=True`` deletes a finished one first."""
    return REFERENCE_RUNS_DIR / f"{name}-{prof}-seed{seed}.pt"


def _train(name: str, prof: str, model: nn.Module, progress: bool, seed: int,
           checkpoint: Optional[Path] = None) -> Dict[str, Any]:
    r = RECIPES[(name, prof)]
    torch.manual_seed(seed)
    dev = device()
    model.to(dev)
    if r.channels_last:
        model.to(memory_format=torch.channels_last)
    tr = batches(r.dataset, "train", r.batch_size, r.train_size, train_mode=True, augment=r.augment, seed=seed, dev=dev)
    te = batches(r.dataset, "test", 1000, dev=dev)
    timing: Dict[str, float] = {}
    losses = train.train_reference(
        model, tr, epochs=r.epochs, lr=r.lr, milestones=r.milestones, gamma=r.gamma,
        weight_decay=r.weight_decay, schedule=r.schedule, progress=progress, checkpoint=checkpoint, timing=timing,
    )
    secs = timing["seconds"]
    ev = train.evaluate(model, te)
    model.cpu().to(memory_format=torch.contiguous_format)
    return {
        "model": name,
        "profile": prof,
        "recipe": r.asdict(),
        "seed": seed,
        "command": f"python -m lcbook reference {name} --profile {prof}",
        "test_error": ev["error"],
        "test_loss": ev["loss"],
        "final_train_loss": losses[-1],
        "train_seconds": secs,
        **provenance(),
    }

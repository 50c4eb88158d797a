"""The evidence grid: the runs that test the book's claims at equal storage, in the ``cpu``
profile (all of CIFAR-10, long LC schedules), run in the background on a CPU.

Claims [P5]: combining compressions beats each alone in the error-vs-storage plane; a ResNet
compresses to about one bit per weight plus a few float weights with no loss of accuracy; VGG
compresses best as low-rank plus a few float weights. The grid compares, after LC:

* ResNet-20: Q with K = 2 (1 bit) and K = 4 (2 bits); Q+P (K = 2 plus κ) at three sparse
  fractions; P alone at the storage of each Q+P; and the two sequential pipelines at the storage
  of Q+P at 1%: quantize then add sparse corrections (each part once), and prune then quantize
  the survivors (K′ = 3, the kept fraction chosen to fit);
* VGG-16/4: L at two ranks; Q+P (K = 2 + 1%); P and L+P at the storage of that Q+P (L+P: the
  largest rank that fits with 1% sparse corrections, then the sparse share that fills the rest).

"At the storage of" means: the largest budget whose direct compression of the reference costs
no more bits than the target (bisection, 4 significant digits), so every comparison is at equal
or fewer bits for the challenger. Every result's bits count the sparse corrections' values and
indices (:func:`lcbook.storage.storage_report`).

Command line (resumable; skips stored runs; several processes may share a grid, each job claimed
by a lock)::

    python -m lcbook evidence resnet20          # reference (if missing), then the grid
    python -m lcbook evidence vgg16_quarter --dry-run   # the jobs and their budgets only
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Dict, Iterable, List, Optional

from . import experiments, weights
from .references import reference
from .lc import direct_compression
from .profiles import runs_dir
from .storage import storage_report

log = logging.getLogger(__name__)

#: The profile the evidence runs in.
PROFILE = "cpu"


def budget_bits(model_name: str, model, combo: str, budget: Dict[str, float]) -> int:
    """Total bits of the direct compression of ``model`` (the reference) under ``budget``."""
    tasks = experiments.make_tasks(model_name, model, combo, budget)
    return storage_report(direct_compression(model, tasks))["total_bits"]


def match_budget(model_name: str, model, combo: str, fixed: Dict[str, float], key: str, target_bits: int,
                 lo: float = 0.0, hi: float = 1.0, iters: int = 24) -> float:
    """The largest ``budget[key]`` in ``[lo, hi]`` (with the other entries ``fixed``) whose direct
    compression costs at most ``target_bits`` bits, rounded down to 4 significant digits.

    Raises:
        ValueError: even ``lo`` costs more than ``target_bits``.
    """
    def bits(v):
        return budget_bits(model_name, model, combo, {**fixed, key: v})

    if bits(lo) > target_bits:
        raise ValueError(f"{combo} with {key}={lo} already costs more than {target_bits} bits")
    if bits(hi) <= target_bits:
        return hi
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bits(mid) <= target_bits else (lo, mid)
    digits = 3 - int(math.floor(math.log10(lo))) if lo > 0 else 0
    return math.floor(lo * 10**digits) / 10**digits if lo > 0 else 0.0


def plan(model_name: str, progress: bool = True) -> List[experiments.Experiment]:
    """The evidence grid of one network (trains its ``cpu`` reference first if it is missing)."""
    model, _ = reference(model_name, PROFILE, progress=progress)
    model = model.cpu()
    jobs: List[experiments.Experiment] = []

    def add(combo, **budget):
        jobs.append(experiments.Experiment(model_name, combo, budget, PROFILE))

    if model_name.startswith("resnet"):
        # in the order the claims need them: Q+P at 1% and its three challengers at its storage
        # first, then the 1- and 2-bit quantizations, then the other two fractions
        qp1 = budget_bits(model_name, model, "qp", {"k": 2, "fraction": 0.01})
        add("qp", k=2, fraction=0.01)
        add("p", fraction=match_budget(model_name, model, "p", {}, "fraction", qp1))
        add("qthenp", k=2, fraction=0.01)
        add("pthenq", k=3, fraction=match_budget(model_name, model, "pthenq", {"k": 3}, "fraction", qp1))
        add("q", k=2)
        add("q", k=4)
        for f in (0.005, 0.02):
            add("qp", k=2, fraction=f)
            target = budget_bits(model_name, model, "qp", {"k": 2, "fraction": f})
            add("p", fraction=match_budget(model_name, model, "p", {}, "fraction", target))
    elif model_name.startswith("vgg"):
        add("qp", k=2, fraction=0.01)
        target = budget_bits(model_name, model, "qp", {"k": 2, "fraction": 0.01})
        # L+P: the largest rank that fits with 1% sparse corrections, then the sparse share that
        # fills the rest of Q+P's storage (ranks are whole numbers, so the rank alone leaves a gap)
        rank = match_budget(model_name, model, "lp", {"fraction": 0.01}, "rank", target, lo=1e-4)
        add("lp", rank=rank, fraction=match_budget(model_name, model, "lp", {"rank": rank}, "fraction", target,
                                                   lo=0.01, hi=0.2))
        add("p", fraction=match_budget(model_name, model, "p", {}, "fraction", target))
        add("l", rank=0.25)
        add("l", rank=0.1)
    else:
        raise ValueError(f"no evidence grid for model {model_name!r}; grids: resnet20, vgg16_quarter")
    return jobs


def claim(job: experiments.Experiment):
    """An exclusive, non-blocking lock on ``job`` in the runs folder, or ``None`` when another
    process holds it (so two lanes of the same grid never run the same job). The lock ends with the
    process: a killed lane leaves nothing to clean up."""
    import fcntl

    folder = runs_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / f"{job.id}.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def run(model_name: str, dry_run: bool = False, progress: bool = True) -> int:
    """Run the grid's missing jobs one after another in this process; returns how many failed.

    Each job is :func:`lcbook.experiments.run_experiment` (resumable from its checkpoint); a job that
    raises is logged and skipped, so one diverged run does not stop the others. Several processes
    may run the same grid at once (lanes): each job is claimed by a file lock under
    :func:`lcbook.profiles.runs_dir`, and a lane skips a job another lane holds."""
    jobs = plan(model_name, progress=progress)
    failed = 0
    for job in jobs:
        stored = job.result_path().is_file()
        print(f"{'stored ' if stored else 'to run '} {job.id}: python -m lcbook run {job.model} {job.combo} "
              f"{experiments.budget_text(job.budget)} --profile {PROFILE}", flush=True)
        if stored or dry_run:
            continue
        lock = claim(job)
        if lock is None:
            print(f"skip {job.id}: another lane runs it", flush=True)
            continue
        try:
            if job.result_path().is_file():  # finished by another lane since the listing
                continue
            try:
                r = experiments.run_experiment(job, progress=progress)
            except Exception as e:  # noqa: BLE001 - report and go on with the next job
                failed += 1
                log.exception("job %s failed: %s", job.id, e)
                continue
            print(f"done {job.id}: reference {r['reference_error']:.2f}%  DC {r['dc_error']:.2f}%  "
                  f"LC {r['lc_error']:.2f}%  {r['bits_per_weight']:.3f} bits/weight", flush=True)
            if job.combo in weights.KINDS:  # histograms or spectra of the weights, beside the result
                try:
                    print(f"weight summary -> {weights.store(job)}", flush=True)
                except (OSError, ValueError) as e:  # the result is stored: only its summary is missing
                    print(f"{job.id}: no weight summary ({e}); make it with python -m lcbook weights "
                          f"{job.model} {job.combo} {experiments.budget_text(job.budget)} --profile {PROFILE}",
                          flush=True)
        finally:
            lock.close()
    return failed


def stored(model_name: str) -> List[Dict]:
    """The stored ``cpu``-profile results of ``model_name`` (no sweeps), sorted by id."""
    return [r for r in experiments.load_results(PROFILE, model=model_name) if not r["overrides"]]


def reference_record(model_name: str) -> Optional[Dict]:
    """The record of the committed ``cpu`` reference of ``model_name`` (its ``test_error`` is on
    all 10,000 test images), or ``None`` if it has not been trained."""
    import json

    from .references import reference_path

    path = reference_path(model_name, PROFILE).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else None


def reference_line(model_name: str) -> str:
    """One line on the ``cpu`` reference of ``model_name``: its test error on all 10,000 test
    images, epochs, training hours and hardware, and how many LC runs are stored."""
    rec = reference_record(model_name)
    if rec is None:
        return f"no cpu reference of {model_name} yet: python -m lcbook evidence {model_name} trains it"
    return (f"cpu reference: {rec['test_error']:.2f}% test error on all 10,000 test images ({rec['recipe']['epochs']} "
            f"epochs, {rec['train_seconds'] / 3600:.1f} h on {rec['hardware']}); {len(stored(model_name))} LC runs stored")


def _checked_runs(results: Iterable[Dict]) -> List[tuple]:
    """``results`` checked (see :func:`convergence`), as ``(result, LC step test errors)`` pairs."""
    from .claims import finite_number, lc_step_errors, refuse_repeats, result_list

    results = result_list(results, ("id", "combo", "budget", "history", "lc_seconds"))
    errors = []
    for i, r in enumerate(results):
        for k in ("id", "combo"):
            if not isinstance(r[k], str) or not r[k]:
                raise ValueError(f"results[{i}][{k!r}]: expected a non-empty string, got {r[k]!r}")
        if not isinstance(r["budget"], dict):
            raise ValueError(f"results[{i}]['budget']: expected a dict such as {{'k': 2}}, got {r['budget']!r:.80}")
        for k, b in r["budget"].items():
            if not isinstance(k, str) or not finite_number(b) or b < 0:
                raise ValueError(f"results[{i}]['budget']: {k!r}: expected a finite number ≥ 0, got {b!r:.60}")
        v = r["lc_seconds"]
        if not finite_number(v) or v < 0:
            raise ValueError(f"results[{i}]['lc_seconds']: expected seconds (a finite number ≥ 0), got {v!r:.60}")
        errors.append(lc_step_errors(r["history"], f"results[{i}]['history']"))
    refuse_repeats(results)
    return list(zip(results, errors))


def convergence(results: Iterable[Dict]) -> List[Dict]:
    """Per run: the test errors (%) of its last three LC steps and their spread (points), and
    whether the spread is under :data:`lcbook.claims.CONVERGED_SPREAD` (issue 12's criterion).

    Args:
        results: stored results (a list or any iterable of dicts), each with ``id``, ``combo``,
            ``budget`` (dict), ``history`` (list of ``{"step", "test_error"}``; the LC steps are
            those with a whole-number ``step``) and ``lc_seconds``.

    Returns:
        One dict per run, in order: ``id``, ``profile``, ``model``, ``seed`` (None where the
        result has none), ``combination``, ``budget`` (text),
        ``LC steps``, ``last steps (test error %)`` (text), ``spread (points)`` (NaN with fewer than
        three LC steps), ``converged`` and ``hours``.

    Raises:
        TypeError: ``results`` is ``None``, one result dict, a string or not iterable.
        ValueError: an entry is not a dict, lacks a field or holds a malformed one (a budget value
            or ``lc_seconds`` that is not a finite number ≥ 0, a malformed history: see
            :func:`lcbook.claims.lc_step_errors`), named with the entry's index; two entries share
            a profile and an ``id``.
    """
    from .claims import CONVERGED_SPREAD, CONVERGED_STEPS, name, spread_of

    rows = []
    for r, errs in _checked_runs(results):
        spread = spread_of(errs, CONVERGED_STEPS)
        rows.append({"id": r["id"], "profile": r.get("profile"), "model": r.get("model"), "seed": r.get("seed"),
                     "combination": name(r["combo"]),
                     "budget": experiments.budget_text(r["budget"]),
                     "LC steps": len(errs), "last steps (test error %)": ", ".join(f"{e:.2f}" for e in errs[-CONVERGED_STEPS:]),
                     "spread (points)": spread, "converged": bool(spread < CONVERGED_SPREAD),
                     "hours": r["lc_seconds"] / 3600})
    return rows


def convergence_table(results: Iterable[Dict]):
    """:func:`convergence` as a pandas DataFrame for the page: indexed by the run (its
    combination and budget, e.g. ``"Q+P k=2, fraction=0.01"``, which wraps on a phone; with the
    network in front when the runs are of several networks, the seed after when they have several
    seeds, the profile first (``"quick: ..."``) when they are of several profiles, and the run's
    id after a label that would still repeat), with the short columns
    ``steps`` (LC steps), ``last 3 errors %`` (their test errors), ``spread`` (points),
    ``converged`` and ``hours``.

    Raises:
        TypeError, ValueError: as :func:`convergence`.
    """
    import pandas as pd

    from .claims import CONVERGED_STEPS

    rows = convergence(results)
    table = pd.DataFrame(rows, columns=["id", "profile", "model", "seed", "combination", "budget", "LC steps",
                                        "last steps (test error %)", "spread (points)", "converged", "hours"])

    def several(field):  # compared by value, so 0 and numpy's 0 are one seed
        values = [r[field] for r in rows if r[field] is not None]
        return len({v if isinstance(v, (str, numbers.Number)) else repr(v) for v in values}) > 1

    many_profiles, many_models, many_seeds = several("profile"), several("model"), several("seed")
    labels = []
    for r in rows:
        words = [f"{r['profile']}:" if many_profiles and r["profile"] is not None else None,
                 str(r["model"]) if many_models and r["model"] is not None else None,
                 r["combination"], r["budget"].replace(",", ", ")]
        label = " ".join(x for x in words if x)
        labels.append(label + (f", seed {r['seed']}" if many_seeds and r["seed"] is not None else ""))
    labels = [f"{lab} ({r['id']})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, rows)]
    table.index = pd.Index(labels, name="run")
    table = table.rename(columns={"LC steps": "steps", "last steps (test error %)": f"last {CONVERGED_STEPS} errors %",
                                  "spread (points)": "spread"})
    return table.drop(columns=["id", "profile", "model", "seed", "combination", "budget"])

"""The experiment command line: ``python -m lcbook {reference,run,grid,evidence,weights,results} ...``.

Examples::

    python -m lcbook reference resnet20 --profile full          # train (or show) a reference
    python -m lcbook run resnet20 qp k=2,fraction=0.02          # one LC experiment (resumable)
    python -m lcbook grid --models resnet20 resnet32 --combos q qp --budgets k=2 k=2,fraction=0.02
    python -m lcbook results --model resnet20                   # what the store holds
    python -m lcbook evidence resnet20 [vgg16_quarter]          # the cpu-profile grid (lcbook.evidence)
    python -m lcbook weights resnet20 qp k=2,fraction=0.01 --profile cpu   # histograms of a finished run

``grid`` runs each job as an independent process (``python -m lcbook run ...``), ``--jobs-per-gpu``
at a time on each visible GPU (one at a time on a CPU), or through submitit (``--executor
submitit``, SLURM), skipping jobs whose result is already stored, so several GPUs, or several
machines sharing the folder, can work through one grid.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import time
from typing import List, Optional

from . import experiments
from .references import RECIPES, reference
from .profiles import PROFILES, profile


def _budget(text: str):
    try:
        return experiments.parse_budget(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lcbook", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    ref = sub.add_parser("reference", help="train (or show) a reference model")
    ref.add_argument("model", choices=sorted({n for n, _ in RECIPES}))
    ref.add_argument("--profile", choices=PROFILES, default=None)
    ref.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")

    run = sub.add_parser("run", help="run one LC experiment and store its result")
    run.add_argument("model", help="one of " + ", ".join(sorted({n for n, _ in RECIPES})))
    run.add_argument("combo", choices=sorted(experiments.COMBOS))
    run.add_argument("budget", type=_budget, help="e.g. k=2  |  fraction=0.05  |  k=2,fraction=0.02  |  rank=0.25,fraction=0.01")
    run.add_argument("--profile", choices=PROFILES, default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a schedule entry, e.g. --set steps=2 --set train_size=500 (recorded in the result)")
    run.add_argument("--force", action="store_true",
                     help="run again even if the result is stored (from scratch; a result committed to git is "
                          "not replaced: the new one goes to data/results/custom/<profile>/)")
    run.add_argument("--replace", action="store_true", help="with --force: replace the committed result in place")

    grid = sub.add_parser("grid", help="run every network × combination × budget (skips stored results)")
    grid.add_argument("--models", nargs="+", required=True)
    grid.add_argument("--combos", nargs="+", required=True, choices=sorted(experiments.COMBOS))
    grid.add_argument("--budgets", nargs="+", required=True, type=_budget,
                      help="budgets; each is used with the combos whose keys it has")
    grid.add_argument("--profile", choices=PROFILES, default=None)
    grid.add_argument("--seeds", nargs="+", type=int, default=[0])
    grid.add_argument("--jobs-per-gpu", type=int, default=1,
                      help="local executor: jobs run at once on each visible GPU (one ResNet-20 run uses a small "
                           "part of a large GPU); on a CPU-only machine, jobs at once")
    grid.add_argument("--executor", choices=["local", "submitit"], default="local",
                      help="local: processes on this machine (default); submitit: one job each through submitit "
                           "(SLURM), requeued on pre-emption, each resuming from its checkpoint")
    grid.add_argument("--cluster", choices=["auto", "slurm", "local", "debug"], default="auto",
                      help="submitit: the cluster (auto: SLURM when sbatch exists)")
    grid.add_argument("--partition", default=None, help="submitit on SLURM: the partition")
    grid.add_argument("--timeout-min", type=int, default=240, help="submitit: each job's time limit (minutes)")
    grid.add_argument("--gpus-per-job", type=int, default=1, help="submitit: GPUs per job")
    grid.add_argument("--cpus-per-job", type=int, default=4, help="submitit: CPU cores per job")
    grid.add_argument("--submitit-folder", default=None,
                      help="submitit: logs and job files (default: $LCBOOK_RUNS_DIR/submitit; on a cluster, a "
                           "shared file system)")

    ev = sub.add_parser("evidence", help="the cpu-profile grid that tests the book's claims (lcbook.evidence)")
    ev.add_argument("models", nargs="+", choices=["resnet20", "vgg16_quarter"], metavar="MODEL",
                    help="resnet20 and/or vgg16_quarter, run in this order")
    ev.add_argument("--dry-run", action="store_true",
                    help="list the jobs and their budgets, run no LC (a missing cpu reference is still trained first)")

    wts = sub.add_parser("weights", help="store the weight histograms or spectra of a finished run (lcbook.weights)")
    wts.add_argument("model", help="one of " + ", ".join(sorted({n for n, _ in RECIPES})))
    wts.add_argument("combo", choices=["l", "lp", "pthenq", "q", "qp", "qthenp"])
    wts.add_argument("budget", type=_budget, help="as for run, e.g. k=2,fraction=0.01")
    wts.add_argument("--profile", choices=PROFILES, default=None)
    wts.add_argument("--seed", type=int, default=0)

    res = sub.add_parser("results", help="list stored results")
    res.add_argument("--profile", choices=PROFILES, default=None)
    res.add_argument("--model", default=None)
    res.add_argument("--combo", default=None)
    res.add_argument("--sweep", default=None,
                     help="list a committed tuning sweep, data/results/<profile>/sweeps/SWEEP/ (e.g. mu0)")

    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        prof = getattr(args, "profile", None) or profile()
    except ValueError as e:
        ap.error(str(e))

    if args.cmd == "reference":
        if (args.model, prof) not in RECIPES:
            ap.error(f"no recipe for {args.model} in profile {prof}")
        _, record = reference(args.model, prof, retrain=args.retrain)
        json.dump(record, sys.stdout, indent=2)
        print()
        return 0

    if args.cmd in ("run", "grid", "reference") and prof == "full" and getattr(args, "executor", "local") == "local":
        import torch

        if not torch.cuda.is_available():
            print("note: the full profile is the papers' schedules (hundreds of epochs): meant for a GPU, and this "
                  "machine has none", file=sys.stderr)

    if args.cmd == "run":
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            if not value:
                ap.error(f"--set takes KEY=VALUE, got {item!r}")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                if key != "autocast":  # the one entry that takes a word: --set autocast=bfloat16
                    ap.error(f"--set {key}: value {value!r} is not a number, true/false or null")
                overrides[key] = value
        try:
            exp = experiments.Experiment(args.model, args.combo, args.budget, prof, args.seed, overrides)
        except ValueError as e:
            ap.error(str(e))
        if args.replace and not args.force:
            ap.error("--replace only goes with --force")
        path, ckpt = exp.result_path(), exp.checkpoint_path()
        if path.is_file() and not args.force:
            try:
                stored = json.loads(path.read_text())
                summary = f"DC {stored['dc_error']:.2f}%  LC {stored['lc_error']:.2f}%  ratio {stored['ratio']:.1f}x  "
            except (OSError, ValueError, KeyError, TypeError):
                summary = "(unreadable) "
            print(f"{exp.id}: stored, not run again: {summary}-> {path}\n"
                  f"  (--force runs it again from scratch)")
            return 0
        if path.is_file():  # --force: a fresh run with its own checkpoint, so it resumes if interrupted
            ckpt = ckpt.with_name(ckpt.stem + ".rerun.pt")
            if experiments.is_tracked(path) and not args.replace:
                path = experiments.RESULTS_DIR / "custom" / prof / path.name
                print(f"{exp.id}: the stored result is committed; the new one goes to {path} (--replace to overwrite it)")
        result = experiments.run_experiment(exp, result_path=path, checkpoint=ckpt)
        from . import weights

        if exp.combo in weights.KINDS:  # the weight summary, while the checkpoint is still there
            try:
                wpath = weights.store(exp, checkpoint=ckpt, path=path.parent / "weights" / path.name,
                                      command=result["command"] + (" --force" if args.force else ""))
                print(f"{exp.id}: weight summary -> {wpath}")
            except (OSError, ValueError) as e:  # the result is stored; only the summary is missing
                print(f"{exp.id}: no weight summary ({e}); make it with python -m lcbook weights", file=sys.stderr)
        if ckpt != exp.checkpoint_path():
            ckpt.unlink(missing_ok=True)  # a finished re-run: the next --force starts afresh
        print(f"{exp.id}: DC {result['dc_error']:.2f}%  LC {result['lc_error']:.2f}%  "
              f"ratio {result['ratio']:.1f}x  ({result['lc_seconds']:.0f} s) -> {path}")
        return 0

    if args.cmd == "weights":
        from . import weights

        try:
            exp = experiments.Experiment(args.model, args.combo, args.budget, prof, args.seed)
            path = weights.store(exp)
        except (ValueError, OSError) as e:  # FileNotFoundError is an OSError
            ap.error(str(e))
        print(f"{exp.id}: weight summary -> {path}")
        return 0

    if args.cmd == "evidence":
        from . import evidence

        return 1 if sum(evidence.run(m, dry_run=args.dry_run) for m in args.models) else 0

    if args.cmd == "grid":
        jobs = []
        for model, combo, budget, seed in itertools.product(args.models, args.combos, args.budgets, args.seeds):
            if set(budget) != set(experiments.COMBOS[combo]):
                continue
            try:
                jobs.append(experiments.Experiment(model, combo, budget, prof, seed))
            except ValueError as e:
                ap.error(str(e))
        if not jobs:
            ap.error("no job: no budget has exactly the keys of any chosen combo "
                     f"({', '.join(f'{c}: {list(experiments.COMBOS[c])}' for c in args.combos)})")
        todo = [j for j in jobs if not j.result_path().is_file()]
        print(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already stored, {len(todo)} to run")
        commands = [["-m", "lcbook", "run", j.model, j.combo, experiments.budget_text(j.budget), "--profile", prof,
                     "--seed", str(j.seed)] for j in todo]
        if args.executor == "submitit":
            from . import cluster
            from .profiles import runs_dir

            folder = args.submitit_folder or runs_dir() / "submitit"
            try:
                codes = cluster.submit(commands, folder, cluster=args.cluster, timeout_min=args.timeout_min,
                                       gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
                                       partition=args.partition)
            except (RuntimeError, ValueError) as e:
                ap.error(str(e))
            for job, code in zip(todo, codes):
                if code:
                    print(f"FAILED ({code}): {job.id} (logs in {folder})", file=sys.stderr)
            return 1 if any(codes) else 0
        if args.jobs_per_gpu < 1:
            ap.error(f"--jobs-per-gpu must be ≥ 1, got {args.jobs_per_gpu}")
        slots = [gpu for gpu in _gpu_slots() for _ in range(args.jobs_per_gpu)]
        running: list = []  # (process, slot index, job)
        failed = 0
        while todo or running:
            while todo and len(running) < len(slots):
                job, cmd = todo.pop(0), commands.pop(0)
                slot = min(set(range(len(slots))) - {r[1] for r in running})
                env = dict(os.environ)
                if slots[slot] is not None:
                    env["CUDA_VISIBLE_DEVICES"] = slots[slot]
                print("start:", " ".join(cmd[1:]), f"(GPU {slots[slot]})" if slots[slot] is not None else "")
                running.append((subprocess.Popen([sys.executable, *cmd], env=env), slot, job))
            time.sleep(1)
            for r in list(running):
                if r[0].poll() is not None:
                    running.remove(r)
                    if r[0].returncode:
                        failed += 1
                        print(f"FAILED ({r[0].returncode}): {r[2].id}", file=sys.stderr)
        print(f"grid done: {len(jobs)} jobs, {failed} failed" + ("" if not failed else " (see FAILED lines above)"))
        return 1 if failed else 0

    try:
        rows = experiments.load_results(prof, sweep=args.sweep,
                                 **{k: v for k, v in (("model", args.model), ("combo", args.combo)) if v})
    except ValueError as e:
        ap.error(str(e))
    if rows:
        width = max(45, max(len(r["id"]) for r in rows))
        print(f"{'experiment':{width}s} {'DC error':>9s} {'LC error':>9s} {'ratio':>8s}  hardware / date")
    for r in rows:
        overrides = "  " + " ".join(f"{k}={v}" for k, v in r["overrides"].items()) if r["overrides"] else ""
        print(f"{r['id']:{width}s} {r['dc_error']:8.2f}% {r['lc_error']:8.2f}% {r['ratio']:7.1f}x  "
              f"{r['hardware']}  {r['date']}{overrides}")
    if not rows:
        where = f"sweep {args.sweep!r} of " if args.sweep else ""
        if args.sweep:
            have = sorted(d.name for d in (experiments.RESULTS_DIR / prof / "sweeps").glob("*") if d.is_dir())
            print(f"no stored results for {where}profile {prof!r}; sweeps of that profile: {have or 'none'}")
        else:
            print(f"no stored results for profile {prof!r} (runs with --set overrides are in "
                  f"{experiments.RESULTS_DIR / 'custom' / prof})")
    return 0


def _gpu_slots() -> list:
    """One slot per visible GPU (its index as a string), or one CPU slot (None)."""
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no CUDA at all
        n = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(n)]
    return ids[:n] if n else [None]


if __name__ == "__main__":
    raise SystemExit(main())

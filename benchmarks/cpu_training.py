"""CPU training speed: which settings make an epoch of reference training or of an LC L step
fastest on this machine, measured before hours of CPU time are spent.

For a model (ResNet-20 or VGG-16/4) on real CIFAR-10 batches it times, in images per second
over ``--batches`` batches after one warm-up batch:

* ``plain_torch``: a plain PyTorch loop (SGD, cross-entropy, the batches precomputed, no
  augmentation), the floor any training code pays;
* ``lcbook``: :func:`lcbook.train.train_epoch` on :class:`lcbook.data.Batches` with the CIFAR
  augmentation (the code the reference training runs);
* ``lc_l_step``: the same plus the LC penalty gradient (Q+P, K=2 + 2%), i.e. an LC L step;
* ``augmentation``: the batch production alone (normalisation, crop, flip), no model;

under thread counts (``--threads``), ``channels_last`` on and off, batch sizes
(``--batch-sizes``) and, with ``--compile``, ``torch.compile`` of the model. Each setting runs in
a fresh subprocess (thread pools are set once per process). With other work on the same cores
a thread count that wins alone can lose: run it on a quiet machine and compare with the
background load you will really have.

Run: ``.venv/bin/python benchmarks/cpu_training.py [--model resnet20] [--threads 1 2] [--compile]``;
writes ``data/results/cpu_training_<model>.json`` with provenance and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(model_name: str, mode: str, threads: int, channels_last: bool, batch_size: int, compile_: bool,
            n_batches: int) -> dict:
    """One setting, in this process: images per second of ``mode`` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    from lcbook import references, models, experiments, train
    from lcbook.lc import direct_compression

    torch.manual_seed(0)
    n = batch_size * (n_batches + 1)
    tr = references.batches("cifar10", "train", batch_size, n, train_mode=True, augment=True, dev="cpu")
    if mode == "augmentation":
        t0 = time.perf_counter()
        for _ in range(3):
            for _xb in tr:
                pass
        return {"images_per_second": 3 * n / (time.perf_counter() - t0)}
    model = models.build(model_name)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if compile_ else model
    opt = train.make_sgd(model, 0.01)
    hook = None
    if mode == "lc_l_step":
        lc = direct_compression(model, experiments.make_tasks(model_name, model, "qp", {"k": 2, "fraction": 0.02}), mu=1e-3)
        lc.mu = 1e-3
        hook = lc.add_penalty_grad_
    if mode == "plain_torch":
        data = [(x.contiguous(memory_format=fmt), y) for x, y in references.batches(
            "cifar10", "train", batch_size, n, train_mode=False, dev="cpu")]
    model.train()
    seen, t0 = 0, None
    source = data if mode == "plain_torch" else tr
    for i, (x, y) in enumerate(source):
        if i == 1:  # the first batch warms up allocator, thread pool (and compiles)
            t0 = time.perf_counter()
        if mode != "plain_torch":
            x = x.contiguous(memory_format=fmt)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        if hook is not None:
            hook()
        opt.step()
        float(loss)
        if i >= 1:
            seen += len(y)
    return {"images_per_second": seen / (time.perf_counter() - t0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20", choices=["resnet20", "vgg16_quarter", "resnet32", "resnet56"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    ap.add_argument("--batches", type=int, default=10, help="timed batches per setting (after one warm-up)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the model")
    ap.add_argument("--modes", nargs="+", default=["plain_torch", "lcbook", "lc_l_step", "augmentation"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: a JSON setting to run here
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return 0
    if args.batches < 1 or min(args.threads) < 1 or min(args.batch_sizes) < 1:
        ap.error("--batches, --threads and --batch-sizes must be ≥ 1")
    rows = []
    for mode, threads, bs, cl, comp in itertools.product(args.modes, args.threads, args.batch_sizes, (False, True),
                                                       (False, True) if args.compile else (False,)):
        if mode == "augmentation" and (cl or comp):
            continue
        setting = dict(model_name=args.model, mode=mode, threads=threads, channels_last=cl, batch_size=bs,
                       compile_=comp, n_batches=args.batches)
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(setting)], capture_output=True, text=True)
        if proc.returncode:
            row = {**setting, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
        else:
            row = {**setting, **json.loads(proc.stdout.strip().splitlines()[-1])}
        rows.append(row)
        ips = f"{row['images_per_second']:8.0f}" if "images_per_second" in row else "  failed"
        print(f"{mode:13s} threads={threads} batch={bs:4d} channels_last={cl!s:5s} compile={comp!s:5s} {ips} img/s",
              flush=True)
    from lcbook import references

    out = {"model": args.model, "timed_batches": args.batches, "rows": rows, "provenance": references.provenance()}
    path = Path(args.out) if args.out else ROOT / "data" / "results" / f"cpu_training_{args.model}.json"
    references.atomic_write_json(out, path)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

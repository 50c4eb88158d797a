"""LC overhead benchmark: what LC adds to the time of plain training.

On real CIFAR-10 batches (a class-balanced subset), for ResNet-20 compressed by Q+P (K = 2 plus
2% sparse corrections per conv layer) this measures

* images per second of an epoch of plain SGD training, and of an LC L step epoch (the same SGD
  plus the penalty gradient μ(w − Δ(Θ) − λ/μ) after every backward pass), alternating the two
  so that both see the same machine state; the target is LC/plain time ≤ 1.05;
* the wall time of one C step (all tasks, warm-started) as a share of one L-step epoch; the
  target is ≤ 1%.

Run: ``.venv/bin/python benchmarks/lc_overhead.py [--model resnet20] [--images 2560] [--repeats 3]``;
writes ``data/results/lc_overhead_<device>.json`` with provenance. On a GPU it uses the GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import sync  # noqa: E402
from lcbook import references, models, experiments, train  # noqa: E402
from lcbook.lc import direct_compression  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20", choices=sorted(models.MODELS))
    ap.add_argument("--images", type=int, default=2560, help="training images per epoch")
    ap.add_argument("--repeats", type=int, default=3, help="plain/LC epoch pairs")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.images < 128 or args.repeats < 1:
        ap.error("--images must be ≥ 128 and --repeats ≥ 1")
    dev = torch.device(references.device())
    torch.manual_seed(0)
    model = models.build(args.model).to(dev)
    dataset = "mnist" if args.model == "lenet300" else "cifar10"
    tr = references.batches(dataset, "train", 128, args.images, train_mode=True, augment=dataset == "cifar10", dev=str(dev))
    budget = {"k": 2, "fraction": 0.02}
    lc = direct_compression(model, experiments.make_tasks(args.model, model, "qp", budget), mu=1e-3)
    lc.mu = 1e-3
    opt = train.make_sgd(model, 0.01)
    train.train_epoch(model, tr, opt)  # warm-up (allocator, thread pools)
    plain, lcs, csteps = [], [], []
    for _ in range(args.repeats):
        sync(dev)
        t0 = time.perf_counter()
        train.train_epoch(model, tr, opt)
        sync(dev)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        train.train_epoch(model, tr, opt, after_backward=lc.add_penalty_grad_)
        sync(dev)
        lcs.append(time.perf_counter() - t0)
        csteps.append(lc.c_step())
    n = args.images
    out = {
        "model": args.model, "combination": "qp", "budget": budget, "images_per_epoch": n, "repeats": args.repeats,
        "device": str(dev), "plain_epoch_seconds": plain, "lc_epoch_seconds": lcs, "c_step_seconds": csteps,
        "plain_images_per_second": n / min(plain), "lc_images_per_second": n / min(lcs),
        "lc_over_plain": min(lcs) / min(plain),
        "c_step_share_of_epoch": min(csteps) / min(lcs),
        "c_step_share_of_full_epoch": min(csteps) / (min(lcs) * 50000 / n),
        "provenance": references.provenance(),
    }
    path = Path(args.out) if args.out else ROOT / "data" / "results" / f"lc_overhead_{dev.type}.json"
    references.atomic_write_json(out, path)
    print(f"{args.model}: plain {out['plain_images_per_second']:.0f} img/s, LC L step {out['lc_images_per_second']:.0f} img/s "
          f"(ratio {out['lc_over_plain']:.3f}); C step {min(csteps):.3f} s = {100 * out['c_step_share_of_epoch']:.2f}% "
          f"of this {n}-image epoch, {100 * out['c_step_share_of_full_epoch']:.3f}% of a 50k-image epoch -> {path}")


if __name__ == "__main__":
    main()

"""Training speed on the device a run will use (meant for a GPU; it runs anywhere), and the wall
time of the full profile it implies.

For ResNet-20 (Q+P, K = 2 + 1% per layer) and VGG-16 (L+P, rank 0.25 + 1% per layer) on real
CIFAR-10 batches (the package's own :class:`lcbook.data.Batches`, augmentation included), under
each speed setting:

* ``float32``: the default; ``channels_last``: NHWC memory format; ``bf16``: the forward pass
  and loss under bf16 autocast (weights, gradients, Θ and λ stay float32); ``compile``:
  ``torch.compile`` of the model; ``all``: the three together, plus TF32 matmuls and
  ``cudnn.benchmark`` on a GPU,

it times, after a warm-up epoch (which also pays for compilation), alternating epochs of

* plain SGD training (:func:`lcbook.train.train_epoch`) and
* an LC L step (the same plus the penalty gradient μ(w − Δ(Θ) − λ/μ) after every backward pass),

reported as seconds per 50,000-image epoch (the minimum over ``--repeats``), their ratio (the
LC overhead; target ≤ 1.05), one C step (all tasks, warm-started) as a share of an L-step
epoch, one evaluation on the test images, and the projected wall time of the full profile:
the reference recipe's epochs of plain training, plus the LC schedule's steps × epochs of L
steps, one C step and one evaluation per step (:data:`lcbook.references.RECIPES`,
:data:`lcbook.experiments.SCHEDULES`).

Run: ``.venv/bin/python benchmarks/gpu_speed.py [--models resnet20 vgg16] [--images 10240]
[--settings float32 all]``; prints a table and writes ``data/results/gpu_speed_<device>.json``
with provenance. On a CPU use few images (e.g. ``--images 512``): the numbers are then a smoke
test of the benchmark, not a measurement worth keeping.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import sync, timed  # noqa: E402
from lcbook import experiments, models, references, train  # noqa: E402
from lcbook.lc import direct_compression  # noqa: E402

#: Speed settings: (channels_last, bf16 autocast, torch.compile, TF32 + cudnn.benchmark).
SETTINGS = {"float32": (False, False, False, False), "channels_last": (True, False, False, False),
            "bf16": (False, True, False, False), "compile": (False, False, True, False),
            "all": (True, True, True, True)}
#: The combination each network is benchmarked with (as the book compresses it).
COMBOS = {"resnet20": ("qp", {"k": 2, "fraction": 0.01}), "vgg16": ("lp", {"rank": 0.25, "fraction": 0.01})}
EPOCH = 50_000  # images in a CIFAR-10 training epoch


def measure(model_name: str, setting: str, images: int, test_images: int, repeats: int, dev: torch.device) -> dict:
    """One network under one setting: seconds per 50k-image epoch of plain training and of the L
    step, one C step and one evaluation (see the module docstring)."""
    channels_last, bf16, compile_, tf32 = SETTINGS[setting]
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = tf32
    torch.manual_seed(0)
    model = models.build(model_name).to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    combo, budget = COMBOS[model_name]
    lc = direct_compression(model, experiments.make_tasks(model_name, model, combo, budget), mu=1e-3)
    lc.mu = 1e-3
    tr = references.batches("cifar10", "train", 128, images, train_mode=True, augment=True, dev=str(dev))
    te = references.batches("cifar10", "test", 1000, test_images, dev=str(dev))

    def batches():
        if not channels_last:
            return tr
        return ((x.contiguous(memory_format=torch.channels_last), y) for x, y in tr)

    forward = torch.compile(model) if compile_ else None
    opt = train.make_sgd(model, 0.01)
    kw = {"autocast": torch.bfloat16 if bf16 else None, "forward": forward}
    plain_epoch = lambda: train.train_epoch(model, batches(), opt, **kw)  # noqa: E731
    lc_epoch = lambda: train.train_epoch(model, batches(), opt, after_backward=lc.add_penalty_grad_, **kw)  # noqa: E731
    warm = timed(plain_epoch, dev)[1] + timed(lc_epoch, dev)[1]  # allocator, autotuning, compilation
    plain, lstep, csteps = [], [], []
    for _ in range(repeats):
        plain.append(timed(plain_epoch, dev)[1])
        lstep.append(timed(lc_epoch, dev)[1])
        csteps.append(lc.c_step())
    evaluation = timed(lambda: train.evaluate(model, te), dev)[1]
    scale = EPOCH / len(tr.y)
    out = {"model": model_name, "setting": setting, "combination": combo, "budget": budget,
           "images": len(tr.y), "test_images": len(te.y), "repeats": repeats, "warm_up_seconds": warm,
           "plain_epoch_seconds": min(plain) * scale, "lc_epoch_seconds": min(lstep) * scale,
           "c_step_seconds": min(csteps), "evaluation_seconds": evaluation * 10_000 / len(te.y)}
    out["lc_over_plain"] = out["lc_epoch_seconds"] / out["plain_epoch_seconds"]
    out["c_step_share"] = out["c_step_seconds"] / out["lc_epoch_seconds"]
    out.update(projection(model_name, out))
    return out


def projection(model_name: str, m: dict) -> dict:
    """Projected seconds of the full profile from one measurement: the reference and the LC run."""
    recipe = references.RECIPES[(model_name, "full")]
    sched = experiments.SCHEDULES[(experiments.family(model_name), "full")]
    lc = (sched.steps * sched.epochs * m["lc_epoch_seconds"] + sched.steps * m["c_step_seconds"]
          + (sched.steps + 1) * m["evaluation_seconds"])
    return {"full_reference_seconds": recipe.epochs * m["plain_epoch_seconds"], "full_lc_seconds": lc,
            "full_profile": f"reference {recipe.epochs} epochs; LC {sched.steps} steps x {sched.epochs} epochs"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet20", "vgg16"], choices=sorted(COMBOS))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--images", type=int, default=None,
                    help="training images timed per epoch (default 10240 on a GPU, 512 on a CPU), scaled to 50k")
    ap.add_argument("--test-images", type=int, default=None, help="test images of the timed evaluation (default 10000 / 500)")
    ap.add_argument("--repeats", type=int, default=2, help="plain/LC epoch pairs per setting (the minimum is kept)")
    ap.add_argument("--out", default=None, help="the JSON file (default data/results/gpu_speed_<device>.json)")
    args = ap.parse_args(argv)
    dev = torch.device(references.device())
    images = (10240 if dev.type == "cuda" else 512) if args.images is None else args.images
    test_images = (10_000 if dev.type == "cuda" else 500) if args.test_images is None else args.test_images
    for name, value, low in (("--images", images, 128), ("--test-images", test_images, 100), ("--repeats", args.repeats, 1)):
        if value < low:
            ap.error(f"{name} must be ≥ {low}, got {value}")
    path = Path(args.out) if args.out else ROOT / "data" / "results" / f"gpu_speed_{dev.type}.json"
    if path.is_dir():
        ap.error(f"--out must be a file path, got the folder {path}")
    args.models, args.settings = list(dict.fromkeys(args.models)), list(dict.fromkeys(args.settings))
    rows = []
    head = (f"{'model':14s} {'setting':14s} {'plain s/epoch':>13s} {'LC s/epoch':>10s} {'LC/plain':>8s} "
            f"{'C step %':>8s} {'eval s':>7s} {'full ref min':>12s} {'full LC min':>11s}")
    print(f"device: {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}; "
          f"{images} training images timed per epoch, scaled to 50,000\n{head}", flush=True)
    for name in args.models:
        for setting in args.settings:
            try:
                r = measure(name, setting, images, test_images, args.repeats, dev)
            except Exception as e:  # noqa: BLE001 - one setting failing (e.g. compile) must not lose the rest
                print(f"{name:14s} {setting:14s} FAILED: {type(e).__name__}: {str(e)[:160]}", flush=True)
                rows.append({"model": name, "setting": setting, "error": f"{type(e).__name__}: {e}"})
                continue
            rows.append(r)
            print(f"{name:14s} {setting:14s} {r['plain_epoch_seconds']:13.2f} {r['lc_epoch_seconds']:10.2f} "
                  f"{r['lc_over_plain']:8.3f} {100 * r['c_step_share']:8.2f} {r['evaluation_seconds']:7.2f} "
                  f"{r['full_reference_seconds'] / 60:12.1f} {r['full_lc_seconds'] / 60:11.1f}", flush=True)
    references.atomic_write_json({"rows": rows, "command": "python benchmarks/gpu_speed.py " + " ".join(argv or sys.argv[1:]),
                                  **references.provenance()}, path)
    print(f"-> {path}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

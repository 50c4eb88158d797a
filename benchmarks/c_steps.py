"""C-step benchmark: lcbook's torch C steps against the recipe of the older LC toolkit.

On the conv weights of a trained ResNet-20 (the committed reference) and of VGG-16 (its trained
reference when one exists under ``data/references/``, else He-initialised weights, recorded as
such), layer by layer, this times side by side:

* quantization, K ∈ {2, 4, 16}: cold (direct compression) and warm (the next C step, on weights
  moved by a small perturbation, warm-started from the previous codebook).
  Old recipe: scikit-learn ``KMeans(n_clusters=K, n_init=10, tol=1e-10)`` with k-means++ when
  cold and the previous codebook as ``init`` when warm (scikit-learn then runs one init), on a
  CPU numpy copy of the weights. Ours: :class:`lcbook.AdaptiveQuantization` on the weight's device.
* low-rank at r = ⌈min(m, n)/4⌉ on the (n_out, n_in·k·k) view: ``numpy.linalg.svd`` against
  :class:`lcbook.LowRank`.
* ℓ0 pruning keeping 5% per layer: a stable numpy ``argsort`` of |w| against
  :class:`lcbook.ConstraintL0Pruning`.
* additive Q+P (K = 2 plus 2% sparse per layer), 10 alternating sweeps, warm: warm KMeans and
  numpy top-κ alternated, against :class:`lcbook.AdditiveCombination`.
* the floor: one ``torch.sort`` of every layer's weights.

For each: total seconds over the layers, the ratio old/ours (how many times faster), and the
distortion Σ‖w − Δ(Θ)‖² of each (ours must be no worse). Results go to a JSON file with the
provenance (hardware, versions, commit) for the book's appendix.

Run: ``bash benchmarks/run.sh`` (installs scikit-learn into the project's venv, then runs this
with the defaults), or ``.venv/bin/python benchmarks/c_steps.py --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import sync, timed  # noqa: E402
from lcbook import references, models  # noqa: E402
from lcbook.compressions import (  # noqa: E402
    AdaptiveQuantization,
    AdditiveCombination,
    ConstraintL0Pruning,
    LowRank,
)

try:
    from sklearn.cluster import KMeans
except ImportError:  # pragma: no cover - a clear message instead of a traceback
    sys.exit("the benchmark needs scikit-learn for the old recipe: run `bash benchmarks/run.sh` "
             "or `.venv/bin/pip install scikit-learn`")


def sqerr(a, b) -> float:
    a = torch.as_tensor(a).double().cpu().reshape(-1)
    b = torch.as_tensor(b).double().cpu().reshape(-1)
    return float(((a - b) ** 2).sum())


# --- the old recipe (numpy / scikit-learn on the CPU) ---------------------------------------


def old_kmeans(w: torch.Tensor, k: int, init=None):
    """KMeans as the older toolkit ran it; returns (quantized numpy array, centers)."""
    x = w.detach().cpu().numpy().reshape(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "explicit initial center position passed" when warm
        km = KMeans(n_clusters=k, n_init=10, tol=1e-10, init="k-means++" if init is None else init)
        z = km.fit_predict(x)
    c = km.cluster_centers_
    return c.reshape(-1)[z].astype(np.float32), c


def old_topk(x: np.ndarray, kappa: int) -> np.ndarray:
    out = np.zeros_like(x)
    if kappa:
        idx = np.argsort(np.abs(x), kind="mergesort")[-kappa:]
        out[idx] = x[idx]
    return out


def old_prune(w: torch.Tensor, kappa: int):
    return old_topk(w.detach().cpu().numpy().reshape(-1), kappa)


def old_low_rank(w: torch.Tensor, r: int):
    x = w.detach().cpu().numpy().reshape(w.shape[0], -1)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r]


def old_qp_sweeps(w: torch.Tensor, k: int, kappa: int, centers, sparse: np.ndarray, sweeps: int):
    x = w.detach().cpu().numpy().reshape(-1)
    q = None
    for _ in range(sweeps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            km = KMeans(n_clusters=k, n_init=10, tol=1e-10, init=centers)
            z = km.fit_predict((x - sparse).reshape(-1, 1))
        centers = km.cluster_centers_
        q = centers.reshape(-1)[z].astype(np.float32)
        sparse = old_topk(x - q, kappa)
    return q + sparse


# --- the benchmark ---------------------------------------------------------------------------


def model_weights(name: str, device: torch.device):
    """Conv weights of the named model and a note on where they come from."""
    model = models.build(name)
    for prof in ("full", "quick"):
        path = references.REFERENCE_DIR / f"{name}-cifar10-{prof}.pt"
        if path.is_file():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            record = json.loads(path.with_suffix(".json").read_text())
            source = f"trained reference {path.relative_to(ROOT)} (test error {record.get('test_error')}%)"
            break
    else:
        torch.manual_seed(0)
        model = models.build(name)
        source = f"He-initialised {name} (seed 0): no trained reference is committed yet"
    names = models.conv_and_linear_weights(model, include_linear=False)
    params = dict(model.named_parameters())
    return [(n, params[n].detach().to(device=device, dtype=torch.float32).clone()) for n in names], source


def perturbed(ws, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(n, w + 0.05 * w.std() * torch.randn(w.shape, generator=g).to(w.device)) for n, w in ws]


def row(name, old_s, new_s, old_err=None, new_err=None, **extra):
    r = {"case": name, "old_seconds": old_s, "lcbook_seconds": new_s,
         "speedup": old_s / new_s if new_s > 0 else math.inf}
    if old_err is not None:
        r.update(old_distortion=old_err, lcbook_distortion=new_err,
                 distortion_ratio=new_err / old_err if old_err > 0 else (1.0 if new_err == 0 else math.inf))
    r.update(extra)
    return r


def bench_model(name, device, ks, log):
    ws, source = model_weights(name, device)
    ws2 = perturbed(ws)
    n_weights = sum(w.numel() for _, w in ws)
    log(f"{name}: {len(ws)} conv layers, {n_weights:,} weights ({source})")
    rows = []
    # Warm-up: the first call of each library pays one-off costs (LAPACK, thread pools).
    w0 = ws[0][1]
    old_kmeans(w0, 2), old_low_rank(w0, 1), old_prune(w0, 1)
    AdaptiveQuantization(2).compress(w0), LowRank(1).compress(w0.reshape(w0.shape[0], -1))
    ConstraintL0Pruning(kappa=1).compress(w0), torch.sort(w0.reshape(-1))
    _, sort_s = timed(lambda: [torch.sort(w.reshape(-1)) for _, w in ws], device)
    for k in ks:
        q = AdaptiveQuantization(k)
        old_cold = [timed(lambda w=w: old_kmeans(w, k), device) for _, w in ws]
        new_cold = [timed(lambda w=w: q.compress(w), device) for _, w in ws]
        cold = row(f"quantization K={k}, cold (DC)", sum(t for _, t in old_cold), sum(t for _, t in new_cold),
                   sum(sqerr(w, o[0]) for (_, w), (o, _) in zip(ws, old_cold)),
                   sum(sqerr(w, d[0]) for (_, w), (d, _) in zip(ws, new_cold)))
        cold["vs_sort"] = cold["lcbook_seconds"] / sort_s
        old_warm = [timed(lambda w=w, c=o[1]: old_kmeans(w, k, init=c), device) for (_, w), (o, _) in zip(ws2, old_cold)]
        new_warm = [timed(lambda w=w, th=d[1]: q.compress(w, th), device) for (_, w), (d, _) in zip(ws2, new_cold)]
        warm = row(f"quantization K={k}, warm (an LC C step)", sum(t for _, t in old_warm), sum(t for _, t in new_warm),
                   sum(sqerr(w, o[0]) for (_, w), (o, _) in zip(ws2, old_warm)),
                   sum(sqerr(w, d[0]) for (_, w), (d, _) in zip(ws2, new_warm)))
        warm["vs_sort"] = warm["lcbook_seconds"] / sort_s
        rows += [cold, warm]
        log(f"  {cold['case']}: {cold['speedup']:.1f}x; {warm['case']}: {warm['speedup']:.1f}x")
    # low-rank
    ranks = [max(1, math.ceil(min(w.shape[0], w[0].numel()) / 4)) for _, w in ws]
    old_l = [timed(lambda w=w, r=r: old_low_rank(w, r), device) for (_, w), r in zip(ws, ranks)]
    new_l = [timed(lambda w=w, r=r: LowRank(r).compress(w.reshape(w.shape[0], -1)), device) for (_, w), r in zip(ws, ranks)]
    rows.append(row("low-rank r = ⌈min(m,n)/4⌉", sum(t for _, t in old_l), sum(t for _, t in new_l),
                    sum(sqerr(w, o) for (_, w), (o, _) in zip(ws, old_l)),
                    sum(sqerr(w, d[0]) for (_, w), (d, _) in zip(ws, new_l))))
    # pruning
    kappas = [round(0.05 * w.numel()) for _, w in ws]
    old_p = [timed(lambda w=w, kk=kk: old_prune(w, kk), device) for (_, w), kk in zip(ws, kappas)]
    new_p = [timed(lambda w=w, kk=kk: ConstraintL0Pruning(kappa=kk).compress(w), device) for (_, w), kk in zip(ws, kappas)]
    rows.append(row("ℓ0 pruning, keep 5%", sum(t for _, t in old_p), sum(t for _, t in new_p),
                    sum(sqerr(w, o) for (_, w), (o, _) in zip(ws, old_p)),
                    sum(sqerr(w, d[0]) for (_, w), (d, _) in zip(ws, new_p))))
    # additive Q+P, 10 warm sweeps from each method's own cold start
    old_qp, new_qp = [], []
    for (_, w), (_, w2) in zip(ws, ws2):
        kk = round(0.02 * w.numel())
        comb = AdditiveCombination((AdaptiveQuantization(2), ConstraintL0Pruning(kappa=kk)), max_sweeps=10, tol=0.0)
        _, th = comb.compress(w)
        x = w.detach().cpu().numpy().reshape(-1)
        qd, centers = old_kmeans(w, 2)
        sparse = old_topk(x - qd, kk)
        old_qp.append(timed(lambda w2=w2, c=centers, s=sparse, kk=kk: old_qp_sweeps(w2, 2, kk, c, s, 10), device))
        new_qp.append(timed(lambda w2=w2, th=th, comb=comb: comb.compress(w2, th), device))
    sweeps = [int(d[1]["sweep_errors"].numel() - 1) for d, _ in new_qp]
    rows.append(row("additive Q+P (K=2 + 2%), 10 sweeps, warm", sum(t for _, t in old_qp), sum(t for _, t in new_qp),
                    sum(sqerr(w2, o) for (_, w2), (o, _) in zip(ws2, old_qp)),
                    sum(sqerr(w2, d[0]) for (_, w2), (d, _) in zip(ws2, new_qp)),
                    lcbook_sweeps_run=sum(sweeps), note="lcbook stops early once a sweep no longer lowers the error"))
    for r in rows[-3:]:
        log(f"  {r['case']}: {r['speedup']:.1f}x, distortion ratio {r['distortion_ratio']:.4f}")
    return {"model": name, "weights_source": source, "layers": len(ws), "weights": n_weights,
            "sort_seconds": sort_s, "rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet20", "vgg16"], choices=["resnet20", "vgg16"])
    ap.add_argument("--ks", nargs="+", type=int, default=[2, 4, 16], help="codebook sizes K")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    ap.add_argument("--out", default=str(ROOT / "data" / "results" / "c_step_benchmark.json"))
    args = ap.parse_args(argv)
    if any(k < 1 for k in args.ks):
        ap.error(f"--ks must be ≥ 1, got {args.ks}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    t0 = time.perf_counter()
    results = [bench_model(m, device, args.ks, lambda s: print(s, flush=True)) for m in args.models]
    out = {"device": str(device), "torch_threads": torch.get_num_threads(),
           "provenance": references.provenance(), "models": results,
           "seconds": time.perf_counter() - t0}
    references.atomic_write_json(out, Path(args.out))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()

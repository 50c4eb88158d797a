"""Exported compressed models: file size against the accounting, inference speed, FLOPs.

For each network and compression (direct compression of the reference: file sizes and speed do
not depend on how long LC trained), this exports the compressed model with
:func:`lcbook.export.export`, reloads it (dense, and with low-rank layers as two layers), and
measures: file bytes, the accounted bits / 8, compression ratio of the file against a float32
file of all parameters and buffers, multiply-accumulates per image, and on this machine's
CPU (or GPU) the latency of one image (median) and the throughput of batches of 128, against the
uncompressed model. Writes ``data/results/export_benchmark_<device>.json`` with provenance.

Run: ``.venv/bin/python benchmarks/export_sizes.py [--models resnet20 vgg16_quarter vgg16]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lcbook import references, export, layer_positions, models, experiments  # noqa: E402
from lcbook.lc import direct_compression  # noqa: E402

CASES = [("q", {"k": 2}), ("p", {"fraction": 0.05}), ("l", {"rank": 0.25}), ("qp", {"k": 2, "fraction": 0.02}),
         ("lp", {"rank": 0.25, "fraction": 0.01})]


def macs(model) -> int:
    pos = layer_positions(model, torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    return sum(pos[n] * p.numel() for n, p in model.named_parameters() if n in pos)


def timing(model, dev, repeats):
    model.eval()
    x1 = torch.randn(1, 3, 32, 32, device=dev)
    xb = torch.randn(128, 3, 32, 32, device=dev)
    with torch.no_grad():
        model(xb)  # warm-up
        lat = []
        for _ in range(repeats * 5):
            t0 = time.perf_counter()
            model(x1)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            lat.append(time.perf_counter() - t0)
        thr = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(xb)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            thr.append(128 / (time.perf_counter() - t0))
    return statistics.median(lat) * 1e3, max(thr)


def load_reference(name):
    model = models.build(name)
    path = references.REFERENCE_DIR / f"{name}-cifar10-quick.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model, f"trained reference {path.relative_to(ROOT)}"
    torch.manual_seed(0)
    return model, f"He-initialised {name} (seed 0): no committed reference"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet20", "vgg16_quarter"],
                    choices=["resnet20", "resnet32", "resnet56", "resnet110", "vgg16", "vgg16_quarter"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = torch.device(references.device())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            ref, source = load_reference(name)
            ref_bytes = sum(t.numel() * t.element_size() for t in list(ref.parameters()) + list(ref.buffers()))
            lat, thr = timing(ref.to(dev), dev, args.repeats)
            ref_macs = macs(ref)
            rows.append({"model": name, "weights": source, "case": "reference", "file_bytes": ref_bytes,
                         "accounted_bytes": 4 * sum(p.numel() for p in ref.parameters()), "ratio": 1.0,
                         "macs": ref_macs, "latency_ms": lat, "images_per_second": thr})
            print(f"{name} reference: {ref_bytes:,} bytes, {ref_macs / 1e6:.1f} M MACs, {lat:.2f} ms, {thr:.0f} img/s", flush=True)
            for combo, budget in CASES:
                model, _ = load_reference(name)
                lc = direct_compression(model, experiments.make_tasks(name, model, combo, budget))
                path = Path(tmp) / f"{name}-{combo}.lcbk"
                info = export.export(lc, path, name)
                for factorized in ([False, True] if combo in ("l",) else [False]):
                    m = export.load(path, factorized=factorized).to(dev)
                    lat, thr = timing(m, dev, args.repeats)
                    row = {"model": name, "weights": source, "case": combo + (" (two layers)" if factorized else ""),
                           "budget": budget, "file_bytes": info["file"], "header_bytes": info["header"],
                           "buffer_bytes": info["buffers"], "param_payload_bytes": info["params"],
                           "sections": len(export.read_header(path)["sections"]),
                           "accounted_bytes": info["accounted_bits"] / 8, "ratio": ref_bytes / info["file"],
                           "macs": macs(m), "latency_ms": lat, "images_per_second": thr}
                    rows.append(row)
                    print(f"  {row['case']:16s} file {row['file_bytes']:>10,} B (accounted {row['accounted_bytes']:>10,.0f} B, "
                          f"×{row['ratio']:.1f}), {row['macs'] / 1e6:7.1f} M MACs, {lat:.2f} ms, {thr:.0f} img/s", flush=True)
    out = {"device": str(dev), "rows": rows, "provenance": references.provenance()}
    path = Path(args.out) if args.out else ROOT / "data" / "results" / f"export_benchmark_{dev.type}.json"
    references.atomic_write_json(out, path)
    print(f"-> {path}")


if __name__ == "__main__":
    main()

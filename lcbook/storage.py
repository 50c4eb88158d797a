"""Storage accounting: bits of a compressed model and its compression ratio.

The formula (as in the LC toolkit [LC-tk] and Part V [P5]):

* each task's Θ costs its compression's :meth:`~lcbook.compressions.Compression.bits`
  (quantization: N·⌈log2 K⌉ + 32·K; pruning: 32-bit values plus fixed-width index gaps;
  low-rank: 32·r·(m + n); additive: the sum of its parts);
* every parameter no task compresses (biases, BatchNorm scales and shifts) costs 32 bits;
* the reference costs 32 bits per parameter;
* compression ratio = reference bits / compressed bits.

BatchNorm running statistics are buffers, not parameters, and are left out of both sides (as in
the papers); they add 2 floats per channel to a deployed model.
"""

from __future__ import annotations

from typing import Any, Dict

from .compressions.base import FLOAT_BITS


def storage_report(lc) -> Dict[str, Any]:
    """Per-task and total storage of the compressed model of an LC run.

    Args:
        lc: an :class:`lcbook.lc.LCAlgorithm` after direct compression or a run.

    Returns:
        dict with ``tasks``: a list of ``{"task", "compression", "weights", "bits",
        "bits_per_weight"}``; ``compressed_bits`` (all tasks); ``uncompressed_params`` and
        ``uncompressed_bits`` (32 each); ``total_bits``; ``reference_bits`` (32 × all
        parameters); ``ratio`` (reference / total); ``bits_per_weight`` over compressed weights.

    Raises:
        RuntimeError: if no task has Θ yet.
    """
    if not hasattr(lc, "tasks") or not hasattr(lc, "model"):
        raise TypeError(f"lc must be an LCAlgorithm, got {type(lc).__name__}")
    if any(b.theta is None for b in lc.tasks):
        raise RuntimeError("no Θ yet: run direct_compression() or run() first")
    rows = []
    covered = set()
    for b in lc.tasks:
        bits = b.task.compression.bits(b.theta)
        n = b.numel()
        rows.append({
            "task": b.task.label,
            "compression": b.task.compression.describe(),
            "weights": n,
            "bits": bits,
            "bits_per_weight": bits / n if n else 0.0,
        })
        covered.update(id(t) for t in b.tensors)
    all_params = list(lc.model.parameters())
    n_total = sum(p.numel() for p in all_params)
    n_unc = sum(p.numel() for p in all_params if id(p) not in covered)
    comp_bits = sum(r["bits"] for r in rows)
    n_comp = sum(r["weights"] for r in rows)
    total = comp_bits + FLOAT_BITS * n_unc
    ref = FLOAT_BITS * n_total
    return {
        "tasks": rows,
        "compressed_bits": comp_bits,
        "uncompressed_params": n_unc,
        "uncompressed_bits": FLOAT_BITS * n_unc,
        "total_bits": total,
        "reference_bits": ref,
        "ratio": ref / total if total else float("inf"),
        "bits_per_weight": comp_bits / n_comp if n_comp else 0.0,
    }

"""Storage accounting: bits of a compressed model and its compression ratio.

The formula (as in the LC toolkit [LC-tk] and Part V [P5]):

* each task's Θ costs its compression's :meth:`~lcbook.compressions.Compression.bits`
  (adaptive quantization: N·⌈log2 K⌉ + 32·K; fixed codebooks and binarization: N·⌈log2 K⌉;
  scaled binarization/ternarization: N or 2N bits + 32 for the scale; pruning (all four forms):
  32-bit values plus fixed-width index gaps; low-rank and rank selection:
  32·min(r·(m + n), m·n); additive: the sum of its parts);
* every parameter no task compresses (biases, BatchNorm scales and shifts) costs 32 bits;
* the reference costs 32 bits per parameter;
* compression ratio = reference bits / compressed bits.

BatchNorm running statistics are buffers, not parameters, and are left out of both sides (as in
the papers); they add 2 floats per channel to a deployed model.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
from torch import nn

from ._modes import modes_restored
from .compressions.base import FLOAT_BITS


def layer_positions(model: nn.Module, example_input: torch.Tensor) -> Dict[str, int]:
    """Output positions per example of every conv and linear weight, by parameter name.

    One forward pass (in eval mode, without gradients; the mode is restored) of
    ``example_input`` records, for each ``nn.Conv1d/2d/3d`` and ``nn.Linear``, how many output
    positions its weight is applied at for one example (H_out·W_out for a 2-D conv, 1 for a
    linear layer on a vector); a layer applied several times in one pass counts each time, and
    a weight tensor shared by several modules (tied weights) counts every module's use, under
    its name in ``model.named_parameters()`` (the first name it has).
    Multiply-accumulates of a dense layer are then ``positions · weight.numel()``. The input
    must be batched (its first dimension is the batch).

    Args:
        model: the network.
        example_input: a batch ``(B, …)`` the model accepts (B ≥ 1; counts are per example).

    Returns:
        ``{"layer1.0.conv1.weight": 1024, "fc.weight": 1, …}``.
    """
    if not torch.is_tensor(example_input) or example_input.ndim < 1 or example_input.shape[0] < 1:
        raise ValueError(f"example_input must be a batch tensor (B ≥ 1, …), got {example_input!r:.80}")
    found: Dict[str, int] = {}
    hooks = []
    batch = example_input.shape[0]
    names = {id(p): n for n, p in model.named_parameters()}  # a tied weight: its first name
    for mname, mod in model.named_modules(remove_duplicate=False):
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            key = names.get(id(mod.weight), (mname + "." if mname else "") + "weight")
            if any(h[0] is mod for h in hooks):
                continue  # one module reached by two names: its hook already counts every call
            def hook(m, inp, out, key=key):
                per_channel = out.numel() // (out.shape[1] if isinstance(m, nn.modules.conv._ConvNd) else out.shape[-1])
                found[key] = found.get(key, 0) + per_channel // batch  # a layer used twice counts twice
            hooks.append((mod, mod.register_forward_hook(hook)))
    try:
        with modes_restored(model), torch.no_grad():
            model.eval()
            model(example_input)
    finally:
        for _, h in hooks:
            h.remove()
    return found


def storage_report(lc, example_input: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    """Per-task, per-layer and total storage (and optionally MACs) of the compressed model.

    Args:
        lc: an :class:`lcbook.lc.LCAlgorithm` after direct compression or a run.
        example_input: optional batch ``(B, …)`` for the model; if given, multiply-accumulates
            per example are counted for every conv and linear weight (see :func:`layer_positions`):
            the reference dense, the compressed as its compression's
            :meth:`~lcbook.compressions.Compression.macs` (low-rank: the two factors; pruning:
            the kept weights, also per layer when one κ spans several layers; quantization and
            other shared tasks: dense).

    Returns:
        dict with

        * ``tasks``: ``{"task", "compression", "weights", "bits", "bits_per_weight"}`` per task;
        * ``layers``: per parameter ``{"param", "shape", "weights", "task", "compression",
          "bits", "bits_per_weight", "shared"}``; uncompressed parameters have task ``None`` and
          32 bits each; a task spanning several tensors (one codebook or one κ for many layers)
          splits its bits over them in proportion to their sizes and marks them ``shared``;
          with ``example_input`` also ``"reference_macs"`` and ``"macs"`` (conv/linear only);
        * ``compressed_bits`` (all tasks); ``uncompressed_params`` and ``uncompressed_bits``;
          ``total_bits``; ``reference_bits`` (32 × all parameters); ``ratio`` (reference /
          total); ``bits_per_weight`` over compressed weights;
        * with ``example_input``: ``reference_macs`` and ``macs`` totals over conv/linear layers.

    Raises:
        TypeError: ``lc`` is not an LCAlgorithm.
        RuntimeError: if no task has Θ yet.
    """
    if not hasattr(lc, "tasks") or not hasattr(lc, "model"):
        raise TypeError(f"lc must be an LCAlgorithm, got {type(lc).__name__}")
    if any(b.theta is None for b in lc.tasks):
        raise RuntimeError("no Θ yet: run direct_compression() or run() first")
    positions = layer_positions(lc.model, example_input) if example_input is not None else None
    rows, layer_of = [], {}
    for b in lc.tasks:
        comp = b.task.compression
        bits = comp.bits(b.theta)
        n = b.numel()
        rows.append({
            "task": b.task.label,
            "compression": comp.describe(),
            "weights": n,
            "bits": bits,
            "bits_per_weight": bits / n if n else 0.0,
        })
        slices = b.scatter(b.delta) if len(b.tensors) > 1 else None
        for i, (name, t) in enumerate(zip(b.task.params, b.tensors)):
            share = t.numel() / n if n else 0.0
            macs = None
            if positions is not None and name in positions:
                pos = positions[name]
                if slices is None:
                    macs = comp.macs(b.theta, pos)
                else:  # one Δ(Θ) over several layers (one codebook or κ): this layer's slice
                    macs = comp.slice_macs(slices[i], pos)
            layer_of[id(t)] = (b.task.label, comp.describe(), bits * share, len(b.tensors) > 1, macs)
    layers = []
    n_unc = 0
    for name, p in lc.model.named_parameters():
        task, comp, bits, shared, macs = layer_of.get(id(p), (None, None, FLOAT_BITS * p.numel(), False, None))
        if task is None:
            n_unc += p.numel()
        row = {"param": name, "shape": tuple(p.shape), "weights": p.numel(), "task": task, "compression": comp,
               "bits": bits, "bits_per_weight": bits / p.numel() if p.numel() else 0.0, "shared": shared}
        if positions is not None and name in positions:
            row["reference_macs"] = positions[name] * p.numel()
            row["macs"] = macs if macs is not None else row["reference_macs"]
        layers.append(row)
    n_total = sum(p.numel() for p in lc.model.parameters())
    comp_bits = sum(r["bits"] for r in rows)
    n_comp = sum(r["weights"] for r in rows)
    total = comp_bits + FLOAT_BITS * n_unc
    ref = FLOAT_BITS * n_total
    out = {
        "tasks": rows,
        "layers": layers,
        "compressed_bits": comp_bits,
        "uncompressed_params": n_unc,
        "uncompressed_bits": FLOAT_BITS * n_unc,
        "total_bits": total,
        "reference_bits": ref,
        "ratio": ref / total if total else math.inf,
        "bits_per_weight": comp_bits / n_comp if n_comp else 0.0,
    }
    if positions is not None:
        out["reference_macs"] = sum(r.get("reference_macs", 0) for r in layers)
        out["macs"] = sum(r.get("macs", 0) for r in layers)
    return out

"""Additive combinations of compressions [P5].

The weights are the sum of separately compressed parts, ``w = Δ1(θ1) + Δ2(θ2) + …``, e.g. a
K = 2 codebook plus a few sparse float corrections (Q+P) or a low-rank matrix plus sparse
corrections (L+P). The C step ``min Σ ‖w − Σ_i Δi(θi)‖²`` is solved by alternating
optimization over the parts [P5, §3]: each part's own C step is applied to the residual that the
other parts leave, ``θi ← Πi(w − Σ_{j≠i} Δj(θj))``, sweep after sweep, until the error stops
decreasing. Started from the previous C step's Θ (warm start), every part's step is at least as
good as its current value, so the error never increases over sweeps. A cold start (direct
compression) alternates from every rotation of the parts' order and keeps the best, so it is
never worse than compressing with the parts one after the other in any of those orders.

Two sequential pipelines are here too, as the baselines the additive model is compared with:
:class:`SequentialCombination` (each part fitted once, in order, to what the earlier ones leave)
and :class:`PruneThenQuantize` (keep κ weights, then quantize their values).

For a fixed codebook followed by ℓ0-constraint sparse corrections (``(FixedCodebook(...),
ConstraintL0Pruning(...))``) the C step is solved exactly in one pass instead [P5]: each weight
to its nearest codebook value, then the κ largest residuals become the sparse part.

References: [P5] Carreira-Perpiñán & Idelbayev, *Model compression as constrained optimization
... Part V: combining compressions*, arXiv:2107.04380.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .._checks import is_real
from .base import (FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, check_int, register_compression, shape_of,
                   shape_tensor, work_dtype)
from .coding import (FormatError, check_codes, f32, gap_slots, need_int, pack_bits, read_shape, shape_meta,
                     slot_positions, unpack_bits)
from .pruning import ConstraintL0Pruning, sparse_bits
from .quantization import AdaptiveQuantization, FixedCodebook, kmeans_1d


def _sqerr(w: torch.Tensor, d: torch.Tensor) -> float:
    """‖w − d‖² accumulated in float64 (so that half-precision weights compare reliably)."""
    return float(((w.to(torch.float64) - d.to(torch.float64)) ** 2).sum())


def _split(theta: Theta, i: int) -> Theta:
    prefix = f"{i}."
    return {k[len(prefix):]: v for k, v in theta.items() if k.startswith(prefix)}


@register_compression
@dataclass(frozen=True)
class AdditiveCombination(Compression):
    """An additive combination ``Δ(Θ) = Σ_i Δi(θi)`` of any compressions, itself a compression.

    Args:
        parts: two or more compressions (any mix; an additive part is allowed).
        max_sweeps: limit on alternation sweeps per C step (≥ 1).
        tol: stop when a sweep lowers the error by less than ``tol`` times its value (≥ 0).

    Θ: each part's Θ under the key prefix ``"i."`` (``"0.codebook"``, ``"1.indices"``, ...),
    plus ``"sweep_errors"``: ``(S + 1,)`` float64, the error ‖w − Δ(Θ)‖² after the warm start and
    after each of the S sweeps of this C step (not counted as storage).

    Storage: the sum of the parts' bits.

    Raises:
        ValueError/TypeError: if fewer than two parts, a part is not a Compression,
            ``max_sweeps`` < 1 or ``tol`` < 0.
    """

    parts: Tuple[Compression, ...]
    max_sweeps: int = 50
    tol: float = 1e-6

    def __post_init__(self):
        if isinstance(self.parts, (str, bytes, Compression)) or not hasattr(self.parts, "__iter__"):
            raise TypeError(f"parts must be a sequence of two or more compressions, got parts={self.parts!r}")
        object.__setattr__(self, "parts", tuple(self.parts))
        if len(self.parts) < 2:
            raise ValueError(f"parts must hold at least two compressions, got {len(self.parts)}")
        for i, p in enumerate(self.parts):
            if not isinstance(p, Compression):
                raise TypeError(f"parts[{i}] must be a Compression, got {type(p).__name__}")
        object.__setattr__(self, "max_sweeps", check_int("max_sweeps", self.max_sweeps, 1))
        if not (is_real(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a number ≥ 0, got tol={self.tol!r}")
        object.__setattr__(self, "tol", float(self.tol))

    @property
    def needs_matrix(self) -> bool:  # type: ignore[override]
        return any(p.needs_matrix for p in self.parts)

    @property
    def trainable(self) -> Tuple[str, ...]:  # type: ignore[override]
        return tuple(f"{i}.{k}" for i, p in enumerate(self.parts) for k in p.trainable)

    @property
    def needs_mu(self) -> bool:  # type: ignore[override]
        return any(p.needs_mu for p in self.parts)

    def canonical(self, theta: Theta) -> Theta:
        out = {k: v for k, v in theta.items() if k == "sweep_errors"}
        for i, p in enumerate(self.parts):
            out.update({f"{i}.{k}": v for k, v in p.canonical(_split(theta, i)).items()})
        return out

    def macs(self, theta: Theta, positions: int = 1) -> int:
        return sum(p.macs(_split(theta, i), positions) for i, p in enumerate(self.parts))

    def check_view(self, shape: torch.Size) -> None:
        for p in self.parts:
            p.check_view(shape)

    def _is_fixed_plus_sparse(self) -> bool:
        return (len(self.parts) == 2 and isinstance(self.parts[0], FixedCodebook)
                and isinstance(self.parts[1], ConstraintL0Pruning))

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        w = w.detach()
        n = len(self.parts)
        if self._is_fixed_plus_sparse():
            # Exact in one pass [P5]: a weight in the sparse set costs nothing, any other costs
            # its distance to the nearest codebook value; so quantize every weight to its nearest
            # value and spend the κ corrections on the κ largest residuals.
            dq, tq = self.parts[0].compress(w, mu=mu)
            dp, tp = self.parts[1].compress(w - dq, mu=mu)
            total = dq + dp
            out = {f"0.{k}": v for k, v in tq.items()}
            out.update({f"1.{k}": v for k, v in tp.items()})
            out["sweep_errors"] = torch.tensor([_sqerr(w, total)], dtype=torch.float64)
            return total, out
        if theta and all(_split(theta, i) for i in range(n)):
            thetas = [_split(theta, i) for i in range(n)]
            deltas = [p.decompress(t).reshape(w.shape).to(w.dtype) for p, t in zip(self.parts, thetas)]
            return self._alternate(w, thetas, deltas, torch.stack(deltas).sum(0), mu)
        # Cold start (direct compression): alternation finds a local optimum that depends on the
        # first pass, e.g. a codebook first fitted to outliers that the sparse part should take.
        # So start from every rotation of the order of the parts (each part compresses what the
        # ones before it leave), alternate from each, and keep the best.
        best = None
        for r in range(n):
            order = list(range(r, n)) + list(range(r))
            thetas, deltas, total = [None] * n, [None] * n, torch.zeros_like(w)
            for i in order:
                deltas[i], thetas[i] = self.parts[i].compress(w - total, mu=mu)
                total = total + deltas[i]
            total = torch.stack(deltas).sum(0)
            cand = self._alternate(w, thetas, deltas, total, mu)
            if best is None or float(cand[1]["sweep_errors"][-1]) < float(best[1]["sweep_errors"][-1]):
                best = cand
        return best

    def _alternate(self, w, thetas, deltas, total, mu):
        errors = [_sqerr(w, total)]
        for _ in range(self.max_sweeps):
            new_thetas, new_deltas, running = list(thetas), list(deltas), total
            for i, p in enumerate(self.parts):
                rest = running - new_deltas[i]
                d, t = p.compress(w - rest, new_thetas[i], mu=mu)
                new_deltas[i], new_thetas[i] = d, t
                running = rest + d
            running = torch.stack(new_deltas).sum(0)  # re-sum to avoid drift from running updates
            err = _sqerr(w, running)
            if err > errors[-1]:
                break  # rounding (half precision) made the sweep worse: keep the previous iterate
            thetas, deltas, total = new_thetas, new_deltas, running
            errors.append(err)
            if errors[-2] - errors[-1] <= self.tol * errors[-2]:
                break
        out: Theta = {f"{i}.{k}": v for i, t in enumerate(thetas) for k, v in t.items() if k != "sweep_errors"}
        out["sweep_errors"] = torch.tensor(errors, dtype=torch.float64)
        return total, out

    def decompress(self, theta: Theta) -> torch.Tensor:
        deltas = [p.decompress(_split(theta, i)) for i, p in enumerate(self.parts)]
        shape = deltas[0].shape
        return torch.stack([d.reshape(shape) for d in deltas]).sum(0)

    def bits(self, theta: Theta) -> int:
        return sum(p.bits(_split(theta, i)) for i, p in enumerate(self.parts))

    def check_theta(self, theta: Theta) -> None:
        for i, p in enumerate(self.parts):
            p.check_theta(_split(theta, i))

    def encode(self, theta: Theta, put) -> dict:
        """Each part's sections under ``"<i>."`` (part i), and the parts' header entries."""
        return {"parts": [p.encode(_split(theta, i), lambda name, data, i=i: put(f"{i}.{name}", data))
                          for i, p in enumerate(self.parts)]}

    def decode(self, meta: dict, get) -> Theta:
        metas = meta.get("parts") if isinstance(meta, dict) else None
        if not (isinstance(metas, list) and len(metas) == len(self.parts)):
            raise FormatError(f"an additive Θ entry needs 'parts' with {len(self.parts)} entries, got {metas!r:.60}")
        theta: Theta = {}
        for i, (p, m) in enumerate(zip(self.parts, metas)):
            sub = p.decode(m, lambda name, *a, i=i, **kw: get(f"{i}.{name}", *a, **kw))
            theta.update({f"{i}.{k}": v for k, v in sub.items()})
        return theta

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)


@register_compression
@dataclass(frozen=True)
class SequentialCombination(Compression):
    """Sequential compression with the additive model ``Δ(Θ) = Σ_i Δi(θi)``: each part is fitted
    once, in order, to the residual the parts before it leave, and never revisited [P5, §2]:
    ``θ1 = Π1(w)``, ``θ2 = Π2(w − Δ1(θ1))``, … For Q then P: quantize, then spend κ float
    corrections on the largest quantization errors. The baseline :class:`AdditiveCombination`
    improves on by alternating (its C step is never worse than this one for the same parts).

    In an LC run every C step repeats the same pass; each part is warm-started from its own
    previous θ (e.g. the previous codebook).

    Args:
        parts: two or more compressions, in the order they are fitted.

    Θ and storage as :class:`AdditiveCombination` (``"i."`` prefixes; the sum of the parts'
    bits), without ``"sweep_errors"``.

    Raises:
        ValueError/TypeError: fewer than two parts, or a part that is not a Compression.
    """

    parts: Tuple[Compression, ...]

    def __post_init__(self):
        if isinstance(self.parts, (str, bytes, Compression)) or not hasattr(self.parts, "__iter__"):
            raise TypeError(f"parts must be a sequence of two or more compressions, got parts={self.parts!r}")
        object.__setattr__(self, "parts", tuple(self.parts))
        if len(self.parts) < 2:
            raise ValueError(f"parts must hold at least two compressions, got {len(self.parts)}")
        for i, p in enumerate(self.parts):
            if not isinstance(p, Compression):
                raise TypeError(f"parts[{i}] must be a Compression, got {type(p).__name__}")

    needs_matrix = AdditiveCombination.needs_matrix
    trainable = AdditiveCombination.trainable
    needs_mu = AdditiveCombination.needs_mu
    macs = AdditiveCombination.macs
    check_view = AdditiveCombination.check_view
    decompress = AdditiveCombination.decompress
    bits = AdditiveCombination.bits
    check_theta = AdditiveCombination.check_theta
    encode = AdditiveCombination.encode
    decode = AdditiveCombination.decode

    def canonical(self, theta: Theta) -> Theta:
        out: Theta = {}
        for i, p in enumerate(self.parts):
            out.update({f"{i}.{k}": v for k, v in p.canonical(_split(theta, i)).items()})
        return out

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        w = w.detach()
        total, out = torch.zeros_like(w), {}
        for i, p in enumerate(self.parts):
            d, t = p.compress(w - total, (_split(theta, i) or None) if theta else None, mu=mu)
            total = total + d.reshape(w.shape).to(w.dtype)
            out.update({f"{i}.{k}": v for k, v in t.items()})
        return total, out

    def describe(self) -> str:
        return " then ".join(p.describe() for p in self.parts)


@register_compression
@dataclass(frozen=True)
class PruneThenQuantize(Compression):
    """Prune, then quantize the survivors (the pipeline of Han et al., *Deep Compression*, ICLR
    2016): keep the κ largest ``|w_i|`` (:class:`ConstraintL0Pruning`), then quantize the kept
    values with a codebook of K values (1-D k-means, :func:`kmeans_1d`, warm-started from the
    previous codebook); every other weight is 0. A sequential pipeline, not the exact projection
    onto its feasible set: the baseline additive Q+P is compared with at equal bits.

    Args:
        k: codebook size K ≥ 1 for the kept values.
        kappa, fraction: the kept weights, as :class:`ConstraintL0Pruning`.

    Θ: ``indices`` ``(κ,)`` int64 sorted positions, ``codebook`` ``(K',)`` sorted,
    ``assignments`` ``(κ,)`` int64, ``shape``.

    Storage: the kept positions as fixed-width gaps with ``⌈log2(K' + 1)⌉``-bit codes as values
    (one code is kept for the filler slots of long gaps; :func:`sparse_bits`), plus ``32·K'``
    for the codebook.

    Raises:
        ValueError/TypeError: as :class:`ConstraintL0Pruning` and :class:`AdaptiveQuantization`.
    """

    k: int
    kappa: Optional[int] = None
    fraction: Optional[float] = None
    trainable = ("codebook",)

    def __post_init__(self):
        object.__setattr__(self, "k", check_int("k", self.k, 1))
        p = ConstraintL0Pruning(kappa=self.kappa, fraction=self.fraction)  # validates κ / fraction
        object.__setattr__(self, "kappa", p.kappa)
        object.__setattr__(self, "fraction", p.fraction)

    @property
    def _pruning(self) -> ConstraintL0Pruning:
        return ConstraintL0Pruning(kappa=self.kappa, fraction=self.fraction)

    def check_view(self, shape: torch.Size) -> None:
        self._pruning.check_view(shape)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        _, tp = self._pruning.compress(w)
        init = theta.get("codebook") if theta else None
        vals = tp["values"].to(work_dtype(w))
        if vals.numel():
            c, z = kmeans_1d(vals, self.k, init, 300)
        else:
            c, z = vals.new_zeros(0), torch.zeros(0, dtype=torch.long, device=w.device)
        out = {"indices": tp["indices"], "codebook": c.to(w.dtype), "assignments": z, "shape": tp["shape"]}
        return self.decompress(out).to(w.dtype), out

    def decompress(self, theta: Theta) -> torch.Tensor:
        shape = shape_of(theta)
        out = theta["codebook"].new_zeros(math.prod(shape))
        if theta["indices"].numel():
            out[theta["indices"]] = theta["codebook"][theta["assignments"]]
        return out.reshape(shape)

    def bits(self, theta: Theta) -> int:
        k = int(theta["codebook"].numel())
        return sparse_bits(theta["indices"], value_bits=ceil_log2(k + 1)) + FLOAT_BITS * k

    def macs(self, theta: Theta, positions: int = 1) -> int:
        return int(positions) * int(theta["indices"].numel())

    def slice_macs(self, delta_part: torch.Tensor, positions: int = 1) -> int:
        return int(positions) * int(torch.count_nonzero(delta_part))

    def canonical(self, theta: Theta) -> Theta:
        return {**theta, **AdaptiveQuantization(max(self.k, 1)).canonical(theta)}

    def describe(self) -> str:
        return f"{self._pruning.describe()} then Q(K={self.k})"

    def check_theta(self, theta: Theta) -> None:
        if theta["codebook"].numel() > self.k:
            raise ValueError(f"Θ has a codebook of {theta['codebook'].numel()} values, K={self.k}")

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``gaps`` (the kept positions' gap codes), ``codes`` (⌈log2(K'+1)⌉ bits per
        slot: 0 in a filler slot, the assignment + 1 otherwise) and ``codebook`` (K' float32),
        as :meth:`bits` counts them."""
        k = int(theta["codebook"].numel())
        width, gaps, last = gap_slots(theta["indices"], ceil_log2(k + 1))
        order = torch.argsort(theta["indices"].cpu())
        codes = torch.zeros(gaps.numel(), dtype=torch.long)
        codes[last] = theta["assignments"].cpu()[order] + 1
        put("gaps", pack_bits(gaps, width))
        put("codes", pack_bits(codes, ceil_log2(k + 1)))
        put("codebook", f32(theta["codebook"]))
        return {**shape_meta(shape_of(theta)), "width": width, "slots": int(gaps.numel()), "k": k}

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        k, slots, width = need_int(meta, "k", 0, self.k), need_int(meta, "slots"), need_int(meta, "width", 0, 62)
        pos = slot_positions(width, unpack_bits(get("gaps"), width, slots), n)
        codes = check_codes(unpack_bits(get("codes"), ceil_log2(k + 1), slots), k + 1, "codes")
        keep = codes != 0
        return {"shape": shape_tensor(shape), "indices": pos[keep], "assignments": codes[keep] - 1,
                "codebook": get("codebook", "float32", (k,))}

"""Pruning C steps.

Four forms [CVPR18, §3, Table 1], each with an exact C step on ``w`` (the weights minus λ/μ):

=====================  ==========================================  ===============================
form                   C step                                      solution
=====================  ==========================================  ===============================
ℓ0 constraint          ``min ‖w − θ‖²  s.t. ‖θ‖₀ ≤ κ``             keep the κ largest ``|w_i|``
ℓ1 constraint          ``min ‖w − θ‖²  s.t. ‖θ‖₁ ≤ κ``             Euclidean projection on the ℓ1 ball
ℓ0 penalty             ``min α‖θ‖₀ + μ/2 ‖w − θ‖²``                 hard threshold: keep ``|w_i| > √(2α/μ)``
ℓ1 penalty             ``min α‖θ‖₁ + μ/2 ‖w − θ‖²``                 soft threshold at ``α/μ``
=====================  ==========================================  ===============================

The penalty forms depend on μ, so their thresholds fall as μ grows; the LC algorithm passes the
current μ to :meth:`~lcbook.compressions.Compression.compress` (direct compression uses the
first μ of the schedule).

Storage of a sparse vector (values plus positions) uses relative indexing with fixed-width gaps
(Han et al., *Deep Compression*, ICLR 2016, §3; the scheme of the LC toolkit): kept positions
are coded as gaps between consecutive kept indices in ``b`` bits each; a gap longer than
``2^b`` is bridged by filler entries (a zero value at the largest gap), each costing a slot. A slot
is ``b`` index bits plus a 32-bit value, and ``b`` is chosen in 1..32 to minimise the total.

References: [CVPR18] Carreira-Perpiñán & Idelbayev, *"Learning-compression" algorithms for neural
net pruning*, CVPR 2018.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .._checks import is_real
from .base import (Compression, Theta, check_finite, check_int, check_mu, check_real, shape_of,
                   shape_tensor)
from .base import register_compression
from .coding import decode_sparse, encode_sparse, need_int, read_shape, shape_meta
from .coding import sparse_bits, sparse_layout  # noqa: F401  (the sparse accounting; re-exported)


def _sparse(x: torch.Tensor, idx: torch.Tensor, shape) -> Tuple[torch.Tensor, Theta]:
    """Δ and Θ of the sparse vector that keeps ``x[idx]`` (sorted ``idx``) and zeroes the rest."""
    delta = torch.zeros_like(x)
    delta[idx] = x[idx]
    return delta.reshape(shape), {"indices": idx, "values": x[idx].clone(), "shape": shape_tensor(shape)}


class _SparseTheta(Compression):
    """Shared Θ layout of the pruning forms: ``indices`` ``(nnz,)`` int64 sorted positions in the
    flattened weight, ``values`` ``(nnz,)`` in the weight's dtype, ``shape``; storage
    :func:`sparse_bits`; MACs count only the kept weights."""

    trainable = ("values",)

    def decompress(self, theta: Theta) -> torch.Tensor:
        shape = shape_of(theta)
        out = theta["values"].new_zeros(math.prod(shape))
        out[theta["indices"]] = theta["values"]
        return out.reshape(shape)

    def bits(self, theta: Theta) -> int:
        return sparse_bits(theta["indices"])

    def macs(self, theta: Theta, positions: int = 1) -> int:
        return int(positions) * int(theta["indices"].numel())

    def slice_macs(self, delta_part: torch.Tensor, positions: int = 1) -> int:
        return int(positions) * int(torch.count_nonzero(delta_part))

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``gaps`` (fixed-width gap codes, packed) and ``values`` (float32 per slot, 0 in
        the filler slots that bridge long gaps), as :func:`sparse_bits` counts them."""
        width, slots, gaps, vals = encode_sparse(theta["indices"], theta["values"])
        put("gaps", gaps)
        put("values", vals)
        return {**shape_meta(shape_of(theta)), "width": width, "slots": slots}

    def decode(self, meta: dict, get) -> Theta:
        shape, n = read_shape(meta)
        idx, vals = decode_sparse(need_int(meta, "width", 0, 62), need_int(meta, "slots"), get("gaps"),
                                  get("values"), n)
        return {"shape": shape_tensor(shape), "indices": idx, "values": vals}


@register_compression
@dataclass(frozen=True)
class ConstraintL0Pruning(_SparseTheta):
    """ℓ0-constraint pruning: keep at most κ weights, the rest are zero [CVPR18].

    Give exactly one of ``kappa`` (a count) or ``fraction`` (of the weights in the task's view).
    From a fraction, κ = fraction·N rounded half up, computed on the decimal value of
    ``fraction`` as written (0.145 of 100 weights keeps 15, 0.05 of 10 keeps 1), and at least 1
    when fraction > 0: a positive fraction never empties a layer. With several layers in one
    view, one κ is shared across all of them, so the layers compete for the kept weights.

    Args:
        kappa: number κ ≥ 0 of weights kept.
        fraction: share of weights kept, 0 ≤ fraction ≤ 1.

    Θ: ``indices`` ``(κ,)`` int64 positions in the flattened weight, ``values`` ``(κ,)`` in the
    weight's dtype, ``shape``.

    Storage: :func:`sparse_bits` of the indices (32-bit values plus fixed-width gaps).

    Raises:
        ValueError/TypeError: if neither or both of ``kappa``/``fraction`` are given, κ < 0,
            fraction outside [0, 1]; at compress time, if κ exceeds the number of weights.
    """

    kappa: Optional[int] = None
    fraction: Optional[float] = None

    def __post_init__(self):
        if (self.kappa is None) == (self.fraction is None):
            raise ValueError(
                f"give exactly one of kappa (a count) or fraction (a share), got "
                f"kappa={self.kappa!r}, fraction={self.fraction!r}"
            )
        if self.kappa is not None:
            object.__setattr__(self, "kappa", check_int("kappa", self.kappa, 0))
        else:
            f = self.fraction
            if not is_real(f) or not 0.0 <= f <= 1.0:
                raise ValueError(f"fraction must be a number in [0, 1], got fraction={f!r}")
            object.__setattr__(self, "fraction", float(f))

    def kept(self, n: int) -> int:
        """κ for a view of ``n`` weights; raises ``ValueError`` if κ > n."""
        if self.kappa is None:
            if self.fraction == 0:
                return 0
            # Decimal(repr(f)) is the number as the user wrote it (0.145, not 0.14499999…)
            kappa = int((Decimal(repr(self.fraction)) * n + Decimal("0.5")).to_integral_value(ROUND_FLOOR))
            return min(n, max(1, kappa))
        if self.kappa > n:
            raise ValueError(f"kappa={self.kappa} is larger than the number of weights ({n}) in the task")
        return self.kappa

    def check_view(self, shape: torch.Size) -> None:
        self.kept(math.prod(shape))

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1)
        k = self.kept(x.numel())
        idx = torch.topk(x.abs(), k, sorted=False).indices if k > 0 else x.new_empty(0, dtype=torch.long)
        return _sparse(x, torch.sort(idx).values, w.shape)

    def describe(self) -> str:
        return f"P(κ={self.kappa})" if self.kappa is not None else f"P({100 * self.fraction:g}%)"


def project_l1_ball(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of ``x`` onto the ℓ1 ball ``{θ : ‖θ‖₁ ≤ radius}``.

    Sort-based exact algorithm (Duchi, Shalev-Shwartz, Singer & Chandra, ICML 2008, Fig. 1):
    ``θ_i = sign(x_i)·max(|x_i| − τ, 0)`` with the threshold τ ≥ 0 that makes ``‖θ‖₁ = radius``
    (τ = 0 if ``x`` is already inside). O(N log N); sums in float64.

    Args:
        x: ``(N,)`` finite floating-point values.
        radius: ``radius ≥ 0``.

    Returns:
        ``(N,)`` tensor like ``x``.

    Raises:
        ValueError/TypeError: ``radius`` not a finite real ≥ 0; ``x`` not a floating-point
            tensor, or holding NaN or ±inf.
    """
    radius = check_real("radius", radius, 0.0)
    check_finite(x, "x")
    a = x.abs()
    if float(a.to(torch.float64).sum()) <= radius:
        return x.clone()
    u = torch.sort(a, descending=True).values.to(torch.float64)
    css = torch.cumsum(u, 0)
    j = torch.arange(1, u.numel() + 1, dtype=torch.float64, device=x.device)
    ok = u - (css - radius) / j > 0  # true on a prefix of the sorted values
    rho = int(ok.sum())
    if rho == 0:  # radius = 0
        return torch.zeros_like(x)
    tau = float((css[rho - 1] - radius) / rho)
    return torch.sign(x) * (a.to(torch.float64) - tau).clamp_(min=0).to(x.dtype)


@register_compression
@dataclass(frozen=True)
class ConstraintL1Pruning(_SparseTheta):
    """ℓ1-constraint pruning: ``‖θ‖₁ ≤ κ`` [CVPR18, §3].

    C step (exact): the Euclidean projection of ``w`` onto the ℓ1 ball of radius κ
    (:func:`project_l1_ball`); it shrinks every weight by one threshold τ and zeroes those below.

    Args:
        kappa: the ℓ1 budget κ ≥ 0 (in the units of the weights).

    Θ and storage as the other pruning forms (nonzero positions and values; :func:`sparse_bits`).

    Raises:
        ValueError/TypeError: if ``kappa`` is not a finite real ≥ 0.
    """

    kappa: float
    trainable = ()  # the values are bound by ‖θ‖₁ ≤ κ: fine-tuning leaves them as they are

    def __post_init__(self):
        object.__setattr__(self, "kappa", check_real("kappa", self.kappa, 0.0))

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1)
        p = project_l1_ball(x, self.kappa)
        idx = torch.nonzero(p).reshape(-1)
        return _sparse(p, idx, w.shape)

    def describe(self) -> str:
        return f"P(ℓ1≤{self.kappa:g})"


@dataclass(frozen=True)
class _PenaltyPruning(_SparseTheta):
    """The penalty forms: a weight α ≥ 0 of the penalty, and a C step that needs μ."""

    alpha: float
    needs_mu = True

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_real("alpha", self.alpha, 0.0))


@register_compression
@dataclass(frozen=True)
class PenaltyL0Pruning(_PenaltyPruning):
    """ℓ0-penalty pruning: ``α‖θ‖₀`` added to the loss [CVPR18, §3].

    C step (exact): ``min_θ α‖θ‖₀ + μ/2 ‖w − θ‖²`` keeps ``w_i`` where ``w_i² > 2α/μ``
    (hard threshold at √(2α/μ)) and zeroes the rest; ties (equality) are pruned.

    Args:
        alpha: α ≥ 0, the loss cost of one kept weight.

    Raises:
        ValueError/TypeError: ``alpha`` not a finite real ≥ 0; at compress time, ``mu`` missing
            or ≤ 0.
    """

    def threshold(self, mu: float) -> float:
        """√(2α/μ): the smallest magnitude kept at this μ."""
        return math.sqrt(2.0 * self.alpha / check_mu(mu, self.describe()))

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        t = self.threshold(mu)
        x = w.detach().reshape(-1)
        idx = torch.nonzero(x.abs().to(torch.float64) > t).reshape(-1)
        return _sparse(x, idx, w.shape)

    def describe(self) -> str:
        return f"P(ℓ0 penalty α={self.alpha:g})"


@register_compression
@dataclass(frozen=True)
class PenaltyL1Pruning(_PenaltyPruning):
    """ℓ1-penalty pruning: ``α‖θ‖₁`` added to the loss [CVPR18, §3].

    C step (exact): ``min_θ α‖θ‖₁ + μ/2 ‖w − θ‖²`` is the soft threshold
    ``θ_i = sign(w_i)·max(|w_i| − α/μ, 0)``.

    Args:
        alpha: α ≥ 0.

    Raises:
        ValueError/TypeError: ``alpha`` not a finite real ≥ 0; at compress time, ``mu`` missing
            or ≤ 0.
    """

    def threshold(self, mu: float) -> float:
        """α/μ: every kept weight shrinks by this much."""
        return self.alpha / check_mu(mu, self.describe())

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        t = self.threshold(mu)
        x = w.detach().reshape(-1)
        p = torch.sign(x) * (x.abs().to(torch.float64) - t).clamp_(min=0).to(x.dtype)
        idx = torch.nonzero(p).reshape(-1)
        return _sparse(p, idx, w.shape)

    def describe(self) -> str:
        return f"P(ℓ1 penalty α={self.alpha:g})"

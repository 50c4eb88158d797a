"""Low-rank C step.

``min_{U, V} ‖W − U Vᵀ‖²_F`` with ``U`` of shape (m, r) and ``V`` of shape (n, r) is solved by
the truncated SVD (Eckart–Young); [CVPR20, §3] uses it as the C step of LC low-rank compression.
A conv weight ``(n_out, n_in, k_h, k_w)`` is viewed by the task as the matrix
``(n_out, n_in·k_h·k_w)`` (view ``"matrix"``: a k×k conv into r channels, then a 1×1 conv) or
``(n_out·k_h, n_in·k_w)`` (view ``"matrix_hw"``: a 1×k_w conv into r channels, then a k_h×1 conv;
Jaderberg, Vedaldi & Zisserman, BMVC 2014, scheme 2).

Rank selection [CVPR20, §3, eq. (4)]: ``min_r α·C(r) + μ/2 ‖W − W_r‖²`` with ``W_r`` the best
rank-r matrix, so ``‖W − W_r‖² = Σ_{i>r} s_i²`` over the singular values; every r in 0..min(m, n)
is scored from one SVD. C(r) is the storage (parameters) or the FLOPs (multiply-accumulates) of
the layer at rank r.

Storage: ``32·min(r·(m + n), m·n)`` bits: the two factors, or the dense matrix when a rank is so
high that the factors would be larger (r = min(rank, m, n)).

References: [CVPR20] Idelbayev & Carreira-Perpiñán, *Low-rank compression of neural nets:
learning the rank of each layer*, CVPR 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .base import (FLOAT_BITS, Compression, Theta, check_finite, check_int, check_mu, check_real, register_compression,
                   work_dtype)
from .coding import f32, need_int


def factor_params(r: int, m: int, n: int) -> int:
    """Parameters of an (m, n) matrix stored at rank r: ``min(r·(m + n), m·n)``."""
    return min(r * (m + n), m * n)


def _gram_eig(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Singular values and the smaller side's singular vectors of ``x`` from its Gram matrix.

    For ``x`` (m, n) with m ≤ n: the eigendecomposition of ``x xᵀ`` (m, m) gives the left singular
    vectors ``Q`` and ``s = √λ``; otherwise that of ``xᵀ x`` gives the right ones. In float64
    this is the truncated SVD (Eckart–Young) at a fraction of the cost of a full SVD of a wide
    conv matrix; singular values below ~1e-8·s_max lose relative accuracy, which changes the
    squared error by less than 1e-16·s_max².

    Returns:
        ``(s, Q)``: ``(min(m,n),)`` float64 singular values, descending, and ``(min(m,n),
        min(m,n))`` float64 orthonormal singular vectors as columns, in the same order.
    """
    x = x.to(torch.float64)
    g = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    lam, q = torch.linalg.eigh(g)
    return lam.flip(0).clamp_(min=0).sqrt_(), q.flip(1)


def _truncated_svd(x: torch.Tensor, r: int, eig=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Factors ``U (m, r)`` and ``V (r, n)`` of the best rank-r approximation ``U V`` of ``x``
    (in float64; the orthonormal factor is on the smaller side); ``eig`` reuses
    :func:`_gram_eig` of ``x``."""
    m, n = x.shape
    if r == 0:
        return x.new_zeros(m, 0, dtype=torch.float64), x.new_zeros(0, n, dtype=torch.float64)
    _, q = eig if eig is not None else _gram_eig(x)
    qr = q[:, :r]
    x = x.to(torch.float64)
    return (qr, qr.T @ x) if m <= n else (x @ qr, qr.T)


def _product(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    if u.dtype in (torch.float32, torch.float64):
        return u @ v
    return (u.float() @ v.float()).to(u.dtype)  # half types: multiply in float32


@register_compression
@dataclass(frozen=True)
class LowRank(Compression):
    """Low-rank compression to a given rank r [CVPR20].

    Args:
        rank: target rank r ≥ 0. r = 0 gives the zero matrix; r ≥ min(m, n) keeps the matrix
            exactly (its full-rank factorization).

    Θ: ``U`` ``(m, r)`` and ``V`` ``(r, n)`` (the factor on the smaller side has orthonormal rows
    or columns, the other carries the singular values),
    in the weight's dtype, with Δ(Θ) = U @ V.

    Storage: ``32·min(r·(m + n), m·n)`` bits with r = min(rank, m, n) (dense when the factors are larger).

    Raises:
        ValueError/TypeError: if ``rank`` < 0 or not an int; at compress time if the weight is
            not 2-D or has non-finite values.
    """

    rank: int
    needs_matrix = True  # class attributes, not fields
    trainable = ("U", "V")

    def __post_init__(self):
        object.__setattr__(self, "rank", check_int("rank", self.rank, 0))

    def check_view(self, shape: torch.Size) -> None:
        if len(shape) != 2 or 0 in tuple(shape):
            raise ValueError(f"LowRank needs a non-empty 2-D weight view, got shape {tuple(shape)}")

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        self.check_view(w.shape)
        m, n = w.shape
        r = min(self.rank, m, n)
        x = w.detach().to(work_dtype(w))
        u, v = _truncated_svd(x, r)
        u, v = u.to(w.dtype), v.to(w.dtype)
        return _product(u, v), {"U": u, "V": v}  # exactly what decompress gives

    def decompress(self, theta: Theta) -> torch.Tensor:
        if "dense" in theta:  # as a file stores it when the factors would be larger (decode)
            return theta["dense"]
        return _product(theta["U"], theta["V"])

    def bits(self, theta: Theta) -> int:
        if "dense" in theta:
            return FLOAT_BITS * int(theta["dense"].numel())
        (m, r), n = theta["U"].shape, theta["V"].shape[1]
        return FLOAT_BITS * factor_params(r, m, n)

    def macs(self, theta: Theta, positions: int = 1) -> int:
        """Multiply-accumulates per example: both factors counted at the layer's ``positions``
        (exact for linear layers and ``view="matrix"``; for ``view="matrix_hw"`` on a conv with
        vertical stride s_h > 1 the first factor runs at about s_h times more positions, so this
        is an undercount there)."""
        if "dense" in theta:
            return int(positions) * int(theta["dense"].numel())
        (m, r), n = theta["U"].shape, theta["V"].shape[1]
        return int(positions) * factor_params(r, m, n)

    def describe(self) -> str:
        return f"L(r={self.rank})"

    def factors(self, theta: Theta) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """``(U, V)`` when two layers of rank r > 0 are cheaper than the dense matrix
        (r(m + n) ≤ m·n), else ``None``: what :func:`lcbook.export.load` with ``factorized=True``
        splits a layer into."""
        if "dense" in theta:
            return None
        (m, r), n = theta["U"].shape, theta["V"].shape[1]
        return (theta["U"], theta["V"]) if 0 < r and r * (m + n) <= m * n else None

    def encode(self, theta: Theta, put) -> dict:
        """Sections ``U`` ``(m, r)`` and ``V`` ``(r, n)`` as float32, or ``dense`` ``(m, n)`` when
        the factors would be larger (as :meth:`bits` counts)."""
        if "dense" in theta:
            (m, n), r = theta["dense"].shape, min(theta["dense"].shape)
            put("dense", f32(theta["dense"]))
            return {"m": m, "n": n, "r": r, "dense": True}
        u, v = theta["U"], theta["V"]
        (m, r), n = u.shape, v.shape[1]
        if r * (m + n) > m * n:  # the dense matrix is smaller than its factors
            put("dense", f32(self.decompress(theta)))
            return {"m": m, "n": n, "r": r, "dense": True}
        put("U", f32(u))
        put("V", f32(v))
        return {"m": m, "n": n, "r": r, "dense": False}

    def decode(self, meta: dict, get) -> Theta:
        m, n, r = need_int(meta, "m"), need_int(meta, "n"), need_int(meta, "r")
        if meta.get("dense"):  # Δ itself (no m×n identity factor: O(m·n), not O(n²))
            return {"dense": get("dense", "float32", (m, n))}
        return {"U": get("U", "float32", (m, r)), "V": get("V", "float32", (r, n))}


_COSTS = ("storage", "flops")


@register_compression
@dataclass(frozen=True)
class RankSelection(Compression):
    """Low-rank compression that learns the rank of the layer [CVPR20].

    C step (exact over r): ``r* = argmin_{0 ≤ r ≤ min(m,n)} α·C(r) + μ/2·Σ_{i>r} s_i²``, then the
    truncated SVD at r*. As μ grows the error term weighs more and the rank rises; a larger α
    gives smaller ranks. One α shared by every layer trades error for cost across the network.

    Args:
        alpha: α ≥ 0, the loss cost of one unit of C(r) (one parameter or one MAC).
        cost: ``"storage"``: C(r) = min(r(m+n), m·n) parameters; ``"flops"``: C(r) = that
            times ``positions`` (multiply-accumulates of the layer at rank r).
        positions: number of output positions the layer's weight is applied at (H_out·W_out
            for a conv, 1 for a linear layer); used by ``cost="flops"``.

    Θ: ``U`` ``(m, r*)`` and ``V`` ``(r*, n)`` as :class:`LowRank`. Storage: ``32·min(r*(m+n), m·n)`` bits.

    Raises:
        ValueError/TypeError: ``alpha`` not a finite real ≥ 0, ``cost`` not ``"storage"`` or
            ``"flops"``, ``positions`` < 1; at compress time, ``mu`` missing or ≤ 0, a weight
            that is not 2-D or not finite.
    """

    alpha: float
    cost: str = "storage"
    positions: int = 1
    needs_matrix = True
    needs_mu = True
    trainable = ("U", "V")

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_real("alpha", self.alpha, 0.0))
        if self.cost not in _COSTS:
            raise ValueError(f"cost must be one of {_COSTS}, got cost={self.cost!r}")
        object.__setattr__(self, "positions", check_int("positions", self.positions, 1))

    def check_view(self, shape: torch.Size) -> None:
        if len(shape) != 2 or 0 in tuple(shape):
            raise ValueError(f"RankSelection needs a non-empty 2-D weight view, got shape {tuple(shape)}")

    def costs(self, m: int, n: int, device=None) -> torch.Tensor:
        """``(min(m,n)+1,)`` float64: C(r) for r = 0..min(m, n)."""
        r = torch.arange(min(m, n) + 1, dtype=torch.float64, device=device)
        c = torch.minimum(r * (m + n), torch.tensor(float(m * n), dtype=torch.float64, device=device))
        return c * (self.positions if self.cost == "flops" else 1)

    def objective(self, s: torch.Tensor, m: int, n: int, mu: float) -> torch.Tensor:
        """``(min(m,n)+1,)`` float64: α·C(r) + μ/2·Σ_{i>r} s_i² for every rank r, given the
        singular values ``s`` (descending)."""
        s2 = s.to(torch.float64) ** 2
        tail = torch.cat([torch.flip(torch.cumsum(torch.flip(s2, [0]), 0), [0]), s2.new_zeros(1)])
        return self.alpha * self.costs(m, n, s.device) + 0.5 * mu * tail

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        mu = check_mu(mu, self.describe())
        check_finite(w)
        self.check_view(w.shape)
        m, n = w.shape
        x = w.detach().to(work_dtype(w))
        if min(m, n) == 0:
            return w.detach().clone(), {"U": w.new_zeros(m, 0), "V": w.new_zeros(0, n)}
        eig = _gram_eig(x)
        r = int(torch.argmin(self.objective(eig[0], m, n, mu)))  # first minimum: the smallest best rank
        u, v = _truncated_svd(x, r, eig)
        u, v = u.to(w.dtype), v.to(w.dtype)
        return _product(u, v), {"U": u, "V": v}

    decompress = LowRank.decompress
    bits = LowRank.bits
    macs = LowRank.macs
    factors = LowRank.factors
    encode = LowRank.encode
    decode = LowRank.decode

    def describe(self) -> str:
        return f"L(rank selection, α={self.alpha:g}, {self.cost})"

"""Low-rank C step.

``min_{U, V} ‖W − U Vᵀ‖²_F`` with ``U`` of shape (m, r) and ``V`` of shape (n, r) is solved by
the truncated SVD (Eckart–Young); [CVPR20, §3] uses it as the C step of LC low-rank compression.
A conv weight ``(n_out, n_in, k, k)`` is viewed as the matrix ``(n_out, n_in·k·k)`` by the task.

Storage: ``32·r·(m + n)`` bits for the two factors (r = min(rank, m, n)).

References: [CVPR20] Idelbayev & Carreira-Perpiñán, *Low-rank compression of neural nets:
learning the rank of each layer*, CVPR 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .base import FLOAT_BITS, Compression, Theta, check_finite, check_int, work_dtype


@dataclass(frozen=True)
class LowRank(Compression):
    """Low-rank compression to a given rank r [CVPR20].

    Args:
        rank: target rank r ≥ 0. r = 0 gives the zero matrix; r ≥ min(m, n) keeps the matrix
            exactly (its full-rank factorization).

    Θ: ``U`` ``(m, r)`` (left singular vectors scaled by the singular values) and ``V`` ``(r, n)``,
    in the weight's dtype, with Δ(Θ) = U @ V.

    Storage: ``32·r·(m + n)`` bits with r = min(rank, m, n).

    Raises:
        ValueError/TypeError: if ``rank`` < 0 or not an int; at compress time if the weight is
            not 2-D or has non-finite values.
    """

    rank: int
    needs_matrix = True  # a class attribute, not a field

    def __post_init__(self):
        check_int("rank", self.rank, 0)

    def check_view(self, shape: torch.Size) -> None:
        if len(shape) != 2:
            raise ValueError(f"LowRank needs a 2-D weight view, got shape {tuple(shape)}")

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        self.check_view(w.shape)
        m, n = w.shape
        r = min(self.rank, m, n)
        x = w.detach().to(work_dtype(w))
        if r == 0:
            u, v = x.new_zeros(m, 0), x.new_zeros(0, n)
        else:
            uu, s, vh = torch.linalg.svd(x, full_matrices=False)
            u, v = uu[:, :r] * s[:r], vh[:r]
        u, v = u.to(w.dtype), v.to(w.dtype)
        delta = (u @ v) if w.dtype in (torch.float32, torch.float64) else (u.float() @ v.float()).to(w.dtype)
        return delta, {"U": u, "V": v}

    def decompress(self, theta: Theta) -> torch.Tensor:
        u, v = theta["U"], theta["V"]
        if u.dtype in (torch.float32, torch.float64):
            return u @ v
        return (u.float() @ v.float()).to(u.dtype)  # same arithmetic as compress for half types

    def bits(self, theta: Theta) -> int:
        (m, r), n = theta["U"].shape, theta["V"].shape[1]
        return FLOAT_BITS * r * (m + n)

    def describe(self) -> str:
        return f"L(r={self.rank})"

"""Pruning C steps.

ℓ0-constraint pruning [CVPR18]: ``min ‖w − θ‖²  s.t.  ‖θ‖₀ ≤ κ``. The solution keeps the κ
weights of largest magnitude and zeroes the rest [CVPR18, §3, Theorem 1 / eq. (5)].

Storage of a sparse vector (values plus positions) uses relative indexing with fixed-width gaps
(Han et al., *Deep Compression*, ICLR 2016, §3; the scheme of the LC toolkit): kept positions
are coded as gaps between consecutive kept indices in ``b`` bits each; a gap longer than
``2^b`` is bridged by filler entries (a zero value at the largest gap), each costing a slot. A slot
is ``b`` index bits plus a 32-bit value, and ``b`` is chosen in 1..32 to minimise the total.

References: [CVPR18] Carreira-Perpiñán & Idelbayev, *"Learning-compression" algorithms for neural
net pruning*, CVPR 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .base import FLOAT_BITS, Compression, Theta, check_finite, check_int


def sparse_bits(indices: torch.Tensor, value_bits: int = FLOAT_BITS) -> int:
    """Bits to store a sparse vector by relative indexing with fixed-width gaps.

    Args:
        indices: ``(κ,)`` positions of the kept entries in the flattened vector (any order).
        value_bits: bits per stored value (32 for float32).

    Returns:
        ``min_b Σ_i ⌈g_i / 2^b⌉ · (b + value_bits)`` over ``b`` in 1..32, where ``g_i ≥ 1`` is
        the gap from the previous kept position (the first from position −1). 0 for κ = 0.
    """
    if indices.numel() == 0:
        return 0
    idx = torch.sort(indices.reshape(-1).to(torch.long)).values
    gaps = torch.diff(idx, prepend=idx.new_tensor([-1])).to(torch.float64)
    widths = torch.arange(1, 33, dtype=torch.float64, device=gaps.device)
    slots = torch.ceil(gaps[None, :] / torch.pow(2.0, widths)[:, None]).sum(dim=1)
    return int((slots * (widths + value_bits)).min().item())


@dataclass(frozen=True)
class ConstraintL0Pruning(Compression):
    """ℓ0-constraint pruning: keep at most κ weights, the rest are zero [CVPR18].

    Give exactly one of ``kappa`` (a count) or ``fraction`` (of the weights in the task's view,
    κ = round(fraction·N)). With several layers in one view, one κ is shared across all of them,
    so the layers compete for the kept weights.

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
            check_int("kappa", self.kappa, 0)
        else:
            f = self.fraction
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
                raise ValueError(f"fraction must be a number in [0, 1], got fraction={f!r}")

    def kept(self, n: int) -> int:
        """κ for a view of ``n`` weights; raises ``ValueError`` if κ > n."""
        if self.kappa is None:
            return int(round(self.fraction * n))
        if self.kappa > n:
            raise ValueError(f"kappa={self.kappa} is larger than the number of weights ({n}) in the task")
        return self.kappa

    def check_view(self, shape: torch.Size) -> None:
        n = 1
        for d in shape:
            n *= d
        self.kept(n)

    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None) -> Tuple[torch.Tensor, Theta]:
        check_finite(w)
        x = w.detach().reshape(-1)
        k = self.kept(x.numel())
        idx = torch.topk(x.abs(), k, sorted=False).indices if k > 0 else x.new_empty(0, dtype=torch.long)
        idx = torch.sort(idx).values
        delta = torch.zeros_like(x)
        delta[idx] = x[idx]
        return delta.reshape(w.shape), {
            "indices": idx,
            "values": x[idx].clone(),
            "shape": torch.tensor(w.shape, dtype=torch.long),
        }

    def decompress(self, theta: Theta) -> torch.Tensor:
        shape = tuple(int(s) for s in theta["shape"])
        n = 1
        for s in shape:
            n *= s
        out = theta["values"].new_zeros(n)
        out[theta["indices"]] = theta["values"]
        return out.reshape(shape)

    def bits(self, theta: Theta) -> int:
        return sparse_bits(theta["indices"])

    def describe(self) -> str:
        return f"P(κ={self.kappa})" if self.kappa is not None else f"P({100 * self.fraction:g}%)"

"""The bit-level codes of the export format, shared by every compression's ``encode``/``decode``.

A compression writes its Θ as named byte sections through a *sink* and reads them back through
a *source* (:meth:`lcbook.compressions.Compression.encode` / ``decode``); the file around them
is :mod:`lcbook.export`. The codes here are the ones the storage accounting counts
(:func:`lcbook.compressions.sparse_bits`, ⌈log2 K⌉-bit indices, 32-bit floats), so a payload is
its accounting rounded up to whole bytes per section.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from .base import FLOAT_BITS

#: ``put(name, data)``: store the bytes ``data`` as the section ``name`` (relative to the task).
Sink = Callable[[str, bytes], None]
#: ``get(name, dtype=None, shape=None)``: the section ``name`` as bytes, or as a tensor of the NumPy
#: ``dtype`` and ``shape`` (raising :class:`FormatError` if it is missing or the size is wrong).
Source = Callable[..., object]


class FormatError(ValueError):
    """The file is not a valid lcbook export (bad magic, newer version, truncated, mismatched)."""


def f32(t: torch.Tensor) -> bytes:
    """``t`` as little-endian float32 bytes (C order, on the CPU)."""
    return t.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy().tobytes()


def pack_bits(values: torch.Tensor, width: int) -> bytes:
    """Pack non-negative ints ``values`` (each < 2**width) into ``width`` bits each, LSB first.

    Args:
        values: ``(n,)`` integer tensor, any device.
        width: bits per value, 0..63 (0 packs nothing).

    Returns:
        ``⌈n·width / 8⌉`` bytes.
    """
    v = values.detach().cpu().to(torch.int64).numpy().astype(np.uint64)
    if width == 0 or v.size == 0:
        return b""
    bits = ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little").tobytes()


def unpack_bits(data: bytes, width: int, count: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``count`` int64 values of ``width`` bits.

    Raises:
        FormatError: ``data`` holds fewer than ``count·width`` bits.
    """
    if width == 0 or count == 0:
        return torch.zeros(count, dtype=torch.long)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: count * width]
    if bits.size != count * width:
        raise FormatError(f"packed section holds {bits.size} bits, {count * width} expected")
    v = (bits.reshape(count, width).astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(1)
    return torch.from_numpy(v.astype(np.int64))


def sparse_layout(indices: torch.Tensor, value_bits: int = FLOAT_BITS) -> Tuple[int, int]:
    """``(b, bits)``: the gap width b in 1..32 that minimises the storage of a sparse vector by
    relative indexing with fixed-width gaps, and that storage in bits (see :func:`sparse_bits`).
    ``(1, 0)`` for κ = 0."""
    if indices.numel() == 0:
        return 1, 0
    idx = torch.sort(indices.reshape(-1).to(torch.long)).values
    gaps = torch.diff(idx, prepend=idx.new_tensor([-1])).to(torch.float64)
    widths = torch.arange(1, 33, dtype=torch.float64, device=gaps.device)
    slots = torch.ceil(gaps[None, :] / torch.pow(2.0, widths)[:, None]).sum(dim=1)
    total = slots * (widths + value_bits)
    best = int(torch.argmin(total))
    return best + 1, int(total[best].item())


def sparse_bits(indices: torch.Tensor, value_bits: int = FLOAT_BITS) -> int:
    """Bits to store a sparse vector by relative indexing with fixed-width gaps.

    Args:
        indices: ``(κ,)`` positions of the kept entries in the flattened vector (any order).
        value_bits: bits per stored value (32 for float32).

    Returns:
        ``min_b Σ_i ⌈g_i / 2^b⌉ · (b + value_bits)`` over ``b`` in 1..32, where ``g_i ≥ 1`` is
        the gap from the previous kept position (the first from position −1). 0 for κ = 0.
    """
    return sparse_layout(indices, value_bits)[1]


def gap_slots(indices: torch.Tensor, value_bits: int = FLOAT_BITS) -> Tuple[int, torch.Tensor, torch.Tensor]:
    """The gap code of sorted positions, as :func:`sparse_bits` counts it.

    Args:
        indices: ``(nnz,)`` distinct int64 positions (any order).
        value_bits: bits of each slot's value (the gap width that is best depends on it).

    Returns:
        ``(width, codes, last)``: the gap width b in bits; ``codes`` ``(slots,)`` the b-bit code of
        each slot (a gap too long for b bits is bridged by filler slots of code 2^b − 1, each
        advancing 2^b positions); ``last`` ``(nnz,)`` the slot of each position, in sorted order.
    """
    if indices.numel() == 0:
        return 1, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    idx = torch.sort(indices.to(torch.long).cpu()).values
    b = sparse_layout(idx, value_bits)[0]
    cap = 2**b
    gaps = torch.diff(idx, prepend=idx.new_tensor([-1]))
    n_slots = (gaps + cap - 1) // cap  # slots per kept entry (fillers + itself)
    codes = torch.full((int(n_slots.sum()),), cap - 1, dtype=torch.long)
    last = torch.cumsum(n_slots, 0) - 1
    codes[last] = gaps - (n_slots - 1) * cap - 1
    return b, codes, last


def slot_positions(width: int, codes: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`gap_slots`: the position each slot lands on (fillers included).

    Raises:
        FormatError: a width outside 1..62, or a position beyond a weight of ``n`` values.
    """
    if codes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    if not 1 <= width <= 62:
        raise FormatError(f"sparse section has gap width {width}, expected 1..62 bits")
    pos = torch.cumsum(codes + 1, 0) - 1
    if int(pos[-1]) >= n:
        raise FormatError(f"sparse section does not fit a weight of {n} values")
    return pos


def encode_sparse(indices: torch.Tensor, values: torch.Tensor) -> Tuple[int, int, bytes, bytes]:
    """``(width, slots, packed gaps, float32 values)`` of a sparse vector; filler slots hold 0.

    Args:
        indices: ``(nnz,)`` distinct int64 positions; values: ``(nnz,)`` floats, in the same order.
    """
    if indices.numel() == 0:
        return 1, 0, b"", b""
    order = torch.argsort(indices.cpu())
    b, codes, last = gap_slots(indices)
    out_vals = torch.zeros(codes.numel(), dtype=torch.float32)
    out_vals[last] = values.detach().cpu().float()[order]
    return b, int(codes.numel()), pack_bits(codes, b), out_vals.numpy().tobytes()


def decode_sparse(width: int, slots: int, gaps: bytes, values: bytes, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positions and values of the kept entries of :func:`encode_sparse` (fillers dropped).

    Raises:
        FormatError: as :func:`slot_positions`, or a values section of the wrong size.
    """
    if slots == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0)
    if not 1 <= width <= 62:
        raise FormatError(f"sparse section has gap width {width}, expected 1..62 bits")
    pos = slot_positions(width, unpack_bits(gaps, width, slots), n)
    vals = torch.from_numpy(np.frombuffer(values, dtype=np.float32).copy())
    if vals.numel() != slots:
        raise FormatError(f"sparse section does not fit a weight of {n} values")
    keep = vals != 0
    return pos[keep], vals[keep]


def shape_meta(shape) -> dict:
    """The header entry of a weight shape."""
    return {"shape": [int(s) for s in shape]}


def read_shape(meta: dict) -> Tuple[Tuple[int, ...], int]:
    """``(shape, numel)`` from a header entry written by :func:`shape_meta`.

    Raises:
        FormatError: the entry has no list of non-negative ints under ``"shape"``.
    """
    shape = meta.get("shape") if isinstance(meta, dict) else None
    if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise FormatError(f"a task's Θ entry needs a 'shape' of non-negative ints, got {shape!r:.60}")
    return tuple(shape), math.prod(shape)


def need_int(meta: dict, key: str, low: int = 0, high: Optional[int] = None) -> int:
    """``meta[key]`` as an int in ``[low, high]``, or :class:`FormatError` naming it."""
    v = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(v, int) or isinstance(v, bool) or v < low or (high is not None and v > high):
        raise FormatError(f"a task's Θ entry needs {key!r} as an int in [{low}, {high if high is not None else '∞'}], "
                          f"got {v!r:.40}")
    return v


def check_codes(codes: torch.Tensor, k: int, name: str) -> torch.Tensor:
    """``codes`` if every one indexes ``k`` items, else :class:`FormatError` naming the section."""
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
        raise FormatError(f"section {name!r} holds a code {int(codes.max())} outside 0..{k - 1}")
    return codes

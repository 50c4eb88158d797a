"""The interface every compression implements.

A compression is a small frozen dataclass of hyperparameters (K, κ, rank, ...). Its C step,
:meth:`Compression.compress`, solves the ℓ2 projection of Part I [P1, eq. (5)]::

    Θ = argmin_Θ ‖w − Δ(Θ)‖²

on torch tensors, on the weight's own device and dtype, and returns the pair ``(Δ(Θ), Θ)``.
``Θ`` is a dict of tensors (codebook and assignments, indices and values, factors): it warm-starts
the next C step, gives the storage in bits and is what an exported model stores.

References: [P1] Carreira-Perpiñán, arXiv:1707.01209, §4 (the C step is a compression of the
weights alone, with no data involved).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Callable, Dict, Optional, Tuple, Type

import torch

from .._checks import is_int, is_real

Theta = Dict[str, torch.Tensor]

#: Bits of one uncompressed floating-point value (the reference stores float32).
FLOAT_BITS = 32


def work_dtype(w: torch.Tensor) -> torch.dtype:
    """Arithmetic precision of a C step: float64 stays, every other float type runs in float32."""
    return torch.float64 if w.dtype == torch.float64 else torch.float32


def check_finite(w: torch.Tensor, name: str = "w") -> None:
    """Raise ``TypeError`` unless ``w`` is a floating-point tensor, ``ValueError`` if it holds
    NaN or ±inf.

    Called before any k-means, top-κ or SVD so that a diverged L step fails loudly instead of
    producing a NaN codebook.
    """
    if not torch.is_tensor(w):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(w).__name__}")
    if not w.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype={w.dtype}")
    if not bool(torch.isfinite(w).all()):
        bad = int((~torch.isfinite(w)).sum())
        raise ValueError(
            f"{name} has {bad} non-finite value(s) (NaN or inf) out of {w.numel()}; the C step "
            "needs finite weights (did the L step diverge? lower the learning rate or μ)"
        )


#: Compressions known by name to the file format and to :meth:`Compression.from_config`.
_REGISTRY: Dict[str, type] = {}


def register_compression(cls: Optional[type] = None, *, name: Optional[str] = None):
    """Class decorator: make a compression known by ``name`` (default: the class name) to the
    export format (:mod:`lcbook.export`) and to :meth:`Compression.from_config`, in the manner of
    torchao's ``register_quantize_module_handler``. A compression defined anywhere (a user's file,
    a test) becomes exportable by this decorator and its :meth:`~Compression.encode` /
    :meth:`~Compression.decode`; nothing else needs an edit.

    Use as ``@register_compression`` or ``@register_compression(name="MyQ")``, above
    ``@dataclass(frozen=True)``.

    Raises:
        TypeError: the class is not a dataclass subclass of :class:`Compression`.
        ValueError: ``name`` is already registered to another class.
    """
    if name is not None and not (isinstance(name, str) and name):
        raise TypeError(f"name must be a non-empty string, got name={name!r}")

    def deco(c: type) -> type:
        if not (isinstance(c, type) and issubclass(c, Compression) and dataclasses.is_dataclass(c)):
            raise TypeError(f"register_compression takes a dataclass subclass of Compression, got {c!r}")
        key = name or c.__name__
        old = _REGISTRY.get(key)
        if old is not None and old is not c and old.__qualname__ + old.__module__ != c.__qualname__ + c.__module__:
            raise ValueError(f"compression name {key!r} is already registered to {old.__module__}.{old.__qualname__}")
        _REGISTRY[key] = c
        c.registered_name = key
        return c

    return deco(cls) if cls is not None else deco


def registered_compressions() -> Dict[str, type]:
    """A copy of the registry: name → compression class."""
    return dict(_REGISTRY)


def _to_config(v: Any) -> Any:
    if isinstance(v, Compression):
        return v.config()
    if isinstance(v, (tuple, list)):
        return [_to_config(x) for x in v]
    return v


def _from_config(v: Any) -> Any:
    if isinstance(v, dict) and "class" in v:
        return Compression.from_config(v)
    if isinstance(v, list):
        return tuple(_from_config(x) for x in v)
    return v


class Compression(abc.ABC):
    """Base class of all compressions (quantization, pruning, low-rank, additive).

    Subclasses are frozen dataclasses whose fields are the hyperparameters. Each owns its whole
    contract:

    * :meth:`compress` — the C step ``(w, Θ_prev) -> (Δ(Θ), Θ)``;
    * :meth:`decompress` — ``Θ -> Δ(Θ)``;
    * :meth:`bits` — the storage of ``Θ`` in bits; :meth:`macs` and :meth:`slice_macs` — its
      multiply-accumulates;
    * :meth:`encode` / :meth:`decode` — Θ to and from the export format's byte sections, the
      codes that :meth:`bits` counts;
    * :meth:`check_theta` — a check of a Θ read from a checkpoint;
    * :meth:`config` / :meth:`from_config` — the hyperparameters as JSON, by registered name
      (:func:`register_compression`).

    Attributes:
        needs_matrix: ``True`` if the C step needs a 2-D weight (low-rank); the task then views a
            conv weight ``(n_out, n_in, k, k)`` as the matrix ``(n_out, n_in·k·k)``.
    """

    needs_matrix: bool = False
    #: ``True`` for penalty forms (ℓ0/ℓ1 penalty pruning, rank selection), whose C step
    #: ``min_Θ α·C(Θ) + μ/2‖w − Δ(Θ)‖²`` depends on μ; their :meth:`compress` needs ``mu``.
    needs_mu: bool = False
    #: Keys of Θ holding continuous values that fine-tuning may train with the discrete structure
    #: (assignments, kept positions, rank) fixed, e.g. ``("codebook",)`` or ``("U", "V")``.
    trainable: Tuple[str, ...] = ()

    @abc.abstractmethod
    def compress(self, w: torch.Tensor, theta: Optional[Theta] = None, mu: Optional[float] = None) -> Tuple[torch.Tensor, Theta]:
        """C step: the best compressed approximation of ``w``.

        Args:
            w: the weights to compress, any shape (2-D for low-rank), floating point.
            theta: the previous ``Θ`` of this compression, used as a warm start where the C step
                is iterative (k-means); ``None`` for a cold start.
            mu: the current penalty parameter μ > 0; used only by compressions with
                :attr:`needs_mu` (the others ignore it).

        Returns:
            ``(delta, theta)``: ``delta`` has the shape, dtype and device of ``w``;
            ``theta`` is a dict of tensors on ``w``'s device.

        Raises:
            ValueError: if ``w`` has non-finite values or does not fit the compression
                (e.g. κ larger than the number of weights).
        """

    @abc.abstractmethod
    def decompress(self, theta: Theta) -> torch.Tensor:
        """Δ(Θ): the dense weights that ``theta`` encodes."""

    @abc.abstractmethod
    def bits(self, theta: Theta) -> int:
        """Storage of ``theta`` in bits (see each subclass for its coding scheme)."""

    def canonical(self, theta: Theta) -> Theta:
        """The same Δ(Θ) in the form the C step returns (e.g. a sorted codebook, a scale ≥ 0);
        used after fine-tuning has moved Θ's continuous parts. The default changes nothing."""
        return theta

    def macs(self, theta: Theta, positions: int = 1) -> int:
        """Multiply-accumulates of one forward pass of a layer that uses ``Δ(Θ)`` as its weight.

        ``positions`` is the number of output positions the weight is applied at (H_out·W_out
        for a conv, 1 for a linear layer on one example). The default is the dense count
        ``positions · numel(Δ(Θ))``; pruning counts only the kept weights, low-rank its two
        factors.
        """
        return int(positions) * int(self.decompress(theta).numel())

    def check_view(self, shape: torch.Size) -> None:
        """Raise ``ValueError`` if a weight view of this ``shape`` cannot take this compression.

        Called once when a task is built, so bad settings fail before any training.
        """

    def describe(self) -> str:
        """A short human-readable name, e.g. ``"Q(K=2)"``."""
        return type(self).__name__

    def slice_macs(self, delta_part: torch.Tensor, positions: int = 1) -> int:
        """MACs of one layer whose weight is ``delta_part``, its slice of a Δ(Θ) that several
        layers share (one task over several layers). The default counts every weight; sparse
        forms count the nonzero ones."""
        return int(positions) * int(delta_part.numel())

    def factors(self, theta: Theta) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """``(U, V)`` with Δ(Θ) = U @ V in the task's matrix view when the layer is cheaper run as
        two layers (low-rank forms), else ``None`` (the default)."""
        return None

    def check_theta(self, theta: Theta) -> None:
        """Raise ``ValueError`` if ``theta``, read from a checkpoint, could not come from this
        compression (e.g. a codebook larger than K). Called after :meth:`decompress` succeeded
        on it; the default accepts it."""

    def encode(self, theta: Theta, put: Callable[[str, bytes], None]) -> Dict[str, Any]:
        """Write Θ to the export format: each array as a byte section through ``put(name, data)``
        (names are relative to the task, e.g. ``"codebook"``), coded as :meth:`bits` counts
        (:mod:`lcbook.compressions.coding`). Returns the JSON-able entries the header needs to
        decode them (shapes, counts).

        Raises:
            TypeError: this compression has no file encoding (the default).
        """
        raise TypeError(f"{type(self).__qualname__} has no file encoding: implement encode() and decode() "
                        f"(see lcbook.compressions.coding) to export it")

    def decode(self, meta: Dict[str, Any], get: Callable[..., Any]) -> Theta:
        """Inverse of :meth:`encode`: the Θ that :meth:`decompress` takes, from the header entries
        ``meta`` and the sections read by ``get(name, dtype=None, shape=None)``.

        Raises:
            lcbook.compressions.coding.FormatError: the entries or sections do not fit.
        """
        raise TypeError(f"{type(self).__qualname__} has no file encoding")

    def config(self) -> Dict[str, Any]:
        """The hyperparameters as JSON: ``{"class": registered name, field: value, …}``, nested
        compressions as their configs. :meth:`from_config` rebuilds an equal compression.

        Raises:
            TypeError: the class is not registered (:func:`register_compression`), or is a
                subclass of a registered class that would be rebuilt as its parent.
        """
        key = getattr(type(self), "registered_name", None)
        if key is None or _REGISTRY.get(key) is not type(self):
            raise TypeError(f"cannot export a {type(self).__qualname__}: it is not registered "
                            f"(decorate it with lcbook.compressions.register_compression); registered: "
                            f"{sorted(_REGISTRY)}")
        fields = {f.name: _to_config(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}
        return {"class": key, **fields}

    @staticmethod
    def from_config(cfg: Dict[str, Any]) -> "Compression":
        """The compression a :meth:`config` describes.

        Raises:
            ValueError: ``cfg`` is not a dict with a registered ``"class"``; its fields do not
                fit that class (the class's own validation message).
        """
        if not isinstance(cfg, dict) or not isinstance(cfg.get("class"), str):
            raise ValueError(f"a compression config is a dict with a 'class' name, got {cfg!r:.80}")
        cls: Optional[Type[Compression]] = _REGISTRY.get(cfg["class"])
        if cls is None:
            raise ValueError(f"unknown compression {cfg['class']!r} (import the module that registers it first); "
                             f"registered: {sorted(_REGISTRY)}")
        kwargs = {k: _from_config(v) for k, v in cfg.items() if k != "class"}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ValueError(f"config does not fit {cfg['class']}: {e}") from None


def shape_of(theta: Theta) -> Tuple[int, ...]:
    """The weight shape recorded in ``theta["shape"]`` as a tuple of ints."""
    return tuple(int(s) for s in theta["shape"])


def shape_tensor(shape) -> torch.Tensor:
    """A weight shape as the int64 tensor kept in Θ (so Θ holds tensors only)."""
    return torch.tensor(tuple(shape), dtype=torch.long)


def check_mu(mu, who: str) -> float:
    """Return ``mu`` as a float, raising ``ValueError`` unless it is a finite number > 0."""
    if mu is None or not is_real(mu) or not (math.isfinite(mu) and mu > 0):
        raise ValueError(f"{who} is a penalty form whose C step depends on μ: pass mu > 0 to compress(), got mu={mu!r}")
    return float(mu)


def check_real(name: str, value, minimum: float = 0.0, strict: bool = False) -> float:
    """Return ``value`` as a float, raising ``TypeError`` unless it is a finite real number (Python
    or NumPy) and ``ValueError`` unless it is ≥ ``minimum`` (> if strict)."""
    if not is_real(value) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {name}={value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} {minimum:g}, got {name}={value!r}")
    return float(value)


def ceil_log2(k: int) -> int:
    """⌈log2 k⌉ for k ≥ 1 (0 for k = 1): bits of one index into k items."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    return int(math.ceil(math.log2(k))) if k > 1 else 0


def check_int(name: str, value, minimum: int) -> int:
    """Return ``value`` as a Python int, raising ``TypeError`` unless it is an integer (a Python or
    NumPy integer, not a bool) and ``ValueError`` unless it is ≥ ``minimum``."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {name}={value}")
    return int(value)

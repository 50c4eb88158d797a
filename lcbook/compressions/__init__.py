"""Compressions and their C steps: quantization, pruning, low-rank and additive combinations."""

from .additive import AdditiveCombination
from .base import Compression, Theta, check_finite
from .low_rank import LowRank
from .pruning import ConstraintL0Pruning, sparse_bits
from .quantization import AdaptiveQuantization, FixedCodebook, ScaledBinarization, ScaledTernarization, kmeans_1d

__all__ = [
    "AdaptiveQuantization",
    "AdditiveCombination",
    "Compression",
    "ConstraintL0Pruning",
    "FixedCodebook",
    "ScaledBinarization",
    "ScaledTernarization",
    "LowRank",
    "Theta",
    "check_finite",
    "kmeans_1d",
    "sparse_bits",
]

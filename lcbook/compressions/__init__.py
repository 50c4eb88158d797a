"""Compressions and their C steps: quantization, pruning, low-rank and additive combinations."""

from .additive import AdditiveCombination, PruneThenQuantize, SequentialCombination
from .base import (FLOAT_BITS, Compression, Theta, ceil_log2, check_finite, register_compression,
                   registered_compressions)
from .low_rank import LowRank, RankSelection
from .pruning import (ConstraintL0Pruning, ConstraintL1Pruning, PenaltyL0Pruning, PenaltyL1Pruning, project_l1_ball,
                      sparse_bits, sparse_layout)
from .quantization import (AdaptiveQuantization, Binarization, FixedCodebook, ScaledBinarization, ScaledTernarization,
                           assign_nearest, kmeans_1d, optimal_quantization_1d)

__all__ = [
    "FLOAT_BITS",
    "AdaptiveQuantization",
    "AdditiveCombination",
    "Binarization",
    "Compression",
    "ConstraintL0Pruning",
    "ConstraintL1Pruning",
    "FixedCodebook",
    "LowRank",
    "PenaltyL0Pruning",
    "PenaltyL1Pruning",
    "PruneThenQuantize",
    "RankSelection",
    "ScaledBinarization",
    "ScaledTernarization",
    "SequentialCombination",
    "Theta",
    "assign_nearest",
    "ceil_log2",
    "check_finite",
    "kmeans_1d",
    "optimal_quantization_1d",
    "project_l1_ball",
    "register_compression",
    "registered_compressions",
    "sparse_bits",
    "sparse_layout",
]

"""Compressions and their C steps: quantization, pruning, low-rank and additive combinations."""

from .additive import AdditiveCombination, PruneThenQuantize, SequentialCombination
from .base import Compression, Theta, check_finite
from .low_rank import LowRank, RankSelection
from .pruning import (ConstraintL0Pruning, ConstraintL1Pruning, PenaltyL0Pruning, PenaltyL1Pruning, project_l1_ball,
                      sparse_bits)
from .quantization import (AdaptiveQuantization, Binarization, FixedCodebook, ScaledBinarization, ScaledTernarization,
                           kmeans_1d, optimal_quantization_1d)

__all__ = [
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
    "check_finite",
    "kmeans_1d",
    "optimal_quantization_1d",
    "project_l1_ball",
    "sparse_bits",
]

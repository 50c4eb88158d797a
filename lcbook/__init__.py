"""lcbook: neural-network compression as constrained optimization with the LC algorithm.

The package behind the book: compressions and their C steps (:mod:`lcbook.compressions`), the LC
algorithm (:mod:`lcbook.lc`), models, data, training and storage accounting.
"""

from ._version import __version__  # noqa: F401

from .compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    Binarization,
    Compression,
    ConstraintL0Pruning,
    ConstraintL1Pruning,
    FixedCodebook,
    LowRank,
    PenaltyL0Pruning,
    PenaltyL1Pruning,
    PruneThenQuantize,
    RankSelection,
    ScaledBinarization,
    ScaledTernarization,
    SequentialCombination,
)
from .profiles import chapter_profile, choose, profile
from .lc import LCAlgorithm, Task, direct_compression, geometric_mu
from .storage import layer_positions, storage_report
from .train import SGDLStep
from . import models  # noqa: E402,F401  (registers the book's models as export architectures)


__all__ = [
    "AdaptiveQuantization",
    "AdditiveCombination",
    "Binarization",
    "Compression",
    "ConstraintL0Pruning",
    "ConstraintL1Pruning",
    "FixedCodebook",
    "LCAlgorithm",
    "LowRank",
    "PenaltyL0Pruning",
    "PenaltyL1Pruning",
    "PruneThenQuantize",
    "RankSelection",
    "SGDLStep",
    "ScaledBinarization",
    "ScaledTernarization",
    "SequentialCombination",
    "Task",
    "chapter_profile",
    "choose",
    "direct_compression",
    "geometric_mu",
    "layer_positions",
    "profile",
    "storage_report",
]

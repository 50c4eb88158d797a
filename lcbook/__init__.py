"""lcbook: neural-network compression as constrained optimization with the LC algorithm.

The package behind the book: compressions and their C steps (:mod:`lcbook.compressions`), the LC
algorithm (:mod:`lcbook.lc`), models, data, training and storage accounting.
"""

from .compressions import (
    AdaptiveQuantization,
    AdditiveCombination,
    Compression,
    ConstraintL0Pruning,
    LowRank,
)
from .profiles import choose, profile
from .lc import LCAlgorithm, Task, geometric_mu
from .storage import storage_report
from .train import SGDLStep

__version__ = "0.1.0"

__all__ = [
    "AdaptiveQuantization",
    "AdditiveCombination",
    "Compression",
    "ConstraintL0Pruning",
    "LCAlgorithm",
    "LowRank",
    "SGDLStep",
    "Task",
    "choose",
    "geometric_mu",
    "profile",
    "storage_report",
]

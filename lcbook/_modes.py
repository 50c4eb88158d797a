"""Save and restore the train/eval mode of every module of a model."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def modes_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block the code may switch ``model`` (or any submodule) between train and eval;
    on exit, even after an exception, every module gets back the mode it had (a model whose
    submodules were in mixed modes stays mixed, which ``model.train(was_training)`` would not do)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode

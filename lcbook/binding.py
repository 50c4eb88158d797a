"""Tasks and their binding to a model: which parameters a compression applies to, and the view
(flat vector or matrix) its C step sees them in.

A :class:`Task` names parameters by their fully-qualified names; a :class:`Binding` resolves it
against one model. The LC loop (:mod:`lcbook.lc`), the storage accounting (:mod:`lcbook.storage`)
and the export format (:mod:`lcbook.export`) all work on bindings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .compressions.base import Compression, Theta

#: The views a task may ask for.
VIEWS = ("auto", "flat", "matrix", "matrix_hw")


@dataclass(frozen=True)
class Task:
    """A compression bound to one or more parameters of a model, by fully-qualified name.

    Args:
        params: a parameter name (``"fc1.weight"``) or a sequence of names compressed jointly
            (one codebook or one κ over all of them).
        compression: the :class:`~lcbook.compressions.Compression` to apply.
        view: how the tensors are seen by the C step: ``"flat"`` concatenates them into one
            vector (N,); ``"matrix"`` reshapes a single tensor ``(n_out, …)`` to
            ``(n_out, n_in·k_h·k_w)``; ``"matrix_hw"`` views a single conv weight
            ``(n_out, n_in, k_h, k_w)`` as ``(n_out·k_h, n_in·k_w)`` (a low-rank factorization
            then is a 1×k_w conv followed by a k_h×1 conv; Jaderberg et al., BMVC 2014);
            ``"auto"`` (default) picks ``"matrix"`` for compressions that need one (low-rank)
            and ``"flat"`` otherwise.
        name: a label for tables (default: the parameter names).

    Raises:
        ValueError/TypeError: empty ``params``, a name that is not a string, a view not in
            ``("auto", "flat", "matrix", "matrix_hw")``, or a compression that is not a Compression.
    """

    params: Union[str, Tuple[str, ...]]
    compression: Compression
    view: str = "auto"
    name: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.params, str) and not hasattr(self.params, "__iter__"):
            raise TypeError(f"params must be a parameter name or a sequence of names, got params={self.params!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string or None, got name={self.name!r}")
        params = (self.params,) if isinstance(self.params, str) else tuple(self.params)
        if not params:
            raise ValueError("params must name at least one parameter, got an empty sequence")
        for p in params:
            if not isinstance(p, str):
                raise TypeError(f"parameter names must be strings, got {p!r}")
        if len(set(params)) != len(params):
            raise ValueError(f"params names a parameter twice: {params}")
        object.__setattr__(self, "params", params)
        if not isinstance(self.compression, Compression):
            raise TypeError(f"compression must be a Compression, got {type(self.compression).__name__}")
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got view={self.view!r}")

    @property
    def label(self) -> str:
        return self.name or ",".join(self.params)


class Binding:
    """A :class:`Task` resolved against a model: its parameter tensors, the view the C step sees
    them in, and the task's LC state. :attr:`lcbook.lc.LCAlgorithm.tasks` is a list of these;
    :func:`lcbook.storage.storage_report` and :mod:`lcbook.export` read them.

    Args:
        task: the task.
        named: the model's parameters by name (``dict(model.named_parameters())``).

    Attributes:
        task: the :class:`Task`.
        tensors: the bound parameters (the model's own tensors, in ``task.params`` order).
        view: the resolved view, ``"flat"``, ``"matrix"`` or ``"matrix_hw"`` (never ``"auto"``).
        theta: Θ of the last C step (``None`` before direct compression).
        delta: Δ(Θ) in the view's shape (``None`` before direct compression).
        lam: the Lagrange multipliers λ in the view's shape (zeros for the quadratic penalty).

    Raises:
        ValueError: a parameter name the model lacks, a view that does not fit the parameters,
            or a view shape the compression cannot take (:meth:`Compression.check_view`).
    """

    def __init__(self, task: Task, named: Dict[str, nn.Parameter]):
        missing = [p for p in task.params if p not in named]
        if missing:
            some = ", ".join(list(named)[:8])
            raise ValueError(
                f"task {task.label!r}: no parameter named {missing[0]!r} in the model "
                f"(parameters include: {some}, ...)"
            )
        self.task = task
        self.tensors = [named[p] for p in task.params]
        view = task.view
        if view == "auto":
            view = "matrix" if task.compression.needs_matrix else "flat"
        if view.startswith("matrix") and len(self.tensors) != 1:
            raise ValueError(f"task {task.label!r}: view {view!r} takes exactly one parameter, got {len(self.tensors)}")
        if view == "matrix" and self.tensors[0].ndim < 2:
            raise ValueError(f"task {task.label!r}: view 'matrix' (needed by {task.compression.describe()}) takes a "
                             f"parameter with ≥ 2 dimensions, got shape {tuple(self.tensors[0].shape)}")
        if view == "matrix_hw" and self.tensors[0].ndim != 4:
            raise ValueError(f"task {task.label!r}: view 'matrix_hw' takes a conv weight (n_out, n_in, k_h, k_w), "
                             f"got shape {tuple(self.tensors[0].shape)}")
        self.view = view
        w = self.gather()
        try:
            task.compression.check_view(w.shape)
        except ValueError as e:
            raise ValueError(f"task {task.label!r}: {e}") from None
        self.theta: Optional[Theta] = None
        self.delta: Optional[torch.Tensor] = None  # Δ(Θ) in view shape
        self.lam = torch.zeros_like(w)  # λ in view shape

    def gather(self) -> torch.Tensor:
        """The weights in the task's view: ``(N,)`` for ``"flat"`` (the parameters concatenated),
        ``(n_out, n_in·k_h·k_w)`` for ``"matrix"``, ``(n_out·k_h, n_in·k_w)`` for
        ``"matrix_hw"``; a detached tensor (a view of the parameter where possible)."""
        ts = [t.detach() for t in self.tensors]
        if self.view == "matrix":
            return ts[0].reshape(ts[0].shape[0], -1)
        if self.view == "matrix_hw":
            o, i, kh, kw = ts[0].shape
            return ts[0].permute(0, 2, 1, 3).reshape(o * kh, i * kw)
        return ts[0].reshape(-1) if len(ts) == 1 else torch.cat([t.reshape(-1) for t in ts])

    def scatter(self, v: torch.Tensor) -> List[torch.Tensor]:
        """Split a view-shaped tensor back into tensors shaped like the parameters."""
        if self.view == "matrix_hw":
            o, i, kh, kw = self.tensors[0].shape
            return [v.reshape(o, kh, i, kw).permute(0, 2, 1, 3)]
        flat = v.reshape(-1)
        out, i = [], 0
        for t in self.tensors:
            out.append(flat[i : i + t.numel()].view_as(t))
            i += t.numel()
        return out

    def delta_from(self, theta: Theta) -> torch.Tensor:
        """Δ(Θ) in the view's shape (Θ's own dtype and device) for a Θ that did not come from this
        binding's C step: a checkpoint's, or a fine-tuned one.

        Raises:
            ValueError: naming the task, if Θ does not fit the compression (it cannot be
                decompressed, or :meth:`~lcbook.compressions.Compression.check_theta` refuses it)
                or decompresses to another shape than the view.
        """
        comp = self.task.compression
        try:
            d = comp.decompress(dict(theta))
        except (KeyError, IndexError, RuntimeError, TypeError) as e:
            raise ValueError(f"task {self.task.label!r}: Θ does not fit {comp.describe()} ({e!r})") from e
        if d.numel() != self.lam.numel() or (d.ndim > 1 and tuple(d.shape) != tuple(self.lam.shape)):
            raise ValueError(f"task {self.task.label!r}: Θ decompresses to shape {tuple(d.shape)}, the task's view "
                             f"is {tuple(self.lam.shape)}")
        try:
            comp.check_theta(dict(theta))
        except ValueError as e:
            raise ValueError(f"task {self.task.label!r}: {e}") from None
        return d.reshape(self.lam.shape)

    def numel(self) -> int:
        """Number of weights the task compresses (all its parameters)."""
        return sum(t.numel() for t in self.tensors)

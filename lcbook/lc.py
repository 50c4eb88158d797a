"""The Learning-Compression (LC) algorithm [P1].

Compression is the constrained problem ``min_{w,Θ} L(w) s.t. w = Δ(Θ)``. LC solves it with the
augmented Lagrangian (or the quadratic penalty, λ ≡ 0) over an increasing schedule of μ
[P1, §4, Fig. 3]:

* start: ``Θ = Π(w̄)`` — the *direct compression* (DC) of the reference weights; ``λ = 0``;
* for ``μ = μ0 < μ1 < …``:

  - **L step**: ``w ← argmin_w L(w) + μ/2 ‖w − Δ(Θ) − λ/μ‖²`` (a few epochs of SGD);
  - **C step**: ``Θ ← argmin_Θ ‖(w − λ/μ) − Δ(Θ)‖²`` (each task's compression);
  - **multipliers**: ``λ ← λ − μ (w − Δ(Θ))``.

The final model is ``Δ(Θ)``. :class:`Task` binds a compression to parameters by name; a model
may have any number of tasks, single and additive mixed; one task may span several tensors.

References: [P1] Carreira-Perpiñán, *Model compression as constrained optimization, with
application to neural nets. Part I: general framework*, arXiv:1707.01209.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from tqdm.std import tqdm

from ._checks import is_int, is_real
from ._io import atomic_save, checkpoint_path
from ._modes import modes_restored
from ._rng import is_generator_state, restore_rng, rng_state
from .binding import Binding, Task  # noqa: F401  (Task re-exported: lcbook.lc.Task)
from .compressions.base import Theta

log = logging.getLogger(__name__)

LStep = Callable[["LCAlgorithm"], Dict[str, float]]

#: History keys written by the LC loop itself; an L step or evaluate may not return them.
_RESERVED = frozenset({"step", "mu", "distance", "bits", "l_seconds", "c_seconds"})


def _check_stats(stats, who: str) -> Dict[str, float]:
    """An L step's or evaluate's return value as ``{str: float}``, or a clear ``TypeError``."""
    if stats is None:
        return {}
    if not isinstance(stats, dict):
        raise TypeError(f"{who} must return a dict of numbers (or None), got {type(stats).__name__}")
    for k, v in stats.items():
        if not isinstance(k, str) or not is_real(v):
            raise TypeError(f"{who} must return a dict of str → number, got {k!r}: {v!r}")
    return dict(stats)


def geometric_mu(mu0: float, a: float, steps: int) -> List[float]:
    """The μ schedule ``μ_k = μ0·a^k`` for k = 0..steps−1 [P1, §6].

    Raises:
        ValueError: if ``mu0`` ≤ 0, ``a`` < 1 or ``steps`` < 1.
    """
    for name, v in (("mu0", mu0), ("a", a)):
        if not is_real(v):
            raise TypeError(f"{name} must be a real number, got {name}={v!r}")
    if not (mu0 > 0 and math.isfinite(mu0)):
        raise ValueError(f"mu0 must be a finite number > 0, got mu0={mu0!r}")
    if not (a >= 1 and math.isfinite(a)):
        raise ValueError(f"a must be ≥ 1 (μ must not decrease), got a={a!r}")
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps must be an int ≥ 1, got steps={steps!r}")
    try:
        mus = [float(mu0) * float(a) ** k for k in range(steps)]
    except OverflowError:
        mus = [math.inf]
    if not math.isfinite(mus[-1]):
        raise ValueError(f"mu0·a^(steps−1) overflows: mu0={mu0!r}, a={a!r}, steps={steps}")
    return mus


class LCAlgorithm:
    """The LC algorithm on a model with one or more compression tasks.

    Args:
        model: the network; its current weights are the reference ``w̄``.
        tasks: one or more :class:`Task`; a parameter may belong to one task only.
        l_step: the L step, a function ``l_step(lc) -> dict`` that trains ``lc.model`` on
            ``L(w) + μ/2‖w − Δ(Θ) − λ/μ‖²`` (use :meth:`penalty` or :meth:`add_penalty_grad_`);
            :class:`lcbook.train.SGDLStep` is the default recipe.
        mu_schedule: increasing penalty parameters μ_k (see :func:`geometric_mu`).
        evaluate: optional ``evaluate(model) -> dict`` called on the compressed model Δ(Θ)
            after each C step (e.g. test error in percent); its entries go into the history.
        multipliers: ``True`` for the augmented Lagrangian, ``False`` for the quadratic penalty.
        progress: show a tqdm bar over the μ steps (to stderr).

    Attributes:
        history: list of per-step records (dicts), the first for direct compression.

    Raises:
        ValueError/TypeError: empty task list, a parameter in two tasks or missing from the
            model, a decreasing or non-positive μ schedule, or a task that does not fit
            its weights (e.g. κ larger than the number of weights).
    """

    def __init__(
        self,
        model: nn.Module,
        tasks: Sequence[Task],
        l_step: LStep,
        mu_schedule: Sequence[float],
        evaluate: Optional[Callable[[nn.Module], Dict[str, float]]] = None,
        multipliers: bool = True,
        progress: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(tasks, Task):
            tasks = [tasks]
        if tasks is None or isinstance(tasks, (str, bytes)) or not hasattr(tasks, "__iter__"):
            raise TypeError(f"tasks must be a sequence of Task, got {type(tasks).__name__}")
        tasks = list(tasks)
        if not tasks:
            raise ValueError("tasks is empty: give at least one Task to compress")
        for i, t in enumerate(tasks):
            if not isinstance(t, Task):
                raise TypeError(f"tasks[{i}] must be a Task, got {type(t).__name__}")
        seen: Dict[str, str] = {}
        for t in tasks:
            for p in t.params:
                if p in seen:
                    raise ValueError(f"parameter {p!r} is in two tasks ({seen[p]!r} and {t.label!r}); each weight takes one compression (use AdditiveCombination to combine)")
                seen[p] = t.label
        if isinstance(mu_schedule, (str, bytes)) or not hasattr(mu_schedule, "__iter__"):
            raise TypeError(f"mu_schedule must be a sequence of numbers, got {mu_schedule!r}")
        mus = list(mu_schedule)
        for m in mus:
            if not is_real(m):
                raise TypeError(f"mu_schedule must hold real numbers, got {m!r}")
        mus = [float(m) for m in mus]
        if not mus:
            raise ValueError("mu_schedule is empty: give at least one μ")
        if any(not (m > 0 and math.isfinite(m)) for m in mus):
            raise ValueError(f"mu_schedule must hold finite values > 0, got {mus}")
        if any(b < a for a, b in zip(mus, mus[1:])):
            raise ValueError(f"mu_schedule must not decrease, got {mus}")
        if not callable(l_step):
            raise TypeError(f"l_step must be callable, got {type(l_step).__name__}")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"evaluate must be callable or None, got {type(evaluate).__name__}")
        self.model = model
        named = dict(model.named_parameters())
        self.tasks = [Binding(t, named) for t in tasks]
        self.l_step = l_step
        self.mu_schedule = mus
        self.evaluate = evaluate
        self.multipliers = bool(multipliers)
        self.progress = progress
        self.step = -1  # index of the last completed μ step; -1: none yet
        self.mu = 0.0
        self.history: List[Dict[str, float]] = []
        #: wall time in seconds of DC and the LC steps so far (L step, C step, evaluation),
        #: summed over every process of a resumed run (kept in the checkpoint)
        self.seconds = 0.0
        self._targets: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None

    # --- the steps -------------------------------------------------------------------------

    def c_step(self) -> float:
        """C step of every task on ``w − λ/μ``; returns its wall time in seconds.

        Penalty forms (ℓ0/ℓ1 penalty pruning, rank selection) get the current μ; in direct
        compression (μ = 0) they get the first μ of the schedule.
        """
        t0 = time.perf_counter()
        mu = self.mu if self.mu > 0 else self.mu_schedule[0]
        out = []
        for b in self.tasks:  # every task first: a C step that fails changes no task
            w = b.gather()
            x = w - b.lam / self.mu if (self.multipliers and self.mu > 0) else w
            try:
                out.append(b.task.compression.compress(x, b.theta, mu=mu))
            except (ValueError, TypeError) as e:
                raise type(e)(f"task {b.task.label!r}: {e}") from e
        for b, (delta, theta) in zip(self.tasks, out):
            b.delta, b.theta = delta, theta
        self._targets = None
        return time.perf_counter() - t0

    def direct_compression(self) -> Dict[str, float]:
        """Direct compression (DC): Θ = Π(w) of the current weights, λ = 0 [P1, §3].

        Restarts the run: the history is cleared and begins with the record of step ``"DC"``,
        which is returned.
        """
        t0 = time.perf_counter()
        saved = [(b.lam.clone(), b.theta, b.delta) for b in self.tasks]
        state = (self.mu, self.step, self.history)
        for b in self.tasks:
            b.lam.zero_()
            b.theta = None
        self.mu, self.step, self.history = 0.0, -1, []
        try:
            secs = self.c_step()
        except BaseException:  # a C step that fails (e.g. NaN weights) leaves the run as it was
            for b, (lam, theta, delta) in zip(self.tasks, saved):
                b.lam.copy_(lam)
                b.theta, b.delta = theta, delta
            self.mu, self.step, self.history = state
            raise
        rec = self._record("DC", c_seconds=secs, l_seconds=0.0, l_stats={})
        self.seconds = time.perf_counter() - t0  # the run's clock starts over with DC
        return rec

    def update_multipliers(self) -> None:
        """``λ ← λ − μ (w − Δ(Θ))`` (augmented Lagrangian only)."""
        if not self.multipliers:
            return
        self._require_theta()
        for b in self.tasks:
            b.lam.sub_(self.mu * (b.gather() - b.delta))
        self._targets = None

    def _require_theta(self) -> None:
        if any(b.delta is None for b in self.tasks):
            raise RuntimeError("no Θ yet: run direct_compression() or run() first")

    def targets(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Pairs ``(w_p, Δ_p + λ_p/μ)`` for every compressed parameter tensor, as the L step
        pulls each ``w_p`` towards its target."""
        self._require_theta()
        if self._targets is None:
            pairs = []
            for b in self.tasks:
                tgt = b.delta + b.lam / self.mu if (self.multipliers and self.mu > 0) else b.delta
                pairs.extend(zip(b.tensors, [t.detach() for t in b.scatter(tgt)]))
            self._targets = pairs
        return self._targets

    def penalty(self) -> torch.Tensor:
        """``μ/2 Σ ‖w − Δ(Θ) − λ/μ‖²`` as a differentiable scalar (add it to the L step loss)."""
        return 0.5 * self.mu * sum(((w - t) ** 2).sum() for w, t in self.targets())

    @torch.no_grad()
    def add_penalty_grad_(self) -> None:
        """Add the gradient ``μ (w − Δ(Θ) − λ/μ)`` of :meth:`penalty` to each ``w.grad``.

        Equivalent to back-propagating :meth:`penalty`, without building its graph; call it
        after ``loss.backward()`` and before ``optimizer.step()``. The tensors are updated with
        ``torch._foreach_*`` (a few fused kernels, not one per tensor: what matters on a GPU).
        """
        pairs = self.targets()
        if not pairs:
            return
        ws, ts = zip(*pairs)
        grads = torch._foreach_sub(list(ws), list(ts))  # one fused kernel per dtype/device group
        torch._foreach_mul_(grads, self.mu)
        have = [(w.grad, g) for w, g in zip(ws, grads) if w.grad is not None]
        if have:
            torch._foreach_add_([a for a, _ in have], [g for _, g in have])
        for w, g in zip(ws, grads):
            if w.grad is None:
                w.grad = g

    def distance(self) -> float:
        """``Σ_tasks ‖w − Δ(Θ)‖²``: how far the weights are from feasible."""
        self._require_theta()
        return float(sum(((b.gather() - b.delta) ** 2).sum() for b in self.tasks))

    # --- running -------------------------------------------------------------------------

    def run(self, checkpoint: Optional[Union[str, "os.PathLike"]] = None) -> List[Dict[str, float]]:
        """Run DC (if not done yet) and the remaining μ steps; returns :attr:`history`.

        Continues from :attr:`step` so that a run restored by :meth:`load_state_dict` resumes.

        Args:
            checkpoint: optional file path. If it exists, the run first resumes from it (it must
                come from the same tasks and μ schedule); after DC and after every L/C step the
                complete state (:meth:`state_dict`: weights, Θ, λ, step, μ, history, RNG and the
                L step's state) is written to it atomically, so an interrupted run started again
                with the same command ends as an uninterrupted one would (bit for bit on a CPU).

                The L step's state is saved only if it has ``state_dict()``/``load_state_dict()``
                (:class:`lcbook.train.SGDLStep` does: its batch order and augmentation); with a
                plain function as L step a ``UserWarning`` says that a resumed run may differ.

        The model's train/eval modes are restored at the end (the L step trains in train mode).

        Raises:
            ValueError: the checkpoint is from a different configuration or does not fit.
            RuntimeError: this LCAlgorithm was made by :func:`direct_compression` (it has no L step).
        """
        if self.l_step is _no_l_step:
            _no_l_step(self)
        with modes_restored(self.model):
            return self._run(checkpoint)

    def _run(self, checkpoint) -> List[Dict[str, float]]:
        if checkpoint is not None:
            if not (hasattr(self.l_step, "state_dict") and hasattr(self.l_step, "load_state_dict")):
                warnings.warn("l_step has no state_dict()/load_state_dict(): the checkpoint saves the weights, Θ, λ, "
                              "μ step and RNG but not the L step's own state (e.g. the batch order of the SGDLStep "
                              "it calls), so a resumed run may differ from an uninterrupted one; give the function "
                              "those two methods (see tests/test_resume.py) or pass an SGDLStep", UserWarning, stacklevel=3)
            checkpoint = checkpoint_path(checkpoint)
            if checkpoint.is_file():
                try:
                    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
                except Exception as e:  # noqa: BLE001 - truncated, empty or foreign files
                    raise ValueError(f"checkpoint {str(checkpoint)!r} is unreadable (truncated or not an LC "
                                     f"checkpoint: {type(e).__name__}); delete it to start again") from None
                if not isinstance(state, dict):
                    raise ValueError(f"checkpoint {str(checkpoint)!r} is not an LC checkpoint (a {type(state).__name__})")
                saved, now = state.get("config") or {}, self._config()
                if saved != now:
                    diff = sorted(k for k in set(now) | set(saved) if saved.get(k) != now.get(k))
                    raise ValueError(f"checkpoint {str(checkpoint)!r} is from another configuration (its "
                                     f"{', '.join(diff) or 'config'} differ from this run's); delete it or use another path")
                self.load_state_dict(state)
                log.info("resumed from %s at step %s", checkpoint, self.step)
        if self.tasks[0].theta is None or not self.history:
            self.direct_compression()
            if checkpoint is not None:
                atomic_save(self.state_dict(), checkpoint)
        todo = range(self.step + 1, len(self.mu_schedule))
        bar = tqdm(todo, desc="LC", disable=not self.progress, leave=False)
        for k in bar:
            self.mu = self.mu_schedule[k]
            self._targets = None
            t0 = time.perf_counter()
            stats = _check_stats(self.l_step(self), "the L step (l_step)")
            l_secs = time.perf_counter() - t0
            c_secs = self.c_step()
            # record (and evaluate) before λ changes: if evaluate fails, run() again redoes step k
            # without having updated λ twice
            rec = self._record(k, c_seconds=c_secs, l_seconds=l_secs, l_stats=stats)
            self.update_multipliers()
            self.step = k
            self.seconds += time.perf_counter() - t0
            if checkpoint is not None:
                atomic_save(self.state_dict(), checkpoint)
            bar.set_postfix({k2: f"{v:.3g}" for k2, v in rec.items() if k2 in ("mu", "distance", "test_error")})
        bar.close()
        return self.history

    def _record(self, step, c_seconds: float, l_seconds: float, l_stats: Dict[str, float]) -> Dict[str, float]:
        rec: Dict[str, float] = {"step": step, "mu": self.mu, "distance": self.distance()}
        extra = dict(l_stats)
        if self.evaluate is not None:
            with self.compressed(), torch.no_grad():
                extra.update(_check_stats(self.evaluate(self.model), "evaluate"))
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"the L step or evaluate returned reserved history keys {sorted(clash)}; rename them")
        rec.update({k: float(v) for k, v in extra.items()})
        rec["bits"] = self.compressed_bits()
        rec["l_seconds"], rec["c_seconds"] = l_seconds, c_seconds
        self.history.append(rec)
        log.info("LC step %s: %s", step, rec)
        return rec

    def set_thetas(self, thetas: Sequence[Theta], step="FT", l_seconds: float = 0.0,
                   stats: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Replace every task's Θ (one per task, in order, e.g. fine-tuned by
        :func:`lcbook.train.finetune`), set Δ(Θ) from them and add a history record with ``step``.

        Returns:
            the new history record (with ``stats`` and, if the run has ``evaluate``, its numbers).

        Raises:
            ValueError: not one Θ per task, or a Θ that does not decompress to its task's view.
        """
        thetas = list(thetas)
        if len(thetas) != len(self.tasks):
            raise ValueError(f"thetas must hold one Θ per task ({len(self.tasks)}), got {len(thetas)}")
        stats = _check_stats(stats, "set_thetas(stats=)")
        deltas = []
        for b, th in zip(self.tasks, thetas):  # everything is checked before anything changes
            if not (isinstance(th, dict) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in th.items())):
                raise ValueError(f"task {b.task.label!r}: a Θ is a dict of tensors, got {th!r:.60}")
            d = b.delta_from(th)
            if not (d.is_floating_point() and bool(torch.isfinite(d).all())):
                raise ValueError(f"task {b.task.label!r}: Θ decompresses to non-finite or non-float values")
            deltas.append(d.to(device=b.lam.device, dtype=b.lam.dtype))
        with torch.no_grad():
            for b, th, d in zip(self.tasks, thetas, deltas):
                b.theta, b.delta = th, d
        self._targets = None
        return self._record(step, c_seconds=0.0, l_seconds=l_seconds, l_stats=stats)

    # --- the compressed model ------------------------------------------------------------

    @contextlib.contextmanager
    def compressed(self) -> Iterator[nn.Module]:
        """Within the block the model's compressed weights are Δ(Θ); on exit every parameter,
        every buffer (e.g. BatchNorm statistics) and the train/eval mode are restored, even after
        an exception."""
        self._require_theta()
        saved = {k: v.detach().clone() for k, v in self.model.state_dict(keep_vars=True).items()}
        with modes_restored(self.model):
            try:
                with torch.no_grad():
                    for b in self.tasks:
                        for t, d in zip(b.tensors, b.scatter(b.delta)):
                            t.copy_(d)
                yield self.model
            finally:
                with torch.no_grad():
                    for k, v in self.model.state_dict(keep_vars=True).items():
                        v.copy_(saved[k])

    @torch.no_grad()
    def apply_compression_(self) -> None:
        """Write Δ(Θ) into the model's weights for good (the final compressed model)."""
        self._require_theta()
        for b in self.tasks:
            for t, d in zip(b.tensors, b.scatter(b.delta)):
                t.copy_(d)

    def compressed_bits(self) -> int:
        """Bits of all tasks' Θ (excludes the parameters no task compresses)."""
        self._require_theta()
        return sum(b.task.compression.bits(b.theta) for b in self.tasks)

    # --- state ----------------------------------------------------------------------------

    def _config(self) -> Dict:
        """What a checkpoint must match to be resumed: the tasks, μ schedule and multipliers."""
        return {
            "tasks": [[b.task.label, b.task.compression.describe(), b.view] for b in self.tasks],
            "mu_schedule": list(self.mu_schedule),
            "multipliers": self.multipliers,
        }

    def state_dict(self) -> Dict:
        """The complete LC state (tensors, numbers and strings only, so it loads with
        ``torch.load(weights_only=True)``): weights and buffers, Θ, λ, μ step, history, the
        random number generators (torch CPU and CUDA) and the L step's own state if it has a
        ``state_dict()`` (e.g. :class:`lcbook.train.SGDLStep`: the batch generator)."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "step": self.step,
            "mu": self.mu,
            "thetas": [dict(b.theta) if b.theta is not None else None for b in self.tasks],
            "lambdas": [b.lam.clone() for b in self.tasks],
            "history": [dict(r) for r in self.history],
            "seconds": self.seconds,
            "rng": rng_state(),
            "l_step": self.l_step.state_dict() if hasattr(self.l_step, "state_dict") else {},
            "config": self._config(),
        }

    def load_state_dict(self, state: Dict) -> None:
        """Restore a state from :meth:`state_dict` (same model architecture and tasks).

        Everything is checked before anything changes, so a bad state leaves the run as it was.

        Raises:
            ValueError/TypeError: a missing key, a different number of tasks, a model entry of the
                wrong name or shape, a Θ that does not decompress to its task's view, a λ of the
                wrong shape, or a step outside the μ schedule.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from LCAlgorithm.state_dict(), got {type(state).__name__}")
        missing = {"model", "step", "mu", "thetas", "lambdas", "history"} - set(state)
        if missing:
            raise ValueError(f"state lacks the keys {sorted(missing)}")
        if not isinstance(state["model"], dict) or not all(torch.is_tensor(v) for v in state["model"].values()):
            raise ValueError("state['model'] must be a dict of tensors (a model's state_dict)")
        if not (isinstance(state["thetas"], (list, tuple)) and isinstance(state["lambdas"], (list, tuple))
                and all(th is None or isinstance(th, dict) for th in state["thetas"])
                and all(torch.is_tensor(lam) for lam in state["lambdas"])):
            raise ValueError("state['thetas'] must be a list of dicts (or None) and state['lambdas'] a list of tensors")
        own = self.model.state_dict()
        if set(state["model"]) != set(own):
            diff = sorted(set(state["model"]) ^ set(own))[:5]
            raise ValueError(f"state['model'] does not match the model's entries (differences include {diff})")
        for k, v in own.items():
            if tuple(state["model"][k].shape) != tuple(v.shape):
                raise ValueError(f"state['model'][{k!r}] has shape {tuple(state['model'][k].shape)}, the model {tuple(v.shape)}")
        if len(state["thetas"]) != len(self.tasks) or len(state["lambdas"]) != len(self.tasks):
            raise ValueError(f"state has {len(state['thetas'])} tasks, this LC run has {len(self.tasks)}")
        step = state["step"]
        if not is_int(step):
            raise ValueError(f"state step must be an int, got step={step!r}")
        step = int(step)
        if not is_real(state["mu"]):
            raise ValueError(f"state mu must be a number, got mu={state['mu']!r}")
        mu = float(state["mu"])
        if not -1 <= step < len(self.mu_schedule):
            raise ValueError(f"state step={step} is outside this run's μ schedule of {len(self.mu_schedule)} steps")
        if not (math.isfinite(mu) and mu >= 0):
            raise ValueError(f"state mu={mu!r} must be finite and ≥ 0")
        seconds = state.get("seconds", 0.0)  # checkpoints written before it was kept lack it
        if not (is_real(seconds) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"state seconds={seconds!r} must be a finite number ≥ 0")
        seconds = float(seconds)
        deltas = []
        for b, th, lam in zip(self.tasks, state["thetas"], state["lambdas"]):
            if tuple(lam.shape) != tuple(b.lam.shape) or lam.dtype != b.lam.dtype:
                raise ValueError(f"task {b.task.label!r}: λ is {tuple(lam.shape)} {lam.dtype}, expected "
                                 f"{tuple(b.lam.shape)} {b.lam.dtype}")
            if th is None:
                if step >= 0:
                    raise ValueError(f"task {b.task.label!r} has no Θ, but the state is at LC step {step}")
                deltas.append(None)
                continue
            deltas.append(b.delta_from(th).to(device=b.lam.device, dtype=b.lam.dtype))
        if not isinstance(state["history"], list) or not all(isinstance(r, dict) for r in state["history"]):
            raise ValueError("state['history'] must be a list of dicts")
        if step >= 0 and len(state["history"]) < step + 2:
            raise ValueError(f"state['history'] has {len(state['history'])} records, a state at LC step {step} has "
                             f"at least {step + 2} (DC and each step)")
        rng = state.get("rng")
        if rng is not None and not (isinstance(rng, dict) and torch.is_tensor(rng.get("torch"))
                                    and rng["torch"].dtype == torch.uint8):
            raise ValueError("state['rng'] must hold the torch RNG state as a uint8 tensor")
        if rng and not is_generator_state(rng["torch"]):
            raise ValueError("state['rng']['torch'] is not a torch RNG state")
        if not isinstance(state.get("l_step", {}), dict):
            raise ValueError("state['l_step'] must be a dict")
        for th in state["thetas"]:
            if th is not None and not all(torch.is_tensor(v) for v in th.values()):
                raise ValueError("every Θ entry must be a tensor")
        if state.get("l_step") and hasattr(self.l_step, "load_state_dict"):
            # The L step checks its own state; on failure put its old state back, before anything else changed.
            before = self.l_step.state_dict() if hasattr(self.l_step, "state_dict") else None
            try:
                self.l_step.load_state_dict(state["l_step"])
            except Exception as e:
                if before is not None:
                    self.l_step.load_state_dict(before)
                raise ValueError(f"state['l_step'] does not fit this run's L step ({e!r})") from e
        # All checked: apply.
        self.model.load_state_dict(state["model"])
        self.step, self.mu = step, mu
        self.seconds = seconds
        for b, th, lam, d in zip(self.tasks, state["thetas"], state["lambdas"], deltas):
            b.theta = {k: v.to(b.lam.device) for k, v in th.items()} if th is not None else None
            b.delta = d
            b.lam = lam.clone().to(b.lam.device)
        self.history = [dict(r) for r in state["history"]]
        self._targets = None
        if state.get("rng"):
            restore_rng(state["rng"])


def _no_l_step(lc: "LCAlgorithm") -> Dict[str, float]:
    raise RuntimeError("this LCAlgorithm was made by direct_compression() and has no L step; build an "
                       "LCAlgorithm with an l_step (e.g. lcbook.SGDLStep) to run LC")


def direct_compression(model: nn.Module, tasks: Union[Task, Sequence[Task]], mu: float = 1.0,
                       evaluate: Optional[Callable[[nn.Module], Dict[str, float]]] = None) -> LCAlgorithm:
    """Direct compression (DC): Θ = Π(w̄), each task's C step on the model's current weights,
    with no training [P1, §3] — the baseline LC improves on, and LC's own first step.

    Args:
        model: the network; its weights are left as they are (``lc.compressed()`` swaps Δ(Θ) in).
        tasks: one :class:`Task` or several, as for :class:`LCAlgorithm`.
        mu: the μ given to penalty forms (ℓ0/ℓ1 penalty pruning, rank selection), whose C step
            ``min α·C(Θ) + μ/2‖w − Δ(Θ)‖²`` depends on it; the other compressions ignore it.
        evaluate: optional ``evaluate(model) -> dict`` on the compressed model, recorded in
            ``lc.history[0]``.

    Returns:
        An :class:`LCAlgorithm` holding Θ, with ``lc.history == [DC record]`` (distance, bits,
        C-step seconds): use it with ``lc.compressed()``, :func:`lcbook.storage_report` and
        :func:`lcbook.export.export`. It has no L step: ``lc.run()`` raises ``RuntimeError``.

    Raises:
        ValueError/TypeError: as :class:`LCAlgorithm` (bad tasks, ``mu`` not a finite number > 0),
            or a C step that does not fit its weights.
    """
    lc = LCAlgorithm(model, tasks, l_step=_no_l_step, mu_schedule=[mu], evaluate=evaluate, progress=False)
    lc.direct_compression()
    return lc

"""Reference training, evaluation and the default L step.

The L step of LC [P1, §4] minimises ``L(w) + μ/2 ‖w − Δ(Θ) − λ/μ‖²`` over the weights.
:class:`SGDLStep` does it as the LC authors do in their experiments: a fixed number of epochs of
SGD with momentum, the learning rate restarted at every L step and decayed within it; the
penalty's gradient ``μ(w − Δ(Θ) − λ/μ)`` is added to the loss gradient of the compressed weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.std import tqdm

from ._checks import is_bool, is_int, is_real
from ._io import atomic_save, checkpoint_path
from ._modes import modes_restored
from ._rng import is_generator_state, restore_rng, rng_state


def _check_positive(name: str, v, allow_zero: bool = False) -> None:
    if not is_real(v) or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {name}={v!r}")


def evaluate(model: nn.Module, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]]) -> Dict[str, float]:
    """Classification error (percent) and mean cross-entropy loss of ``model`` in eval mode, in
    ``torch.inference_mode`` (no autograd bookkeeping); the sums stay on the device and are read
    once at the end.

    Returns:
        ``{"error": percent in [0, 100], "loss": nats per example}``.

    Raises:
        ValueError: ``batches`` yields no batch.
    """
    wrong, total, loss = None, 0, None
    with modes_restored(model), torch.inference_mode():
        model.eval()
        for x, y in batches:
            out = model(x)
            l_sum = F.cross_entropy(out, y, reduction="sum")
            w_sum = (out.argmax(1) != y).sum()
            loss, wrong = (l_sum, w_sum) if loss is None else (loss + l_sum, wrong + w_sum)
            total += len(y)
    if total == 0:
        raise ValueError("evaluate got no batches")
    return {"error": 100.0 * int(wrong) / total, "loss": float(loss) / total}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]], max_batches: int = 50) -> None:
    """Re-estimate BatchNorm running statistics of ``model`` on up to ``max_batches`` batches.

    After compression the activations' statistics change; the statistics kept from training the
    uncompressed weights no longer fit. A no-op for models without BatchNorm.

    The whole model runs in training mode without gradients (so dropout is active, as when the
    statistics were first collected); each BatchNorm's statistics become the plain average over
    the batches seen. Every module's train/eval mode and every BatchNorm's ``momentum`` are
    restored after; if no batch can be used or the forward pass fails, the previous statistics
    are restored too.

    Args:
        model: the network.
        batches: an iterable of ``(x, y)`` batches (``y`` is ignored); at most ``max_batches`` are taken.
        max_batches: an int ≥ 1.

    Raises:
        ValueError: ``max_batches`` is not an int ≥ 1, or ``batches`` yields no batch.
    """
    if not is_int(max_batches) or max_batches < 1:
        raise ValueError(f"max_batches must be an int ≥ 1, got max_batches={max_batches!r}")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in bns]
    ok = False
    with modes_restored(model):
        try:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches seen
            model.train()
            seen = 0
            with torch.no_grad():
                for x, _ in batches:
                    model(x)
                    seen += 1
                    if seen >= max_batches:
                        break
            if seen == 0:
                raise ValueError("batches yielded no batch: the BatchNorm statistics were left unchanged")
            ok = True
        finally:
            for m, (momentum, state) in zip(bns, saved):
                m.momentum = momentum
                if not ok:
                    m.load_state_dict(state)


def train_epoch(
    model: nn.Module,
    batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    after_backward=None,
    after_step=None,
    autocast: Optional[torch.dtype] = None,
    forward=None,
) -> float:
    """One pass of SGD over ``batches``; returns the mean training loss (nats per example).

    ``after_backward()`` (e.g. :meth:`lcbook.lc.LCAlgorithm.add_penalty_grad_`) is called after
    each ``loss.backward()``, ``after_step()`` after each ``optimizer.step()`` (e.g. a per-batch
    lr scheduler). ``autocast=torch.bfloat16`` runs the forward pass and the loss under
    ``torch.autocast`` (the weights, their gradients and the optimizer stay float32);
    ``forward`` replaces ``model`` for the forward pass (e.g. ``torch.compile(model)``, which
    shares its parameters). Raises ``FloatingPointError`` if the loss becomes non-finite.
    """
    model.train()
    fwd = forward if forward is not None else model
    total, n = None, 0  # the loss sum stays on the device (no host sync per step), read once
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        if autocast is not None:
            with torch.autocast(device_type=x.device.type, dtype=autocast):
                loss = F.cross_entropy(fwd(x), y)
        else:
            loss = F.cross_entropy(fwd(x), y)
        loss.backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        s = loss.detach().double() * len(y)
        total = s if total is None else total + s
        n += len(y)
    if n == 0:
        raise ValueError("batches is empty: nothing to train on")
    total = float(total)
    if not math.isfinite(total):
        raise FloatingPointError("training loss is not finite; lower the learning rate")
    return total / n


def make_sgd(model: nn.Module, lr: float, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 0.0):
    """SGD with (Nesterov) momentum; ``weight_decay`` applies to weights only (not BN or biases).

    A loss term ``c·Σ‖W‖²`` equals ``weight_decay = 2c``. On a GPU (every parameter on CUDA) the
    update is PyTorch's fused kernel (one launch for all tensors); on a CPU it is PyTorch's default
    implementation, so CPU runs keep their numbers.
    """
    params = list(model.parameters())
    decay = [p for p in params if p.ndim > 1]
    other = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    fused = True if params and all(p.is_cuda for p in params) else None
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0, fused=fused)


def train_reference(
    model: nn.Module,
    train_batches,
    epochs: int,
    lr: float,
    milestones: Tuple[int, ...] = (),
    gamma: float = 0.1,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    schedule: str = "step",
    progress: bool = True,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    timing: Optional[dict] = None,
) -> list:
    """Train ``model`` from scratch; returns the per-epoch mean training loss (nats).

    Args:
        epochs: passes over ``train_batches`` (≥ 1).
        lr: initial learning rate.
        schedule: ``"step"`` (×``gamma`` at each epoch in ``milestones``, the ResNet recipe of
            He et al. 2016), ``"exp"`` (×``gamma`` every epoch) or ``"onecycle"`` (linear warm-up
            over the first 15% of the steps then linear decay to 0: good for short CPU budgets).
        weight_decay: PyTorch weight decay on conv/linear weights (= 2× a ``c·Σ‖W‖²`` loss term).
        checkpoint: optional file. After every epoch the complete training state (weights and
            buffers, optimizer, learning-rate schedule, losses, the torch RNG and the batches'
            generator) is saved there atomically; if the file exists, training resumes from it.
            On CPU with a fixed seed a resumed run ends with the same weights as an uninterrupted
            one. It loads with ``torch.load(weights_only=True)``; delete it to start again.
        timing: optional dict; on return ``timing["seconds"]`` holds the wall time of training in
            seconds, summed over every process of a resumed run (kept in the checkpoint).

    Raises:
        ValueError: a bad ``epochs``/``lr``/``gamma``/``momentum``/``weight_decay``/``milestones``/
            ``schedule``; a checkpoint path whose folder cannot be made; a checkpoint that is
            unreadable, was made with other settings or other batches (batch size, seed, number of
            examples), or holds a state that does not fit (nothing is changed then).
        TypeError: ``schedule="onecycle"`` with batches that have no ``len()``.
    """
    if not is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs must be an int ≥ 1, got epochs={epochs!r}")
    _check_positive("lr", lr)
    if schedule not in ("step", "exp", "onecycle"):
        raise ValueError(f"schedule must be 'step', 'exp' or 'onecycle', got {schedule!r}")
    _check_positive("gamma", gamma)
    _check_positive("weight_decay", weight_decay, allow_zero=True)
    _check_positive("momentum", momentum, allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got momentum={momentum!r}")
    if not all(is_int(m) and m >= 0 for m in milestones):
        raise ValueError(f"milestones must be epochs (ints ≥ 0), got milestones={milestones!r}")
    if schedule == "onecycle" and not hasattr(train_batches, "__len__"):
        raise TypeError("schedule='onecycle' needs len(train_batches) (the number of batches per epoch)")
    epochs = int(epochs)
    if checkpoint is not None:
        checkpoint = checkpoint_path(checkpoint)
    opt = make_sgd(model, lr, momentum=momentum, weight_decay=weight_decay)
    sched = None
    if schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=epochs * len(train_batches), pct_start=0.15,
            anneal_strategy="linear", cycle_momentum=False,
        )
    # What a checkpoint must match to be resumed: the recipe and, as far as the batches tell, the data.
    config = {"epochs": epochs, "lr": float(lr), "milestones": [int(m) for m in milestones], "gamma": float(gamma),
              "weight_decay": float(weight_decay), "momentum": float(momentum), "schedule": schedule,
              "batches": len(train_batches) if hasattr(train_batches, "__len__") else None,
              **{k: getattr(train_batches, k) for k in ("batch_size", "seed", "dataset", "augment")
                 if isinstance(getattr(train_batches, k, None), (int, str))}}
    if torch.is_tensor(getattr(train_batches, "y", None)):
        config["examples"] = len(train_batches.y)
    gen = getattr(train_batches, "generator", None)
    losses: list = []
    seconds = 0.0  # wall time of the epochs done, over every process of a resumed run
    if checkpoint is not None and checkpoint.is_file():
        losses, seconds = _resume_reference(checkpoint, config, model, opt, sched, gen)
    bar = tqdm(range(len(losses), epochs), desc="reference", disable=not progress, leave=False,
               initial=len(losses), total=epochs)
    for ep in bar:
        t0 = time.perf_counter()
        if sched is None:
            f = gamma ** sum(ep >= m for m in milestones) if schedule == "step" else gamma**ep
            for g in opt.param_groups:
                g["lr"] = lr * f
        losses.append(train_epoch(model, train_batches, opt, after_step=sched.step if sched else None))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        seconds += time.perf_counter() - t0
        if checkpoint is not None:
            atomic_save({
                "config": config, "losses": losses, "seconds": seconds, "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched else {},
                "rng": rng_state(),
                "generator": gen.get_state() if isinstance(gen, torch.Generator) else None,
            }, checkpoint)
    if timing is not None:
        timing["seconds"] = seconds
    return losses


def _resume_reference(path: Path, config: dict, model: nn.Module, opt, sched, gen) -> Tuple[list, float]:
    """Load a :func:`train_reference` checkpoint into ``model``/``opt``/``sched``/``gen`` after
    checking all of it (nothing changes if a check fails); returns the losses so far and the
    seconds spent on them (0 for a checkpoint written before the time was kept)."""
    def refuse(why):
        return ValueError(f"checkpoint {str(path)!r} {why}; delete it to start again")

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or holds non-tensor objects
        raise refuse(f"is unreadable ({type(e).__name__})") from None
    keys = {"config", "losses", "model", "optimizer", "scheduler", "rng", "generator"}
    if not isinstance(state, dict) or not keys <= set(state) or not isinstance(state["config"], dict):
        raise refuse("is not a reference-training checkpoint")
    if state["config"] != config:
        diff = sorted(k for k in set(config) | set(state["config"]) if state["config"].get(k) != config.get(k))
        raise refuse(f"was made with other settings ({diff})")
    losses = state["losses"]
    if not (isinstance(losses, list) and 1 <= len(losses) <= config["epochs"]
            and all(isinstance(v, float) and math.isfinite(v) for v in losses)):
        raise refuse(f"does not hold 1..{config['epochs']} finite epoch losses")
    seconds = state.get("seconds", 0.0)
    if not (isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0):
        raise refuse("holds no valid training time (seconds)")
    own = model.state_dict()
    saved = state["model"]
    if (not isinstance(saved, dict) or set(saved) != set(own)
            or any(not torch.is_tensor(saved[k]) or saved[k].shape != v.shape for k, v in own.items())):
        raise refuse("holds another model's weights")
    if not (isinstance(state["rng"], dict) and is_generator_state(state["rng"].get("torch"))):
        raise refuse("holds no valid torch RNG state")
    if isinstance(gen, torch.Generator) != (state["generator"] is not None) or (
            state["generator"] is not None and not is_generator_state(state["generator"], gen.device)):
        raise refuse("does not hold a state of the batches' generator")
    if sched is not None and not (isinstance(state["scheduler"], dict) and state["scheduler"].get("total_steps")
                                  == sched.total_steps):
        raise refuse("does not hold this one-cycle schedule's state")
    o = state["optimizer"]
    params = [p for g in opt.param_groups for p in g["params"]]
    if not (isinstance(o, dict) and isinstance(o.get("state"), dict) and isinstance(o.get("param_groups"), list)
            and len(o["param_groups"]) == len(opt.param_groups)
            and all(isinstance(i, int) and 0 <= i < len(params) and isinstance(st, dict)
                    and all(not torch.is_tensor(v) or v.ndim == 0 or v.shape == params[i].shape for v in st.values())
                    for i, st in o["state"].items())
            and all(isinstance(g, dict) and is_real(g.get("lr")) for g in o["param_groups"])):
        raise refuse("holds an optimizer state that does not fit this model")
    # All checked: apply.
    opt.load_state_dict(o)
    if sched is not None:
        sched.load_state_dict(state["scheduler"])
    model.load_state_dict(saved)
    restore_rng(state["rng"])
    if isinstance(gen, torch.Generator):
        gen.set_state(state["generator"])
    return list(losses), seconds


@dataclass
class SGDLStep:
    """The default L step: SGD on the loss plus the LC penalty [P1, §4; LC-tk recipes].

    Each call (one L step) builds a fresh optimizer, so the learning rate restarts at every L
    step: epoch ``e`` of L step ``k`` uses ``lr · step_decay^k · epoch_decay^e``.

    Args:
        batches: training batches (e.g. :class:`lcbook.data.Batches` with ``train=True``).
        epochs: epochs per L step (≥ 1).
        lr: learning rate at the start of the first L step (> 0).
        epoch_decay: factor per epoch within an L step (LC-tk CIFAR runs: 0.99).
        step_decay: factor per L step (LC-tk LeNet300 runs: 0.98).
        momentum, nesterov: SGD momentum.
        weight_decay: PyTorch weight decay on weights (usually 0 during LC: the penalty
            already pulls the weights).
        autocast: ``None`` (float32) or ``torch.bfloat16``: the forward pass and the loss in
            bfloat16 autocast (faster on GPUs with bf16 tensor cores); the weights, the penalty
            and its gradient, Θ and λ stay float32, so C steps, bits and exports do not change.
        compile: run the forward pass through ``torch.compile`` of the model (compiled once per
            model, on the first L step).
        channels_last: keep the model's 4-D weights and the batches in ``channels_last`` memory
            format (faster convolutions on CPUs and tensor-core GPUs; the C steps see the same
            values).

    Returns (per call): ``{"train_loss": mean loss in nats, "lr": first lr of the step}``.
    """

    batches: object
    epochs: int = 1
    lr: float = 0.01
    epoch_decay: float = 1.0
    step_decay: float = 1.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    autocast: Optional[torch.dtype] = None
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self):
        if self.autocast not in (None, torch.bfloat16):
            raise ValueError(f"autocast must be None or torch.bfloat16 (float16 would need a gradient scaler), "
                             f"got autocast={self.autocast!r}")
        for name in ("compile", "channels_last"):
            if not is_bool(getattr(self, name)):
                raise TypeError(f"{name} must be a bool, got {name}={getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        self._compiled = None
        if not is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be an int ≥ 1, got epochs={self.epochs!r}")
        _check_positive("lr", self.lr)
        _check_positive("epoch_decay", self.epoch_decay)
        _check_positive("step_decay", self.step_decay)
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("momentum", self.momentum, allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got momentum={self.momentum!r}")
        if not is_bool(self.nesterov):
            raise TypeError(f"nesterov must be a bool, got nesterov={self.nesterov!r}")
        self.nesterov = bool(self.nesterov)
        self.epochs = int(self.epochs)
        for name in ("lr", "epoch_decay", "step_decay", "weight_decay", "momentum"):
            setattr(self, name, float(getattr(self, name)))
        if not hasattr(self.batches, "__iter__"):
            raise TypeError(f"batches must be an iterable of (x, y) batches, got {type(self.batches).__name__}")

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The state a resumed run needs: the batches' shuffling/augmentation generator, if any.

        (The optimizer is rebuilt at every L step, so it carries nothing across steps.)"""
        g = getattr(self.batches, "generator", None)
        return {"generator": g.get_state()} if isinstance(g, torch.Generator) else {}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`'s output.

        Raises:
            ValueError: ``state`` is not a dict, it holds a generator state but the batches have no
                generator, or that state is not a torch generator state (nothing is changed then).
        """
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict from SGDLStep.state_dict(), got {type(state).__name__}")
        g = getattr(self.batches, "generator", None)
        if "generator" in state:
            if not isinstance(g, torch.Generator):
                raise ValueError("state holds a batch generator state, but this L step's batches have no generator")
            if not is_generator_state(state["generator"], g.device):
                raise ValueError(f"state['generator'] is not a torch generator state, got {state['generator']!r:.60}")
            g.set_state(state["generator"])

    def __call__(self, lc) -> Dict[str, float]:
        lr0 = self.lr * self.step_decay ** max(lc.step + 1, 0)
        opt = make_sgd(lc.model, lr0, self.momentum, self.nesterov, self.weight_decay)
        loss = float("nan")
        for e in range(self.epochs):
            for g in opt.param_groups:
                g["lr"] = lr0 * self.epoch_decay**e
            loss = train_epoch(lc.model, self._batches(), opt, after_backward=lc.add_penalty_grad_,
                               autocast=self.autocast, forward=self._forward(lc.model))
        return {"train_loss": loss, "lr": lr0}

    def _forward(self, model: nn.Module):
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if not self.compile:
            return None
        if self._compiled is None or self._compiled[0] is not model:
            self._compiled = (model, torch.compile(model))
        return self._compiled[1]

    def _batches(self):
        if not self.channels_last:
            return self.batches
        return ((x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x, y) for x, y in self.batches)


def finetune(lc, batches, epochs: int = 1, lr: float = 1e-3, momentum: float = 0.9,
         loss_fn=F.cross_entropy) -> Dict[str, float]:
    """Fine-tune the final compressed model of an LC run (an :class:`lcbook.lc.LCAlgorithm`)
    with its discrete structure fixed.

    SGD on the loss of the model whose compressed weights are Δ(Θ), over the continuous
    parts of every Θ (:attr:`~lcbook.compressions.Compression.trainable`: codebook values,
    scales, kept values, low-rank factors) and every parameter no task compresses (biases,
    BatchNorm); assignments, kept positions and ranks do not change, so the storage in bits
    does not either. Gradients flow through :meth:`Compression.decompress` by autograd. The
    model's own compressed weights ``w`` are left as they are; afterwards Δ(Θ) (what
    :meth:`~lcbook.lc.LCAlgorithm.compressed` and ``apply_compression_`` use) is the fine-tuned
    one (:meth:`~lcbook.lc.LCAlgorithm.set_thetas`), and a record with step ``"FT"`` is added to
    the history.

    Args:
        batches: iterable of ``(x, y)`` training batches.
        epochs: passes over ``batches`` (≥ 1).
        lr: learning rate (> 0); momentum: SGD momentum in [0, 1).
        loss_fn: ``loss_fn(outputs, y)`` → scalar.

    Returns:
        the history record of the fine-tuning (``train_loss``: mean loss of the last epoch).

    Raises:
        RuntimeError: before direct compression; ValueError: bad ``epochs``/``lr``/``momentum``.
    """
    if not (hasattr(lc, "tasks") and hasattr(lc, "set_thetas")):
        raise TypeError(f"lc must be an LCAlgorithm, got {type(lc).__name__}")
    if any(b.theta is None for b in lc.tasks):
        raise RuntimeError("no Θ yet: run direct_compression() or run() first")
    if not is_int(epochs) or epochs < 1:
        raise ValueError(f"epochs must be an int ≥ 1, got epochs={epochs!r}")
    if not (is_real(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got lr={lr!r}")
    if not (is_real(momentum) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got momentum={momentum!r}")
    leaves = [{k: b.theta[k].detach().clone().requires_grad_(True) for k in b.task.compression.trainable}
              for b in lc.tasks]
    covered = {id(t) for b in lc.tasks for t in b.tensors}
    free = [p for p in lc.model.parameters() if id(p) not in covered and p.requires_grad]
    trained = [t for d in leaves for t in d.values()] + free
    if not trained:
        raise ValueError("nothing to fine-tune: the compressions have no trainable parts and every parameter is compressed")
    opt = torch.optim.SGD(trained, lr=lr, momentum=momentum)

    def weights() -> Dict[str, torch.Tensor]:
        out = {}
        for b, lv in zip(lc.tasks, leaves):
            d = b.task.compression.decompress({**b.theta, **lv}).reshape(b.lam.shape)
            out.update(zip(b.task.params, b.scatter(d)))
        return out

    saved = {k: v.detach().clone() for k, v in lc.model.state_dict(keep_vars=True).items()}
    t0 = time.perf_counter()
    mean = float("nan")
    with modes_restored(lc.model):
        try:
            lc.model.train()
            for _ in range(epochs):
                total, n = 0.0, 0
                for x, y in batches:
                    loss = loss_fn(torch.func.functional_call(lc.model, weights(), (x,)), y)
                    if not torch.isfinite(loss):
                        raise ValueError(f"fine-tuning diverged (loss {float(loss.detach())}); lower lr (lr={lr!r})")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, n = total + float(loss.detach()) * len(y), n + len(y)
                if n == 0:
                    raise ValueError("batches is empty: fine-tuning needs at least one (x, y) batch")
                mean = total / n
            new = []
            for b, lv in zip(lc.tasks, leaves):
                th = b.task.compression.canonical({**b.theta, **{k: v.detach() for k, v in lv.items()}})
                if not all(torch.isfinite(v).all() for v in th.values() if v.is_floating_point()):
                    raise ValueError(f"fine-tuning made Θ of task {b.task.label!r} non-finite; lower lr (lr={lr!r})")
                new.append(th)
        except BaseException:
            with torch.no_grad():  # leave the run as it was
                for k, v in lc.model.state_dict(keep_vars=True).items():
                    v.copy_(saved[k])
            raise
    return lc.set_thetas(new, "FT", l_seconds=time.perf_counter() - t0, stats={"train_loss": mean})

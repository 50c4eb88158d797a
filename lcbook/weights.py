"""What a stored LC run did to the weights: per-layer histograms of the reference weights, of
direct compression (DC) and of the end of LC, with the codebook and the sparse corrections marked.

A long run's checkpoint (hundreds of MB of state, outside the checkout) cannot travel with the
book, but its histograms can: :func:`store` reads the finished run's checkpoint once, recomputes
DC from the committed reference, and writes a small JSON file with provenance under
``data/results/<profile>/weights/<id>.json``; chapters read it with :func:`load`. The
results store reads only the ``*.json`` files of the profile's folder itself, not this subfolder.

Command line::

    python -m lcbook weights resnet20 qp k=2,fraction=0.01 --profile cpu

Works for the combinations whose Θ has a codebook (``q``, ``qp``, ``qthenp``, ``pthenq``);
corrections are the sparse part of ``qp``/``qthenp`` (``1.indices``), or none.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ._io import atomic_write_json
from .experiments import Experiment, budget_text, make_tasks
from .lc import direct_compression
from .references import provenance, reference

#: The counts each layer stores, one histogram each over the layer's common bin edges.
COUNTS = ("dc_reference_served", "dc_reference_corrected", "lc_reference_served", "lc_reference_corrected",
          "lc_learned_served", "lc_learned_corrected")


def _codebook_and_corrections(theta: Dict[str, torch.Tensor], task: str):
    book = theta.get("0.codebook", theta.get("codebook"))
    if book is None:
        raise ValueError(f"task {task!r}: its Θ has no codebook (keys {sorted(theta)}); weight histograms need a "
                         f"combination with quantization (q, qp, qthenp, pthenq)")
    idx = theta.get("1.indices")
    return book.detach().double().cpu(), (idx.detach().long().cpu() if idx is not None else torch.zeros(0, dtype=torch.long))


def histograms(exp: Experiment, checkpoint: Optional[Path] = None, bins: int = 100) -> Dict[str, Any]:
    """The weight histograms of a run, from its LC checkpoint and its committed reference.

    Args:
        exp: the experiment (its reference must be available: committed or trained).
        checkpoint: the run's LC checkpoint (default ``exp.checkpoint_path()``).
        bins: histogram bins per layer (≥ 2), equal widths over the range of the layer's
            reference and learned weights.

    Returns:
        ``{"id", "model", "combo", "budget", "profile", "seed", "lc_step", "lc_error", "layers"}``;
        ``layers`` is a list, one per task, of ``{"name", "n", "edges" (bins + 1 floats),
        "codebook_dc", "codebook_lc" (floats), "kappa_dc", "kappa_lc" (corrections), "same_corrections"
        (positions corrected by both), and one list of ``bins`` counts per entry of
        :data:`COUNTS`}``: the reference weights split into those DC corrects and the rest, the same
        for LC's corrections, and LC's learned weights w split by LC's corrections.

    Raises:
        FileNotFoundError: no checkpoint.
        ValueError: ``bins`` < 2; a checkpoint of other tasks or another model; a combination
            without a codebook.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ValueError(f"bins must be an int ≥ 2, got bins={bins!r}")
    path = Path(checkpoint) if checkpoint is not None else exp.checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"no LC checkpoint for {exp.id} at {path}: run it first "
                                f"(python -m lcbook run {exp.model} {exp.combo} {budget_text(exp.budget)} --profile {exp.profile})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint {str(path)!r} is unreadable ({type(e).__name__})") from None
    model, _ = reference(exp.model, exp.profile, progress=False)
    ref_params = {n: p.detach().cpu() for n, p in model.named_parameters()}
    tasks = make_tasks(exp.model, model, exp.combo, exp.budget)
    if not (isinstance(state, dict) and isinstance(state.get("thetas"), list) and len(state["thetas"]) == len(tasks)
            and isinstance(state.get("model"), dict)):
        raise ValueError(f"checkpoint {str(path)!r} does not hold the {len(tasks)} tasks of {exp.id}")
    torch.manual_seed(exp.seed)  # as run_experiment seeds before its DC
    dc = direct_compression(copy.deepcopy(model), tasks)
    layers = []
    for task, bound, theta in zip(tasks, dc.tasks, state["thetas"]):
        params = (task.params,) if isinstance(task.params, str) else tuple(task.params)
        name = params[0]
        if len(params) != 1 or name not in state["model"]:
            raise ValueError(f"task {task.label!r}: weight histograms are per layer, and the checkpoint must hold {name!r}")
        w_ref = ref_params[name].reshape(-1).double()
        w_lc = state["model"][name].reshape(-1).double()
        if w_lc.shape != w_ref.shape:
            raise ValueError(f"checkpoint {str(path)!r}: {name} has {w_lc.numel()} weights, the reference {w_ref.numel()}")
        book_dc, idx_dc = _codebook_and_corrections(bound.theta, task.label)
        book_lc, idx_lc = _codebook_and_corrections(theta, task.label)
        lo, hi = float(torch.minimum(w_ref.min(), w_lc.min())), float(torch.maximum(w_ref.max(), w_lc.max()))
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)

        def split(w, idx):
            mask = torch.zeros(w.numel(), dtype=torch.bool)
            mask[idx] = True
            count = lambda v: torch.histogram(v, bins=edges).hist.long().tolist()  # noqa: E731
            return count(w[~mask]), count(w[mask])

        counts = dict(zip(COUNTS, (*split(w_ref, idx_dc), *split(w_ref, idx_lc), *split(w_lc, idx_lc))))
        layers.append({"name": name, "n": int(w_ref.numel()), "edges": edges.tolist(),
                       "codebook_dc": book_dc.tolist(), "codebook_lc": book_lc.tolist(),
                       "kappa_dc": int(idx_dc.numel()), "kappa_lc": int(idx_lc.numel()),
                       "same_corrections": len(set(idx_dc.tolist()) & set(idx_lc.tolist())), **counts})
    history = state.get("history") or [{}]
    return {"id": exp.id, "model": exp.model, "combo": exp.combo, "budget": exp.budget, "profile": exp.profile,
            "seed": exp.seed, "lc_step": int(state.get("step", -1)), "lc_error": history[-1].get("test_error"),
            "layers": layers}


def path_of(exp: Experiment) -> Path:
    """Where :func:`store` writes the histograms of ``exp``: a ``weights/<id>.json`` beside its
    result (``data/results/<profile>/weights/``; runs with overrides under ``custom/``)."""
    return exp.result_path().parent / "weights" / f"{exp.id}.json"


def store(exp: Experiment, checkpoint: Optional[Path] = None, bins: int = 100) -> Path:
    """Compute :func:`histograms` and write them, with the command and provenance, atomically to
    :func:`path_of`; returns the path. Raises as :func:`histograms`."""
    out = histograms(exp, checkpoint, bins)
    out["command"] = (f"python -m lcbook weights {exp.model} {exp.combo} {budget_text(exp.budget)} "
                      f"--profile {exp.profile} --seed {exp.seed}")
    out.update(provenance())
    path = path_of(exp)
    atomic_write_json(out, path)
    return path


def load(exp: Experiment) -> Dict[str, Any]:
    """The stored histograms of ``exp`` (see :func:`histograms`).

    Raises:
        FileNotFoundError: none stored (the message gives the command that makes them).
        ValueError: the file is not valid JSON or lacks the layers.
    """
    path = path_of(exp)
    if not path.is_file():
        raise FileNotFoundError(f"no stored weight histograms for {exp.id} at {path}; make them with "
                                f"python -m lcbook weights {exp.model} {exp.combo} {budget_text(exp.budget)} "
                                f"--profile {exp.profile} --seed {exp.seed}")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not (isinstance(data, dict) and isinstance(data.get("layers"), list)
            and all(isinstance(l, dict) and set(COUNTS) <= set(l) for l in data["layers"])):
        raise ValueError(f"{path} does not hold weight histograms (a 'layers' list with {COUNTS})")
    return data

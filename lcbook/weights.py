"""What a stored LC run did to the weights: for quantization, per-layer histograms of the reference
weights, of direct compression (DC) and of the end of LC, with the codebook and the sparse
corrections marked; for low-rank, per-layer singular-value spectra.

A long run's checkpoint (hundreds of MB of state, outside the checkout) cannot travel with the
book, but its histograms can: :func:`store` reads the finished run's checkpoint once, recomputes
DC from the committed reference, and writes a small JSON file with provenance under
``data/results/<profile>/weights/<id>.json``; chapters read it with :func:`load`. The
results store reads only the ``*.json`` files of the profile's folder itself, not this subfolder.

Command line::

    python -m lcbook weights resnet20 qp k=2,fraction=0.01 --profile cpu

Histograms (:func:`histograms`) for the combinations whose Θ has a codebook (``q``, ``qp``,
``qthenp``, ``pthenq``; corrections are the sparse part ``1.indices`` of ``qp``/``qthenp``);
spectra (:func:`spectra`) for ``l`` and ``lp``. :func:`store` picks the one that fits; ``python
-m lcbook run`` stores it at the end of every run of these combinations.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ._io import atomic_write_json
from .experiments import SCHEDULES, Experiment, budget_text, family, make_tasks
from .lc import direct_compression, geometric_mu
from .references import provenance, reference, reference_path

#: The most histogram bins per layer (a stored file stays small).
MAX_BINS = 10_000

#: The combinations :func:`store` summarises, and how.
KINDS = {"q": "histograms", "qp": "histograms", "qthenp": "histograms", "pthenq": "histograms",
         "l": "spectra", "lp": "spectra"}

#: The singular values each layer of a low-rank run stores (see :func:`spectra`).
SPECTRA = ("reference", "dc_low_rank_part", "learned", "learned_low_rank_part")

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


def _load(exp: Experiment, checkpoint: Optional[Path]):
    """The reference model, its parameters (CPU), the run's tasks, its checkpoint's state and
    DC of the reference (recomputed), after checking that the checkpoint is this experiment's."""
    path = Path(checkpoint) if checkpoint is not None else exp.checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"no LC checkpoint for {exp.id} at {path}: run it first "
                                f"(python -m lcbook run {exp.model} {exp.combo} {budget_text(exp.budget)} "
                                f"--profile {exp.profile} --seed {exp.seed})")
    if not reference_path(exp.model, exp.profile).is_file():  # never train one here: DC needs the run's own
        raise FileNotFoundError(f"no stored {exp.profile} reference of {exp.model} at "
                                f"{reference_path(exp.model, exp.profile)}: the run's DC cannot be recomputed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint {str(path)!r} is unreadable ({type(e).__name__}: not an LC checkpoint "
                         f"written by lcbook)") from None
    with torch.random.fork_rng(devices=[]):  # building the model draws its initial weights: not from the caller's stream
        model, _ = reference(exp.model, exp.profile, progress=False)
    ref_params = {n: p.detach().cpu() for n, p in model.named_parameters()}
    tasks = make_tasks(exp.model, model, exp.combo, exp.budget)
    if not (isinstance(state, dict) and isinstance(state.get("thetas"), list) and len(state["thetas"]) == len(tasks)
            and all(isinstance(t, dict) for t in state["thetas"]) and isinstance(state.get("model"), dict)):
        raise ValueError(f"checkpoint {str(path)!r} does not hold the {len(tasks)} tasks of {exp.id}")
    with torch.random.fork_rng(devices=[]):  # DC as run_experiment computes it, leaving the caller's RNG alone
        torch.manual_seed(exp.seed)
        dc = direct_compression(copy.deepcopy(model), tasks)
    sched = SCHEDULES[(family(exp.model), exp.profile)].replace(**exp.overrides)
    want = {"tasks": [[b.task.label, b.task.compression.describe(), b.view] for b in dc.tasks],
            "mu_schedule": geometric_mu(sched.mu0, sched.a, sched.steps)}
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    for key, value in want.items():
        if key in saved and _plain(saved[key]) != _plain(value):
            raise ValueError(f"checkpoint {str(path)!r} is from another run: its {key.replace('_', ' ')} differ from "
                             f"those of {exp.id}")
    for task in tasks:
        name = _name(task)
        if name not in state["model"] or not torch.is_tensor(state["model"][name]):
            raise ValueError(f"task {task.label!r}: weight summaries are per layer, and the checkpoint must hold "
                             f"the tensor {name!r}")
        if state["model"][name].shape != ref_params[name].shape:
            raise ValueError(f"checkpoint {str(path)!r}: {name} has shape {tuple(state['model'][name].shape)}, "
                             f"the reference {tuple(ref_params[name].shape)}")
        if not torch.isfinite(state["model"][name]).all():
            raise ValueError(f"checkpoint {str(path)!r}: {name} holds NaN or inf weights (a diverged run)")
    return model, ref_params, tasks, state, dc


def _plain(v):
    """Lists and tuples alike, floats to 12 digits: how two configs compare."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return round(float(v), 12) if isinstance(v, float) else v


def _name(task) -> str:
    """The one parameter of a per-layer task (a summary is per layer)."""
    params = (task.params,) if isinstance(task.params, str) else tuple(task.params)
    if len(params) != 1:
        raise ValueError(f"task {task.label!r} spans {len(params)} tensors: weight summaries are per layer")
    return params[0]


def _malformed(path_or_id, name: str, e: Exception) -> ValueError:
    return ValueError(f"{path_or_id}: the checkpoint's entry for {name} is malformed ({type(e).__name__}: {e})")


def _header(exp: Experiment, state: Dict[str, Any], kind: str) -> Dict[str, Any]:
    history = state.get("history")
    last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
    error, step = last.get("test_error"), state.get("step")
    return {"kind": kind, "id": exp.id, "model": exp.model, "combo": exp.combo, "budget": exp.budget,
            "profile": exp.profile, "seed": exp.seed,
            "lc_step": step if isinstance(step, (int, str)) and not isinstance(step, bool) else None,
            "lc_error": float(error) if isinstance(error, numbers.Real) and math.isfinite(error) else None}


def histograms(exp: Experiment, checkpoint: Optional[Path] = None, bins: int = 100) -> Dict[str, Any]:
    """The weight histograms of a run, from its LC checkpoint and its committed reference.

    Args:
        exp: the experiment (its reference must be available: committed or trained).
        checkpoint: the run's LC checkpoint (default ``exp.checkpoint_path()``).
        bins: histogram bins per layer (≥ 2), equal widths over the range of the layer's
            reference and learned weights.

    Returns:
        ``{"kind": "histograms", "id", "model", "combo", "budget", "profile", "seed", "lc_step",
        "lc_error", "layers"}``;
        ``layers`` is a list, one per task, of ``{"name", "n", "edges" (bins + 1 floats),
        "codebook_dc", "codebook_lc" (floats), "kappa_dc", "kappa_lc" (corrections), "same_corrections"
        (positions corrected by both), and one list of ``bins`` counts per entry of
        :data:`COUNTS`}``: the reference weights split into those DC corrects and the rest, the same
        for LC's corrections, and LC's learned weights w split by LC's corrections.

    Raises:
        FileNotFoundError: no checkpoint.
        ValueError: a combination without a codebook; ``bins`` < 2; a checkpoint of other tasks
            or another model, or whose Θ has no codebook.
    """
    if KINDS.get(exp.combo) != "histograms":
        raise ValueError(f"histograms are for runs with a codebook (q, qp, qthenp, pthenq), got combo {exp.combo!r}")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or not 2 <= bins <= MAX_BINS:
        raise ValueError(f"bins must be an int in 2..{MAX_BINS}, got bins={bins!r}")
    bins = int(bins)
    model, ref_params, tasks, state, dc = _load(exp, checkpoint)
    layers = []
    for task, bound, theta in zip(tasks, dc.tasks, state["thetas"]):
        name = _name(task)
        w_ref = ref_params[name].reshape(-1).double()
        w_lc = state["model"][name].reshape(-1).double()
        book_dc, idx_dc = _codebook_and_corrections(bound.theta, task.label)
        try:
            book_lc, idx_lc = _codebook_and_corrections(theta, task.label)
            if idx_lc.numel() and not (0 <= int(idx_lc.min()) and int(idx_lc.max()) < w_lc.numel()):
                raise IndexError(f"corrected positions outside 0..{w_lc.numel() - 1}")
        except (AttributeError, TypeError, IndexError, RuntimeError) as e:
            raise _malformed(exp.id, name, e) from None
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
    return {**_header(exp, state, "histograms"), "layers": layers}


def spectra(exp: Experiment, checkpoint: Optional[Path] = None) -> Dict[str, Any]:
    """The singular-value spectra of a low-rank run (``l`` or ``lp``), per layer, with each
    weight seen as the matrix its task compresses (``(m, n)``; a conv ``(c_out, c_in·k_h·k_w)``).

    Args:
        exp: the experiment; checkpoint: its LC checkpoint (default ``exp.checkpoint_path()``).

    Returns:
        ``{"kind": "spectra", "id", …, "layers"}``; each layer ``{"name", "m", "n", "rank"
        (of Θ's factors), "kappa" (corrections, 0 for ``l``), and descending singular values:
        "reference" (W̄), "dc_low_rank_part" (W̄ − S at DC: what the rank-r factors must
        serve), "learned" (the LC-trained W), "learned_low_rank_part" (W − S at the end of
        LC)}``. For ``l`` the low-rank parts equal the weights (S = 0).

    Raises:
        FileNotFoundError, ValueError: as :func:`histograms`; a combination other than ``l``/``lp``,
            or a Θ without low-rank factors.
    """
    if KINDS.get(exp.combo) != "spectra":
        raise ValueError(f"spectra are for low-rank runs (l, lp), got combo {exp.combo!r}")
    model, ref_params, tasks, state, dc = _load(exp, checkpoint)
    layers = []
    for task, bound, theta in zip(tasks, dc.tasks, state["thetas"]):
        name = _name(task)
        u = theta.get("0.U", theta.get("U"))
        if u is None:
            raise ValueError(f"task {task.label!r}: its Θ has no low-rank factors (keys {sorted(theta)}); spectra need "
                             f"a low-rank combination (l, lp)")
        if not torch.is_tensor(u) or u.ndim != 2:
            raise _malformed(exp.id, name, TypeError("U is not a matrix"))
        w_ref = ref_params[name].double().reshape(ref_params[name].shape[0], -1)
        w_lc = state["model"][name].double().reshape(w_ref.shape)

        def without_corrections(w, th):
            idx = th.get("1.indices")
            if idx is None:
                return w
            out = w.reshape(-1).clone()
            out[idx.long()] = out[idx.long()] - th["1.values"].double()
            return out.reshape(w.shape)

        sv = lambda x: torch.linalg.svdvals(x).tolist()  # noqa: E731
        try:
            layers.append({"name": name, "m": int(w_ref.shape[0]), "n": int(w_ref.shape[1]), "rank": int(u.shape[1]),
                           "kappa": int(theta["1.indices"].numel()) if "1.indices" in theta else 0,
                           "reference": sv(w_ref), "dc_low_rank_part": sv(without_corrections(w_ref, bound.theta)),
                           "learned": sv(w_lc), "learned_low_rank_part": sv(without_corrections(w_lc, theta))})
        except (AttributeError, TypeError, IndexError, RuntimeError, KeyError) as e:
            raise _malformed(exp.id, name, e) from None
    return {**_header(exp, state, "spectra"), "layers": layers}


def path_of(exp: Experiment) -> Path:
    """Where :func:`store` writes the histograms of ``exp``: a ``weights/<id>.json`` beside its
    result (``data/results/<profile>/weights/``; runs with overrides under ``custom/``)."""
    return exp.result_path().parent / "weights" / f"{exp.id}.json"


def store(exp: Experiment, checkpoint: Optional[Path] = None, bins: int = 100, path: Optional[Path] = None,
          command: Optional[str] = None) -> Path:
    """Compute :func:`histograms` or :func:`spectra` (:data:`KINDS` by ``exp.combo``) and write
    them, with the command and provenance, atomically; returns the path.

    Args:
        exp, checkpoint, bins: as :func:`histograms`.
        path: where to write (default :func:`path_of`).
        command: the command recorded as having made the file (default the ``weights`` command;
            ``python -m lcbook run`` records itself when it stores the summary at the end of a run).

    Raises:
        ValueError: a combination not in :data:`KINDS`; and as :func:`histograms` / :func:`spectra`.
    """
    if exp.combo not in KINDS:
        raise ValueError(f"combo {exp.combo!r} has no weight summary; those with one: {sorted(KINDS)}")
    out = histograms(exp, checkpoint, bins) if KINDS[exp.combo] == "histograms" else spectra(exp, checkpoint)
    out["command"] = command or (f"python -m lcbook weights {exp.model} {exp.combo} {budget_text(exp.budget)} "
                                 f"--profile {exp.profile} --seed {exp.seed}")
    out.update(provenance())
    path = Path(path) if path is not None else path_of(exp)
    atomic_write_json(out, path)
    return path


def load(exp: Experiment) -> Dict[str, Any]:
    """The stored weight summary of ``exp`` (:func:`histograms` or :func:`spectra`).

    Raises:
        FileNotFoundError: none stored (the message gives the command that makes them).
        ValueError: the file is not valid JSON or lacks the layers.
    """
    if exp.combo not in KINDS:
        raise ValueError(f"combo {exp.combo!r} has no weight summary; those with one: {sorted(KINDS)}")
    path = path_of(exp)
    if not path.is_file():
        how = ("lcbook.weights.store(experiment) (a run with schedule overrides)" if exp.overrides else
               f"python -m lcbook weights {exp.model} {exp.combo} {budget_text(exp.budget)} --profile {exp.profile} "
               f"--seed {exp.seed}")
        raise FileNotFoundError(f"no stored weight summary for {exp.id} at {path}; make it with {how} while the "
                                f"run's checkpoint exists")
    def no_constants(token):
        raise ValueError(f"non-finite number {token}")

    try:
        data = json.loads(path.read_text(), parse_constant=no_constants)
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    need = set(COUNTS) if KINDS.get(exp.combo) == "histograms" else set(SPECTRA)
    if not (isinstance(data, dict) and isinstance(data.get("layers"), list)
            and data["layers"] and all(isinstance(l, dict) and need <= set(l) for l in data["layers"])):
        raise ValueError(f"{path} does not hold a weight summary (a non-empty 'layers' list with {sorted(need)})")
    if data.get("id") != exp.id:
        raise ValueError(f"{path} holds the summary of {data.get('id')!r}, not of {exp.id}")
    return data

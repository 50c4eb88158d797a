"""Part V's claims judged against the results store, run by run, from the stored numbers only.

Part V [P5] states, in its abstract: combining compressions finds models that are better in the
error-vs-storage plane than single compressions; ResNets compress to about one bit per weight
plus a few floating-point weights with no loss of accuracy (Q+P); VGG nets compress best as
low-rank plus a few floating-point weights (L+P). Each stored run tests one of these:

* a run of the family's **claimed combination** (``qp`` for ResNets and LeNet300, ``lp`` for VGG)
  tests "no rival is both no larger and more accurate" (a rival is a single compression, a
  sequential pipeline, or, for VGG, Q+P), and for ResNet Q+P at ≤ 1.5 bits per weight also
  "within 1.0 point of its reference";
* a **rival's** run tests "the claimed combination, at equal or fewer bits, is more accurate".

"No larger" allows 1% more bits (the evidence grid matches budgets to within that:
:func:`lcbook.evidence.match_budget`); "equal storage" is no larger both ways. A claim *fails*
only on a run that refutes it: a rival no larger and more accurate, or (for a rival's run) a run of
the claimed combination at equal storage that is less accurate. It *holds* on a run that supports
it at no larger storage, and is *untested* when the only runs to compare with are much smaller and
less accurate, or absent (same profile, network and seed).
Errors are LC test errors in percent; bits count everything stored, the sparse corrections'
values and indices included (:func:`lcbook.storage.storage_report`).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Dict, Iterable, List, Sequence

from .experiments import family

#: The combination Part V claims is best, per model family.
CLAIMED: Dict[str, str] = {"resnet": "qp", "vgg": "lp", "lenet300": "qp"}

#: The runs a claimed combination is compared with, per claimed combination.
RIVALS: Dict[str, tuple] = {"qp": ("q", "p", "qthenp", "pthenq"), "lp": ("l", "p", "qp")}

#: How many more bits (as a factor) the claimed run may have and still count as "equal storage".
EQUAL_STORAGE = 1.01

#: The ResNet claim's "about one bit per weight" and "no loss of accuracy", as tested here.
ONE_BIT, NO_LOSS = 1.5, 1.0

#: LC's last steps "converged" when their test errors span less than this many points (issue 12).
CONVERGED_SPREAD, CONVERGED_STEPS = 0.3, 3

_NAMES = {"q": "Q", "p": "P", "qp": "Q+P", "l": "L", "lp": "L+P", "qthenp": "Q then P", "pthenq": "P then Q"}


def name(combo: str) -> str:
    """The book's short name of a combination (``"qp"`` → ``"Q+P"``)."""
    return _NAMES.get(combo, combo)


def finite_number(v) -> bool:
    """``v`` is a real number (numpy numbers too, not a bool) that is finite as a float."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an int too large for a float
        return False


def lc_step_errors(history, where: str = "history") -> List[float]:
    """The test errors (%) of the LC steps in a stored run's ``history``, in the stored order (the
    steps whose ``step`` is a whole number, numpy integers included; the ``"DC"`` entry and others
    are skipped).

    Raises:
        ValueError: ``history`` is not a list of dicts with ``step`` and ``test_error``, or an LC
            step's ``test_error`` is not a finite number; the message names ``where`` and the entry.
    """
    if not isinstance(history, list):
        raise ValueError(f"{where}: expected a list of steps, got {type(history).__name__}")
    errs = []
    for j, h in enumerate(history):
        if not isinstance(h, dict) or "step" not in h or "test_error" not in h:
            raise ValueError(f"{where}[{j}]: expected a dict with 'step' and 'test_error', got {h!r:.80}")
        step = h["step"]
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            continue
        if not finite_number(h["test_error"]):
            raise ValueError(f"{where}[{j}]['test_error']: expected a finite number (percent), got {h['test_error']!r}")
        errs.append(float(h["test_error"]))
    return errs


def last_steps_spread(result: Dict, steps: int = CONVERGED_STEPS) -> float:
    """Max − min test error (points) over the last ``steps`` LC steps of a stored run (NaN if
    it has fewer steps).

    Raises:
        KeyError: ``result`` has no ``history``.
        ValueError: a malformed history (see :func:`lc_step_errors`).
    """
    return spread_of(lc_step_errors(result["history"], "result['history']"), steps)


def spread_of(errs: Sequence[float], steps: int = CONVERGED_STEPS) -> float:
    """Max − min of the last ``steps`` of the test errors ``errs`` (points; NaN if there are fewer)."""
    return round(max(errs[-steps:]) - min(errs[-steps:]), 6) if len(errs) >= steps else float("nan")


def _no_larger(a: Dict, b: Dict) -> bool:
    """Run ``a`` stores no more bits than run ``b`` (within :data:`EQUAL_STORAGE`)."""
    return a["total_bits"] <= b["total_bits"] * EQUAL_STORAGE


def _describe(o: Dict) -> str:
    return f"{name(o['combo'])} {o['bits_per_weight']:.3f} b/w: {o['lc_error']:.2f}%"


def _compare(r: Dict, others: Sequence[Dict], refuted_by_better: bool, none_text: str) -> Dict[str, str]:
    """Verdict and evidence of ``r`` against the ``others`` no larger than it: one of them more
    accurate refutes the claim (``refuted_by_better``) or supports it; otherwise one at equal
    storage does the opposite, and smaller, less accurate ones test nothing."""
    smaller = [o for o in others if _no_larger(o, r)]
    better = [o for o in smaller if o["lc_error"] < r["lc_error"]]
    equal = [o for o in smaller if _no_larger(r, o)]
    if better:
        verdict = "fails" if refuted_by_better else "holds"
    elif equal:
        verdict = "holds" if refuted_by_better else "fails"
    else:
        verdict = "untested"
    shown = better or equal or smaller
    tail = "" if better or equal else (" (smaller and less accurate: not a test at equal storage)" if shown else none_text)
    return {"verdict": verdict, "evidence": "; ".join(_describe(o) for o in shown) + tail}


def _peers(r: Dict, results: Sequence[Dict]) -> List[Dict]:
    return [o for o in results if o["model"] == r["model"] and o["profile"] == r["profile"]
            and o["seed"] == r["seed"] and not o.get("overrides") and o["id"] != r["id"]]


_NUMBERS = ("total_bits", "bits_per_weight", "lc_error", "reference_error")
_NAME_FIELDS = ("model", "combo", "profile")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def result_list(results: Iterable[Dict], fields: Sequence[str]) -> List[Dict]:
    """``results`` (a list or any iterable) as a list of dicts that each have ``fields``; the
    first check of :func:`verdicts` and :func:`lcbook.evidence.convergence`.

    Raises:
        TypeError: ``results`` is ``None``, one result dict, a string or not iterable.
        ValueError: an entry is not a dict or lacks one of ``fields``.
    """
    if results is None or isinstance(results, (dict, str, bytes)) or not hasattr(results, "__iter__"):
        raise TypeError(f"results: expected a list of stored results (dicts), got {type(results).__name__}"
                        + (" (one result: pass [result])" if isinstance(results, dict) else ""))
    results = list(results)
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise ValueError(f"results[{i}] must be a stored result (a dict), got {type(r).__name__}")
        missing = [k for k in fields if k not in r]
        if missing:
            raise ValueError(f"results[{i}] lacks the result fields {missing} (see lcbook.experiments.RESULT_FIELDS)")
    return results


def refuse_repeats(results: Sequence[Dict]) -> None:
    """Refuse two entries of ``results`` that share a profile and an ``id`` (an id names a run
    within its profile); check first that each ``id`` is a string.

    Raises:
        ValueError: naming both entries by index.
    """
    ids: Dict[tuple, int] = {}
    for i, r in enumerate(results):
        key = (r.get("profile"), r["id"])
        if key in ids:
            raise ValueError(f"results[{i}]: id {r['id']!r} (profile {key[0]!r}) is also results[{ids[key]}]'s; "
                             "give each run once")
        ids[key] = i


def _checked(results: Iterable[Dict]) -> List[Dict]:
    """``results`` as a list, each entry checked (see :func:`verdicts`)."""
    results = result_list(results, ("id", *_NAME_FIELDS, "seed", *_NUMBERS))
    for i, r in enumerate(results):
        for k in _NUMBERS:
            v = r[k]
            if not finite_number(v) or v < 0 or (k in ("lc_error", "reference_error") and v > 100):
                allowed = "a finite percentage, 0 to 100" if k in ("lc_error", "reference_error") else "a finite number ≥ 0"
                raise ValueError(f"results[{i}][{k!r}]: expected {allowed}, got {v!r:.60}")
        if "history" in r:
            lc_step_errors(r["history"], f"results[{i}]['history']")
        for k in _NAME_FIELDS:
            if not isinstance(r[k], str) or not _PLAIN.fullmatch(r[k]):
                raise ValueError(f"results[{i}][{k!r}]: expected a plain name (letters, digits, '_', '.', '-'), "
                                 f"got {r[k]!r}")
        if not isinstance(r["id"], str) or not r["id"]:
            raise ValueError(f"results[{i}]['id']: expected a non-empty string, got {r['id']!r}")
        if isinstance(r["seed"], bool) or not isinstance(r["seed"], numbers.Integral):
            raise ValueError(f"results[{i}]['seed']: expected a whole number, got {r['seed']!r}")
    refuse_repeats(results)
    return results


def verdicts(results: Sequence[Dict]) -> List[Dict]:
    """One row per (run, claim it tests), in the order of ``results``.

    Args:
        results: stored results (:func:`lcbook.experiments.load_results`), any profiles, as a list
            or any iterable; runs with schedule overrides (sweeps) are skipped.

    Returns:
        dicts with ``id``, ``profile``, ``model``, ``combination``, ``bits_per_weight``,
        ``lc_error`` (%), ``reference_error`` (%), ``claim`` (text), ``verdict``
        (``"holds"``/``"fails"``/``"untested"``) and ``evidence`` (the compared numbers, text).

    Raises:
        TypeError: ``results`` is not an iterable of results (``None``, one result dict, a string).
        ValueError: an entry is not a dict or lacks a field; ``total_bits`` or ``bits_per_weight``
            is not a finite number ≥ 0, ``lc_error`` or ``reference_error`` not one from 0 to 100
            (numpy numbers count); a ``history`` is malformed (:func:`lc_step_errors`);
            ``model``, ``combo`` or ``profile`` is not a plain name (letters, digits, ``_ . -``);
            ``seed`` is not a whole number; two entries share a profile and an ``id``. The message names the
            entry and the field.
    """
    return _verdicts(_checked(results))


def _verdicts(results: List[Dict]) -> List[Dict]:
    """:func:`verdicts` of results already checked by :func:`_checked`."""
    rows = []
    for r in results:
        if r.get("overrides"):
            continue
        claimed = CLAIMED.get(family(r["model"]))
        base = {"id": r["id"], "profile": r["profile"], "model": r["model"], "combination": name(r["combo"]),
                "bits_per_weight": float(r["bits_per_weight"]), "lc_error": float(r["lc_error"]),
                "reference_error": float(r["reference_error"])}
        peers = _peers(r, results)
        if claimed is None or (r["combo"] != claimed and r["combo"] not in RIVALS[claimed]):
            rows.append({**base, "claim": "none (no Part V claim covers this combination)", "verdict": "untested",
                         "evidence": ""})
            continue
        if r["combo"] == claimed:
            rivals = [o for o in peers if o["combo"] in RIVALS[claimed]]
            rows.append({**base, "claim": f"no rival of {name(claimed)} is both no larger and more accurate",
                         **_compare(r, rivals, refuted_by_better=True, none_text="no rival at equal or fewer bits")})
            if family(r["model"]) == "resnet" and r["bits_per_weight"] <= ONE_BIT:
                gap = r["lc_error"] - r["reference_error"]
                rows.append({**base, "claim": f"Q+P at ≤ {ONE_BIT} bits/weight within {NO_LOSS} point of its reference",
                             "verdict": "holds" if gap <= NO_LOSS else "fails",
                             "evidence": f"{gap:+.2f} points from the reference"})
        else:
            mine = [o for o in peers if o["combo"] == claimed]
            rows.append({**base, "claim": f"{name(claimed)} at equal or fewer bits is more accurate",
                         **_compare(r, mine, refuted_by_better=False,
                                    none_text=f"no {name(claimed)} run at ≤ {r['bits_per_weight']:.3f} b/w")})
    return rows


def report(results: Sequence[Dict]) -> str:
    """The verdicts of :func:`verdicts` as Markdown nested lists that read on a phone: a bold line
    per profile and network, under it each claim (in italics), under each claim the runs that test
    it, each with its storage (bits per weight), LC test error (%), verdict, evidence and the span
    of its last :data:`CONVERGED_STEPS` LC steps' test errors (points; left out when the run has
    no ``history`` or fewer steps).

    Args:
        results: stored results, as for :func:`verdicts`.

    Returns:
        Markdown text; one sentence if no run is judged. Names are plain (checked), so nothing in
        a result can add Markdown or HTML to the page.

    Raises:
        TypeError, ValueError: as :func:`verdicts`, for malformed results.
    """
    results = _checked(results)
    rows = _verdicts(results)
    if not rows:
        return "No stored run to judge (runs with schedule overrides are not judged)."
    spans = {(r["profile"], r["id"]): last_steps_spread(r) if "history" in r else float("nan") for r in results}
    groups: Dict[tuple, Dict[str, List[Dict]]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["model"]), {}).setdefault(row["claim"], []).append(row)
    lines = []
    for (profile, model), by_claim in groups.items():
        lines += [f"**{profile} profile, {model}**", ""]
        for claim, runs in by_claim.items():
            lines.append(f"- *{claim}*")
            for r in runs:
                span = spans.get((r["profile"], r["id"]), float("nan"))
                tail = f"; last {CONVERGED_STEPS} LC steps span {span:.2f} points" if span == span else ""
                evidence = f"{r['evidence']}{tail}".lstrip("; ")
                lines.append(f"  - {r['combination']} at {r['bits_per_weight']:.3f} bits/weight, LC {r['lc_error']:.2f}%: "
                             f"**{r['verdict']}**" + (f" ({evidence})" if evidence else ""))
        lines.append("")
    return "\n".join(lines)

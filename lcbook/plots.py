"""Figures used by the chapters (matplotlib)."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import matplotlib.pyplot as plt


def error_vs_storage(rows: Sequence[Dict], reference_error: Optional[float] = None, ax=None, title: str = ""):
    """Test error (percent) against compression ratio (log scale) for DC and LC results.

    Args:
        rows: dicts with ``"name"``, ``"ratio"``, ``"dc_error"`` and ``"lc_error"``; optionally
            ``"cited_error"`` (a published number, drawn hollow and labelled as cited).
        reference_error: the uncompressed reference's test error, drawn as a dashed line.

    Returns:
        The matplotlib ``Axes``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(rows):
        c = colors[i % len(colors)]
        ax.plot([r["ratio"]] * 2, [r["dc_error"], r["lc_error"]], color=c, lw=1, alpha=0.5)
        ax.scatter(r["ratio"], r["dc_error"], marker="x", color=c, s=50)
        ax.scatter(r["ratio"], r["lc_error"], marker="o", color=c, s=50, label=r["name"])
        if r.get("cited_error") is not None:
            ax.scatter(r["ratio"], r["cited_error"], marker="o", facecolors="none", edgecolors=c, s=90)
    if reference_error is not None:
        ax.axhline(reference_error, ls="--", color="gray", lw=1, label="reference (uncompressed)")
    ax.scatter([], [], marker="x", color="k", label="direct compression (DC)")
    ax.scatter([], [], marker="o", color="k", label="LC")
    if any(r.get("cited_error") is not None for r in rows):
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="k", label="cited (LC toolkit, tanh net)")
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (reference bits / compressed bits)")
    ax.set_ylabel("test error (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return ax


def lc_paths(histories: Dict[str, Sequence[Dict]], key: str = "test_error", ax=None, ylabel: str = "test error of Δ(Θ) (%)"):
    """One line per run: ``key`` of each LC step against μ (log scale); DC drawn at the left."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, hist in histories.items():
        steps = [r for r in hist if r["step"] != "DC"]
        line, = ax.plot([r["mu"] for r in steps], [r[key] for r in steps], marker=".", label=name)
        dc = [r for r in hist if r["step"] == "DC"]
        if dc and steps:
            ax.scatter([steps[0]["mu"]], [dc[0][key]], marker="x", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("μ")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


_ORDER = ["q", "p", "qp", "l", "lp", "qthenp", "pthenq"]


def combo_color(combo: str) -> str:
    """One colour per combination (``"q"``, ``"qp"``, …), the same in every figure of the book."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return colors[_ORDER.index(combo) % len(colors)] if combo in _ORDER else "k"


def lc_paths_of(results: Sequence[Dict], key: str = "test_error", ax=None):
    """:func:`lc_paths` of stored results, one line per run labelled and coloured by its
    combination and budget (colours as :func:`error_vs_bits`)."""
    from .claims import name
    from .experiments import budget_text

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    ax = lc_paths({f"{name(r['combo'])} {budget_text(r['budget'])}": r["history"] for r in results}, key=key, ax=ax)
    for line, r in zip(ax.get_lines(), results):
        line.set_color(combo_color(r["combo"]))
    for coll, r in zip(ax.collections, [r for r in results if any(h["step"] == "DC" for h in r["history"])]):
        coll.set_color(combo_color(r["combo"]))
    ax.legend(fontsize=8)
    return ax


def error_vs_bits(results: Sequence[Dict], reference_error: Optional[float] = None, ax=None, title: str = "",
                  dc: bool = True):
    """The error-vs-bits-per-weight front after LC: one curve per combination (its stored runs
    sorted by bits), the reference as a dashed line.

    Args:
        results: stored results (:func:`lcbook.experiments.load_results`) of one network and profile, with
            ``"combo"``, ``"bits_per_weight"`` (bits over the compressed weights, sparse
            corrections' values and indices included), ``"lc_error"`` and ``"dc_error"`` (%).
        reference_error: the reference's test error (%), drawn as a dashed line.
        dc: also draw each run's direct compression as a faint cross.

    Returns:
        The matplotlib ``Axes``.
    """
    from .claims import name

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    combos = sorted({r["combo"] for r in results}, key=_ORDER.index)
    for combo in combos:
        rs = sorted((r for r in results if r["combo"] == combo), key=lambda r: r["bits_per_weight"])
        c = combo_color(combo)
        ax.plot([r["bits_per_weight"] for r in rs], [r["lc_error"] for r in rs], marker="o", color=c,
                label=f"{name(combo)} (LC)")
        if dc:
            ax.scatter([r["bits_per_weight"] for r in rs], [r["dc_error"] for r in rs], marker="x", color=c, alpha=0.45)
    if dc and results:
        ax.scatter([], [], marker="x", color="k", alpha=0.45, label="direct compression")
    if reference_error is not None:
        ax.axhline(reference_error, ls="--", color="gray", lw=1, label=f"reference ({reference_error:.2f}%)")
    ax.set_xscale("log", base=2)
    if results:
        bits = [r["bits_per_weight"] for r in results]
        ax.set_xlim(min(bits) / 1.15, max(bits) * 1.15)
        ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32) if min(bits) / 1.15 <= t <= max(bits) * 1.15]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("bits per compressed weight (log scale)")
    ax.set_ylabel("test error (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return ax

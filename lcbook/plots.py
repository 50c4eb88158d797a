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

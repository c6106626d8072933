"""The report's plots (matplotlib, Agg canvas, no pyplot state): the pictures of the MetaCLIP paper's balancing.

Each function takes numbers already reduced by Spark (per-entry count vectors, histogram bins) and returns a
Figure; `figure_png` renders one to PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# A log-scaled curve over ~500k ranks looks the same drawn through a few thousand geometrically spaced points.
CURVE_POINTS = 4000
BEFORE_STYLE = {"color": "#1f77b4", "label": "before balancing (matched)"}
AFTER_STYLE = {"color": "#d62728", "label": "after balancing (curated)"}


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(7.5, 4.8), dpi=100)
    # Fixed margins: an automatic layout engine doubles the rendering time of these simple plots.
    figure.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _sorted_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    return np.sort(counts[counts > 0])[::-1]


def _curve_ranks(n: int) -> np.ndarray:
    """0-based ranks to draw: all of them for short curves, geometrically spaced ones (first and last kept) else."""
    if n <= CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.concatenate([np.geomspace(1, n, CURVE_POINTS).astype(np.int64) - 1, [n - 1]]))


def _note_empty(axes, what: str) -> None:
    axes.text(0.5, 0.5, f"no {what}", transform=axes.transAxes, ha="center", va="center", color="gray")


def plot_entry_counts(before: np.ndarray, after: np.ndarray, t: int) -> Figure:
    """Sorted per-entry counts before and after balancing, log-log, with t: the head flattened to t, the tail kept."""
    figure, axes = _figure()
    drawn = False
    for counts, style in ((before, BEFORE_STYLE), (after, AFTER_STYLE)):
        ordered = _sorted_counts(counts)
        if ordered.size:
            ranks = _curve_ranks(ordered.size)
            axes.plot(ranks + 1, ordered[ranks], drawstyle="steps-post", linewidth=1.4, **style)
            drawn = True
    axes.axhline(t, color="black", linestyle="--", linewidth=1, label=f"t = {t:,}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("entry rank (entries sorted by count)")
    axes.set_ylabel("matched texts per entry")
    axes.set_title("Entry counts before and after balancing")
    if not drawn:
        _note_empty(axes, "matched entries")
    axes.legend(loc="upper right")
    axes.grid(True, which="major", alpha=0.3)
    return figure


def plot_cumulative_share(before: np.ndarray, after: np.ndarray, t: int) -> Figure:
    """Share of all matches held by the k largest entries, against k; the rank where counts fall under t marked."""
    figure, axes = _figure()
    drawn = False
    for counts, style in ((before, BEFORE_STYLE), (after, AFTER_STYLE)):
        ordered = _sorted_counts(counts)
        if ordered.size:
            cumulative = np.cumsum(ordered) / ordered.sum()
            ranks = _curve_ranks(ordered.size)
            axes.plot(ranks + 1, cumulative[ranks], linewidth=1.4, **style)
            drawn = True
    over_t = int((np.asarray(before) > t).sum())
    if over_t:
        axes.axvline(over_t, color="black", linestyle="--", linewidth=1, label=f"{over_t:,} entries over t = {t:,}")
    axes.set_xscale("log")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("entry rank (entries sorted by count)")
    axes.set_ylabel("cumulative share of matches")
    axes.set_title("Cumulative share of matches by entry rank")
    if not drawn:
        _note_empty(axes, "matched entries")
    axes.legend(loc="lower right")
    axes.grid(True, which="major", alpha=0.3)
    return figure


def plot_keep_probabilities(bin_pairs: list[int]) -> Figure:
    """Histogram of keep probabilities P = 1 - prod(1 - p_e) over all matched pairs (bins of equal width on [0, 1])."""
    figure, axes = _figure()
    bins = len(bin_pairs)
    heights = np.asarray(bin_pairs, dtype=np.int64)
    edges = np.arange(bins) / bins
    axes.bar(edges, heights, width=1.0 / bins, align="edge", color=BEFORE_STYLE["color"], edgecolor="white",
             linewidth=0.4)
    if heights.any():
        axes.set_yscale("log")  # pairs that match a tail entry (P = 1) usually outnumber every other bin
    else:
        _note_empty(axes, "matched pairs")
    axes.set_xlim(0, 1)
    axes.set_xlabel("keep probability P = 1 - prod(1 - p_e)")
    axes.set_ylabel("matched pairs")
    axes.set_title("Keep probabilities of matched pairs")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
